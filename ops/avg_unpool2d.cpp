// avg_unpool2d(g, like), the pooling attrs: every cell of zeros shaped like `like` [N,C,H,W]
// gets Σ over the windows holding it of g / (kh·kw): avg_pool2d's vector-Jacobian product,
// whose own adjoint is avg_pool2d again (both are linear). `like` gives only its shape.
#include "ops/pool2d.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {
using namespace pool2d;

const bool avg_unpool2d_registered = register_op({
    .name = "avg_unpool2d",
    .formula = "y = Σ over the windows holding each cell of g / (kh·kw);  dL/dg = avg_pool2d(dL/dy);  dL/dlike = 0",
    .inputs = {"g", "like"},
    .attrs = kPoolAttrs,
    .shape = unpooled,
    .forward =
        [](const ForwardCall& c) {
            const Window2d g = runtime_geometry(*c.in[1], c.attrs);
            dispatch(c.out.dtype(), [&]<class T>() { spread_windows(g, c.in[0]->data<T>(), c.out.data<T>()); });
        },
    .backward =
        [](const BackwardCall& c) {
            if (c.grad_in[1]) c.grad_in[1]->zero();
            if (!c.grad_in[0]) return;
            const Window2d g = runtime_geometry(*c.in[1], c.attrs);
            dispatch(c.out.dtype(), [&]<class T>() { average_windows(g, c.grad_out.data<T>(), c.grad_in[0]->data<T>()); });
        },
    .samples = unpool_samples(Domain::no_gradient),
    .summary = "a pooled g spread back over its windows, / (kh·kw) (avg_pool2d's gradient)",
    .bad_samples = {{.shapes = {{2, 3, 4, 4}, {2, 3, 4, 4}}, .attrs = {{"kernel_size", 2}},
                     .error = "needs g of shape [2,3,2,2] (the windows of [2,3,4,4]), got [2,3,4,4]"},
                    {.shapes = {{1, 1, 2, 2}, {4, 4}}, .attrs = {{"kernel_size", 2}}, .error = "needs a 4-D input [N,C,H,W]"}},
    // linear in g: its adjoint averages the windows again
    .vjp = [](VjpBuilder& b) { return refs(b.add_op("avg_pool2d", {b.grad()}, b.attrs()), VjpRef{}); },
});

}  // namespace
}  // namespace chainrule
