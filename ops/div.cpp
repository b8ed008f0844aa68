// div(a, b) = a / b (elementwise) with numpy broadcasting. Division by zero gives ±inf or
// NaN as IEEE arithmetic does; the training loop reports a non-finite loss.
#include "ops/broadcast.hpp"
#include "ops/op.hpp"

namespace chainrule {
namespace {

const bool registered = register_op({
    .name = "div",
    .formula = "y = a / b (elementwise);  dL/da = sum_to_shape(dL/dy / b, a),  dL/db = −sum_to_shape(dL/dy ⊙ y / b, b)",
    .inputs = {"a", "b"},
    .shape = [](std::span<const Shape> in, const Attrs&) { return broadcast_shapes(in[0], in[1]); },
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                broadcast_binary<T>(*c.in[0], *c.in[1], c.out, [](T x, T y) { return x / y; });
            });
        },
    .backward =
        [](const BackwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const Tensor &a = *c.in[0], &b = *c.in[1];
                const T *pb = b.data<T>(), *y = c.out.data<T>(), *g = c.grad_out.data<T>();
                if (c.grad_in[0]) {
                    T* ga = c.grad_in[0]->data<T>();
                    c.grad_in[0]->zero();
                    walk_broadcast(c.out.dims(), a.dims(), b.dims(),
                                   [&](std::int64_t io, std::int64_t ia, std::int64_t ib) { ga[ia] += g[io] / pb[ib]; });
                }
                if (c.grad_in[1]) {  // ∂(a/b)/∂b = −a/b² = −y/b
                    T* gb = c.grad_in[1]->data<T>();
                    c.grad_in[1]->zero();
                    walk_broadcast(c.out.dims(), a.dims(), b.dims(), [&](std::int64_t io, std::int64_t, std::int64_t ib) {
                        gb[ib] -= g[io] * y[io] / pb[ib];
                    });
                }
            });
        },
    .samples = {{.shapes = {{3, 4}, {3, 4}}, .domains = {Domain::real, Domain::positive}},
                {.shapes = {{3, 4}, {4}}, .domains = {Domain::real, Domain::positive}},
                {.shapes = {{2, 1}, {1, 3}}, .domains = {Domain::real, Domain::positive}},
                {.shapes = {{}, {2, 2}}, .domains = {Domain::real, Domain::positive}},
                {.shapes = {{3, 2}, {}}, .domains = {Domain::real, Domain::positive}}},
    .summary = "elementwise quotient with broadcasting",
    .bad_samples = {{.shapes = {{3, 4}, {3}}}, {.shapes = {{2, 3}, {3, 2}}}},
});

}  // namespace
}  // namespace chainrule
