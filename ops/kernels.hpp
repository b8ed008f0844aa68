// Elementwise kernels shared by the ops and the engine's fused passes (graph/graph.cpp).
//
// Written so that GCC vectorizes their loops at -O3 without -ffast-math: no calls and no
// branches, only arithmetic, bit casts and selects. NaN propagates through every path, so
// the trainer's NaN check keeps working. The sigmoid op and the fused matmul → add →
// sigmoid pass call the same function, so fused and unfused give identical numbers.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

#include "core/simd.hpp"

namespace chainrule::kernels {

template <class T>
struct ExpConstants;

// Cephes' expf: ≤ 1 ulp on the reduced range.
template <>
struct ExpConstants<float> {
    using Bits = std::uint32_t;
    static constexpr float lowest = -104.0f;  // exp(-104) is below half the least denormal: rounds to 0
    static constexpr float log2e = 1.44269504088896341f;
    static constexpr float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;  // n·ln2_hi is exact
    static constexpr float round = 0x1.8p23f;  // adding it rounds to an integer
    static constexpr Bits exponent_bias = 127;
    static constexpr int mantissa_bits = 23;
    CHAINRULE_INLINE static float poly(float r) {
        float p = 1.9875691500e-4f;
        p = p * r + 1.3981999507e-3f;
        p = p * r + 8.3334519073e-3f;
        p = p * r + 4.1665795894e-2f;
        p = p * r + 1.6666665459e-1f;
        p = p * r + 5.0000001201e-1f;
        return p * (r * r) + r + 1.0f;
    }
};

// Cephes' exp: a Padé form, ≤ 1 ulp on the reduced range.
template <>
struct ExpConstants<double> {
    using Bits = std::uint64_t;
    static constexpr double lowest = -746.0;
    static constexpr double log2e = 1.4426950408889634073599;
    static constexpr double ln2_hi = 6.93145751953125e-1, ln2_lo = 1.42860682030941723212e-6;
    static constexpr double round = 0x1.8p52;
    static constexpr Bits exponent_bias = 1023;
    static constexpr int mantissa_bits = 52;
    CHAINRULE_INLINE static double poly(double r) {
        double xx = r * r;
        double px = r * ((1.26177193074810590878e-4 * xx + 3.02994407707441961300e-2) * xx +
                         9.99999999999999999910e-1);
        double q = ((3.00198505138664455042e-6 * xx + 2.52448340349684104192e-3) * xx +
                    2.27265548208155028766e-1) * xx + 2.00000000000000000009e0;
        return 1.0 + 2.0 * (px / (q - px));
    }
};

// c ? a : b without a branch. A plain ?: here lets GCC thread the constant arm through
// the rest of the function, and the control flow that leaves stops vectorization.
template <class T>
CHAINRULE_INLINE T select(bool c, T a, T b) {
    using Bits = typename ExpConstants<T>::Bits;
    const Bits mask = Bits(0) - Bits(c);
    return std::bit_cast<T>((std::bit_cast<Bits>(a) & mask) | (std::bit_cast<Bits>(b) & ~mask));
}

// exp(z) for lowest <= z <= 0 (or NaN), within about 1 ulp, denormal results included.
template <class T>
CHAINRULE_INLINE T exp_from_lowest(T z) {
    using C = ExpConstants<T>;
    using Bits = typename C::Bits;
    // n = round(z / ln2), as a float and as the integer in the low bits of t
    const T t = z * C::log2e + C::round;
    const T n = t - C::round;
    const T r = (z - n * C::ln2_hi) - n * C::ln2_lo;
    // 2^n in two halves: one factor 2^n would not be a normal number below 2^-126 (2^-1022).
    const T t1 = n * T(0.5) + C::round;
    const Bits n_bits = std::bit_cast<Bits>(t) - std::bit_cast<Bits>(C::round);
    const Bits n1 = std::bit_cast<Bits>(t1) - std::bit_cast<Bits>(C::round);
    const Bits n2 = n_bits - n1;
    const T s1 = std::bit_cast<T>(Bits(n1 + C::exponent_bias) << C::mantissa_bits);
    const T s2 = std::bit_cast<T>(Bits(n2 + C::exponent_bias) << C::mantissa_bits);
    return C::poly(r) * s1 * s2;
}

// exp(z) for z <= 0 (or NaN), within about 1 ulp, denormal results included. Below
// `lowest` (−inf: a causal mask's entries) the result is 0 without computing a denormal:
// an underflowing product costs the CPU a microcode assist, which made a masked softmax
// ten times slower.
template <class T>
CHAINRULE_INLINE T exp_nonpositive(T z) {
    const bool underflows = z < ExpConstants<T>::lowest;
    return select(underflows, T(0), exp_from_lowest(select(underflows, T(0), z)));
}

// 1 / (1 + exp(-x)), exp only of -|x| so nothing overflows: exactly 0 or 1 at x = ±1000.
template <class T>
CHAINRULE_INLINE T sigmoid(T x) {
    const T e = exp_nonpositive(-std::fabs(x));
    const T num = select(x >= T(0), T(1), e);
    return num / (T(1) + e);
}

template <class T>
CHAINRULE_INLINE void sigmoid(const T* x, T* y, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) y[i] = sigmoid(x[i]);
}

// dL/dx = dL/dy · y·(1 − y), the expression (and rounding) of the sigmoid op's backward.
template <class T>
CHAINRULE_INLINE T sigmoid_backward(T g, T y) {
    return g * y * (T(1) - y);
}

// softmax of `rows` contiguous lines of n: y = exp(x − m) / Σ exp(x − m), m the line's max,
// the sum in index order as ops/along_axis.hpp's exp_sum takes it (same bits); the exps and
// the division are loops of their own so that they vectorize.
template <class T>
CHAINRULE_INLINE void softmax_rows(const T* __restrict x, T* __restrict y, std::int64_t rows, std::int64_t n) {
    for (std::int64_t r = 0; r < rows; ++r, x += n, y += n) {
        T m = x[0];
        for (std::int64_t j = 1; j < n; ++j) m = std::max(m, x[j]);
        for (std::int64_t j = 0; j < n; ++j) y[j] = exp_nonpositive(x[j] - m);
        T sum = 0;
        for (std::int64_t j = 0; j < n; ++j) sum += y[j];
        for (std::int64_t j = 0; j < n; ++j) y[j] /= sum;
    }
}

// softmax's backward on contiguous lines: gx = y·(g − Σ g·y), the dot in index order.
template <class T>
CHAINRULE_INLINE void softmax_rows_backward(const T* __restrict y, const T* __restrict g, T* __restrict gx,
                                            std::int64_t rows, std::int64_t n) {
    for (std::int64_t r = 0; r < rows; ++r, y += n, g += n, gx += n) {
        T dot = 0;
        for (std::int64_t j = 0; j < n; ++j) dot += g[j] * y[j];
        for (std::int64_t j = 0; j < n; ++j) gx[j] = y[j] * (g[j] - dot);
    }
}

// ---- the engine's fused passes (graph/fusion.cpp); each rounds exactly like the ops ----

// After a matmul wrote src [rows, cols]: pre = src + bias (the add's value) and
// out = sigmoid(pre), each only where wanted (nullptr: not written). When an intermediate
// is not kept, the pass runs in place: src == out, or src == pre without out.
template <class T>
CHAINRULE_INLINE void dense_pass(const T* src, const T* bias, T* pre, T* out, std::int64_t rows, std::int64_t cols) {
    for (std::int64_t r = 0; r < rows; ++r) {
        const std::int64_t o = r * cols;
        if (pre && out) {
            const T* __restrict s = src + o;
            T* __restrict p = pre + o;
            T* __restrict y = out + o;
            for (std::int64_t j = 0; j < cols; ++j) {
                const T a = s[j] + bias[j];
                p[j] = a;
                y[j] = sigmoid(a);
            }
        } else if (out && out == src) {
            T* y = out + o;
            for (std::int64_t j = 0; j < cols; ++j) y[j] = sigmoid(y[j] + bias[j]);
        } else if (out) {
            const T* __restrict s = src + o;
            T* __restrict y = out + o;
            for (std::int64_t j = 0; j < cols; ++j) y[j] = sigmoid(s[j] + bias[j]);
        } else if (pre == src) {
            T* p = pre + o;
            for (std::int64_t j = 0; j < cols; ++j) p[j] = p[j] + bias[j];
        } else {
            const T* __restrict s = src + o;
            T* __restrict p = pre + o;
            for (std::int64_t j = 0; j < cols; ++j) p[j] = s[j] + bias[j];
        }
    }
}

// Backward of add(full, bias) [rows, cols], or of sigmoid(add(full, bias)) when y (the
// sigmoid's value) is given: d = g·y·(1−y) or g goes to dfull, its column sums to dbias
// (summed from 0 in row order, like sum_to_shape). Either output may be nullptr.
template <class T>
CHAINRULE_INLINE void bias_backward(const T* g, const T* y, T* dfull, T* dbias, std::int64_t rows, std::int64_t cols) {
    if (dbias)
        for (std::int64_t j = 0; j < cols; ++j) dbias[j] = T(0);
    for (std::int64_t r = 0; r < rows; ++r) {
        const std::int64_t o = r * cols;
        const T* __restrict gr = g + o;
        if (y && dfull && dbias) {
            const T* __restrict yr = y + o;
            T* __restrict d = dfull + o;
            for (std::int64_t j = 0; j < cols; ++j) {
                d[j] = sigmoid_backward(gr[j], yr[j]);
                dbias[j] += d[j];
            }
        } else if (y && dfull) {
            const T* __restrict yr = y + o;
            T* __restrict d = dfull + o;
            for (std::int64_t j = 0; j < cols; ++j) d[j] = sigmoid_backward(gr[j], yr[j]);
        } else if (y) {
            const T* __restrict yr = y + o;
            for (std::int64_t j = 0; j < cols; ++j) dbias[j] += sigmoid_backward(gr[j], yr[j]);
        } else {
            for (std::int64_t j = 0; j < cols; ++j) {
                if (dfull) dfull[o + j] = gr[j];
                if (dbias) dbias[j] += gr[j];
            }
        }
    }
}

// Backward of L = mse(p, t) with p = normalize(x) along the last axis [rows, len], from
// dL/dL = gl: dL/dp = (p − t)·gl/N → gp and −dL/dp → gt (each when not nullptr), and
// dL/dx = (dL/dp − Σ dL/dp·p) / Σ x → gx. N is `n`, the mse's row count.
template <class T>
void mse_normalize_backward(const T* p, const T* t, const T* x, T gl, std::int64_t n, T* gp, T* gt, T* gx,
                            std::int64_t rows, std::int64_t len) {
    const T scale = gl / static_cast<T>(n);
    for (std::int64_t r = 0; r < rows; ++r) {
        const std::int64_t o = r * len;
        T s = 0, dot = 0;
        for (std::int64_t j = 0; j < len; ++j) {
            const T d = (p[o + j] - t[o + j]) * scale;
            if (gp) gp[o + j] = d;
            if (gt) gt[o + j] = -d;
            gx[o + j] = d;
            s += x[o + j];
            dot += d * p[o + j];
        }
        const T inv = T(1) / s;
        for (std::int64_t j = 0; j < len; ++j) gx[o + j] = (gx[o + j] - dot) * inv;
    }
}

}  // namespace chainrule::kernels
