// normalize(x, axis) = x / sum(x along axis), with its exact Jacobian.
//
// With s = Σ_j x_j and y_i = x_i / s:  ∂y_i/∂x_j = (δ_ij − y_i) / s, so the
// vector-Jacobian product is  dL/dx_j = (g_j − Σ_i g_i y_i) / s.
// The lecture's hand-derived update drops this Jacobian (see lecture_sigmoid_normalize).
#include "ops/broadcast.hpp"
#include "ops/op.hpp"

namespace chainrule {
namespace {

const bool registered = register_op({
    .name = "normalize",
    .formula = "y = x / s,  s = Σ x along axis;  dL/dx_j = (g_j − Σ_i g_i·y_i) / s  (exact Jacobian)",
    .inputs = {"x"},
    .attrs = {{"axis", -1}},
    .shape = same_shape_along_axis,
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const AxisLines lines = AxisLines::along(c.out, c.attrs);
                const std::int64_t n = lines.len, st = lines.stride();
                const T* x = c.in[0]->data<T>();
                T* y = c.out.data<T>();
                lines.for_each([&](std::int64_t base) {
                    T s = 0;
                    for (std::int64_t j = 0; j < n; ++j) s += x[base + j * st];
                    T r = T(1) / s;
                    for (std::int64_t j = 0; j < n; ++j) y[base + j * st] = x[base + j * st] * r;
                });
            });
        },
    .backward =
        [](const BackwardCall& c) {
            if (!c.grad_in[0]) return;
            dispatch(c.out.dtype(), [&]<class T>() {
                const AxisLines lines = AxisLines::along(c.out, c.attrs);
                const std::int64_t n = lines.len, st = lines.stride();
                const T* x = c.in[0]->data<T>();
                const T* y = c.out.data<T>();
                const T* g = c.grad_out.data<T>();
                T* gx = c.grad_in[0]->data<T>();
                lines.for_each([&](std::int64_t base) {
                    T s = 0, gy = 0;
                    for (std::int64_t j = 0; j < n; ++j) {
                        s += x[base + j * st];
                        gy += g[base + j * st] * y[base + j * st];
                    }
                    T r = T(1) / s;
                    for (std::int64_t j = 0; j < n; ++j) gx[base + j * st] = (g[base + j * st] - gy) * r;
                });
            });
        },
    .samples = {{.shapes = {{3, 4}}, .domains = {Domain::positive}},
                {.shapes = {{3, 4}}, .attrs = {{"axis", 0}}, .domains = {Domain::positive}},
                {.shapes = {{2, 3, 2}}, .attrs = {{"axis", 1}}, .domains = {Domain::positive}},
                {.shapes = {{5}}, .domains = {Domain::positive}}},
    .summary = "divide by the sum along an axis (exact Jacobian)",
});

}  // namespace
}  // namespace chainrule
