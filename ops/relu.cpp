// relu(x) = max(x, 0), elementwise. The derivative at exactly 0 is taken as 0 (as PyTorch
// does). A NaN input stays NaN, so a diverging run is noticed rather than masked.
#include "ops/elementwise.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

const bool relu_registered = register_op({
    .name = "relu",
    .formula = "y = max(x, 0);  dL/dx = dL/dy if x > 0, else 0",
    .inputs = {"x"},
    .shape = [](std::span<const Shape> in, const Attrs&) { return in[0]; },
    .forward = unary_forward([](auto x) { return x < 0 ? decltype(x)(0) : x; }),
    .backward = unary_backward([](auto x, auto, auto g) { return x > 0 ? g : decltype(g)(0); }),
    .samples = {{.shapes = {{3, 4}}, .domains = {Domain::away_from_0}},
                {.shapes = {{6}}, .domains = {Domain::away_from_0}}},
    .summary = "rectified linear unit max(x, 0)",
    .elementwise = true,
    // d relu(x) = relu_mask(x)·dx; the mask's own derivative is 0
    .vjp = [](VjpBuilder& b) { return refs(b.mul(b.grad(), b.add_op("relu_mask", {b.input(0)}))); },
});

}  // namespace
}  // namespace chainrule
