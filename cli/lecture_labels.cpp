#include "cli/lecture_labels.hpp"

#include <cmath>

#include "core/print.hpp"

namespace chainrule::cli {
namespace {

// Which node's contribution to which input each derivative is. The graph splits x·W + b
// into matmul and add, so (4)/(5)/(6) and (8)/(9) are contributions of different nodes
// to different inputs.
constexpr LectureLabel kLecture[] = {
    {1, "L", "mse", 0, "S", "∂L/∂S", "(S − t)/N", "", false},
    {2, "S", "normalize", 0, "y2", "∂L/∂y2",
     "normalize's Jacobian applied to g = ∂L/∂S, (g − Σ g·S)/Σ y2 per row; the lecture's hand derivation skips it "
     "and passes g straight through",
     "∂S/∂y2", true},
    {3, "y2", "sigmoid", 0, "a2", "∂L/∂a2", "δ2 = g ⊙ y2(1 − y2)", "∂y2/∂a2 = y2(1 − y2)", false},
    {4, "a2", "add", 1, "b2", "∂L/∂b″", "δ2 summed over the rows", "∂a2/∂b″ = 1", false},
    {5, "y1W2", "matmul", 1, "W2", "∂L/∂W″", "y1ᵀ·δ2", "∂a2/∂W″ = y1", false},
    {6, "y1W2", "matmul", 0, "y1", "∂L/∂y1", "δ2·W″ᵀ", "∂a2/∂y1 = W″", false},
    {7, "y1", "sigmoid", 0, "a1", "∂L/∂a1", "δ1 = (δ2·W″ᵀ) ⊙ y1(1 − y1)", "∂y1/∂a1 = y1(1 − y1)", false},
    {8, "a1", "add", 1, "b1", "∂L/∂b′", "δ1 summed over the rows", "∂a1/∂b′ = 1", false},
    {9, "xW1", "matmul", 1, "W1", "∂L/∂W′", "xᵀ·δ1", "∂a1/∂W′ = x", false},
    // models/mnist_lecture.json fuses sigmoid and normalize into the lecture's own update.
    {3, "S", "lecture_sigmoid_normalize", 0, "a2", "∂L/∂a2",
     "δ2 = g ⊙ y2(1 − y2) taken at the normalized output S, with (2) skipped: the lecture's update, not the exact "
     "gradient",
     "∂y2/∂a2 = y2(1 − y2)", false},
};

LectureGap gap_of(const Tensor& lecture, const Tensor& exact) {
    LectureGap gap{.lecture = lecture, .exact = exact};
    double diff = 0;
    for (std::int64_t i = 0; i < exact.numel(); ++i) {
        double d = exact.at(i) - lecture.at(i);
        diff += d * d;
    }
    gap.norm_lecture = tensor_stats(lecture).norm;
    gap.norm_exact = tensor_stats(exact).norm;
    gap.norm_diff = std::sqrt(diff);
    gap.relative_diff = gap.norm_exact > 0 ? gap.norm_diff / gap.norm_exact : gap.norm_diff > 0 ? INFINITY : 0.0;
    return gap;
}

}  // namespace

std::span<const LectureLabel> lecture_labels() { return kLecture; }

const LectureLabel* lecture_label(const Graph& g, int id, std::size_t slot) {
    const Node& n = g.node(id);
    for (const auto& l : kLecture)
        if (n.name == l.node && n.op->name == l.op && slot == l.slot && slot < n.inputs.size() &&
            g.node(n.inputs[slot]).name == l.input)
            return &l;
    return nullptr;
}

bool has_lecture_labels(const Graph& g, const std::vector<int>& order) {
    for (int id : order)
        for (std::size_t i = 0; i < g.node(id).inputs.size(); ++i)
            if (lecture_label(g, id, i)) return true;
    return false;
}

std::vector<LabelledInput> label_step(const Graph& g, const Step& st) {
    const Tensor& upstream = g.node(st.id).grad;
    std::vector<LabelledInput> out;
    for (const StepInput& in : st.inputs) {
        LabelledInput l{.input = &in, .label = lecture_label(g, st.id, in.slot)};
        if (l.label && l.label->lecture_passes_through && !in.contribution.empty() &&
            upstream.dims() == in.contribution.dims())
            l.gap = gap_of(upstream, in.contribution);
        out.push_back(std::move(l));
    }
    return out;
}

}  // namespace chainrule::cli
