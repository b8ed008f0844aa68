// im2col and col2im for conv2d's GEMM path (ops/conv2d.cpp: float64, and float32 where
// oneDNN has no kernel), in a header so that bench/conv_engines times the same loops.
#pragma once

#include <algorithm>
#include <cstdint>

#include "ops/window2d.hpp"

namespace chainrule::im2col_detail {

// The output columns ox whose input column ox·stride − padding + j·dilation lies inside
// [0, w): [lo, hi), found once per kernel column instead of tested per entry.
struct Span {
    std::int64_t lo, hi;
};
inline Span inside(std::int64_t j, std::int64_t stride, std::int64_t padding, std::int64_t dilation, std::int64_t w,
            std::int64_t ow) {
    const std::int64_t first = padding - j * dilation;  // ox·stride >= first
    const std::int64_t last = w - 1 + first;            // ox·stride <= last
    if (last < 0) return {0, 0};
    std::int64_t lo = first <= 0 ? 0 : (first + stride - 1) / stride;
    std::int64_t hi = std::min(ow, last / stride + 1);
    return {std::min(lo, hi), hi};
}

// f(row of X̃, input row, span of ox, input column of ox = 0) for each (c, i, j, oy) of one
// sample, the input row being −1 where it is padding.
template <class F>
void each_row(const Window2d& g, F&& f) {
    const std::int64_t plane = g.oh * g.ow;
    for (std::int64_t c = 0; c < g.c; ++c)
        for (std::int64_t i = 0; i < g.kernel.h; ++i)
            for (std::int64_t j = 0; j < g.kernel.w; ++j) {
                const std::int64_t row = ((c * g.kernel.h + i) * g.kernel.w + j) * plane;
                const Span span = inside(j, g.stride.w, g.padding.w, g.dilation.w, g.w, g.ow);
                const std::int64_t x0 = j * g.dilation.w - g.padding.w;
                for (std::int64_t oy = 0; oy < g.oh; ++oy) {
                    std::int64_t y = oy * g.stride.h - g.padding.h + i * g.dilation.h;
                    f(row + oy * g.ow, y >= 0 && y < g.h ? (c * g.h + y) * g.w : -1, span, x0);
                }
            }
}

// X̃ of one sample: row (c, i, j), column (oy, ox); zeros where the window is on padding.
template <class T>
void im2col(const Window2d& g, const T* x, T* cols) {
    each_row(g, [&](std::int64_t out, std::int64_t in, Span span, std::int64_t x0) {
        T* dst = cols + out;
        if (in < 0) {
            std::fill(dst, dst + g.ow, T(0));
            return;
        }
        std::fill(dst, dst + span.lo, T(0));
        const std::int64_t at = in + x0;  // + ox·stride: inside the row for ox in the span
        if (g.stride.w == 1)
            std::copy(x + at + span.lo, x + at + span.hi, dst + span.lo);
        else
            for (std::int64_t ox = span.lo; ox < span.hi; ++ox) dst[ox] = x[at + ox * g.stride.w];
        std::fill(dst + span.hi, dst + g.ow, T(0));
    });
}

// The transpose of im2col: adds each column entry back into the input position it came from.
template <class T>
void col2im(const Window2d& g, const T* cols, T* dx) {
    std::fill(dx, dx + g.c * g.h * g.w, T(0));
    each_row(g, [&](std::int64_t out, std::int64_t in, Span span, std::int64_t x0) {
        if (in < 0) return;
        const T* src = cols + out;
        const std::int64_t at = in + x0;
        for (std::int64_t ox = span.lo; ox < span.hi; ++ox) dx[at + ox * g.stride.w] += src[ox];
    });
}

}  // namespace chainrule::im2col_detail

namespace chainrule {
using im2col_detail::col2im;
using im2col_detail::im2col;
}  // namespace chainrule
