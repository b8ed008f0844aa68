// gelu(x, approximate), elementwise (= torch.nn.functional.gelu).
//
// "none":  y = x·Φ(x), Φ(x) = (1 + erf(x/√2)) / 2;   dy/dx = Φ(x) + x·φ(x), φ(x) = exp(−x²/2)/√(2π).
// "tanh":  y = x·(1 + tanh(u)) / 2, u = √(2/π)·(x + 0.044715·x³);
//          dy/dx = (1 + t)/2 + x·(1 − t²)/2 · √(2/π)·(1 + 3·0.044715·x²), t = tanh(u).
// The attr is a JSON string (Attrs hold JSON), as in PyTorch; the shape rule refuses any other
// word, so a typo is caught when the model loads. erf, exp and tanh saturate without
// overflow, so x = ±1000 gives 0 and x.
//
// Exact GELU in float32 takes Φ from Abramowitz & Stegun 7.1.26 (|erf error| ≤ 1.5e-7, below
// float32's resolution of 1; PyTorch's vectorized CPU GELU uses the same formula) with
// ops/kernels' exp, in loops that vectorize: the scalar erff and expf took a quarter of a
// small GPT's training step. float64 keeps std::erf, exact to double precision.
#include <cmath>
#include <fmt/format.h>
#include <numbers>
#include <type_traits>

#include "ops/elementwise.hpp"
#include "ops/vjp.hpp"
#include "ops/kernels.hpp"

namespace chainrule {
namespace {

bool tanh_form(const Attrs& attrs) { return attrs.at("approximate").get<std::string>() == "tanh"; }

template <class T>
T gelu_value(T x, bool tanh_approx) {
    if (!tanh_approx) return x * (T(1) + std::erf(x * T(std::numbers::sqrt2 / 2))) / T(2);
    const T u = T(std::numbers::sqrt2 * std::numbers::inv_sqrtpi) * (x + T(0.044715) * x * x * x);
    return x * (T(1) + std::tanh(u)) / T(2);
}

template <class T>
T gelu_slope(T x, bool tanh_approx) {
    if (!tanh_approx) {
        const T cdf = (T(1) + std::erf(x * T(std::numbers::sqrt2 / 2))) / T(2);
        const T pdf = std::exp(-x * x / T(2)) * T(std::numbers::inv_sqrtpi / std::numbers::sqrt2);
        return cdf + x * pdf;
    }
    const T k = T(std::numbers::sqrt2 * std::numbers::inv_sqrtpi);
    const T t = std::tanh(k * (x + T(0.044715) * x * x * x));
    return (T(1) + t) / T(2) + x * (T(1) - t * t) / T(2) * k * (T(1) + T(3 * 0.044715) * x * x);
}

// dy/dx written with ops (gelu_slope's two forms), so the VJP graph can be differentiated again.
VjpRef gelu_slope_node(VjpBuilder& b, bool tanh_approx) {
    const VjpRef x = b.input(0), x2 = b.mul(x, x);
    const double k = std::numbers::sqrt2 * std::numbers::inv_sqrtpi;
    if (!tanh_approx) {  // Φ(x) + x·φ(x), Φ = (1 + erf(x/√2))/2, φ = exp(−x²/2)/√(2π)
        const VjpRef cdf = b.scale(b.add_op("erf", {b.scale(x, std::numbers::sqrt2 / 2)}), 0.5, 0.5);
        const VjpRef pdf = b.scale(b.add_op("exp", {b.scale(x2, -0.5)}), k / 2);
        return b.add(cdf, b.mul(x, pdf));
    }
    // (1 + t)/2 + x·(1 − t²)/2·k·(1 + 3·0.044715·x²), t = tanh(k·(x + 0.044715·x³))
    const VjpRef t = b.add_op("tanh", {b.add(b.scale(x, k), b.scale(b.mul(x2, x), k * 0.044715))});
    const VjpRef inner = b.mul(b.mul(x, b.scale(b.mul(t, t), -0.5, 0.5)), b.scale(x2, k * 3 * 0.044715, k));
    return b.add(b.scale(t, 0.5, 0.5), inner);
}

// Φ(x) and the Gaussian factor exp(−x²/2) of φ(x), in float32. With a = |x|/√2:
// erf(a) = 1 − t·(p1 + t·(p2 + t·(p3 + t·(p4 + t·p5))))·exp(−a²), t = 1/(1 + p·a), and
// exp(−a²) is exp(−x²/2), which the slope needs too.
struct Normal {
    float cdf, gauss;
};

CHAINRULE_INLINE Normal normal_f32(float x) {
    const float a = std::fabs(x) * float(std::numbers::sqrt2 / 2);
    const float t = 1.0f / (1.0f + 0.3275911f * a);
    const float r = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
    const float gauss = kernels::exp_nonpositive(-a * a);
    const float erf_abs = 1.0f - r * gauss;
    return {0.5f * (1.0f + kernels::select(x < 0.0f, -erf_abs, erf_abs)), gauss};
}

CHAINRULE_SIMD_CLONES void gelu_forward_f32(const float* x, float* y, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) y[i] = x[i] * normal_f32(x[i]).cdf;
}

CHAINRULE_SIMD_CLONES void gelu_backward_f32(const float* x, const float* g, float* gx, std::int64_t n) {
    constexpr float inv_sqrt_2pi = float(std::numbers::inv_sqrtpi / std::numbers::sqrt2);
    for (std::int64_t i = 0; i < n; ++i) {
        const Normal v = normal_f32(x[i]);
        gx[i] = g[i] * (v.cdf + x[i] * v.gauss * inv_sqrt_2pi);
    }
}

const bool gelu_registered = register_op({
    .name = "gelu",
    .formula = "y = x·Φ(x)  (approximate \"tanh\": x·(1 + tanh(√(2/π)·(x + 0.044715x³)))/2);  "
               "dL/dx = dL/dy · (Φ(x) + x·φ(x))  (tanh: dL/dy · ((1+t)/2 + x(1−t²)/2·√(2/π)(1 + 0.134145x²)))",
    .inputs = {"x"},
    .attrs = {{"approximate", "none"}},
    .shape =
        [](std::span<const Shape> in, const Attrs& attrs) {
            const std::string form = attrs.at("approximate").get<std::string>();
            if (form != "none" && form != "tanh")
                throw ShapeError(fmt::format("attr approximate must be \"none\" or \"tanh\", got \"{}\"", form));
            return in[0];
        },
    .forward =
        [](const ForwardCall& c) {
            const bool approx = tanh_form(c.attrs);
            dispatch(c.out.dtype(), [&]<class T>() {
                const T* x = c.in[0]->data<T>();
                T* y = c.out.data<T>();
                each_range(c.workers, c.out.numel(), [&](std::int64_t begin, std::int64_t end) {
                    if constexpr (std::is_same_v<T, float>)
                        if (!approx) return gelu_forward_f32(x + begin, y + begin, end - begin);
                    for (std::int64_t i = begin; i < end; ++i) y[i] = gelu_value(x[i], approx);
                });
            });
        },
    .backward =
        [](const BackwardCall& c) {
            if (!c.grad_in[0]) return;
            const bool approx = tanh_form(c.attrs);
            dispatch(c.out.dtype(), [&]<class T>() {
                const T *x = c.in[0]->data<T>(), *g = c.grad_out.data<T>();
                T* gx = c.grad_in[0]->data<T>();
                each_range(c.workers, c.out.numel(), [&](std::int64_t begin, std::int64_t end) {
                    if constexpr (std::is_same_v<T, float>)
                        if (!approx) return gelu_backward_f32(x + begin, g + begin, gx + begin, end - begin);
                    for (std::int64_t i = begin; i < end; ++i) gx[i] = g[i] * gelu_slope(x[i], approx);
                });
            });
        },
    .samples = {{.shapes = {{3, 4}}},
                {.shapes = {{2, 3, 5}}, .attrs = {{"approximate", "tanh"}}},
                {.shapes = {{6}}, .attrs = {{"approximate", "tanh"}}, .domains = {Domain::away_from_0}}},
    .summary = "Gaussian error linear unit x·Φ(x), exact (erf) or its tanh approximation",
    .bad_samples = {{.shapes = {{3}}, .attrs = {{"approximate", "sigmoid"}},
                     .error = "attr approximate must be \"none\" or \"tanh\", got \"sigmoid\""}},
    .elementwise = true,
    // d gelu(x) = gelu_slope(x)·dx, the slope built from erf and exp (or tanh) as above
    .vjp = [](VjpBuilder& b) { return refs(b.mul(b.grad(), gelu_slope_node(b, tanh_form(b.attrs())))); },
});

}  // namespace
}  // namespace chainrule
