// sub(a, b) = a − b with numpy broadcasting.
#include "ops/elementwise.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

const bool sub_registered = register_op({
    .name = "sub",
    .formula = "y = a − b;  dL/da = sum_to_shape(dL/dy, a),  dL/db = −sum_to_shape(dL/dy, b)",
    .inputs = {"a", "b"},
    .shape = [](std::span<const Shape> in, const Attrs&) { return broadcast_shapes(in[0], in[1]); },
    .forward = binary_forward([](auto a, auto b) { return a - b; }),
    .backward = binary_backward([](auto, auto, auto, auto g) { return g; },    // ∂y/∂a = 1
                                [](auto, auto, auto, auto g) { return -g; }),  // ∂y/∂b = −1
    .samples = {{.shapes = {{3, 4}, {3, 4}}},
                {.shapes = {{3, 4}, {4}}},
                {.shapes = {{4}, {3, 4}}},
                {.shapes = {{2, 1}, {1, 3}}},
                {.shapes = {{}, {2, 2}}}},
    .summary = "elementwise difference with broadcasting",
    .bad_samples = {{.shapes = {{3, 4}, {3}}, .error = "cannot broadcast [3,4] with [3]"},
                    {.shapes = {{2, 3}, {3, 2}}, .error = "cannot broadcast [2,3] with [3,2]"}},
    .elementwise = true,
    // d(a − b) = da − db
    .vjp = [](VjpBuilder& b) { return refs(b.sum_to(b.grad(), b.input(0)), b.sum_to(b.neg(b.grad()), b.input(1))); },
});

}  // namespace
}  // namespace chainrule
