// log_softmax(x, axis) = x − logsumexp(x) along axis, with the log-sum-exp shifted by
// the line's max: finite for logits ±1000, where log(softmax(x)) would give −inf.
#include "ops/along_axis.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

const bool log_softmax_registered = register_op({
    .name = "log_softmax",
    .formula = "y_i = (x_i − m) − ln Σ_j exp(x_j − m),  m = max_j x_j, along axis;  "
               "dL/dx_i = g_i − exp(y_i) · Σ_j g_j,  g = dL/dy",
    .inputs = {"x"},
    .attrs = {{"axis", -1}},
    .shape = same_shape_along_axis,
    .forward = along_axis_forward([]<class T>(Line<const T> x, Line<T> y) {
        const ExpSum<T> e = exp_sum(x);
        const T log_sum = std::log(e.sum);
        for (std::int64_t j = 0; j < y.n; ++j) y[j] = e.log_softmax(x[j], log_sum);
    }),
    .backward = along_axis_backward([]<class T>(Line<const T>, Line<const T> y, Line<const T> g, Line<T> gx) {
        T gsum = 0;
        for (std::int64_t j = 0; j < y.n; ++j) gsum += g[j];
        for (std::int64_t j = 0; j < y.n; ++j) gx[j] = g[j] - std::exp(y[j]) * gsum;
    }),
    .samples = {{.shapes = {{3, 4}}},
                {.shapes = {{3, 4}}, .attrs = {{"axis", 0}}},
                {.shapes = {{2, 3, 2}}, .attrs = {{"axis", 1}}},
                {.shapes = {{5}}}},
    .summary = "log of softmax along an axis (log-sum-exp, stable for large logits)",
    .bad_samples = {{.shapes = {{}}, .error = "needs a tensor of rank >= 1, got a scalar"},
                    {.shapes = {{3, 4}}, .attrs = {{"axis", -3}},
                     .error = "axis -3 is out of range for a tensor of rank 2"}},
    .mixes_rows = mixes_rows_along_axis,
    // dL/dx = g − exp(y) ⊙ Σ_axis g
    .vjp =
        [](VjpBuilder& b) {
            const VjpRef total = b.add_op("sum", {b.grad()}, {{"axis", b.attrs().at("axis")}, {"keepdims", true}});
            return refs(b.sub(b.grad(), b.mul(b.add_op("exp", {b.output()}), total)));
        },
});

}  // namespace
}  // namespace chainrule
