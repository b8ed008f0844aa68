// log_softmax(x, axis) = x − logsumexp(x) along axis, with the log-sum-exp shifted by
// the line's max: finite for logits ±1000, where log(softmax(x)) would give −inf.
#include <cmath>

#include "ops/broadcast.hpp"
#include "ops/op.hpp"

namespace chainrule {
namespace {

const bool registered = register_op({
    .name = "log_softmax",
    .formula = "y_i = x_i − m − ln Σ_j exp(x_j − m),  m = max_j x_j, along axis;  "
               "dL/dx_i = g_i − exp(y_i) · Σ_j g_j,  g = dL/dy",
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
                    for (std::int64_t j = 0; j < n; ++j) sum += std::exp(x[base + j * s] - m);
                    T shift = m + std::log(sum);
                    for (std::int64_t j = 0; j < n; ++j) y[base + j * s] = x[base + j * s] - shift;
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
                    T gsum = 0;
                    for (std::int64_t j = 0; j < n; ++j) gsum += g[base + j * s];
                    for (std::int64_t j = 0; j < n; ++j)
                        gx[base + j * s] = g[base + j * s] - std::exp(y[base + j * s]) * gsum;
                });
            });
        },
    .samples = {{.shapes = {{3, 4}}},
                {.shapes = {{3, 4}}, .attrs = {{"axis", 0}}},
                {.shapes = {{2, 3, 2}}, .attrs = {{"axis", 1}}},
                {.shapes = {{5}}}},
    .summary = "log of softmax along an axis (log-sum-exp, stable for large logits)",
    .bad_samples = {{.shapes = {{}}}, {.shapes = {{3, 4}}, .attrs = {{"axis", -3}}}},
});

}  // namespace
}  // namespace chainrule
