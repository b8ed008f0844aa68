// dropout(x), attr p (0 ≤ p < 1, default 0.5 as PyTorch's): inverted dropout.
//
// In a training step (the call carries a noise seed) each entry is kept with probability
// 1 − p and scaled by 1/(1 − p), so the expected output is x; everywhere else (evaluation,
// grad, gradcheck, step, dot) it is the identity, which is also that expectation.
//
// The mask is a pure function of the node's seed and the entry's index (no stored mask, no
// RNG state): backward recomputes the forward's mask from the same seed, the thread count
// cannot change it, and a resumed run draws the same masks because the trainer derives
// the step's seed from (seed, epoch, step) alone.
//
// It has no vjp, on purpose: the one op without one. Its derivative is the mask, drawn from
// this node's seed (noise_seed(step, node index)); a VJP node elsewhere in the graph gets a
// seed of its own, so it would draw another mask, and the mask cannot be read back from x and
// y where x is 0 (after a relu, often). A rule that gave dL/dy (right outside training only)
// would differentiate a training step with the wrong mask without a word. A `grad` node
// through dropout is refused by name instead; passing the node's seed to its VJP node is an
// engine change (graph/), not an op rule.
#include <fmt/format.h>

#include "ops/op.hpp"

namespace chainrule {
namespace {

double drop_probability(const Attrs& attrs) {
    const auto& p = attrs.at("p");
    double v = p.is_number() ? p.get<double>() : -1;
    if (!p.is_number() || !(v >= 0 && v < 1))
        throw ShapeError(fmt::format("attr p must be a number with 0 <= p < 1 (the probability of dropping an "
                                     "entry), got {}",
                                     p.dump()));
    return v;
}

// Entry i is kept when its 53-bit uniform draw is at least p.
struct Mask {
    std::uint64_t seed, threshold;
    double scale;
    Mask(std::uint64_t s, double p) : seed(s), threshold(std::uint64_t(p * 0x1p53)), scale(1 / (1 - p)) {}
    bool keep(std::int64_t i) const { return (noise_seed(seed, std::uint64_t(i)) >> 11) >= threshold; }
};

// out[i] = mask ? in[i]·scale : 0, or a copy without noise.
void masked(const Tensor& in, Tensor& out, const Attrs& attrs, std::optional<std::uint64_t> noise) {
    const double p = drop_probability(attrs);
    dispatch(out.dtype(), [&]<class T>() {
        const T* x = in.data<T>();
        T* y = out.data<T>();
        const std::int64_t n = out.numel();
        if (!noise || p == 0) {
            std::copy(x, x + n, y);
            return;
        }
        const Mask m(*noise, p);
        const T scale = T(m.scale);
        for (std::int64_t i = 0; i < n; ++i) y[i] = m.keep(i) ? x[i] * scale : T(0);
    });
}

const bool dropout_registered = register_op({
    .name = "dropout",
    .formula = "y = x (evaluating);  in training y = m ⊙ x / (1−p), m ~ Bernoulli(1−p) per entry;  "
               "dL/dx = dL/dy (evaluating), m ⊙ dL/dy / (1−p) (training)",
    .inputs = {"x"},
    .attrs = {{"p", 0.5}},
    .shape =
        [](std::span<const Shape> in, const Attrs& attrs) {
            drop_probability(attrs);
            return in[0];
        },
    .forward = [](const ForwardCall& c) { masked(*c.in[0], c.out, c.attrs, c.noise); },
    .backward =
        [](const BackwardCall& c) {
            if (c.grad_in[0]) masked(c.grad_out, *c.grad_in[0], c.attrs, c.noise);
        },
    .samples = {{.shapes = {{3, 4}}}, {.shapes = {{2, 3, 5}}, .attrs = {{"p", 0.2}}}, {.shapes = {{7}}, .attrs = {{"p", 0}}}},
    .summary = "inverted dropout with probability p in training steps; the identity everywhere else",
    .bad_samples = {{.shapes = {{3, 4}}, .attrs = {{"p", 1}}, .error = "attr p must be a number with 0 <= p < 1"},
                    {.shapes = {{3, 4}}, .attrs = {{"p", -0.1}}, .error = "got -0.1"},
                    {.shapes = {{3, 4}}, .attrs = {{"p", 1.5}}, .error = "got 1.5"}},
});

}  // namespace
}  // namespace chainrule
