// log(x), natural logarithm, elementwise. Like the math library: log(0) = −inf and
// log(x < 0) = NaN; the training loop stops on a non-finite loss. For a loss on
// probabilities use log_softmax or cross_entropy, which never take log of 0.
#include <cmath>

#include "ops/op.hpp"

namespace chainrule {
namespace {

const bool registered = register_op({
    .name = "log",
    .formula = "y = ln(x);  dL/dx = dL/dy / x",
    .inputs = {"x"},
    .shape = [](std::span<const Shape> in, const Attrs&) { return in[0]; },
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const T* x = c.in[0]->data<T>();
                T* y = c.out.data<T>();
                for (std::int64_t i = 0; i < c.out.numel(); ++i) y[i] = std::log(x[i]);
            });
        },
    .backward =
        [](const BackwardCall& c) {
            if (!c.grad_in[0]) return;
            dispatch(c.out.dtype(), [&]<class T>() {
                const T* x = c.in[0]->data<T>();
                const T* g = c.grad_out.data<T>();
                T* gx = c.grad_in[0]->data<T>();
                for (std::int64_t i = 0; i < c.out.numel(); ++i) gx[i] = g[i] / x[i];
            });
        },
    .samples = {{.shapes = {{3, 4}}, .domains = {Domain::positive}}, {.shapes = {{}}, .domains = {Domain::positive}}},
    .summary = "elementwise natural logarithm (log(0) = −inf)",
});

}  // namespace
}  // namespace chainrule
