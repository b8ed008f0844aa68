// layer_norm(x[, weight, bias], eps) over the last axis (= F.layer_norm(x, (C,), weight, bias, eps)).
//
// Per row of C entries: μ = Σx/C, σ² = Σ(x − μ)²/C (biased, as PyTorch), s = 1/√(σ² + eps),
// x̂ = (x − μ)·s, y = x̂·weight + bias (weight 1 and bias 0 when left out).
// Backward, with ĝ = dL/dy · weight per entry:
//   dL/dx_j = s · (ĝ_j − mean(ĝ) − x̂_j · mean(ĝ·x̂))
// (x̂ depends on x_j directly, through μ, which takes mean(ĝ), and through s, with
// ∂s/∂x_j = −s³(x_j − μ)/C, which takes x̂_j·mean(ĝ·x̂)); dL/dweight = Σ_rows dL/dy·x̂ and
// dL/dbias = Σ_rows dL/dy. Forward leaves each row's μ and s in the node's scratch for its
// backward (recomputed when called outside a graph).
//
// The row sums run in eight interleaved partial sums added in a fixed order at the end: the
// compiler turns them into vector adds, where one running sum is a chain of dependent adds
// (a GPT's 64-wide rows spent most of their time waiting on it), and the bits are the same on
// every machine.
#include <cmath>
#include <fmt/format.h>
#include <type_traits>
#include <vector>

#include "core/simd.hpp"
#include "ops/op.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

constexpr int kSumLanes = 8;

// Σ_j term(j) for j < n, term(j) added into partial sum j mod 8, the eight combined pairwise.
template <class T, class Term>
CHAINRULE_INLINE T lane_sum(std::int64_t n, Term&& term) {
    T acc[kSumLanes] = {};
    std::int64_t j = 0;
    for (; j + kSumLanes <= n; j += kSumLanes)
        for (int l = 0; l < kSumLanes; ++l) acc[l] += term(j + l);
    for (int l = 0; j < n; ++j, ++l) acc[l] += term(j);
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

// μ and s = 1/√(σ² + eps) of one row, the variance from the centred values (no cancellation).
template <class T>
CHAINRULE_INLINE std::pair<T, T> row_stats(const T* x, std::int64_t n, T eps) {
    const T mean = lane_sum<T>(n, [&](std::int64_t j) { return x[j]; }) / T(n);
    const T var = lane_sum<T>(n, [&](std::int64_t j) { return (x[j] - mean) * (x[j] - mean); }) / T(n);
    return {mean, T(1) / std::sqrt(var + eps)};
}

// One pass of the op over `rows` rows of n; w, b may be null (1 and 0); stats, when given,
// receives μ and s per row.
template <class T>
CHAINRULE_INLINE void forward_rows(const T* x, const T* w, const T* b, T* y, T* stats, std::int64_t rows,
                                   std::int64_t n, T eps) {
    for (std::int64_t r = 0; r < rows; ++r, x += n, y += n) {
        const auto [mean, s] = row_stats(x, n, eps);
        if (stats) {
            stats[2 * r] = mean;
            stats[2 * r + 1] = s;
        }
        if (w && b)
            for (std::int64_t j = 0; j < n; ++j) y[j] = (x[j] - mean) * s * w[j] + b[j];
        else if (w)
            for (std::int64_t j = 0; j < n; ++j) y[j] = (x[j] - mean) * s * w[j];
        else
            for (std::int64_t j = 0; j < n; ++j) y[j] = (x[j] - mean) * s;
    }
}

// The backward over `rows` rows: gx (may be null) overwritten, gw and gb (may be null)
// accumulated row after row; stats from forward_rows, or null to recompute them.
template <class T>
CHAINRULE_INLINE void backward_rows(const T* x, const T* w, const T* g, const T* stats, T* gx, T* gw, T* gb,
                                    std::int64_t rows, std::int64_t n, T eps) {
    for (std::int64_t r = 0; r < rows; ++r, x += n, g += n) {
        const auto [mean, s] = stats ? std::pair<T, T>{stats[2 * r], stats[2 * r + 1]} : row_stats(x, n, eps);
        auto xhat = [&](std::int64_t j) { return (x[j] - mean) * s; };
        if (gw)
            for (std::int64_t j = 0; j < n; ++j) gw[j] += g[j] * xhat(j);
        if (gb)
            for (std::int64_t j = 0; j < n; ++j) gb[j] += g[j];
        if (!gx) continue;
        T* gr = gx + r * n;
        if (w) {  // ĝ = g·w
            const T mean_g = lane_sum<T>(n, [&](std::int64_t j) { return g[j] * w[j]; }) / T(n);
            const T mean_gx = lane_sum<T>(n, [&](std::int64_t j) { return g[j] * w[j] * xhat(j); }) / T(n);
            for (std::int64_t j = 0; j < n; ++j) gr[j] = s * (g[j] * w[j] - mean_g - xhat(j) * mean_gx);
        } else {  // ĝ = g
            const T mean_g = lane_sum<T>(n, [&](std::int64_t j) { return g[j]; }) / T(n);
            const T mean_gx = lane_sum<T>(n, [&](std::int64_t j) { return g[j] * xhat(j); }) / T(n);
            for (std::int64_t j = 0; j < n; ++j) gr[j] = s * (g[j] - mean_g - xhat(j) * mean_gx);
        }
    }
}

CHAINRULE_SIMD_CLONES void forward_f32(const float* x, const float* w, const float* b, float* y, float* stats,
                                       std::int64_t rows, std::int64_t n, float eps) {
    forward_rows(x, w, b, y, stats, rows, n, eps);
}
CHAINRULE_SIMD_CLONES void forward_f64(const double* x, const double* w, const double* b, double* y, double* stats,
                                       std::int64_t rows, std::int64_t n, double eps) {
    forward_rows(x, w, b, y, stats, rows, n, eps);
}
CHAINRULE_SIMD_CLONES void backward_f32(const float* x, const float* w, const float* g, const float* stats,
                                        float* gx, float* gw, float* gb, std::int64_t rows, std::int64_t n,
                                        float eps) {
    backward_rows(x, w, g, stats, gx, gw, gb, rows, n, eps);
}
CHAINRULE_SIMD_CLONES void backward_f64(const double* x, const double* w, const double* g, const double* stats,
                                        double* gx, double* gw, double* gb, std::int64_t rows, std::int64_t n,
                                        double eps) {
    backward_rows(x, w, g, stats, gx, gw, gb, rows, n, eps);
}

Shape layer_norm_shape(std::span<const Shape> in, const Attrs& attrs) {
    const Shape& x = in[0];
    if (x.empty()) throw ShapeError("needs a tensor of rank >= 1 (normalized over its last axis), got a scalar");
    if (!(attrs.at("eps").get<double>() > 0))
        throw ShapeError(fmt::format("attr eps must be > 0, got {}", attrs.at("eps").dump()));
    for (std::size_t k = 1; k < in.size(); ++k)
        if (in[k] != Shape{x.back()})
            throw ShapeError(fmt::format("needs {} of shape {} (the last axis of x {}), got {}",
                                         k == 1 ? "weight" : "bias", format_shape({x.back()}), format_shape(x),
                                         format_shape(in[k])));
    return x;
}

template <class T>
const T* optional_input(std::span<const Tensor* const> in, std::size_t k) {
    return in.size() > k ? in[k]->data<T>() : nullptr;
}

template <class T>
T* optional_grad(std::span<Tensor* const> grad_in, std::size_t k) {
    return grad_in.size() > k && grad_in[k] ? grad_in[k]->data<T>() : nullptr;
}

void layer_norm_forward(const ForwardCall& c) {
    dispatch(c.out.dtype(), [&]<class T>() {
        const Tensor& x = *c.in[0];
        const std::int64_t n = x.dim(x.rank() - 1), rows = n ? x.numel() / n : 0;
        T* stats = c.scratch ? c.scratch->get<T>(std::size_t(2 * rows)).data() : nullptr;
        const T eps = c.attrs.at("eps").get<T>(), *w = optional_input<T>(c.in, 1), *b = optional_input<T>(c.in, 2);
        if constexpr (std::is_same_v<T, float>)
            forward_f32(x.data<T>(), w, b, c.out.data<T>(), stats, rows, n, eps);
        else
            forward_f64(x.data<T>(), w, b, c.out.data<T>(), stats, rows, n, eps);
    });
}

void layer_norm_backward(const BackwardCall& c) {
    dispatch(c.out.dtype(), [&]<class T>() {
        const Tensor& x = *c.in[0];
        const std::int64_t n = x.dim(x.rank() - 1), rows = n ? x.numel() / n : 0;
        const T* stats = c.scratch ? c.scratch->get<T>(std::size_t(2 * rows)).data() : nullptr;
        const T eps = c.attrs.at("eps").get<T>(), *w = optional_input<T>(c.in, 1);
        T *gx = optional_grad<T>(c.grad_in, 0), *gw = optional_grad<T>(c.grad_in, 1), *gb = optional_grad<T>(c.grad_in, 2);
        if (gw) c.grad_in[1]->zero();
        if (gb) c.grad_in[2]->zero();
        if constexpr (std::is_same_v<T, float>)
            backward_f32(x.data<T>(), w, c.grad_out.data<T>(), stats, gx, gw, gb, rows, n, eps);
        else
            backward_f64(x.data<T>(), w, c.grad_out.data<T>(), stats, gx, gw, gb, rows, n, eps);
    });
}

const bool layer_norm_registered = register_op({
    .name = "layer_norm",
    .formula = "y = x̂·weight + bias,  x̂ = (x − μ)·s,  s = 1/√(σ² + eps) over the last axis;  "
               "dL/dx = s·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)), ĝ = dL/dy·weight;  "
               "dL/dweight = Σ_rows dL/dy·x̂;  dL/dbias = Σ_rows dL/dy",
    .inputs = {"x", "weight", "bias"},
    .attrs = {{"eps", 1e-5}},
    .shape = layer_norm_shape,
    .forward = layer_norm_forward,
    .backward = layer_norm_backward,
    .samples = {{.shapes = {{3, 4}, {4}, {4}}},
                {.shapes = {{2, 3, 5}, {5}, {5}}, .attrs = {{"eps", 0.5}}},
                {.shapes = {{2, 2, 2, 3}}},
                {.shapes = {{4, 6}, {6}}, .attrs = {{"eps", 1e-3}}},
                {.shapes = {{5}, {5}, {5}}}},
    .summary = "normalize over the last axis to mean 0, variance 1, then scale and shift (weight, bias optional)",
    .bad_samples = {{.shapes = {{}}, .error = "needs a tensor of rank >= 1"},
                    {.shapes = {{3, 4}, {3}}, .error = "needs weight of shape [4] (the last axis of x [3,4]), got [3]"},
                    {.shapes = {{3, 4}, {4}, {4, 1}},
                     .error = "needs bias of shape [4] (the last axis of x [3,4]), got [4,1]"},
                    {.shapes = {{3, 4}}, .attrs = {{"eps", 0.0}}, .error = "attr eps must be > 0, got 0.0"}},
    .optional_inputs = 2,
    // Rank 1 with the batch symbol: the normalized axis is the batch.
    .mixes_rows = [](const RowQuery& q) -> std::string {
        return !q.batch_inputs.empty() && q.batch_inputs[0] && q.ranks[0] == 1
                   ? "normalizes along the batch axis (axis 0), mixing the rows"
                   : "";
    },
    // μ and s per row, from forward for backward
    .workspace = [](std::span<const Dims> in, const Attrs&, Dtype dtype) -> std::int64_t {
        std::int64_t rows = 1;
        for (std::size_t k = 0; k + 1 < in[0].size(); ++k) rows *= in[0][k];
        return 2 * rows * std::int64_t(dtype_size(dtype));
    },
    // The backward above with ops, r = √(σ² + eps) = 1/s recomputed from x:
    // dL/dx = (ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) / r, ĝ = g·weight;  dL/dweight = Σ_rows g·x̂;  dL/dbias = Σ_rows g
    .vjp =
        [](VjpBuilder& b) {
            auto mean_last = [&](VjpRef v) { return b.add_op("mean", {v}, {{"axis", -1}, {"keepdims", true}}); };
            const VjpRef x = b.input(0), g = b.grad(), centred = b.sub(x, mean_last(x));
            const double eps = b.attrs().at("eps").get<double>();
            const VjpRef r = b.add_op("sqrt", {b.scale(mean_last(b.mul(centred, centred)), 1, eps)});
            const VjpRef xhat = b.div(centred, r), ghat = b.input_count() > 1 ? b.mul(g, b.input(1)) : g;
            std::vector<VjpRef> grads{
                b.div(b.sub(b.sub(ghat, mean_last(ghat)), b.mul(xhat, mean_last(b.mul(ghat, xhat)))), r)};
            if (b.input_count() > 1) grads.push_back(b.sum_to(b.mul(g, xhat), b.input(1)));
            if (b.input_count() > 2) grads.push_back(b.sum_to(g, b.input(2)));
            return grads;
        },
});

}  // namespace
}  // namespace chainrule
