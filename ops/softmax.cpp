// softmax(x, axis) = exp(x) / Σ exp(x) along axis, shifted by the line's max so that
// exp never overflows: softmax of logits ±1000 is exact, not NaN.
#include <cmath>

#include "ops/broadcast.hpp"
#include "ops/op.hpp"

namespace chainrule {
namespace {

const bool registered = register_op({
    .name = "softmax",
    .formula = "y_i = exp(x_i − m) / Σ_j exp(x_j − m),  m = max_j x_j, along axis;  "
               "dL/dx_i = y_i · (g_i − Σ_j g_j·y_j),  g = dL/dy",
    .inputs = {"x"},
    .attrs = {{"axis", -1}},
    .shape = same_shape_along_axis,
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const AxisLines lines = AxisLines::along(c.out, c.attrs);
                const std::int64_t n = lines.len, s = lines.stride();
                const T* x = c.in[0]->data<T>();
                T* y = c.out.data<T>();
                lines.for_each([&](std::int64_t base) {
                    T m = x[base];
                    for (std::int64_t j = 1; j < n; ++j) m = std::max(m, x[base + j * s]);
                    T sum = 0;
                    for (std::int64_t j = 0; j < n; ++j) {
                        T e = std::exp(x[base + j * s] - m);
                        y[base + j * s] = e;
                        sum += e;
                    }
                    for (std::int64_t j = 0; j < n; ++j) y[base + j * s] /= sum;
                });
            });
        },
    .backward =
        [](const BackwardCall& c) {
            if (!c.grad_in[0]) return;
            dispatch(c.out.dtype(), [&]<class T>() {
                const AxisLines lines = AxisLines::along(c.out, c.attrs);
                const std::int64_t n = lines.len, s = lines.stride();
                const T* y = c.out.data<T>();
                const T* g = c.grad_out.data<T>();
                T* gx = c.grad_in[0]->data<T>();
                lines.for_each([&](std::int64_t base) {
                    T dot = 0;
                    for (std::int64_t j = 0; j < n; ++j) dot += g[base + j * s] * y[base + j * s];
                    for (std::int64_t j = 0; j < n; ++j) gx[base + j * s] = y[base + j * s] * (g[base + j * s] - dot);
                });
            });
        },
    .samples = {{.shapes = {{3, 4}}},
                {.shapes = {{3, 4}}, .attrs = {{"axis", 0}}},
                {.shapes = {{2, 3, 2}}, .attrs = {{"axis", 1}}},
                {.shapes = {{5}}}},
    .summary = "softmax along an axis (max-shifted, stable for large logits)",
    .bad_samples = {{.shapes = {{}}}, {.shapes = {{3, 4}}, .attrs = {{"axis", 2}}}},
});

}  // namespace
}  // namespace chainrule
