// numpy-style broadcasting for elementwise kernels, and sum_to_shape: the one helper
// that reduces a broadcast gradient back to an input's shape.
#pragma once

#include <array>
#include <cstdint>

#include "graph/tensor.hpp"

namespace chainrule {

inline constexpr std::size_t kMaxRank = 8;

// Calls f(io, ia, ib) for every element io of a tensor of shape `out` (row-major), where
// ia and ib are the flat indices of the elements of `a` and `b` that broadcast onto it.
template <class F>
void walk_broadcast(const Dims& out, const Dims& a, const Dims& b, F&& f) {
    const std::size_t rank = out.size();
    std::int64_t total = 1;
    for (auto d : out) total *= d;
    if (a == out && b == out) {
        for (std::int64_t i = 0; i < total; ++i) f(i, i, i);
        return;
    }
    if (rank == 0) {
        f(0, 0, 0);
        return;
    }
    std::array<std::int64_t, kMaxRank> sa{}, sb{}, count{};
    auto strides = [&](const Dims& in, std::array<std::int64_t, kMaxRank>& s) {
        std::int64_t stride = 1;
        for (std::size_t k = 0; k < rank; ++k) {
            std::size_t i = rank - 1 - k;
            if (k < in.size()) {
                std::int64_t d = in[in.size() - 1 - k];
                s[i] = d == 1 ? 0 : stride;
                stride *= d;
            } else {
                s[i] = 0;
            }
        }
    };
    strides(a, sa);
    strides(b, sb);
    const std::int64_t inner = out[rank - 1], ia_step = sa[rank - 1], ib_step = sb[rank - 1];
    std::int64_t io = 0, ia = 0, ib = 0;
    while (io < total) {
        for (std::int64_t j = 0; j < inner; ++j) f(io + j, ia + j * ia_step, ib + j * ib_step);
        io += inner;
        // Advance the outer counters (dims rank-2 .. 0) like an odometer.
        std::size_t k = rank - 1;
        while (k-- > 0) {
            ia += sa[k];
            ib += sb[k];
            if (++count[k] < out[k]) break;
            ia -= sa[k] * out[k];
            ib -= sb[k] * out[k];
            count[k] = 0;
        }
    }
}

// out = f(a, b) elementwise with broadcasting; `out` already has the broadcast shape.
template <class T, class F>
void broadcast_binary(const Tensor& a, const Tensor& b, Tensor& out, F&& f) {
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* po = out.data<T>();
    walk_broadcast(out.dims(), a.dims(), b.dims(),
                   [&](std::int64_t io, std::int64_t ia, std::int64_t ib) { po[io] = f(pa[ia], pb[ib]); });
}

// target = grad summed over the dims along which target's shape was broadcast to grad's.
template <class T>
void sum_to_shape(const Tensor& grad, Tensor& target) {
    const T* g = grad.data<T>();
    T* t = target.data<T>();
    if (grad.dims() == target.dims()) {
        for (std::int64_t i = 0; i < grad.numel(); ++i) t[i] = g[i];
        return;
    }
    target.zero();
    walk_broadcast(grad.dims(), target.dims(), target.dims(),
                   [&](std::int64_t io, std::int64_t it, std::int64_t) { t[it] += g[io]; });
}

}  // namespace chainrule
