// Ops that work line by line along their `axis` attr (softmax, log_softmax, normalize) and
// the max-shifted exponential sum that softmax, log_softmax and cross_entropy share, so an
// op file holds the formula for one line:
//
//     .forward = along_axis_forward([]<class T>(Line<const T> x, Line<T> y) { ... }),
//     .backward = along_axis_backward([]<class T>(Line<const T> x, Line<const T> y,
//                                                 Line<const T> g, Line<T> gx) { ... }),
//
// g is dL/dy on the line, gx the line of dL/dx to overwrite.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "ops/broadcast.hpp"
#include "ops/kernels.hpp"
#include "ops/op.hpp"

namespace chainrule {

// Op::mixes_rows of an op that works along its "axis" attr: it mixes the batch's rows when
// that axis is the batch axis (0) of a batched input.
inline std::string mixes_rows_along_axis(const RowQuery& q) {
    if (q.batch_inputs.empty() || !q.batch_inputs[0]) return "";
    const std::int64_t rank = std::int64_t(q.ranks[0]);
    std::int64_t axis = q.attrs.contains("axis") ? q.attrs.at("axis").get<std::int64_t>() : -1;
    if (axis < 0) axis += rank;
    return axis == 0 ? "works along the batch axis (axis 0), mixing the rows" : "";
}

// `n` elements p[0], p[stride], ...: one line of a tensor along an axis, not copied.
template <class T>
struct Line {
    T* p;
    std::int64_t n, stride;
    T& operator[](std::int64_t j) const { return p[j * stride]; }
};

template <class F>
auto along_axis_forward(F f) {
    return [f](const ForwardCall& c) {
        dispatch(c.out.dtype(), [&]<class T>() {
            const AxisLines lines = AxisLines::along(c.out, c.attrs);
            const std::int64_t n = lines.len, s = lines.stride();
            const T* x = c.in[0]->data<T>();
            T* y = c.out.data<T>();
            lines.for_each([&](std::int64_t base) { f(Line<const T>{x + base, n, s}, Line<T>{y + base, n, s}); });
        });
    };
}

template <class F>
auto along_axis_backward(F f) {
    return [f](const BackwardCall& c) {
        if (!c.grad_in[0]) return;
        dispatch(c.out.dtype(), [&]<class T>() {
            const AxisLines lines = AxisLines::along(c.out, c.attrs);
            const std::int64_t n = lines.len, s = lines.stride();
            const T *x = c.in[0]->data<T>(), *y = c.out.data<T>(), *g = c.grad_out.data<T>();
            T* gx = c.grad_in[0]->data<T>();
            lines.for_each([&](std::int64_t base) {
                f(Line<const T>{x + base, n, s}, Line<const T>{y + base, n, s}, Line<const T>{g + base, n, s},
                  Line<T>{gx + base, n, s});
            });
        });
    };
}

// m = max_j z_j and sum = Σ_j exp(z_j − m): exp is only taken of values <= 0, so nothing
// overflows (logits ±1000 give exact softmax values and a finite log-sum-exp).
template <class T>
struct ExpSum {
    T max, sum;
    T log_sum_exp() const { return max + std::log(sum); }  // ln Σ_j exp(z_j)
    // ln softmax(z)_j = (z_j − m) − ln S, in that order: z_j − (m + ln S) would round m + ln S
    // to the ulp of m first, losing the small terms at large logits (1e5: 0.25 % of them).
    T log_softmax(T z, T log_sum) const { return (z - max) - log_sum; }
};

// Calls each(j, exp(z_j − m)) for every element as the sum goes, for softmax to keep them.
// exp is kernels::exp_nonpositive (z_j − m <= 0), as in softmax's contiguous rows
// (kernels::softmax_rows), so a line gives the same bits whatever its stride.
template <class T, class Each>
ExpSum<T> exp_sum(Line<const T> z, Each&& each) {
    T m = z[0];
    for (std::int64_t j = 1; j < z.n; ++j) m = std::max(m, z[j]);
    T sum = 0;
    for (std::int64_t j = 0; j < z.n; ++j) {
        T e = kernels::exp_nonpositive(z[j] - m);
        each(j, e);
        sum += e;
    }
    return {m, sum};
}

template <class T>
ExpSum<T> exp_sum(Line<const T> z) {
    return exp_sum(z, [](std::int64_t, T) {});
}

}  // namespace chainrule
