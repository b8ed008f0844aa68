// normalize(x, axis) = x / sum(x along axis), with its exact Jacobian.
//
// With s = Σ_j x_j and y_i = x_i / s:  ∂y_i/∂x_j = (δ_ij − y_i) / s, so the
// vector-Jacobian product is  dL/dx_j = (g_j − Σ_i g_i y_i) / s.
// The lecture's hand-derived update drops this Jacobian (see lecture_sigmoid_normalize).
#include "ops/along_axis.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

const bool normalize_registered = register_op({
    .name = "normalize",
    .formula = "y = x / s,  s = Σ x along axis;  dL/dx_j = (g_j − Σ_i g_i·y_i) / s  (exact Jacobian)",
    .inputs = {"x"},
    .attrs = {{"axis", -1}},
    .shape = same_shape_along_axis,
    .forward = along_axis_forward([]<class T>(Line<const T> x, Line<T> y) {
        T s = 0;
        for (std::int64_t j = 0; j < x.n; ++j) s += x[j];
        const T r = T(1) / s;
        for (std::int64_t j = 0; j < x.n; ++j) y[j] = x[j] * r;
    }),
    .backward = along_axis_backward([]<class T>(Line<const T> x, Line<const T> y, Line<const T> g, Line<T> gx) {
        T s = 0, gy = 0;
        for (std::int64_t j = 0; j < x.n; ++j) {
            s += x[j];
            gy += g[j] * y[j];
        }
        const T r = T(1) / s;
        for (std::int64_t j = 0; j < x.n; ++j) gx[j] = (g[j] - gy) * r;
    }),
    .samples = {{.shapes = {{3, 4}}, .domains = {Domain::positive}},
                {.shapes = {{3, 4}}, .attrs = {{"axis", 0}}, .domains = {Domain::positive}},
                {.shapes = {{2, 3, 2}}, .attrs = {{"axis", 1}}, .domains = {Domain::positive}},
                {.shapes = {{5}}, .domains = {Domain::positive}}},
    .summary = "divide by the sum along an axis (exact Jacobian)",
    .bad_samples = {{.shapes = {{}}, .error = "needs a tensor of rank >= 1, got a scalar"},
                    {.shapes = {{3, 4}}, .attrs = {{"axis", 2}},
                     .error = "axis 2 is out of range for a tensor of rank 2"}},
    .mixes_rows = mixes_rows_along_axis,
    .fusable = Fusable::row_normalize,
    // y = x/s: dL/dx = (g − Σ_axis g ⊙ y) / s, s = Σ_axis x
    .vjp =
        [](VjpBuilder& b) {
            const Attrs along = {{"axis", b.attrs().at("axis")}, {"keepdims", true}};
            const VjpRef dot = b.add_op("sum", {b.mul(b.grad(), b.output())}, along);
            return refs(b.div(b.sub(b.grad(), dot), b.add_op("sum", {b.input(0)}, along)));
        },
});

}  // namespace
}  // namespace chainrule
