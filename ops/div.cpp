// div(a, b) = a / b (elementwise) with numpy broadcasting. Division by zero gives ±inf or
// NaN as IEEE arithmetic does; the training loop reports a non-finite loss.
#include "ops/elementwise.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

const bool div_registered = register_op({
    .name = "div",
    .formula = "y = a / b (elementwise);  dL/da = sum_to_shape(dL/dy / b, a),  dL/db = −sum_to_shape(dL/dy ⊙ y / b, b)",
    .inputs = {"a", "b"},
    .shape = [](std::span<const Shape> in, const Attrs&) { return broadcast_shapes(in[0], in[1]); },
    .forward = binary_forward([](auto a, auto b) { return a / b; }),
    .backward = binary_backward([](auto, auto b, auto, auto g) { return g / b; },        // ∂y/∂a = 1/b
                                [](auto, auto b, auto y, auto g) { return -g * y / b; }),  // ∂y/∂b = −a/b² = −y/b
    .samples = {{.shapes = {{3, 4}, {3, 4}}, .domains = {Domain::real, Domain::positive}},
                {.shapes = {{3, 4}, {4}}, .domains = {Domain::real, Domain::positive}},
                {.shapes = {{2, 1}, {1, 3}}, .domains = {Domain::real, Domain::positive}},
                {.shapes = {{}, {2, 2}}, .domains = {Domain::real, Domain::positive}},
                {.shapes = {{3, 2}, {}}, .domains = {Domain::real, Domain::positive}}},
    .summary = "elementwise quotient with broadcasting",
    .bad_samples = {{.shapes = {{3, 4}, {3}}, .error = "cannot broadcast [3,4] with [3]"},
                    {.shapes = {{2, 3}, {3, 2}}, .error = "cannot broadcast [2,3] with [3,2]"}},
    .elementwise = true,
    // d(a/b) = da/b − (a/b)/b·db = da/b − y/b·db
    .vjp =
        [](VjpBuilder& b) {
            return refs(b.sum_to(b.div(b.grad(), b.input(1)), b.input(0)),
                         b.sum_to(b.neg(b.div(b.mul(b.grad(), b.output()), b.input(1))), b.input(1)));
        },
});

}  // namespace
}  // namespace chainrule
