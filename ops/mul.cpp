// mul(a, b) = a ⊙ b (elementwise) with numpy broadcasting.
#include "ops/elementwise.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

const bool mul_registered = register_op({
    .name = "mul",
    .formula = "y = a ⊙ b (elementwise);  dL/da = sum_to_shape(dL/dy ⊙ b, a),  dL/db = sum_to_shape(dL/dy ⊙ a, b)",
    .inputs = {"a", "b"},
    .shape = [](std::span<const Shape> in, const Attrs&) { return broadcast_shapes(in[0], in[1]); },
    .forward = binary_forward([](auto a, auto b) { return a * b; }),
    .backward = binary_backward([](auto, auto b, auto, auto g) { return g * b; },   // ∂y/∂a = b
                                [](auto a, auto, auto, auto g) { return g * a; }),  // ∂y/∂b = a
    .samples = {{.shapes = {{3, 4}, {3, 4}}},
                {.shapes = {{3, 4}, {4}}},
                {.shapes = {{2, 1}, {1, 3}}},
                {.shapes = {{2, 3, 2}, {3, 1}}},
                {.shapes = {{}, {2, 2}}},
                {.shapes = {{2, 2}, {}}}},
    .summary = "elementwise product with broadcasting",
    .bad_samples = {{.shapes = {{3, 4}, {3}}, .error = "cannot broadcast [3,4] with [3]"},
                    {.shapes = {{2, 3}, {3, 2}}, .error = "cannot broadcast [2,3] with [3,2]"}},
    .elementwise = true,
    // d(a·b) = b·da + a·db
    .vjp = [](VjpBuilder& b) { return refs(b.sum_to(b.mul(b.grad(), b.input(1)), b.input(0)), b.sum_to(b.mul(b.grad(), b.input(0)), b.input(1))); },
});

}  // namespace
}  // namespace chainrule
