// sigmoid(x) = 1 / (1 + exp(-x)), computed without overflow for any x.
#include "ops/kernels.hpp"
#include "ops/op.hpp"

namespace chainrule {
namespace {

// The loops live in ops/kernels.hpp, shared with the engine's fused matmul → add → sigmoid
// pass so that both give the same numbers; exp is only ever taken of -|x|, so nothing
// overflows and x = ±1000 gives exactly 0 or 1, never NaN.
CHAINRULE_SIMD_CLONES void sigmoid_loop(const float* x, float* y, std::int64_t n) { kernels::sigmoid(x, y, n); }
CHAINRULE_SIMD_CLONES void sigmoid_loop(const double* x, double* y, std::int64_t n) { kernels::sigmoid(x, y, n); }

const bool registered = register_op({
    .name = "sigmoid",
    .formula = "y = 1/(1+exp(-x));  dy/dx = y*(1-y)",
    .inputs = {"x"},
    .shape = [](std::span<const Shape> in, const Attrs&) { return in[0]; },
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                sigmoid_loop(c.in[0]->data<T>(), c.out.data<T>(), c.out.numel());
            });
        },
    .backward =
        [](const BackwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const T* y = c.out.data<T>();
                const T* g = c.grad_out.data<T>();
                if (!c.grad_in[0]) return;
                T* gx = c.grad_in[0]->data<T>();
                for (std::int64_t i = 0; i < c.out.numel(); ++i) gx[i] = kernels::sigmoid_backward(g[i], y[i]);
            });
        },
    .samples = {{.shapes = {{3, 4}}}, {.shapes = {{5}}}, {.shapes = {{}}}},
    .summary = "logistic function, stable for large |x|",
});

}  // namespace
}  // namespace chainrule
