// tanh(x), elementwise. std::tanh saturates to exactly ±1 for large |x| without
// overflow (unlike (e^x − e^−x)/(e^x + e^−x)), and its derivative is taken from y.
#include <cmath>

#include "ops/elementwise.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

const bool tanh_registered = register_op({
    .name = "tanh",
    .formula = "y = tanh(x);  dL/dx = dL/dy · (1 − y²)",
    .inputs = {"x"},
    .shape = [](std::span<const Shape> in, const Attrs&) { return in[0]; },
    .forward = unary_forward([](auto x) { return std::tanh(x); }),
    .backward = unary_backward([](auto, auto y, auto g) { return g * (1 - y * y); }),
    .samples = {{.shapes = {{3, 4}}}, {.shapes = {{5}}}, {.shapes = {{}}}},
    .summary = "hyperbolic tangent, stable for large |x|",
    .elementwise = true,
    // d tanh(x) = (1 − y²)·dx
    .vjp = [](VjpBuilder& b) { return refs(b.mul(b.grad(), b.scale(b.mul(b.output(), b.output()), -1, 1))); },
});

}  // namespace
}  // namespace chainrule
