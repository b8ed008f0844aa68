// causal_mask(x): entries above the diagonal of the last two axes become −inf, the rest pass
// through (= x.masked_fill(torch.triu(torch.ones(T, T), 1).bool(), float('-inf'))), so that a
// softmax over the last axis gives position i no weight on positions after i.
//
// y[..., i, j] = x[..., i, j] for j <= i, −inf for j > i;  dL/dx = dL/dy where j <= i and 0
// where j > i (a masked entry is a constant). Backward writes 0 there whatever dL/dy holds
// (it may be NaN when a later op met the −inf).
#include <fmt/format.h>
#include <limits>

#include "ops/op.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

// f(i, above) for every element: `above` when its column is past its row in the last two axes.
template <class F>
void each_position(const Tensor& t, F&& f) {
    const std::int64_t side = t.dim(t.rank() - 1), blocks = t.numel() / (side * side);
    for (std::int64_t b = 0; b < blocks; ++b)
        for (std::int64_t r = 0; r < side; ++r)
            for (std::int64_t k = 0; k < side; ++k) f((b * side + r) * side + k, k > r);
}

const bool causal_mask_registered = register_op({
    .name = "causal_mask",
    .formula = "y[…, i, j] = x[…, i, j] for j ≤ i, −inf for j > i;  dL/dx = dL/dy for j ≤ i, 0 for j > i",
    .inputs = {"x"},
    .shape =
        [](std::span<const Shape> in, const Attrs&) {
            const Shape& x = in[0];
            if (x.size() < 2)
                throw ShapeError(fmt::format("needs a tensor of rank >= 2 whose last two axes are square, got {}",
                                             format_shape(x)));
            if (x[x.size() - 1] != x[x.size() - 2])
                throw ShapeError(fmt::format("needs the last two axes square ([..., T, T]), got {}", format_shape(x)));
            return x;
        },
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const T* x = c.in[0]->data<T>();
                T* y = c.out.data<T>();
                each_position(c.out, [&](std::int64_t i, bool above) {
                    y[i] = above ? -std::numeric_limits<T>::infinity() : x[i];
                });
            });
        },
    .backward =
        [](const BackwardCall& c) {
            if (!c.grad_in[0]) return;
            dispatch(c.out.dtype(), [&]<class T>() {
                const T* g = c.grad_out.data<T>();
                T* gx = c.grad_in[0]->data<T>();
                each_position(c.out, [&](std::int64_t i, bool above) { gx[i] = above ? T(0) : g[i]; });
            });
        },
    .samples = {{.shapes = {{4, 4}}}, {.shapes = {{2, 3, 3}}}, {.shapes = {{2, 2, 3, 3}}}, {.shapes = {{1, 1}}}},
    .summary = "−inf above the diagonal of the last two axes (attention's causal mask)",
    .bad_samples = {{.shapes = {{4}}, .error = "needs a tensor of rank >= 2 whose last two axes are square, got [4]"},
                    {.shapes = {{2, 3, 4}}, .error = "needs the last two axes square ([..., T, T]), got [2,3,4]"}},
    .elementwise = true,
    // Rank 2 with the batch first: the mask depends on a row's place in the whole batch.
    .mixes_rows = [](const RowQuery& q) -> std::string {
        return !q.batch_inputs.empty() && q.batch_inputs[0] && q.ranks[0] == 2
                   ? "masks by position along the batch axis (its rows are the mask's rows)"
                   : "";
    },
    // dL/dx = dL/dy below and on the diagonal, 0 above: lower_triangle(g)
    .vjp =
        [](VjpBuilder& b) {
            return refs(b.add_op("lower_triangle", {b.grad()}));
        },
});

// lower_triangle(x): x below and on the diagonal of the last two axes, 0 above (torch.tril):
// causal_mask's vector-Jacobian product, and its own adjoint.
const bool lower_triangle_registered = register_op({
    .name = "lower_triangle",
    .formula = "y[…, i, j] = x[…, i, j] for j ≤ i, 0 for j > i;  dL/dx = lower_triangle(dL/dy)",
    .inputs = {"x"},
    .shape = [](std::span<const Shape> in, const Attrs& attrs) { return find_op("causal_mask")->shape(in, attrs); },
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const T* x = c.in[0]->data<T>();
                T* y = c.out.data<T>();
                each_position(c.out, [&](std::int64_t i, bool above) { y[i] = above ? T(0) : x[i]; });
            });
        },
    .backward = [](const BackwardCall& c) { find_op("causal_mask")->backward(c); },
    .samples = {{.shapes = {{4, 4}}}, {.shapes = {{2, 3, 3}}}},
    .summary = "0 above the diagonal of the last two axes (torch.tril); causal_mask's gradient",
    .bad_samples = {{.shapes = {{4}}, .error = "needs a tensor of rank >= 2 whose last two axes are square, got [4]"}},
    .vjp = [](VjpBuilder& b) { return refs(b.add_op("lower_triangle", {b.grad()})); },  // linear, self-adjoint
});

}  // namespace
}  // namespace chainrule
