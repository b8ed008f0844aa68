// normalize(x, axis) = x / sum(x along axis), with its exact Jacobian.
//
// With s = Σ_j x_j and y_i = x_i / s:  ∂y_i/∂x_j = (δ_ij − y_i) / s, so the
// vector-Jacobian product is  dL/dx_j = (g_j − Σ_i g_i y_i) / s.
// The lecture's hand-derived update drops this Jacobian (see lecture_sigmoid_normalize).
#include "ops/op.hpp"

namespace chainrule {
namespace {

// Views a tensor as [outer, len, inner] around `axis`.
struct AxisView {
    std::int64_t outer = 1, len = 1, inner = 1;
    AxisView(const Dims& d, std::size_t axis) {
        for (std::size_t i = 0; i < d.size(); ++i) (i < axis ? outer : i == axis ? len : inner) *= d[i];
    }
};

std::size_t axis_of(const Tensor& t, const Attrs& attrs) {
    return resolve_axis(attrs.at("axis").get<std::int64_t>(), t.rank());
}

const bool registered = register_op({
    .name = "normalize",
    .formula = "y = x / s,  s = Σ x along axis;  dL/dx_j = (g_j − Σ_i g_i·y_i) / s  (exact Jacobian)",
    .inputs = {"x"},
    .attrs = {{"axis", -1}},
    .shape =
        [](std::span<const Shape> in, const Attrs& attrs) {
            if (in[0].empty()) throw ShapeError("needs a tensor of rank >= 1, got a scalar");
            resolve_axis(attrs.at("axis").get<std::int64_t>(), in[0].size());
            return in[0];
        },
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                AxisView v(c.out.dims(), axis_of(c.out, c.attrs));
                const T* x = c.in[0]->data<T>();
                T* y = c.out.data<T>();
                for (std::int64_t o = 0; o < v.outer; ++o)
                    for (std::int64_t in = 0; in < v.inner; ++in) {
                        std::int64_t base = o * v.len * v.inner + in;
                        T s = 0;
                        for (std::int64_t j = 0; j < v.len; ++j) s += x[base + j * v.inner];
                        T r = T(1) / s;
                        for (std::int64_t j = 0; j < v.len; ++j) y[base + j * v.inner] = x[base + j * v.inner] * r;
                    }
            });
        },
    .backward =
        [](const BackwardCall& c) {
            if (!c.grad_in[0]) return;
            dispatch(c.out.dtype(), [&]<class T>() {
                AxisView v(c.out.dims(), axis_of(c.out, c.attrs));
                const T* x = c.in[0]->data<T>();
                const T* y = c.out.data<T>();
                const T* g = c.grad_out.data<T>();
                T* gx = c.grad_in[0]->data<T>();
                for (std::int64_t o = 0; o < v.outer; ++o)
                    for (std::int64_t in = 0; in < v.inner; ++in) {
                        std::int64_t base = o * v.len * v.inner + in;
                        T s = 0, gy = 0;
                        for (std::int64_t j = 0; j < v.len; ++j) {
                            s += x[base + j * v.inner];
                            gy += g[base + j * v.inner] * y[base + j * v.inner];
                        }
                        T r = T(1) / s;
                        for (std::int64_t j = 0; j < v.len; ++j)
                            gx[base + j * v.inner] = (g[base + j * v.inner] - gy) * r;
                    }
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
