// slice(x, {"axis", "start", "end"}) = x.narrow(axis, start, end − start): the entries
// start ≤ i < end along one axis, every other axis whole. `axis` may be negative (counted
// from the end, as in PyTorch; default −1, the last axis); `end` null (the default) means the
// axis's length. 0 ≤ start < end ≤ the axis's length, else a ShapeError naming the axis and
// the shape. Backward writes dL/dy into the slice and zeros elsewhere (overwrite).
//
// The batch axis: a symbolic dim (the batch symbol N, or any other) cannot be sliced, since
// its length, and so whether start and end fit, is known only when a batch is fed; and a
// slice of the batch would make each output row depend on where the batch was cut (a
// shard's rows 0..2 are not the batch's). So the shape rule refuses it, and mixes_rows
// declares it too, for a caller that asks about the op with a concrete batch.
#include <algorithm>
#include <fmt/format.h>

#include "ops/broadcast.hpp"
#include "ops/op.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

// The resolved axis and the range [start, end) of a slice of a tensor of shape `in`.
struct Range {
    std::size_t axis;
    std::int64_t start, end;
};

Range slice_range(const Shape& in, const Attrs& attrs) {
    if (in.empty()) throw ShapeError("needs a tensor of rank >= 1, got a scalar");
    const auto &axis = attrs.at("axis"), &start = attrs.at("start"), &end = attrs.at("end");
    if (!axis.is_number_integer() || !start.is_number_integer() || !(end.is_null() || end.is_number_integer()))
        throw ShapeError(fmt::format("axis and start must be integers and end an integer or null, got {}",
                                     attrs.dump()));
    const std::size_t k = resolve_axis(axis.get<std::int64_t>(), in.size());
    const Dim& d = in[k];
    if (d.symbolic())
        throw ShapeError(fmt::format("cannot slice axis {} of {}: it is the symbolic dim {}, whose length is "
                                     "known only when fed (a slice of the batch would mix its rows)",
                                     axis.get<std::int64_t>(), format_shape(in), d.symbol));
    const std::int64_t s = start.get<std::int64_t>(), e = end.is_null() ? d.size : end.get<std::int64_t>();
    if (s < 0 || e > d.size || s >= e)
        throw ShapeError(fmt::format("cannot take [{}, {}) of axis {} of {}: needs 0 <= start < end <= {}", s, e,
                                     axis.get<std::int64_t>(), format_shape(in), d.size));
    return {k, s, e};
}

// f(x_offset, y_offset, count) for every run of whole entries the slice keeps.
template <class F>
void each_run(const Tensor& x, const Range& r, F&& f) {
    std::int64_t outer = 1, inner = 1;
    for (std::size_t i = 0; i < x.rank(); ++i)
        if (i < r.axis) outer *= x.dim(i);
        else if (i > r.axis) inner *= x.dim(i);
    const std::int64_t len = x.dim(r.axis), width = r.end - r.start;
    for (std::int64_t o = 0; o < outer; ++o) f((o * len + r.start) * inner, o * width * inner, width * inner);
}

// The range of a slice of `x`, whose shape the shape rule has accepted: no checks, and no
// allocation in a training step.
Range concrete_range(const Tensor& x, const Attrs& attrs) {
    const std::size_t k = resolve_axis(attrs.at("axis").get<std::int64_t>(), x.rank());
    const auto& end = attrs.at("end");
    return {k, attrs.at("start").get<std::int64_t>(), end.is_null() ? x.dim(k) : end.get<std::int64_t>()};
}

const bool slice_registered = register_op({
    .name = "slice",
    .formula = "y = x[start:end] along axis (x.narrow);  dL/dx = dL/dy in the slice, 0 elsewhere",
    .inputs = {"x"},
    .attrs = {{"axis", -1}, {"start", 0}, {"end", nullptr}},
    .shape =
        [](std::span<const Shape> in, const Attrs& attrs) {
            const Range r = slice_range(in[0], attrs);
            Shape out = in[0];
            out[r.axis] = Dim{r.end - r.start, {}};
            return out;
        },
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const T* x = c.in[0]->data<T>();
                T* y = c.out.data<T>();
                each_run(*c.in[0], concrete_range(*c.in[0], c.attrs),
                         [&](std::int64_t ix, std::int64_t iy, std::int64_t n) { std::copy_n(x + ix, n, y + iy); });
            });
        },
    .backward =
        [](const BackwardCall& c) {
            if (!c.grad_in[0]) return;
            dispatch(c.out.dtype(), [&]<class T>() {
                const T* g = c.grad_out.data<T>();
                T* gx = c.grad_in[0]->data<T>();
                c.grad_in[0]->zero();
                each_run(*c.in[0], concrete_range(*c.in[0], c.attrs),
                         [&](std::int64_t ix, std::int64_t iy, std::int64_t n) { std::copy_n(g + iy, n, gx + ix); });
            });
        },
    .samples = {{.shapes = {{3, 5}}, .attrs = {{"start", 1}, {"end", 4}}},
                {.shapes = {{2, 6, 3}}, .attrs = {{"axis", 1}, {"start", 2}, {"end", 5}}},
                {.shapes = {{2, 3, 4, 5}}, .attrs = {{"axis", -2}, {"start", 1}}},
                {.shapes = {{4, 3}}, .attrs = {{"axis", 0}, {"start", 0}, {"end", 1}}},
                {.shapes = {{7}}, .attrs = {{"start", 6}, {"end", 7}}}},
    .summary = "x.narrow(axis, start, end − start): a range along one axis",
    .bad_samples = {{.shapes = {{3, 4}}, .attrs = {{"axis", 1}, {"start", 2}, {"end", 5}},
                     .error = "cannot take [2, 5) of axis 1 of [3,4]: needs 0 <= start < end <= 4"},
                    {.shapes = {{3, 4}}, .attrs = {{"start", 3}, {"end", 3}},
                     .error = "cannot take [3, 3) of axis -1 of [3,4]"},
                    {.shapes = {{3, 4}}, .attrs = {{"start", -1}},
                     .error = "cannot take [-1, 4) of axis -1 of [3,4]"},
                    {.shapes = {{3, 4}}, .attrs = {{"axis", 2}}, .error = "axis 2 is out of range"},
                    {.shapes = {{3, 4}}, .attrs = {{"end", 2.5}},
                     .error = "axis and start must be integers and end an integer or null"},
                    {.shapes = {{}}, .error = "needs a tensor of rank >= 1, got a scalar"}},
    .mixes_rows = [](const RowQuery& q) -> std::string {
        if (q.batch_inputs.empty() || !q.batch_inputs[0] || q.ranks.empty() || q.ranks[0] == 0) return "";
        std::int64_t axis = q.attrs.at("axis").is_number_integer() ? q.attrs.at("axis").get<std::int64_t>() : -1;
        if (axis < 0) axis += std::int64_t(q.ranks[0]);
        return axis == 0 ? "slices the batch axis (axis 0): a row's output depends on where the batch is cut" : "";
    },
    // dL/dx = dL/dy placed into zeros of x's shape: unslice
    .vjp =
        [](VjpBuilder& b) {
            const Attrs& a = b.attrs();
            return refs(b.add_op("unslice", {b.grad(), b.input(0)},
                                 {{"axis", a.at("axis")}, {"start", a.at("start")}, {"end", a.at("end")}}));
        },
});

// unslice(g, like, {"axis", "start", "end"}): g placed at [start, end) along axis of zeros
// shaped like `like` (which gives only its shape): slice's vector-Jacobian product, whose own
// adjoint is the slice again.
const bool unslice_registered = register_op({
    .name = "unslice",
    .formula = "y = zeros like `like` with y[start:end] = g along axis;  dL/dg = slice(dL/dy),  dL/dlike = 0",
    .inputs = {"g", "like"},
    .attrs = {{"axis", -1}, {"start", 0}, {"end", nullptr}},
    .shape =
        [](std::span<const Shape> in, const Attrs& attrs) {
            const Range r = slice_range(in[1], attrs);
            Shape sliced = in[1];
            sliced[r.axis] = Dim{r.end - r.start, {}};
            if (sliced != in[0])
                throw ShapeError(fmt::format("cannot place {} into {}: the slice is {}", format_shape(in[0]),
                                             format_shape(in[1]), format_shape(sliced)));
            return in[1];
        },
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const T* g = c.in[0]->data<T>();
                T* y = c.out.data<T>();
                c.out.zero();
                each_run(c.out, concrete_range(c.out, c.attrs),
                         [&](std::int64_t iy, std::int64_t ig, std::int64_t n) { std::copy_n(g + ig, n, y + iy); });
            });
        },
    .backward =
        [](const BackwardCall& c) {
            if (c.grad_in[1]) c.grad_in[1]->zero();
            if (!c.grad_in[0]) return;
            dispatch(c.out.dtype(), [&]<class T>() {
                const T* gy = c.grad_out.data<T>();
                T* gg = c.grad_in[0]->data<T>();
                each_run(c.out, concrete_range(c.out, c.attrs),
                         [&](std::int64_t iy, std::int64_t ig, std::int64_t n) { std::copy_n(gy + iy, n, gg + ig); });
            });
        },
    .samples = {{.shapes = {{3, 3}, {3, 5}}, .attrs = {{"start", 1}, {"end", 4}},
                 .domains = {Domain::real, Domain::no_gradient}},
                {.shapes = {{2, 3, 3}, {2, 6, 3}}, .attrs = {{"axis", 1}, {"start", 2}, {"end", 5}},
                 .domains = {Domain::real, Domain::no_gradient}}},
    .summary = "g placed into zeros at a slice (slice's gradient)",
    .bad_samples = {{.shapes = {{3, 2}, {3, 5}}, .attrs = {{"start", 1}, {"end", 4}},
                     .error = "cannot place [3,2] into [3,5]: the slice is [3,3]"}},
    // linear in g: its adjoint takes the slice back out
    .vjp =
        [](VjpBuilder& b) {
            const Attrs& a = b.attrs();
            return refs(b.add_op("slice", {b.grad()}, {{"axis", a.at("axis")}, {"start", a.at("start")}, {"end", a.at("end")}}),
                        VjpRef{});
        },
});

}  // namespace
}  // namespace chainrule
