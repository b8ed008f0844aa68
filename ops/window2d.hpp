// The 2-D window arithmetic shared by conv2d, max_pool2d and avg_pool2d (NCHW): attrs that
// are an integer or a pair [h, w], and PyTorch's output size
//     out = ⌊(in + 2·padding − dilation·(kernel − 1) − 1) / stride⌋ + 1.
#pragma once

#include <array>
#include <cstdint>
#include <fmt/format.h>
#include <string>

#include "core/shape.hpp"
#include "ops/op.hpp"

namespace chainrule {

struct Pair {
    std::int64_t h = 1, w = 1;
};

// attrs[key] as a pair: null → `fallback`, n → (n, n), [h, w] → (h, w); each at least `low`.
inline Pair pair_attr(const Attrs& attrs, const char* key, Pair fallback, std::int64_t low) {
    const auto& v = attrs.at(key);
    if (v.is_null()) return fallback;
    auto one = [&](const Attrs& x) {
        if (!x.is_number_integer() || x.get<std::int64_t>() < low ||
            (x.is_number_unsigned() && x.get<std::uint64_t>() > std::uint64_t(INT32_MAX)) ||
            x.get<std::int64_t>() > INT32_MAX)
            throw ShapeError(fmt::format("attr {} must be an integer >= {} or a pair [h, w] of them, got {}", key,
                                         low, v.dump()));
        return x.get<std::int64_t>();
    };
    if (v.is_array()) {
        if (v.size() != 2)
            throw ShapeError(fmt::format("attr {} must be an integer or a pair [h, w], got {}", key, v.dump()));
        return {one(v[0]), one(v[1])};
    }
    std::int64_t n = one(v);
    return {n, n};
}

struct Window2d {
    Pair kernel, stride, padding, dilation;
    std::int64_t n = 0, c = 0, h = 0, w = 0;  // the input
    std::int64_t oh = 0, ow = 0;               // the output's spatial size
};

// Fills g's output size from its input and window; `shown` gives the input as a message
// prints it (called only to throw).
template <class Shown>
void fit_window(Window2d& g, const char* what, Shown&& shown) {
    std::int64_t eh = g.dilation.h * (g.kernel.h - 1) + 1, ew = g.dilation.w * (g.kernel.w - 1) + 1;
    std::int64_t ph = g.h + 2 * g.padding.h, pw = g.w + 2 * g.padding.w;
    if (eh > ph || ew > pw)
        throw ShapeError(fmt::format("{} {}×{} is larger than the padded input {}×{} (input {}, padding [{}, {}])", what,
                                     eh, ew, ph, pw, shown(), g.padding.h, g.padding.w));
    g.oh = (ph - eh) / g.stride.h + 1;
    g.ow = (pw - ew) / g.stride.w + 1;
}

// Checks x [N,C,H,W] (N may be a symbol) against the window and fills the sizes; `what`
// names the kernel in messages ("kernel" or "pooling window").
inline Window2d window_shape(const Shape& x, Pair kernel, Pair stride, Pair padding, Pair dilation,
                             const char* what) {
    if (x.size() != 4)
        throw ShapeError(fmt::format("needs a 4-D input [N,C,H,W], got {}", format_shape(x)));
    for (std::size_t i = 1; i < 4; ++i)
        if (x[i].symbolic())
            throw ShapeError(fmt::format("needs fixed C, H and W in [N,C,H,W], got {}", format_shape(x)));
    Window2d g{kernel, stride, padding, dilation, x[0].symbolic() ? 1 : x[0].size, x[1].size, x[2].size, x[3].size};
    fit_window(g, what, [&] { return format_shape(x); });
    return g;
}

// The same for a running op's input dims (which the shape rule has checked): it allocates
// nothing, so a training step stays free of allocations.
inline Window2d window_dims(const Dims& x, Pair kernel, Pair stride, Pair padding, Pair dilation, const char* what) {
    if (x.size() != 4) throw ShapeError(fmt::format("needs a 4-D input [N,C,H,W], got {}", format_dims(x)));
    Window2d g{kernel, stride, padding, dilation, x[0], x[1], x[2], x[3]};
    fit_window(g, what, [&] { return format_dims(x); });
    return g;
}

}  // namespace chainrule
