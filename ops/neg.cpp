// neg(x) = −x.
#include "ops/elementwise.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

const bool neg_registered = register_op({
    .name = "neg",
    .formula = "y = −x;  dL/dx = −dL/dy",
    .inputs = {"x"},
    .shape = [](std::span<const Shape> in, const Attrs&) { return in[0]; },
    .forward = unary_forward([](auto x) { return -x; }),
    .backward = unary_backward([](auto, auto, auto g) { return -g; }),
    .samples = {{.shapes = {{3, 4}}}, {.shapes = {{}}}},
    .summary = "elementwise negation",
    .elementwise = true,
    // d(−x) = −dx
    .vjp = [](VjpBuilder& b) { return refs(b.neg(b.grad())); },
});

}  // namespace
}  // namespace chainrule
