// gather_max2d(z, x), the pooling attrs: for each window of x [N,C,H,W], z (shaped like x) at
// the window's first maximum of x, so [N,C,oh,ow]. max_pool2d(x) is gather_max2d(x, x); this
// op is max_unpool2d's adjoint (the second derivative of max pooling takes it), and its own
// adjoint is max_unpool2d. x only says where the maxima are: it gets no gradient.
#include <fmt/format.h>

#include "ops/pool2d.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {
using namespace pool2d;

Shape gathered(std::span<const Shape> in, const Attrs& attrs) {
    if (in[0] != in[1])
        throw ShapeError(fmt::format("needs z shaped like x {}, got {}", format_shape(in[1]), format_shape(in[0])));
    return pooled(in.subspan(1, 1), attrs);
}

std::vector<OpSample> gather_samples() {
    std::vector<OpSample> out;
    for (const OpSample& s : kPoolSamples)
        out.push_back({.shapes = {s.shapes[0], s.shapes[0]}, .attrs = s.attrs, .domains = {Domain::real, Domain::no_gradient}});
    return out;
}

const bool gather_max2d_registered = register_op({
    .name = "gather_max2d",
    .formula = "y = z at each window's first maximum of x;  dL/dz = max_unpool2d(dL/dy, x);  dL/dx = 0",
    .inputs = {"z", "x"},
    .attrs = kPoolAttrs,
    .shape = gathered,
    .forward =
        [](const ForwardCall& c) {
            const Window2d g = runtime_geometry(*c.in[1], c.attrs);
            dispatch(c.out.dtype(), [&]<class T>() {
                gather_at_maxima(g, c.in[1]->data<T>(), c.in[0]->data<T>(), c.out.data<T>());
            });
        },
    .backward =
        [](const BackwardCall& c) {
            if (c.grad_in[1]) c.grad_in[1]->zero();
            if (!c.grad_in[0]) return;
            const Window2d g = runtime_geometry(*c.in[1], c.attrs);
            dispatch(c.out.dtype(), [&]<class T>() {
                scatter_to_maxima(g, c.in[1]->data<T>(), c.grad_out.data<T>(), c.grad_in[0]->data<T>());
            });
        },
    .samples = gather_samples(),
    .summary = "z at each window's maximum of x (max_unpool2d's adjoint)",
    .bad_samples = {{.shapes = {{1, 1, 4, 4}, {1, 1, 4, 5}}, .attrs = {{"kernel_size", 2}},
                     .error = "needs z shaped like x [1,1,4,5], got [1,1,4,4]"}},
    // linear in z: its adjoint puts dL/dy back at the maxima
    .vjp = [](VjpBuilder& b) {
        return refs(b.add_op("max_unpool2d", {b.grad(), b.input(1)}, b.attrs()), VjpRef{});
    },
});

}  // namespace
}  // namespace chainrule
