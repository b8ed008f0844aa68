// add(a, b) with numpy broadcasting, e.g. a bias [m] added to every row of [n,m].
#include "ops/broadcast.hpp"
#include "ops/op.hpp"

namespace chainrule {
namespace {

const bool registered = register_op({
    .name = "add",
    .formula = "y = a + b;  dL/da = sum_to_shape(dL/dy, a),  dL/db = sum_to_shape(dL/dy, b)",
    .inputs = {"a", "b"},
    .shape = [](std::span<const Shape> in, const Attrs&) { return broadcast_shapes(in[0], in[1]); },
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                broadcast_binary<T>(*c.in[0], *c.in[1], c.out, [](T x, T y) { return x + y; });
            });
        },
    .backward =
        [](const BackwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                for (int i = 0; i < 2; ++i)
                    if (c.grad_in[i]) sum_to_shape<T>(c.grad_out, *c.grad_in[i]);
            });
        },
    .samples = {{.shapes = {{3, 4}, {3, 4}}},
                {.shapes = {{3, 4}, {4}}},
                {.shapes = {{1, 4}, {3, 1}}},
                {.shapes = {{2, 3, 2}, {3, 1}}},
                {.shapes = {{}, {2, 2}}}},
    .summary = "elementwise sum with broadcasting",
});

}  // namespace
}  // namespace chainrule
