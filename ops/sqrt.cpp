// sqrt(x), elementwise (x ≥ 0; a negative x gives NaN as the math library does). layer_norm's
// VJP needs it (its 1/√(σ² + eps)), and it is usable in a model. Its derivative 1/(2y) is
// written with div and scale, so it is twice differentiable.
#include <cmath>

#include "ops/elementwise.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

const bool sqrt_registered = register_op({
    .name = "sqrt",
    .formula = "y = √x;  dL/dx = dL/dy / (2y)",
    .inputs = {"x"},
    .shape = [](std::span<const Shape> in, const Attrs&) { return in[0]; },
    .forward = unary_forward([](auto x) { return std::sqrt(x); }),
    .backward = unary_backward([](auto, auto y, auto g) { return g / (decltype(y)(2) * y); }),
    .samples = {{.shapes = {{3, 4}}, .domains = {Domain::positive}},
                {.shapes = {{5}}, .domains = {Domain::positive}},
                {.shapes = {{}}, .domains = {Domain::positive}}},
    .summary = "elementwise square root (for x ≥ 0)",
    .elementwise = true,
    // d √x = dx / (2√x) = dx / (2y)
    .vjp = [](VjpBuilder& b) { return refs(b.div(b.grad(), b.scale(b.output(), 2))); },
});

}  // namespace
}  // namespace chainrule
