// relu(x) = max(x, 0), elementwise. The derivative at exactly 0 is taken as 0 (as PyTorch
// does). A NaN input stays NaN, so a diverging run is noticed rather than masked.
#include "ops/op.hpp"

namespace chainrule {
namespace {

const bool registered = register_op({
    .name = "relu",
    .formula = "y = max(x, 0);  dL/dx = dL/dy if x > 0, else 0",
    .inputs = {"x"},
    .shape = [](std::span<const Shape> in, const Attrs&) { return in[0]; },
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const T* x = c.in[0]->data<T>();
                T* y = c.out.data<T>();
                for (std::int64_t i = 0; i < c.out.numel(); ++i) y[i] = x[i] < T(0) ? T(0) : x[i];
            });
        },
    .backward =
        [](const BackwardCall& c) {
            if (!c.grad_in[0]) return;
            dispatch(c.out.dtype(), [&]<class T>() {
                const T* x = c.in[0]->data<T>();
                const T* g = c.grad_out.data<T>();
                T* gx = c.grad_in[0]->data<T>();
                for (std::int64_t i = 0; i < c.out.numel(); ++i) gx[i] = x[i] > T(0) ? g[i] : T(0);
            });
        },
    .samples = {{.shapes = {{3, 4}}, .domains = {Domain::away_from_0}},
                {.shapes = {{6}}, .domains = {Domain::away_from_0}}},
    .summary = "rectified linear unit max(x, 0)",
});

}  // namespace
}  // namespace chainrule
