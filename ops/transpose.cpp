// transpose(x, perm): output axis i is input axis perm[i]. The default perm [] reverses
// the axes (numpy's default), which for a 2-D tensor is the matrix transpose.
#include <algorithm>
#include <array>
#include <fmt/format.h>

#include "core/json.hpp"
#include "ops/broadcast.hpp"
#include "ops/op.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

// A permutation of at most kMaxRank axes, held in place: a training step transposes the
// heads of attention several times, and a vector here would be an allocation per call.
struct Perm {
    std::array<std::size_t, kMaxRank> axis{};
    std::size_t rank = 0;
    std::size_t operator[](std::size_t k) const { return axis[k]; }
    const std::size_t* begin() const { return axis.data(); }
    const std::size_t* end() const { return axis.data() + rank; }
};

// The permutation to apply, validated; ShapeError when `perm` is not one of 0..rank-1.
Perm perm_of(const Attrs& attrs, std::size_t rank) {
    if (rank > kMaxRank) throw ShapeError(fmt::format("supports rank up to {}, got rank {}", kMaxRank, rank));
    const auto& p = attrs.at("perm");
    Perm perm{.rank = rank};
    if (p.empty()) {
        for (std::size_t i = 0; i < rank; ++i) perm.axis[i] = rank - 1 - i;
        return perm;
    }
    std::array<bool, kMaxRank> seen{};
    bool ok = p.size() == rank;
    for (std::size_t i = 0; ok && i < rank; ++i) {
        ok = p[i].is_number_integer() && p[i].get<std::int64_t>() >= 0 &&
             p[i].get<std::int64_t>() < std::int64_t(rank) && !seen[p[i].get<std::size_t>()];
        if (ok) {
            perm.axis[i] = p[i].get<std::size_t>();
            seen[perm.axis[i]] = true;
        }
    }
    if (!ok)
        throw ShapeError(fmt::format("perm {} must list each of the input's {} axes once{}", json_brief(p), rank,
                                     rank ? fmt::format(" (0..{})", rank - 1) : std::string(" (none: use [])")));
    return perm;
}

// f(o, i, n, s) over the whole tensor, one call per row of the transposed tensor (its last
// axis): the n elements from flat index o of the transposed tensor (row-major) are those at
// i, i + s, ..., i + (n−1)·s of x. s is 1 when the permutation keeps the last axis in place
// (attention's [N,T,H,D] <-> [N,H,T,D]: whole rows copied), x's stride along the axis that
// became last otherwise ([.., T, D] -> [.., D, T]: a strided row), so the loop inside a row
// runs without the odometer.
template <class F>
void walk_transposed(const Dims& in, const Perm& perm, F&& f) {
    const std::size_t rank = in.size();
    if (rank == 0) return f(0, 0, 1, 1);
    std::array<std::int64_t, kMaxRank> in_stride{}, stride{}, dims{}, count{};
    std::int64_t total = 1;
    for (std::size_t k = rank; k-- > 0;) {
        in_stride[k] = total;
        total *= in[k];
    }
    for (std::size_t k = 0; k < rank; ++k) {
        dims[k] = in[perm[k]];
        stride[k] = in_stride[perm[k]];
    }
    const std::int64_t run = dims[rank - 1], step = stride[rank - 1];
    if (run == 0) return;
    std::int64_t i = 0;
    for (std::int64_t o = 0; o < total; o += run) {
        f(o, i, run, step);
        for (std::size_t k = rank - 1; k-- > 0;) {  // odometer over the output's other axes
            i += stride[k];
            if (++count[k] < dims[k]) break;
            i -= stride[k] * dims[k];
            count[k] = 0;
        }
    }
}

const bool transpose_registered = register_op({
    .name = "transpose",
    .formula = "y = xᵀ (axis i of y is axis perm[i] of x; default: axes reversed);  "
               "dL/dx = (dL/dy) transposed back by the inverse permutation",
    .inputs = {"x"},
    .attrs = {{"perm", Attrs::array()}},
    .shape =
        [](std::span<const Shape> in, const Attrs& attrs) {
            if (in[0].size() > kMaxRank)
                throw ShapeError(fmt::format("supports rank up to {}, got {}", kMaxRank, format_shape(in[0])));
            auto perm = perm_of(attrs, in[0].size());
            Shape out;
            for (auto p : perm) out.push_back(in[0][p]);
            return out;
        },
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const T* x = c.in[0]->data<T>();
                T* y = c.out.data<T>();
                walk_transposed(c.in[0]->dims(), perm_of(c.attrs, c.in[0]->rank()),
                                [&](std::int64_t o, std::int64_t i, std::int64_t n, std::int64_t s) {
                                    if (s == 1)
                                        for (std::int64_t k = 0; k < n; ++k) y[o + k] = x[i + k];
                                    else
                                        for (std::int64_t k = 0; k < n; ++k) y[o + k] = x[i + k * s];
                                });
            });
        },
    .backward =
        [](const BackwardCall& c) {
            if (!c.grad_in[0]) return;
            dispatch(c.out.dtype(), [&]<class T>() {
                const T* g = c.grad_out.data<T>();
                T* gx = c.grad_in[0]->data<T>();
                walk_transposed(c.in[0]->dims(), perm_of(c.attrs, c.in[0]->rank()),
                                [&](std::int64_t o, std::int64_t i, std::int64_t n, std::int64_t s) {
                                    if (s == 1)
                                        for (std::int64_t k = 0; k < n; ++k) gx[i + k] = g[o + k];
                                    else
                                        for (std::int64_t k = 0; k < n; ++k) gx[i + k * s] = g[o + k];
                                });
            });
        },
    .samples = {{.shapes = {{3, 4}}},
                {.shapes = {{1, 5}}},
                {.shapes = {{2, 3, 4}}, .attrs = {{"perm", {1, 2, 0}}}},
                {.shapes = {{2, 3, 4}}},
                {.shapes = {{2, 3, 4, 5}}, .attrs = {{"perm", {0, 2, 1, 3}}}},  // rows copied whole
                {.shapes = {{5}}}},
    .summary = "matrix transpose, or any permutation of the axes (perm)",
    .bad_samples = {{.shapes = {{3, 4}}, .attrs = {{"perm", {0}}},
                     .error = "perm [0] must list each of the input's 2 axes once"},
                    {.shapes = {{3, 4}}, .attrs = {{"perm", {0, 0}}},
                     .error = "perm [0,0] must list each of the input's 2 axes once"},
                    {.shapes = {{3, 4}}, .attrs = {{"perm", {0, 2}}},
                     .error = "perm [0,2] must list each of the input's 2 axes once"},
                    {.shapes = {{3, 4}}, .attrs = {{"perm", {1, -1}}},
                     .error = "perm [1,-1] must list each of the input's 2 axes once"}},
    // the inverse permutation carries dL/dy back
    .vjp =
        [](VjpBuilder& b) {
            const std::size_t r = b.rank(b.input(0));
            const Attrs& p = b.attrs().at("perm");
            std::vector<std::int64_t> inverse(r);
            for (std::size_t i = 0; i < r; ++i) inverse[p.empty() ? r - 1 - i : std::size_t(p[i].get<std::int64_t>() < 0 ? p[i].get<std::int64_t>() + std::int64_t(r) : p[i].get<std::int64_t>())] = std::int64_t(i);
            return refs(b.add_op("transpose", {b.grad()}, {{"perm", inverse}}));
        },
});

}  // namespace
}  // namespace chainrule
