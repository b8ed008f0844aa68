// sigmoid(x) = 1 / (1 + exp(-x)), computed without overflow for any x.
#include <cmath>

#include "ops/op.hpp"

namespace chainrule {
namespace {

// exp is only ever taken of a non-positive number, so it cannot overflow; at x = ±1000
// the result is exactly 1 or 0 (as a float), never NaN.
template <class T>
T stable_sigmoid(T x) {
    if (x >= 0) return T(1) / (T(1) + std::exp(-x));
    T e = std::exp(x);
    return e / (T(1) + e);
}

const bool registered = register_op({
    .name = "sigmoid",
    .formula = "y = 1/(1+exp(-x));  dy/dx = y*(1-y)",
    .inputs = {"x"},
    .shape = [](std::span<const Shape> in, const Attrs&) { return in[0]; },
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const T* x = c.in[0]->data<T>();
                T* y = c.out.data<T>();
                for (std::int64_t i = 0; i < c.out.numel(); ++i) y[i] = stable_sigmoid(x[i]);
            });
        },
    .backward =
        [](const BackwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const T* y = c.out.data<T>();
                const T* g = c.grad_out.data<T>();
                if (!c.grad_in[0]) return;
                T* gx = c.grad_in[0]->data<T>();
                for (std::int64_t i = 0; i < c.out.numel(); ++i) gx[i] = g[i] * y[i] * (T(1) - y[i]);
            });
        },
    .samples = {{.shapes = {{3, 4}}}, {.shapes = {{5}}}, {.shapes = {{}}}},
    .summary = "logistic function, stable for large |x|",
});

}  // namespace
}  // namespace chainrule
