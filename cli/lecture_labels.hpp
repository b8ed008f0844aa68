// The lecture's nine hand-derived derivatives (1) ∂L/∂S … (9) ∂L/∂W′, each with its local
// derivative (∂a1/∂W′ = x), as data laid
// over a step when it is shown: the stepper itself knows nothing of the lecture.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <vector>

#include "graph/stepper.hpp"

namespace chainrule::cli {

// One of the nine: the contribution op node `node` (running `op`) sends to its input
// `slot`, which must be the node named `input`.
struct LectureLabel {
    int number;              // (1) … (9)
    const char* node;
    const char* op;
    std::size_t slot;
    const char* input;
    const char* derivative;  // what the step sends, "∂L/∂W″"
    const char* formula;     // the lecture's formula for it, "y1ᵀ·δ2"
    const char* local;       // the lecture's local derivative, "∂a2/∂W″ = y1"
    // The lecture's update treats this step as the identity (normalize's Jacobian):
    // the trace then shows the lecture's value beside the exact one.
    bool lecture_passes_through;
};

// The nine, in the lecture's order, then one more row labelling the fused op of
// models/mnist_lecture.json as (3). They label any model whose nodes have the lecture's
// names, ops and inputs (models/slides_mnist.json); each row applies where it matches.
std::span<const LectureLabel> lecture_labels();

// The row for what op node `id` sends to its input `slot`, or null.
const LectureLabel* lecture_label(const Graph& g, int id, std::size_t slot);
// Whether some row applies to some step of `order`.
bool has_lecture_labels(const Graph& g, const std::vector<int>& order);

// The lecture's value of a step it treats as the identity, the exact one, and the gap.
struct LectureGap {
    Tensor lecture, exact;
    double norm_lecture = 0, norm_exact = 0, norm_diff = 0;
    double relative_diff = 0;  // norm_diff / norm_exact
};

// A step's input with what the lecture says about it.
struct LabelledInput {
    const StepInput* input = nullptr;
    const LectureLabel* label = nullptr;
    std::optional<LectureGap> gap;  // for a row the lecture passes straight through
};

// The inputs of `st` in slot order, each with its row and gap. The gap compares the
// step's upstream gradient (the lecture's value) with its contribution, so it is right
// at any time after the step ran.
std::vector<LabelledInput> label_step(const Graph& g, const Step& st);

}  // namespace chainrule::cli
