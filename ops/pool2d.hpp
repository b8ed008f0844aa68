// The window arithmetic of max_pool2d and avg_pool2d (ops/pool2d.cpp), shared with the ops of
// their vector-Jacobian products (avg_unpool2d, max_unpool2d, gather_max2d), so that each
// helper walks the windows and picks each window's maximum exactly as the pooling op does.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "ops/op.hpp"
#include "ops/window2d.hpp"

namespace chainrule {
namespace pool2d {

// The window's attrs, checked, handed to `fit` (window_shape or window_dims) with the input.
template <class X, class Fit>
Window2d geometry(const X& x, const Attrs& attrs, Fit fit) {
    if (attrs.at("kernel_size").is_null()) throw ShapeError("needs the attr kernel_size (an integer or [h, w])");
    Pair k = pair_attr(attrs, "kernel_size", {1, 1}, 1);
    Pair pad = pair_attr(attrs, "padding", {0, 0}, 0);
    if (2 * pad.h > k.h || 2 * pad.w > k.w)
        throw ShapeError(fmt::format("padding [{}, {}] must be at most half of kernel_size [{}, {}]", pad.h, pad.w,
                                     k.h, k.w));
    return fit(x, k, pair_attr(attrs, "stride", k, 1), pad, Pair{1, 1}, "pooling window");
}
inline Window2d geometry(const Shape& x, const Attrs& attrs) { return geometry(x, attrs, window_shape); }
inline Window2d runtime_geometry(const Tensor& x, const Attrs& attrs) { return geometry(x.dims(), attrs, window_dims); }

// f(plane offset of x, output index, first input row, first input column) for every window
// of the planes [first, last) (a plane is one channel of one sample).
template <class F>
void each_window(const Window2d& g, std::int64_t first, std::int64_t last, F&& f) {
    for (std::int64_t p = first; p < last; ++p)
        for (std::int64_t oy = 0; oy < g.oh; ++oy)
            for (std::int64_t ox = 0; ox < g.ow; ++ox)
                f(p * g.h * g.w, (p * g.oh + oy) * g.ow + ox, oy * g.stride.h - g.padding.h,
                  ox * g.stride.w - g.padding.w);
}

// f(flat index in x) for each real (not padding) cell of the window at (y0, x0), row-major.
template <class F>
void each_cell(const Window2d& g, std::int64_t plane, std::int64_t y0, std::int64_t x0, F&& f) {
    for (std::int64_t i = std::max<std::int64_t>(y0, 0); i < std::min(y0 + g.kernel.h, g.h); ++i)
        for (std::int64_t j = std::max<std::int64_t>(x0, 0); j < std::min(x0 + g.kernel.w, g.w); ++j)
            f(plane + i * g.w + j);
}

// Flat index in x of the window's first maximum; −1 when the window is all padding.
template <class T>
std::int64_t argmax(const Window2d& g, const T* x, std::int64_t plane, std::int64_t y0, std::int64_t x0) {
    std::int64_t best = -1;
    T top = -std::numeric_limits<T>::infinity();
    each_cell(g, plane, y0, x0, [&](std::int64_t at) {
        // A NaN wins (the first one), as in PyTorch, so that a NaN is never pooled away unseen.
        if (best >= 0 && std::isnan(top)) return;
        if (best < 0 || x[at] > top || std::isnan(x[at])) best = at, top = x[at];
    });
    return best;
}

// 2×2 windows with stride 2 and no padding (LeNet's pooling), which max_pool2d's row
// kernel takes.
inline bool is_2x2(const Window2d& g) {
    return g.kernel.h == 2 && g.kernel.w == 2 && g.stride.h == 2 && g.stride.w == 2 && g.padding.h == 0 &&
           g.padding.w == 0;
}

// One row of `ow` 2×2 windows over input rows r0 and r0 + w (ops/pool2d.cpp, vectorized):
// each window's maximum into y and which of its cells is the first maximum, as argmax takes
// it, into code (0 1 / 2 3).
void max_pool_row_best(const float* r0, float* y, std::uint8_t* code, std::int64_t ow, std::int64_t w);
void max_pool_row_best(const double* r0, double* y, std::uint8_t* code, std::int64_t ow, std::int64_t w);

// f(output index, flat index in x of that window's first maximum, or −1 when the window is
// all padding) for every window of the planes [first, last): the one window walk of max
// pooling and of the ops of its derivatives (max_unpool2d, gather_max2d), so that all of them
// pick the same cell. 2×2 windows go through the row kernel, a run of windows at a time.
template <class T, class F>
void each_window_max(const Window2d& g, const T* x, std::int64_t first, std::int64_t last, F&& f) {
    if (!is_2x2(g)) {
        each_window(g, first, last, [&](std::int64_t plane, std::int64_t o, std::int64_t y0, std::int64_t x0) {
            f(o, argmax(g, x, plane, y0, x0));
        });
        return;
    }
    constexpr std::int64_t kRun = 64;
    T top[kRun];
    std::uint8_t code[kRun];
    for (std::int64_t p = first; p < last; ++p)
        for (std::int64_t oy = 0; oy < g.oh; ++oy) {
            const std::int64_t row = p * g.h * g.w + 2 * oy * g.w, out = (p * g.oh + oy) * g.ow;
            for (std::int64_t ox0 = 0; ox0 < g.ow; ox0 += kRun) {
                const std::int64_t n = std::min(kRun, g.ow - ox0);
                max_pool_row_best(x + row + 2 * ox0, top, code, n, g.w);
                for (std::int64_t i = 0; i < n; ++i)
                    f(out + ox0 + i, row + 2 * (ox0 + i) + (code[i] >> 1) * g.w + (code[i] & 1));
            }
        }
}

inline Shape pooled(std::span<const Shape> in, const Attrs& attrs) {
    Window2d g = geometry(in[0], attrs);
    return Shape{in[0][0], in[0][1], Dim{g.oh, {}}, Dim{g.ow, {}}};
}

inline const Attrs kPoolAttrs = {{"kernel_size", nullptr}, {"stride", nullptr}, {"padding", nullptr}};

inline const std::vector<OpSample> kPoolSamples = {
    {.shapes = {{2, 3, 4, 4}}, .attrs = {{"kernel_size", 2}}},
    {.shapes = {{1, 2, 5, 7}}, .attrs = {{"kernel_size", {3, 2}}, {"stride", {2, 3}}}},
    {.shapes = {{2, 1, 5, 5}}, .attrs = {{"kernel_size", 3}, {"stride", 2}, {"padding", 1}}},
    {.shapes = {{1, 1, 3, 3}}, .attrs = {{"kernel_size", 3}}},
    {.shapes = {{3, 2, 6, 6}}, .attrs = {{"kernel_size", 2}, {"stride", 1}}},
};
inline const std::vector<OpSample> kPoolBadSamples = {
    {.shapes = {{1, 1, 3, 3}}, .attrs = {{"kernel_size", 5}}, .error = "pooling window 5×5 is larger than the padded input 3×3"},
    {.shapes = {{1, 1, 4, 4}}, .error = "needs the attr kernel_size"},
    {.shapes = {{1, 1, 4, 4}}, .attrs = {{"kernel_size", 2}, {"padding", 2}}, .error = "padding [2, 2] must be at most half of kernel_size [2, 2]"},
    {.shapes = {{4, 4}}, .attrs = {{"kernel_size", 2}}, .error = "needs a 4-D input [N,C,H,W]"},
    {.shapes = {{1, 1, 4, 4}}, .attrs = {{"kernel_size", 0}}, .error = "attr kernel_size must be an integer >= 1"},
};

// avg_pool2d's forward: y = Σ window / (kh·kw) (padding counted), over all planes.
template <class T>
void average_windows(const Window2d& g, const T* x, T* y) {
    const T area = T(g.kernel.h * g.kernel.w);
    each_window(g, 0, g.n * g.c, [&](std::int64_t plane, std::int64_t o, std::int64_t y0, std::int64_t x0) {
        T s = 0;
        each_cell(g, plane, y0, x0, [&](std::int64_t at) { s += x[at]; });
        y[o] = s / area;
    });
}

// Its adjoint (avg_pool2d's backward): every cell gets Σ over the windows holding it of
// gy / (kh·kw); gx has the input's size.
template <class T>
void spread_windows(const Window2d& g, const T* gy, T* gx) {
    const T area = T(g.kernel.h * g.kernel.w);
    std::fill(gx, gx + g.n * g.c * g.h * g.w, T(0));
    each_window(g, 0, g.n * g.c, [&](std::int64_t plane, std::int64_t o, std::int64_t y0, std::int64_t x0) {
        const T share = gy[o] / area;
        each_cell(g, plane, y0, x0, [&](std::int64_t at) { gx[at] += share; });
    });
}

// gy of each window added at the window's first maximum of x (max_pool2d's backward), 0
// elsewhere; gx has x's size.
template <class T>
void scatter_to_maxima(const Window2d& g, const T* x, const T* gy, T* gx) {
    std::fill(gx, gx + g.n * g.c * g.h * g.w, T(0));
    each_window_max(g, x, 0, g.n * g.c, [&](std::int64_t o, std::int64_t at) {
        if (at >= 0) gx[at] += gy[o];
    });
}

// Its adjoint: y of each window is z at the window's first maximum of x (0 for a window
// all padding).
template <class T>
void gather_at_maxima(const Window2d& g, const T* x, const T* z, T* y) {
    each_window_max(g, x, 0, g.n * g.c, [&](std::int64_t o, std::int64_t at) { y[o] = at < 0 ? T(0) : z[at]; });
}

// The shape rule of an op (g, like) that puts a pooled g [N,C,oh,ow] back into like's shape
// [N,C,H,W] (avg_unpool2d, max_unpool2d).
inline Shape unpooled(std::span<const Shape> in, const Attrs& attrs) {
    const Shape out = pooled(in.subspan(1, 1), attrs);
    if (in[0] != out)
        throw ShapeError(fmt::format("needs g of shape {} (the windows of {}), got {}", format_shape(out),
                                     format_shape(in[1]), format_shape(in[0])));
    return in[1];
}

// Samples of such an op: the pooling samples' inputs as `like` (`second`: its domain), each
// with a g of the pooled shape.
inline std::vector<OpSample> unpool_samples(Domain second) {
    std::vector<OpSample> out;
    for (const OpSample& s : kPoolSamples) {
        Attrs attrs = kPoolAttrs;
        for (auto& [k, v] : s.attrs.items()) attrs[k] = v;
        const Window2d g = geometry(fixed_shape(s.shapes[0]), attrs);
        out.push_back({.shapes = {{g.n, g.c, g.oh, g.ow}, s.shapes[0]}, .attrs = s.attrs, .domains = {Domain::real, second}});
    }
    return out;
}

}  // namespace pool2d
}  // namespace chainrule
