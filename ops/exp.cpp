// exp(x), elementwise. Like the math library: exp(x) = inf for x > ~709 (float64) or
// ~88 (float32), and 0 for very negative x; softmax and cross_entropy shift by the max
// so they never meet that.
#include <cmath>

#include "ops/op.hpp"

namespace chainrule {
namespace {

const bool registered = register_op({
    .name = "exp",
    .formula = "y = exp(x);  dL/dx = dL/dy · y",
    .inputs = {"x"},
    .shape = [](std::span<const Shape> in, const Attrs&) { return in[0]; },
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const T* x = c.in[0]->data<T>();
                T* y = c.out.data<T>();
                for (std::int64_t i = 0; i < c.out.numel(); ++i) y[i] = std::exp(x[i]);
            });
        },
    .backward =
        [](const BackwardCall& c) {
            if (!c.grad_in[0]) return;
            dispatch(c.out.dtype(), [&]<class T>() {
                const T* y = c.out.data<T>();
                const T* g = c.grad_out.data<T>();
                T* gx = c.grad_in[0]->data<T>();
                for (std::int64_t i = 0; i < c.out.numel(); ++i) gx[i] = g[i] * y[i];
            });
        },
    .samples = {{.shapes = {{3, 4}}}, {.shapes = {{}}}},
    .summary = "elementwise exponential",
});

}  // namespace
}  // namespace chainrule
