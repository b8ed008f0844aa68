// tanh(x), elementwise. std::tanh saturates to exactly ±1 for large |x| without
// overflow (unlike (e^x − e^−x)/(e^x + e^−x)), and its derivative is taken from y.
#include <cmath>

#include "ops/op.hpp"

namespace chainrule {
namespace {

const bool registered = register_op({
    .name = "tanh",
    .formula = "y = tanh(x);  dL/dx = dL/dy · (1 − y²)",
    .inputs = {"x"},
    .shape = [](std::span<const Shape> in, const Attrs&) { return in[0]; },
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const T* x = c.in[0]->data<T>();
                T* y = c.out.data<T>();
                for (std::int64_t i = 0; i < c.out.numel(); ++i) y[i] = std::tanh(x[i]);
            });
        },
    .backward =
        [](const BackwardCall& c) {
            if (!c.grad_in[0]) return;
            dispatch(c.out.dtype(), [&]<class T>() {
                const T* y = c.out.data<T>();
                const T* g = c.grad_out.data<T>();
                T* gx = c.grad_in[0]->data<T>();
                for (std::int64_t i = 0; i < c.out.numel(); ++i) gx[i] = g[i] * (T(1) - y[i] * y[i]);
            });
        },
    .samples = {{.shapes = {{3, 4}}}, {.shapes = {{5}}}, {.shapes = {{}}}},
    .summary = "hyperbolic tangent, stable for large |x|",
});

}  // namespace
}  // namespace chainrule
