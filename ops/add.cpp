// add(a, b) with numpy broadcasting, e.g. a bias [m] added to every row of [n,m].
#include "ops/elementwise.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

const bool add_registered = register_op({
    .name = "add",
    .formula = "y = a + b;  dL/da = sum_to_shape(dL/dy, a),  dL/db = sum_to_shape(dL/dy, b)",
    .inputs = {"a", "b"},
    .shape = [](std::span<const Shape> in, const Attrs&) { return broadcast_shapes(in[0], in[1]); },
    .forward = binary_forward([](auto a, auto b) { return a + b; }),
    .backward = binary_backward([](auto, auto, auto, auto g) { return g; },   // ∂y/∂a = 1
                                [](auto, auto, auto, auto g) { return g; }),  // ∂y/∂b = 1
    .samples = {{.shapes = {{3, 4}, {3, 4}}},
                {.shapes = {{3, 4}, {4}}},
                {.shapes = {{1, 4}, {3, 1}}},
                {.shapes = {{2, 3, 2}, {3, 1}}},
                {.shapes = {{}, {2, 2}}}},
    .summary = "elementwise sum with broadcasting",
    .bad_samples = {{.shapes = {{3, 4}, {3}}, .error = "cannot broadcast [3,4] with [3]"},
                    {.shapes = {{2, 3}, {3, 2}}, .error = "cannot broadcast [2,3] with [3,2]"}},
    .elementwise = true,
    .fusable = Fusable::bias_add,
    // d(a + b) = da + db; a broadcast input gets the sum over the axes it was broadcast along
    .vjp = [](VjpBuilder& b) { return refs(b.sum_to(b.grad(), b.input(0)), b.sum_to(b.grad(), b.input(1))); },
});

}  // namespace
}  // namespace chainrule
