// numpy-style broadcasting for elementwise kernels, and sum_to_shape: the one helper
// that reduces a broadcast gradient back to an input's shape.
#pragma once

#include <array>
#include <cstdint>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <span>
#include <vector>

#include "core/shape.hpp"
#include "core/tensor.hpp"

namespace chainrule {

inline constexpr std::size_t kMaxRank = 8;

// Calls f(io, ia, ib) for every element io of a tensor of shape `out` (row-major), where
// ia and ib are the flat indices of the elements of `a` and `b` that broadcast onto it.
template <class F>
void walk_broadcast(const Dims& out, const Dims& a, const Dims& b, F&& f) {
    const std::size_t rank = out.size();
    std::int64_t total = 1;
    for (auto d : out) total *= d;
    if (same_dims(a, out) && same_dims(b, out)) {
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
        // The common steps as constants, so the compiler vectorizes the row (a bias [m] added
        // to every row of [n,m] is steps 1 and 0).
        if (ia_step == 1 && ib_step == 1)
            for (std::int64_t j = 0; j < inner; ++j) f(io + j, ia + j, ib + j);
        else if (ia_step == 1 && ib_step == 0)
            for (std::int64_t j = 0; j < inner; ++j) f(io + j, ia + j, ib);
        else if (ia_step == 0 && ib_step == 1)
            for (std::int64_t j = 0; j < inner; ++j) f(io + j, ia, ib + j);
        else
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

// The one place a broadcast gradient is reduced. Input `which` (0: a, 1: b) of a binary op
// with output shape `out` gets target[i] = Σ term(io, ia, ib) over the output elements io
// it was broadcast to (ia, ib as walk_broadcast gives them). Summed in row-major order from
// 0, like the fused add's bias column sums (ops/kernels.hpp), so both give the same numbers;
// an input of the output's shape is written directly, its -0.0 left alone.
template <class T, class Term>
void sum_to_shape(const Dims& out, const Dims& a, const Dims& b, int which, Tensor& target, Term&& term) {
    T* t = target.data<T>();
    if (same_dims(target.dims(), out)) {
        walk_broadcast(out, a, b, [&](std::int64_t io, std::int64_t ia, std::int64_t ib) { t[io] = term(io, ia, ib); });
        return;
    }
    target.zero();
    walk_broadcast(out, a, b, [&](std::int64_t io, std::int64_t ia, std::int64_t ib) {
        t[which == 0 ? ia : ib] += term(io, ia, ib);
    });
}

// target = grad summed over the dims along which target's shape was broadcast to grad's.
template <class T>
void sum_to_shape(const Tensor& grad, Tensor& target) {
    const T* g = grad.data<T>();
    sum_to_shape<T>(grad.dims(), target.dims(), target.dims(), 0, target,
                    [&](std::int64_t io, std::int64_t, std::int64_t) { return g[io]; });
}

// A tensor seen as lines along one axis: line (o, i) holds the `len` elements
// base + j*stride for j < len. Softmax and its relatives work line by line along any axis
// without copying the data into a contiguous buffer.
struct AxisLines {
    std::int64_t outer = 1, len = 1, inner = 1;
    AxisLines(const Dims& d, std::size_t axis) {
        for (std::size_t i = 0; i < d.size(); ++i) (i < axis ? outer : i == axis ? len : inner) *= d[i];
    }
    // The lines of `t` along the axis its op's `axis` attr names (negative from the end).
    static AxisLines along(const Tensor& t, const nlohmann::ordered_json& attrs) {
        return AxisLines(t.dims(), resolve_axis(attrs.at("axis").get<std::int64_t>(), t.rank()));
    }
    std::int64_t stride() const { return inner; }
    // f(base) for every line.
    template <class F>
    void for_each(F&& f) const {
        for (std::int64_t o = 0; o < outer; ++o)
            for (std::int64_t i = 0; i < inner; ++i) f(o * len * inner + i);
    }
};

// The shape rule of an op that works line by line along its `axis` attr and keeps its
// input's shape (softmax, log_softmax, normalize): rank >= 1 and the axis in range.
inline Shape same_shape_along_axis(std::span<const Shape> in, const nlohmann::ordered_json& attrs) {
    if (in[0].empty()) throw ShapeError("needs a tensor of rank >= 1, got a scalar");
    resolve_axis(attrs.at("axis").get<std::int64_t>(), in[0].size());
    return in[0];
}

// The axes a reduction (sum, mean) removes, from its `axis` attr: null means every axis,
// an integer one axis (negative counts from the end), a list of integers those axes.
// ShapeError for anything else, an axis out of range, or an axis named twice.
inline std::vector<bool> reduced_axes(const nlohmann::ordered_json& axis, std::size_t rank) {
    std::vector<bool> mask(rank, axis.is_null());
    if (axis.is_null()) return mask;
    auto one = [&](const nlohmann::ordered_json& a) {
        if (!a.is_number_integer())
            throw ShapeError(fmt::format("axis must be null (all axes), an integer or a list of integers, got {}",
                                         axis.dump()));
        std::size_t k = resolve_axis(a.get<std::int64_t>(), rank);
        if (mask[k]) throw ShapeError(fmt::format("axis {} names axis {} twice", axis.dump(), k));
        mask[k] = true;
    };
    if (axis.is_array())
        for (const auto& a : axis) one(a);
    else
        one(axis);
    return mask;
}

// Output shape of a reduction: reduced axes dropped, or kept as 1 with keepdims.
inline Shape reduced_shape(const Shape& in, const std::vector<bool>& mask, bool keepdims) {
    Shape out;
    for (std::size_t i = 0; i < in.size(); ++i)
        if (!mask[i]) out.push_back(in[i]);
        else if (keepdims) out.push_back(Dim{1, {}});
    return out;
}

// The shape rule of a reduction (sum, mean) from its `axis` and `keepdims` attrs.
inline Shape reduction_shape(std::span<const Shape> in, const nlohmann::ordered_json& attrs) {
    return reduced_shape(in[0], reduced_axes(attrs.at("axis"), in[0].size()), attrs.at("keepdims").get<bool>());
}

// `dims` with the reduced axes set to 1 (keepdims): this shape broadcasts back onto `dims`,
// so walk_broadcast pairs every input element with its output element.
inline Dims kept_dims(const Dims& dims, const std::vector<bool>& mask) {
    Dims out = dims;
    for (std::size_t i = 0; i < out.size(); ++i)
        if (mask[i]) out[i] = 1;
    return out;
}

}  // namespace chainrule
