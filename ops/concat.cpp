// concat(x0, x1, ..., {"axis"}) = torch.cat([x0, x1, ...], axis): the inputs one after another
// along one axis. Any number of inputs (at least one; a variadic op). They have one rank
// (>= 1) and the same dims on every other axis, symbols included; `axis` may be negative
// (counted from the end, as in PyTorch; default −1, the last axis). Backward hands each
// input its own part of dL/dy (overwrite).
//
// The concat axis must be concrete in every input: the length of a symbolic dim (the batch
// symbol N) is known only when fed, and the output would need a sum of symbols. So the shape
// rule refuses it; the batch is concatenated along only when it is on another axis (then
// every input carries it there). mixes_rows says so too, for a caller asking with a
// concrete batch.
#include <algorithm>
#include <fmt/format.h>

#include "ops/op.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

Shape concat_shape(std::span<const Shape> in, const Attrs& attrs) {
    const Shape& first = in[0];
    if (first.empty()) throw ShapeError("needs tensors of rank >= 1, got a scalar (input x0)");
    if (!attrs.at("axis").is_number_integer())
        throw ShapeError(fmt::format("axis must be an integer, got {}", attrs.at("axis").dump()));
    const std::int64_t axis = attrs.at("axis").get<std::int64_t>();
    const std::size_t k = resolve_axis(axis, first.size());
    Shape out = first;
    out[k] = Dim{0, {}};
    for (std::size_t i = 0; i < in.size(); ++i) {
        const Shape& x = in[i];
        bool fits = x.size() == first.size();
        for (std::size_t a = 0; fits && a < x.size(); ++a) fits = a == k || x[a] == first[a];
        if (!fits)
            throw ShapeError(fmt::format("cannot concatenate x{} {} to x0 {} along axis {}: every dim but axis {} "
                                         "must be equal",
                                         i, format_shape(x), format_shape(first), axis, axis));
        if (x[k].symbolic())
            throw ShapeError(fmt::format("cannot concatenate along axis {} of x{} {}: it is the symbolic dim {}, "
                                         "whose length is known only when fed",
                                         axis, i, format_shape(x), x[k].symbol));
        out[k].size += x[k].size;
    }
    return out;
}

// f(input, offset in it, offset in y, count) for every run of whole entries, in y's order.
template <class F>
void each_run(std::span<const Tensor* const> in, const Tensor& y, const Attrs& attrs, F&& f) {
    const std::size_t k = resolve_axis(attrs.at("axis").get<std::int64_t>(), y.rank());
    std::int64_t outer = 1, inner = 1;
    for (std::size_t a = 0; a < y.rank(); ++a)
        if (a < k) outer *= y.dim(a);
        else if (a > k) inner *= y.dim(a);
    const std::int64_t row = y.dim(k) * inner;  // one outer index's entries in y
    for (std::int64_t o = 0; o < outer; ++o) {
        std::int64_t at = o * row;
        for (std::size_t i = 0; i < in.size(); ++i) {
            const std::int64_t n = in[i]->dim(k) * inner;
            f(i, o * n, at, n);
            at += n;
        }
    }
}

const bool concat_registered = register_op({
    .name = "concat",
    .formula = "y = cat(x0, x1, …) along axis (torch.cat);  "
               "dL/dx = the part of dL/dy along axis where x sits (each input its own)",
    .inputs = {"x"},
    .attrs = {{"axis", -1}},
    .shape = concat_shape,
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                T* y = c.out.data<T>();
                each_run(c.in, c.out, c.attrs, [&](std::size_t i, std::int64_t ix, std::int64_t iy, std::int64_t n) {
                    std::copy_n(c.in[i]->data<T>() + ix, n, y + iy);
                });
            });
        },
    .backward =
        [](const BackwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const T* g = c.grad_out.data<T>();
                each_run(c.in, c.out, c.attrs, [&](std::size_t i, std::int64_t ix, std::int64_t iy, std::int64_t n) {
                    if (c.grad_in[i]) std::copy_n(g + iy, n, c.grad_in[i]->data<T>() + ix);
                });
            });
        },
    .samples = {{.shapes = {{3, 2}, {3, 4}}},
                {.shapes = {{2, 3}, {1, 3}, {4, 3}}, .attrs = {{"axis", 0}}},
                {.shapes = {{2, 1, 4}, {2, 3, 4}}, .attrs = {{"axis", 1}}},
                {.shapes = {{2, 3, 2, 5}, {2, 3, 1, 5}, {2, 3, 2, 5}, {2, 3, 3, 5}}, .attrs = {{"axis", -2}}},
                {.shapes = {{5}}},
                {.shapes = {{4}, {2}}, .attrs = {{"axis", 0}}}},
    .summary = "torch.cat: any number of inputs one after another along an axis",
    .bad_samples = {{.shapes = {{3, 4}, {2, 4}},
                     .error = "cannot concatenate x1 [2,4] to x0 [3,4] along axis -1: every dim but axis -1 "
                              "must be equal"},
                    {.shapes = {{3, 4}, {3, 4, 1}}, .attrs = {{"axis", 0}},
                     .error = "cannot concatenate x1 [3,4,1] to x0 [3,4] along axis 0"},
                    {.shapes = {{3, 4}, {3, 4}}, .attrs = {{"axis", 2}}, .error = "axis 2 is out of range"},
                    {.shapes = {{3, 4}}, .attrs = {{"axis", 1.5}}, .error = "axis must be an integer, got 1.5"},
                    {.shapes = {{}, {}}, .error = "needs tensors of rank >= 1, got a scalar (input x0)"}},
    .variadic = true,
    .mixes_rows = [](const RowQuery& q) -> std::string {
        const bool batched = std::any_of(q.batch_inputs.begin(), q.batch_inputs.end(), [](bool b) { return b; });
        if (!batched || q.ranks.empty() || q.ranks[0] == 0 || !q.attrs.at("axis").is_number_integer()) return "";
        std::int64_t axis = q.attrs.at("axis").get<std::int64_t>();
        if (axis < 0) axis += std::int64_t(q.ranks[0]);
        return axis == 0 ? "concatenates along the batch axis (axis 0): a row's place depends on where the batch "
                           "is cut"
                         : "";
    },
    // each input's gradient is its own slice of dL/dy along the axis
    .vjp =
        [](VjpBuilder& b) {
            const std::size_t axis = resolve_axis(b.attrs().at("axis").get<std::int64_t>(), b.rank(b.input(0)));
            std::vector<VjpRef> grads;
            std::int64_t start = 0;
            for (std::size_t i = 0; i < b.input_count(); ++i) {
                const Dim& d = b.shape(b.input(i))[axis];
                if (d.symbolic()) throw ShapeError("vjp of concat: needs a fixed length along the axis");
                grads.push_back(b.add_op("slice", {b.grad()},
                                         {{"axis", std::int64_t(axis)}, {"start", start}, {"end", start + d.size}}));
                start += d.size;
            }
            return grads;
        },
});

}  // namespace
}  // namespace chainrule
