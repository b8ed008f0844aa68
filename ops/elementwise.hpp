// Forward and backward of elementwise ops from per-element formulas, so an op file shows
// y = f(x) and dL/dx next to each other and nothing else:
//
//     .forward = unary_forward([](auto x) { return std::exp(x); }),
//     .backward = unary_backward([](auto x, auto y, auto g) { return g * y; }),
//
//     .forward = binary_forward([](auto a, auto b) { return a * b; }),
//     .backward = binary_backward([](auto, auto b, auto, auto g) { return g * b; },   // dL/da
//                                 [](auto a, auto, auto, auto g) { return g * a; }),  // dL/db
//
// `g` is dL/dy for the element; x (a, b) and y are its inputs and output. A binary op
// broadcasts numpy-style, and each partial is summed back to its input's shape by
// sum_to_shape (ops/broadcast.hpp). The lambdas are generic so that one formula serves
// float32 and float64.
#pragma once

#include "ops/broadcast.hpp"
#include "ops/op.hpp"

namespace chainrule {

// f(begin, end) over [0, n), split over the pass's helpers when n is large enough to pay for
// waking them (each element is computed alone, so the split changes no bit).
constexpr std::int64_t kElementwiseSplit = 1 << 16;
template <class F>
void each_range(Workers* workers, std::int64_t n, F&& f) {
    if (!workers || workers->threads() < 2 || n < kElementwiseSplit) return f(std::int64_t(0), n);
    workers->run(n, f);
}

template <class F>
auto unary_forward(F f) {
    return [f](const ForwardCall& c) {
        dispatch(c.out.dtype(), [&]<class T>() {
            const T* x = c.in[0]->data<T>();
            T* y = c.out.data<T>();
            each_range(c.workers, c.out.numel(), [&](std::int64_t begin, std::int64_t end) {
                for (std::int64_t i = begin; i < end; ++i) y[i] = T(f(x[i]));
            });
        });
    };
}

// For a forward that is a whole-array loop, loop(x, y, n), such as a vectorized kernel
// that must round exactly like a fused pass (sigmoid and ops/kernels.hpp).
template <class L>
auto unary_forward_loop(L loop) {
    return [loop](const ForwardCall& c) {
        dispatch(c.out.dtype(), [&]<class T>() { loop(c.in[0]->data<T>(), c.out.data<T>(), c.out.numel()); });
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
            each_range(c.workers, c.out.numel(), [&](std::int64_t begin, std::int64_t end) {
                for (std::int64_t i = begin; i < end; ++i) gx[i] = T(d(x[i], y[i], g[i]));
            });
        });
    };
}

template <class F>
auto binary_forward(F f) {
    return [f](const ForwardCall& c) {
        dispatch(c.out.dtype(), [&]<class T>() {
            broadcast_binary<T>(*c.in[0], *c.in[1], c.out, [&](T a, T b) { return T(f(a, b)); });
        });
    };
}

// da(a, b, y, g) and db(a, b, y, g): dL/dy times ∂y/∂a (∂y/∂b) for one output element.
template <class DA, class DB>
auto binary_backward(DA da, DB db) {
    return [da, db](const BackwardCall& c) {
        dispatch(c.out.dtype(), [&]<class T>() {
            const Tensor &a = *c.in[0], &b = *c.in[1];
            const T *pa = a.data<T>(), *pb = b.data<T>(), *y = c.out.data<T>(), *g = c.grad_out.data<T>();
            auto partial = [&](int which, const auto& d) {
                if (!c.grad_in[which]) return;
                sum_to_shape<T>(c.out.dims(), a.dims(), b.dims(), which, *c.grad_in[which],
                                [&](std::int64_t io, std::int64_t ia, std::int64_t ib) {
                                    return T(d(pa[ia], pb[ib], y[io], g[io]));
                                });
            };
            partial(0, da);
            partial(1, db);
        });
    };
}

}  // namespace chainrule
