// Forward and backward of a one-input elementwise op from two per-element formulas, so an
// op file shows y = f(x) and dL/dx next to each other and nothing else:
//
//     .forward = unary_forward([](auto x) { return std::exp(x); }),
//     .backward = unary_backward([](auto x, auto y, auto g) { return g * y; }),
//
// `g` is dL/dy for the element; x and y are its input and output. The lambdas are generic
// so that one formula serves float32 and float64.
#pragma once

#include "ops/op.hpp"

namespace chainrule {

template <class F>
auto unary_forward(F f) {
    return [f](const ForwardCall& c) {
        dispatch(c.out.dtype(), [&]<class T>() {
            const T* x = c.in[0]->data<T>();
            T* y = c.out.data<T>();
            for (std::int64_t i = 0; i < c.out.numel(); ++i) y[i] = T(f(x[i]));
        });
    };
}

template <class D>
auto unary_backward(D d) {
    return [d](const BackwardCall& c) {
        if (!c.grad_in[0]) return;
        dispatch(c.out.dtype(), [&]<class T>() {
            const T* x = c.in[0]->data<T>();
            const T* y = c.out.data<T>();
            const T* g = c.grad_out.data<T>();
            T* gx = c.grad_in[0]->data<T>();
            for (std::int64_t i = 0; i < c.out.numel(); ++i) gx[i] = T(d(x[i], y[i], g[i]));
        });
    };
}

}  // namespace chainrule
