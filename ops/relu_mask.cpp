// relu_mask(x) = 1 where x > 0, else 0: relu's derivative, a mask. Its own derivative is 0
// wherever it exists, so its vector-Jacobian product is no gradient at all.
#include "ops/elementwise.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

const bool relu_mask_registered = register_op({
    .name = "relu_mask",
    .formula = "y = 1 if x > 0, else 0;  dL/dx = 0",
    .inputs = {"x"},
    .shape = [](std::span<const Shape> in, const Attrs&) { return in[0]; },
    .forward = unary_forward([](auto x) { return x > 0 ? decltype(x)(1) : decltype(x)(0); }),
    .backward = unary_backward([](auto x, auto, auto) { return decltype(x)(0); }),
    .samples = {{.shapes = {{3, 4}}, .domains = {Domain::no_gradient}}},
    .summary = "the mask x > 0 (relu's derivative); gradient 0",
    .elementwise = true,
    .vjp = [](VjpBuilder&) { return refs(VjpRef{}); },  // d(step) = 0 (away from x = 0)
});

}  // namespace
}  // namespace chainrule
