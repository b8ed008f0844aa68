// neg(x) = −x.
#include "ops/op.hpp"

namespace chainrule {
namespace {

const bool registered = register_op({
    .name = "neg",
    .formula = "y = −x;  dL/dx = −dL/dy",
    .inputs = {"x"},
    .shape = [](std::span<const Shape> in, const Attrs&) { return in[0]; },
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const T* x = c.in[0]->data<T>();
                T* y = c.out.data<T>();
                for (std::int64_t i = 0; i < c.out.numel(); ++i) y[i] = -x[i];
            });
        },
    .backward =
        [](const BackwardCall& c) {
            if (!c.grad_in[0]) return;
            dispatch(c.out.dtype(), [&]<class T>() {
                const T* g = c.grad_out.data<T>();
                T* gx = c.grad_in[0]->data<T>();
                for (std::int64_t i = 0; i < c.out.numel(); ++i) gx[i] = -g[i];
            });
        },
    .samples = {{.shapes = {{3, 4}}}, {.shapes = {{}}}},
    .summary = "elementwise negation",
});

}  // namespace
}  // namespace chainrule
