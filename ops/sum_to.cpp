// sum_to(x, like): x summed over the axes along which like's shape broadcasts to x's
// (numpy rules), giving like's shape; like gives only its shape. The reduction of a broadcast
// gradient (ops/broadcast.hpp: sum_to_shape) as an op, for vector-Jacobian products written
// with ops; broadcast_like is its adjoint.
#include <fmt/format.h>

#include "ops/broadcast.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

const bool sum_to_registered = register_op({
    .name = "sum_to",
    .formula = "y = x summed to like's shape;  dL/dx = dL/dy broadcast to x's shape,  dL/dlike = 0",
    .inputs = {"x", "like"},
    .shape =
        [](std::span<const Shape> in, const Attrs&) {
            if (broadcast_shapes(in[0], in[1]) != in[0])
                throw ShapeError(fmt::format("cannot sum {} to {}: the second does not broadcast to the first",
                                             format_shape(in[0]), format_shape(in[1])));
            return in[1];
        },
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() { sum_to_shape<T>(*c.in[0], c.out); });
        },
    .backward =
        [](const BackwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                if (c.grad_in[1]) c.grad_in[1]->zero();
                if (!c.grad_in[0]) return;
                const T* g = c.grad_out.data<T>();
                T* gx = c.grad_in[0]->data<T>();
                walk_broadcast(c.in[0]->dims(), c.out.dims(), c.out.dims(),
                               [&](std::int64_t i, std::int64_t o, std::int64_t) { gx[i] = g[o]; });
            });
        },
    .samples = {{.shapes = {{3, 4}, {4}}, .domains = {Domain::real, Domain::no_gradient}},
                {.shapes = {{2, 3, 4}, {3, 1}}, .domains = {Domain::real, Domain::no_gradient}},
                {.shapes = {{3, 4}, {}}, .domains = {Domain::real, Domain::no_gradient}}},
    .summary = "x summed to the shape of like (the adjoint of broadcasting)",
    .bad_samples = {{.shapes = {{3, 4}, {2, 3, 4}}, .error = "cannot sum [3,4] to [2,3,4]"}},
    .vjp = [](VjpBuilder& b) { return refs(b.broadcast_like(b.grad(), b.input(0)), VjpRef{}); },
});

}  // namespace
}  // namespace chainrule
