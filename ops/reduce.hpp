// sum and mean over the axes their `axis` attr names (ops/broadcast.hpp: reduced_axes):
// mean is the sum divided by n, the number of elements summed into each output element,
// so both ops share one forward and one backward and differ only in n.
#pragma once

#include "ops/broadcast.hpp"
#include "ops/op.hpp"

namespace chainrule {

enum class Reduction { sum, mean };

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
            c.out.zero();
            walk_broadcast(x.dims(), kept, kept, [&](std::int64_t i, std::int64_t o, std::int64_t) { y[o] += px[i]; });
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
            const Dims kept = kept_dims(x.dims(), reduced_axes(c.attrs.at("axis"), x.rank()));
            const T* g = c.grad_out.data<T>();
            T* gx = c.grad_in[0]->data<T>();
            const T r = kind == Reduction::mean ? T(1) / static_cast<T>(x.numel() / c.out.numel()) : T(1);
            walk_broadcast(x.dims(), kept, kept, [&](std::int64_t i, std::int64_t o, std::int64_t) { gx[i] = g[o] * r; });
        });
    };
}

}  // namespace chainrule
