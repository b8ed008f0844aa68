// exp(x), elementwise. Like the math library: exp(x) = inf for x > ~709 (float64) or
// ~88 (float32), and 0 for very negative x; softmax and cross_entropy shift by the max
// so they never meet that.
#include <cmath>

#include "ops/elementwise.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

const bool exp_registered = register_op({
    .name = "exp",
    .formula = "y = exp(x);  dL/dx = dL/dy · y",
    .inputs = {"x"},
    .shape = [](std::span<const Shape> in, const Attrs&) { return in[0]; },
    .forward = unary_forward([](auto x) { return std::exp(x); }),
    .backward = unary_backward([](auto, auto y, auto g) { return g * y; }),
    .samples = {{.shapes = {{3, 4}}}, {.shapes = {{}}}},
    .summary = "elementwise exponential",
    .elementwise = true,
    // d exp(x) = exp(x)·dx = y·dx
    .vjp = [](VjpBuilder& b) { return refs(b.mul(b.grad(), b.output())); },
});

}  // namespace
}  // namespace chainrule
