// scatter_rows(g, ids, like): zeros shaped like the [V, C] table `like`, with row g_p added
// into row ids_p for every position p of ids: embedding's vector-Jacobian product
// (dL/dtable), whose own adjoint gathers the rows back out, an embedding. `like` gives only
// its shape; ids are checked as embedding checks them (the op fact ids_input).
#include <cmath>
#include <fmt/format.h>

#include "core/error.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

template <class T>
std::int64_t scatter_row_of(const T* ids, std::int64_t p, std::int64_t rows) {
    const T v = ids[p];
    if (!(v >= T(0) && v < T(rows) && v == std::floor(v)))
        throw RunError(fmt::format("scatter_rows: ids entry {} is {}, but an id must be a whole number in [0, {}) "
                                   "(one per row)",
                                   p, double(v), rows));
    return static_cast<std::int64_t>(v);
}

Shape scatter_rows_shape(std::span<const Shape> in, const Attrs&) {
    const Shape &g = in[0], &ids = in[1], &like = in[2];
    if (like.size() != 2)
        throw ShapeError(fmt::format("needs like of shape [V,C] (a table), got {}", format_shape(like)));
    Shape rows = ids;
    rows.push_back(like[1]);
    if (g != rows)
        throw ShapeError(fmt::format("needs g of shape {} (ids {} and a row of like {}), got {}", format_shape(rows),
                                     format_shape(ids), format_shape(like), format_shape(g)));
    return like;
}

const bool scatter_rows_registered = register_op({
    .name = "scatter_rows",
    .formula = "y = zeros like `like`, y_v = Σ over positions p with ids_p = v of g_p (rows);  "
               "dL/dg = dL/dy rows picked by ids (an embedding);  dL/dids = 0;  dL/dlike = 0",
    .inputs = {"g", "ids", "like"},
    .shape = scatter_rows_shape,
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const std::int64_t rows = c.out.dim(0), width = c.out.dim(1), n = c.in[1]->numel();
                const T *g = c.in[0]->data<T>(), *ids = c.in[1]->data<T>();
                T* y = c.out.data<T>();
                c.out.zero();
                for (std::int64_t p = 0; p < n; ++p) {
                    T* row = y + scatter_row_of(ids, p, rows) * width;
                    for (std::int64_t k = 0; k < width; ++k) row[k] += g[p * width + k];
                }
            });
        },
    .backward =
        [](const BackwardCall& c) {
            if (c.grad_in[1]) c.grad_in[1]->zero();
            if (c.grad_in[2]) c.grad_in[2]->zero();
            if (!c.grad_in[0]) return;
            dispatch(c.out.dtype(), [&]<class T>() {
                const std::int64_t rows = c.out.dim(0), width = c.out.dim(1), n = c.in[1]->numel();
                const T *gy = c.grad_out.data<T>(), *ids = c.in[1]->data<T>();
                T* gg = c.grad_in[0]->data<T>();
                for (std::int64_t p = 0; p < n; ++p)
                    std::copy_n(gy + scatter_row_of(ids, p, rows) * width, width, gg + p * width);
            });
        },
    // Five positions over four rows: some row takes two.
    .samples = {{.shapes = {{5, 3}, {5}, {4, 3}}, .domains = {Domain::real, Domain::class_index, Domain::no_gradient}},
                {.shapes = {{2, 3, 2}, {2, 3}, {4, 2}},
                 .domains = {Domain::real, Domain::class_index, Domain::no_gradient}},
                {.shapes = {{4}, {}, {3, 4}}, .domains = {Domain::real, Domain::class_index, Domain::no_gradient}}},
    .summary = "rows g_p added into zeros shaped like a [V,C] table at rows ids_p (embedding's gradient)",
    .bad_samples = {{.shapes = {{5, 3}, {5}, {4}}, .error = "needs like of shape [V,C] (a table), got [4]"},
                    {.shapes = {{5, 2}, {5}, {4, 3}},
                     .error = "needs g of shape [5,3] (ids [5] and a row of like [4,3]), got [5,2]"}},
    .ids_input = 1,
    .ids_rows_of = 2,
    // linear in g: its adjoint picks the rows back out, embedding(dL/dy, ids)
    .vjp = [](VjpBuilder& b) { return refs(b.add_op("embedding", {b.input(1), b.grad()}), VjpRef{}, VjpRef{}); },
});

}  // namespace
}  // namespace chainrule
