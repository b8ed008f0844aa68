// log(x), natural logarithm, elementwise. Like the math library: log(0) = −inf and
// log(x < 0) = NaN; the training loop stops on a non-finite loss. For a loss on
// probabilities use log_softmax or cross_entropy, which never take log of 0.
#include <cmath>

#include "ops/elementwise.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

const bool log_registered = register_op({
    .name = "log",
    .formula = "y = ln(x);  dL/dx = dL/dy / x",
    .inputs = {"x"},
    .shape = [](std::span<const Shape> in, const Attrs&) { return in[0]; },
    .forward = unary_forward([](auto x) { return std::log(x); }),
    .backward = unary_backward([](auto x, auto, auto g) { return g / x; }),
    .samples = {{.shapes = {{3, 4}}, .domains = {Domain::positive}}, {.shapes = {{}}, .domains = {Domain::positive}}},
    .summary = "elementwise natural logarithm (log(0) = −inf)",
    .elementwise = true,
    // d ln(x) = dx/x
    .vjp = [](VjpBuilder& b) { return refs(b.div(b.grad(), b.input(0))); },
});

}  // namespace
}  // namespace chainrule
