// sub(a, b) = a − b with numpy broadcasting.
#include "ops/broadcast.hpp"
#include "ops/op.hpp"

namespace chainrule {
namespace {

const bool registered = register_op({
    .name = "sub",
    .formula = "y = a − b;  dL/da = sum_to_shape(dL/dy, a),  dL/db = −sum_to_shape(dL/dy, b)",
    .inputs = {"a", "b"},
    .shape = [](std::span<const Shape> in, const Attrs&) { return broadcast_shapes(in[0], in[1]); },
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                broadcast_binary<T>(*c.in[0], *c.in[1], c.out, [](T x, T y) { return x - y; });
            });
        },
    .backward =
        [](const BackwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                if (c.grad_in[0]) sum_to_shape<T>(c.grad_out, *c.grad_in[0]);
                if (c.grad_in[1]) {
                    sum_to_shape<T>(c.grad_out, *c.grad_in[1]);
                    for (T& v : c.grad_in[1]->span<T>()) v = -v;
                }
            });
        },
    .samples = {{.shapes = {{3, 4}, {3, 4}}},
                {.shapes = {{3, 4}, {4}}},
                {.shapes = {{4}, {3, 4}}},
                {.shapes = {{2, 1}, {1, 3}}},
                {.shapes = {{}, {2, 2}}}},
    .summary = "elementwise difference with broadcasting",
    .bad_samples = {{.shapes = {{3, 4}, {3}}}, {.shapes = {{2, 3}, {3, 2}}}},
});

}  // namespace
}  // namespace chainrule
