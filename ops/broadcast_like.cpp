// broadcast_like(x, like): x broadcast to like's shape (numpy rules); like gives only its
// shape. The adjoint of sum_to, for vector-Jacobian products written with ops.
#include <fmt/format.h>

#include "ops/broadcast.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

const bool broadcast_like_registered = register_op({
    .name = "broadcast_like",
    .formula = "y = x broadcast to like's shape;  dL/dx = sum_to(dL/dy, x),  dL/dlike = 0",
    .inputs = {"x", "like"},
    .shape =
        [](std::span<const Shape> in, const Attrs&) {
            if (broadcast_shapes(in[0], in[1]) != in[1])
                throw ShapeError(fmt::format("cannot broadcast {} to {}", format_shape(in[0]), format_shape(in[1])));
            return in[1];
        },
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const T* x = c.in[0]->data<T>();
                T* y = c.out.data<T>();
                walk_broadcast(c.out.dims(), c.in[0]->dims(), c.in[0]->dims(),
                               [&](std::int64_t o, std::int64_t i, std::int64_t) { y[o] = x[i]; });
            });
        },
    .backward =
        [](const BackwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                if (c.grad_in[1]) c.grad_in[1]->zero();
                if (c.grad_in[0]) sum_to_shape<T>(c.grad_out, *c.grad_in[0]);
            });
        },
    .samples = {{.shapes = {{4}, {3, 4}}, .domains = {Domain::real, Domain::no_gradient}},
                {.shapes = {{3, 1}, {2, 3, 4}}, .domains = {Domain::real, Domain::no_gradient}},
                {.shapes = {{}, {2, 2}}, .domains = {Domain::real, Domain::no_gradient}}},
    .summary = "x broadcast to the shape of like (the adjoint of sum_to)",
    .bad_samples = {{.shapes = {{2, 3}, {3}}, .error = "cannot broadcast [2,3] to [3]"}},
    .vjp = [](VjpBuilder& b) { return refs(b.sum_to(b.grad(), b.input(0)), VjpRef{}); },
});

}  // namespace
}  // namespace chainrule
