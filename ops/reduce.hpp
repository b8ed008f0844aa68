// sum and mean over the axes their `axis` attr names (ops/broadcast.hpp: reduced_axes):
// mean is the sum divided by n, the number of elements summed into each output element,
// so both ops share one forward and one backward and differ only in n.
#pragma once

#include <algorithm>
#include <optional>

#include "ops/broadcast.hpp"
#include "ops/op.hpp"

namespace chainrule {

enum class Reduction { sum, mean };

// A reduction's input seen as [outer, kept, inner] (row-major): the kept axes contiguous,
// every axis before them and after them summed (NCHW's per-channel sum over axes 0, 2, 3 is
// [N, C, H·W]; a sum over axis 0 of [N, M] is [N, M, 1]); nullopt for other patterns (kept
// axes with a summed one between them).
struct ReductionBlocks {
    std::int64_t outer = 1, kept = 1, inner = 1;
};
inline std::optional<ReductionBlocks> reduction_blocks(const Dims& dims, const Dims& kept) {
    ReductionBlocks b;
    int part = 0;  // 0: before the kept axes, 1: among them, 2: after them
    for (std::size_t i = 0; i < dims.size(); ++i) {
        const bool summed = kept[i] != dims[i] || dims[i] == 1;
        if (dims[i] == 1) continue;  // an axis of 1 goes anywhere
        if (!summed && part == 2) return std::nullopt;
        if (!summed) part = 1;
        if (summed && part == 1) part = 2;
        (part == 0 ? b.outer : part == 1 ? b.kept : b.inner) *= dims[i];
    }
    return b;
}

// y[k] = Σ over (o, i) of x[o, k, i], each y[k] summed in row-major order of x, as the
// general walk sums it (the same bits), but the kept elements' sums advanced side by side:
// independent additions instead of one chain at a time (NCHW's per-channel sums run several
// times faster). y is zeroed first.
template <class T>
void sum_blocks(const ReductionBlocks& b, const T* __restrict x, T* __restrict y) {
    std::fill(y, y + b.kept, T(0));
    for (std::int64_t o = 0; o < b.outer; ++o) {
        const T* __restrict block = x + o * b.kept * b.inner;
        for (std::int64_t i = 0; i < b.inner; ++i)
            for (std::int64_t k = 0; k < b.kept; ++k) y[k] += block[k * b.inner + i];
    }
}

inline auto reduction_forward(Reduction kind) {
    return [kind](const ForwardCall& c) {
        dispatch(c.out.dtype(), [&]<class T>() {
            const Tensor& x = *c.in[0];
            const T* px = x.data<T>();
            T* y = c.out.data<T>();
            const std::int64_t n = kind == Reduction::mean ? x.numel() / c.out.numel() : 1;
            if (c.out.numel() == 1) {  // in double: 10^5 float32 terms would lose digits
                double total = 0;
                for (std::int64_t i = 0; i < x.numel(); ++i) total += double(px[i]);
                y[0] = static_cast<T>(total / double(n));
                return;
            }
            const Dims kept = kept_dims(x.dims(), reduced_axes(c.attrs.at("axis"), x.rank()));
            if (const std::optional<ReductionBlocks> blocks = reduction_blocks(x.dims(), kept)) {
                sum_blocks(*blocks, px, y);
            } else {
                c.out.zero();
                walk_broadcast(x.dims(), kept, kept, [&](std::int64_t i, std::int64_t o, std::int64_t) { y[o] += px[i]; });
            }
            if (n == 1) return;
            const T r = T(1) / static_cast<T>(n);
            for (T& v : c.out.span<T>()) v *= r;
        });
    };
}

// dL/dx = dL/dy / n, broadcast back over the reduced axes.
inline auto reduction_backward(Reduction kind) {
    return [kind](const BackwardCall& c) {
        if (!c.grad_in[0]) return;
        dispatch(c.out.dtype(), [&]<class T>() {
            const Tensor& x = *c.in[0];
            const T* g = c.grad_out.data<T>();
            T* gx = c.grad_in[0]->data<T>();
            const T r = kind == Reduction::mean ? T(1) / static_cast<T>(x.numel() / c.out.numel()) : T(1);
            if (c.out.numel() == 1) {  // every element gets the one gradient: no axes to walk
                std::fill(gx, gx + x.numel(), g[0] * r);
                return;
            }
            const Dims kept = kept_dims(x.dims(), reduced_axes(c.attrs.at("axis"), x.rank()));
            walk_broadcast(x.dims(), kept, kept, [&](std::int64_t i, std::int64_t o, std::int64_t) { gx[i] = g[o] * r; });
        });
    };
}

}  // namespace chainrule
