// softmax(x, axis) = exp(x) / Σ exp(x) along axis, shifted by the line's max so that
// exp never overflows: softmax of logits ±1000 is exact, not NaN. Along the last axis
// (attention's rows) the lines are contiguous and go through vectorized row kernels
// (ops/kernels.hpp) that round like the general path.
#include "ops/along_axis.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

CHAINRULE_SIMD_CLONES void rows_forward(const float* x, float* y, std::int64_t rows, std::int64_t n) {
    kernels::softmax_rows(x, y, rows, n);
}
CHAINRULE_SIMD_CLONES void rows_forward(const double* x, double* y, std::int64_t rows, std::int64_t n) {
    kernels::softmax_rows(x, y, rows, n);
}
CHAINRULE_SIMD_CLONES void rows_backward(const float* y, const float* g, float* gx, std::int64_t rows,
                                         std::int64_t n) {
    kernels::softmax_rows_backward(y, g, gx, rows, n);
}
CHAINRULE_SIMD_CLONES void rows_backward(const double* y, const double* g, double* gx, std::int64_t rows,
                                         std::int64_t n) {
    kernels::softmax_rows_backward(y, g, gx, rows, n);
}

const auto lines_forward = along_axis_forward([]<class T>(Line<const T> x, Line<T> y) {
    const T sum = exp_sum(x, [&](std::int64_t j, T e) { y[j] = e; }).sum;
    for (std::int64_t j = 0; j < y.n; ++j) y[j] /= sum;
});

const auto lines_backward = along_axis_backward([]<class T>(Line<const T>, Line<const T> y, Line<const T> g, Line<T> gx) {
    T dot = 0;
    for (std::int64_t j = 0; j < y.n; ++j) dot += g[j] * y[j];
    for (std::int64_t j = 0; j < y.n; ++j) gx[j] = y[j] * (g[j] - dot);
});

// The line length when the op's axis is the last (its lines contiguous), else 0.
std::int64_t contiguous_lines(const Tensor& t, const Attrs& attrs) {
    const AxisLines lines = AxisLines::along(t, attrs);
    return lines.stride() == 1 && lines.len > 0 ? lines.len : 0;
}

const bool softmax_registered = register_op({
    .name = "softmax",
    .formula = "y_i = exp(x_i − m) / Σ_j exp(x_j − m),  m = max_j x_j, along axis;  "
               "dL/dx_i = y_i · (g_i − Σ_j g_j·y_j),  g = dL/dy",
    .inputs = {"x"},
    .attrs = {{"axis", -1}},
    .shape = same_shape_along_axis,
    .forward =
        [](const ForwardCall& c) {
            const std::int64_t n = contiguous_lines(c.out, c.attrs);
            if (!n) return lines_forward(c);
            dispatch(c.out.dtype(), [&]<class T>() {
                rows_forward(c.in[0]->data<T>(), c.out.data<T>(), c.out.numel() / n, n);
            });
        },
    .backward =
        [](const BackwardCall& c) {
            const std::int64_t n = contiguous_lines(c.out, c.attrs);
            if (!n || !c.grad_in[0]) return lines_backward(c);
            dispatch(c.out.dtype(), [&]<class T>() {
                rows_backward(c.out.data<T>(), c.grad_out.data<T>(), c.grad_in[0]->data<T>(), c.out.numel() / n, n);
            });
        },
    .samples = {{.shapes = {{3, 4}}},
                {.shapes = {{3, 4}}, .attrs = {{"axis", 0}}},
                {.shapes = {{2, 3, 2}}, .attrs = {{"axis", 1}}},
                {.shapes = {{5}}}},
    .summary = "softmax along an axis (max-shifted, stable for large logits)",
    .bad_samples = {{.shapes = {{}}, .error = "needs a tensor of rank >= 1, got a scalar"},
                    {.shapes = {{3, 4}}, .attrs = {{"axis", 2}},
                     .error = "axis 2 is out of range for a tensor of rank 2"}},
    .mixes_rows = mixes_rows_along_axis,
    .gives_probabilities = true,
    // dL/dx = y ⊙ (g − Σ_axis g ⊙ y)
    .vjp =
        [](VjpBuilder& b) {
            const Attrs along = {{"axis", b.attrs().at("axis")}, {"keepdims", true}};
            const VjpRef dot = b.add_op("sum", {b.mul(b.grad(), b.output())}, along);
            return refs(b.mul(b.output(), b.sub(b.grad(), dot)));
        },
});

}  // namespace
}  // namespace chainrule
