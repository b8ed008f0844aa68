// softmax(x, axis) = exp(x) / Σ exp(x) along axis, shifted by the line's max so that
// exp never overflows: softmax of logits ±1000 is exact, not NaN.
#include "ops/along_axis.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

const bool registered = register_op({
    .name = "softmax",
    .formula = "y_i = exp(x_i − m) / Σ_j exp(x_j − m),  m = max_j x_j, along axis;  "
               "dL/dx_i = y_i · (g_i − Σ_j g_j·y_j),  g = dL/dy",
    .inputs = {"x"},
    .attrs = {{"axis", -1}},
    .shape = same_shape_along_axis,
    .forward = along_axis_forward([]<class T>(Line<const T> x, Line<T> y) {
        const T sum = exp_sum(x, [&](std::int64_t j, T e) { y[j] = e; }).sum;
        for (std::int64_t j = 0; j < y.n; ++j) y[j] /= sum;
    }),
    .backward = along_axis_backward([]<class T>(Line<const T>, Line<const T> y, Line<const T> g, Line<T> gx) {
        T dot = 0;
        for (std::int64_t j = 0; j < y.n; ++j) dot += g[j] * y[j];
        for (std::int64_t j = 0; j < y.n; ++j) gx[j] = y[j] * (g[j] - dot);
    }),
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
