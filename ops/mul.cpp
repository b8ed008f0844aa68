// mul(a, b) = a ⊙ b (elementwise) with numpy broadcasting.
#include "ops/broadcast.hpp"
#include "ops/op.hpp"

namespace chainrule {
namespace {

const bool registered = register_op({
    .name = "mul",
    .formula = "y = a ⊙ b (elementwise);  dL/da = sum_to_shape(dL/dy ⊙ b, a),  dL/db = sum_to_shape(dL/dy ⊙ a, b)",
    .inputs = {"a", "b"},
    .shape = [](std::span<const Shape> in, const Attrs&) { return broadcast_shapes(in[0], in[1]); },
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                broadcast_binary<T>(*c.in[0], *c.in[1], c.out, [](T x, T y) { return x * y; });
            });
        },
    .backward =
        [](const BackwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const Tensor &a = *c.in[0], &b = *c.in[1];
                const T *pa = a.data<T>(), *pb = b.data<T>(), *g = c.grad_out.data<T>();
                // Reduced while walking, so no product tensor of the output's size is allocated.
                if (c.grad_in[0]) {
                    T* ga = c.grad_in[0]->data<T>();
                    c.grad_in[0]->zero();
                    walk_broadcast(c.out.dims(), a.dims(), b.dims(),
                                   [&](std::int64_t io, std::int64_t ia, std::int64_t ib) { ga[ia] += g[io] * pb[ib]; });
                }
                if (c.grad_in[1]) {
                    T* gb = c.grad_in[1]->data<T>();
                    c.grad_in[1]->zero();
                    walk_broadcast(c.out.dims(), a.dims(), b.dims(),
                                   [&](std::int64_t io, std::int64_t ia, std::int64_t ib) { gb[ib] += g[io] * pa[ia]; });
                }
            });
        },
    .samples = {{.shapes = {{3, 4}, {3, 4}}},
                {.shapes = {{3, 4}, {4}}},
                {.shapes = {{2, 1}, {1, 3}}},
                {.shapes = {{2, 3, 2}, {3, 1}}},
                {.shapes = {{}, {2, 2}}},
                {.shapes = {{2, 2}, {}}}},
    .summary = "elementwise product with broadcasting",
    .bad_samples = {{.shapes = {{3, 4}, {3}}}, {.shapes = {{2, 3}, {3, 2}}}},
});

}  // namespace
}  // namespace chainrule
