// layer_norm(x[, weight, bias], eps) over the last axis (= F.layer_norm(x, (C,), weight, bias, eps)).
//
// Per row of C entries: μ = Σx/C, σ² = Σ(x − μ)²/C (biased, as PyTorch), s = 1/√(σ² + eps),
// x̂ = (x − μ)·s, y = x̂·weight + bias (weight 1 and bias 0 when left out).
// Backward, with ĝ = dL/dy · weight per entry:
//   dL/dx_j = s · (ĝ_j − mean(ĝ) − x̂_j · mean(ĝ·x̂))
// (x̂ depends on x_j directly, through μ, which takes mean(ĝ), and through s, with
// ∂s/∂x_j = −s³(x_j − μ)/C, which takes x̂_j·mean(ĝ·x̂)); dL/dweight = Σ_rows dL/dy·x̂ and
// dL/dbias = Σ_rows dL/dy. The row's μ and s are recomputed in backward (two passes over C).
#include <cmath>
#include <fmt/format.h>
#include <vector>

#include "ops/op.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

// μ and s = 1/√(σ² + eps) of one row, the variance from the centred values (no cancellation).
template <class T>
std::pair<T, T> row_stats(const T* x, std::int64_t n, T eps) {
    T mean = 0, var = 0;
    for (std::int64_t j = 0; j < n; ++j) mean += x[j];
    mean /= T(n);
    for (std::int64_t j = 0; j < n; ++j) var += (x[j] - mean) * (x[j] - mean);
    return {mean, T(1) / std::sqrt(var / T(n) + eps)};
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

void layer_norm_forward(const ForwardCall& c) {
    dispatch(c.out.dtype(), [&]<class T>() {
        const Tensor& x = *c.in[0];
        const std::int64_t n = x.dim(x.rank() - 1), rows = x.numel() / n;
        const T eps = c.attrs.at("eps").get<T>();
        const T* w = c.in.size() > 1 ? c.in[1]->data<T>() : nullptr;
        const T* b = c.in.size() > 2 ? c.in[2]->data<T>() : nullptr;
        for (std::int64_t r = 0; r < rows; ++r) {
            const T* xr = x.data<T>() + r * n;
            T* yr = c.out.data<T>() + r * n;
            const auto [mean, s] = row_stats(xr, n, eps);
            for (std::int64_t j = 0; j < n; ++j) {
                const T xhat = (xr[j] - mean) * s;
                yr[j] = (w ? xhat * w[j] : xhat) + (b ? b[j] : T(0));
            }
        }
    });
}

void layer_norm_backward(const BackwardCall& c) {
    dispatch(c.out.dtype(), [&]<class T>() {
        const Tensor& x = *c.in[0];
        const std::int64_t n = x.dim(x.rank() - 1), rows = x.numel() / n;
        const T eps = c.attrs.at("eps").get<T>();
        const T* w = c.in.size() > 1 ? c.in[1]->data<T>() : nullptr;
        T* gx = c.grad_in[0] ? c.grad_in[0]->data<T>() : nullptr;
        T* gw = c.grad_in.size() > 1 && c.grad_in[1] ? c.grad_in[1]->data<T>() : nullptr;
        T* gb = c.grad_in.size() > 2 && c.grad_in[2] ? c.grad_in[2]->data<T>() : nullptr;
        if (gw) c.grad_in[1]->zero();
        if (gb) c.grad_in[2]->zero();
        for (std::int64_t r = 0; r < rows; ++r) {
            const T *xr = x.data<T>() + r * n, *gr = c.grad_out.data<T>() + r * n;
            const auto [mean, s] = row_stats(xr, n, eps);
            T mean_g = 0, mean_gx = 0;  // mean(ĝ) and mean(ĝ·x̂)
            for (std::int64_t j = 0; j < n; ++j) {
                const T xhat = (xr[j] - mean) * s, ghat = w ? gr[j] * w[j] : gr[j];
                mean_g += ghat;
                mean_gx += ghat * xhat;
                if (gw) gw[j] += gr[j] * xhat;
                if (gb) gb[j] += gr[j];
            }
            mean_g /= T(n);
            mean_gx /= T(n);
            if (!gx) continue;
            for (std::int64_t j = 0; j < n; ++j) {
                const T xhat = (xr[j] - mean) * s, ghat = w ? gr[j] * w[j] : gr[j];
                gx[r * n + j] = s * (ghat - mean_g - xhat * mean_gx);
            }
        }
    });
}

const bool registered = register_op({
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
