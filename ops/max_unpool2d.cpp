// max_unpool2d(g, x), the pooling attrs: zeros shaped like x [N,C,H,W] with g of each window
// added at the window's first maximum of x: max_pool2d's vector-Jacobian product. It is
// linear in g, whose adjoint takes each window's value at that maximum back out
// (gather_max2d); where the maxima sit is a step function of x, so x gets no gradient.
#include "ops/pool2d.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {
using namespace pool2d;

const bool max_unpool2d_registered = register_op({
    .name = "max_unpool2d",
    .formula = "y = g of each window at the window's first maximum of x, 0 elsewhere;  "
               "dL/dg = dL/dy at each window's maximum of x (gather_max2d);  dL/dx = 0",
    .inputs = {"g", "x"},
    .attrs = kPoolAttrs,
    .shape = unpooled,
    .forward =
        [](const ForwardCall& c) {
            const Window2d g = runtime_geometry(*c.in[1], c.attrs);
            dispatch(c.out.dtype(), [&]<class T>() {
                scatter_to_maxima(g, c.in[1]->data<T>(), c.in[0]->data<T>(), c.out.data<T>());
            });
        },
    .backward =
        [](const BackwardCall& c) {
            if (c.grad_in[1]) c.grad_in[1]->zero();
            if (!c.grad_in[0]) return;
            const Window2d g = runtime_geometry(*c.in[1], c.attrs);
            dispatch(c.out.dtype(), [&]<class T>() {
                gather_at_maxima(g, c.in[1]->data<T>(), c.grad_out.data<T>(), c.grad_in[0]->data<T>());
            });
        },
    .samples = unpool_samples(Domain::no_gradient),
    .summary = "a pooled g put back at each window's maximum of x (max_pool2d's gradient)",
    .bad_samples = {{.shapes = {{1, 2, 2, 2}, {1, 2, 5, 7}}, .attrs = {{"kernel_size", 2}},
                     .error = "needs g of shape [1,2,2,3] (the windows of [1,2,5,7]), got [1,2,2,2]"}},
    // d y = max_unpool2d(dg, x): linear in g, and x's maxima do not move under a small change
    .vjp = [](VjpBuilder& b) {
        return refs(b.add_op("gather_max2d", {b.grad(), b.input(1)}, b.attrs()), VjpRef{});
    },
});

}  // namespace
}  // namespace chainrule
