// embedding(ids, table): y[p, :] = table[ids[p], :] for every position p of ids (any shape),
// so [...] ids and a [V, C] table give [..., C] (= F.embedding).
//
// ids are whole numbers in [0, V) held in a float tensor, like cross_entropy's class labels:
// the op fact ids_input makes every place that gives them values (a default, a feed file,
// data) check them and name the place (graph/labels.hpp); forward checks again, so a bad id
// from anywhere is an error, never a read outside the table.
// Backward: dL/dtable[v, :] = Σ over positions p with ids[p] = v of dL/dy[p, :] (a token used
// twice gets both contributions; rows no id picks get 0). ids are a step function, so their
// derivative is 0 and zeros are written when asked for.
#include <cmath>
#include <cstring>
#include <fmt/format.h>

#include "core/error.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

// The row that position p of ids picks, checked: an id must be a whole number in [0, rows).
template <class T>
std::int64_t row_of(const T* ids, std::int64_t p, std::int64_t rows) {
    const T v = ids[p];
    if (!(v >= T(0) && v < T(rows) && v == std::floor(v)))
        throw RunError(fmt::format("embedding: ids entry {} is {}, but an id must be a whole number in [0, {}) "
                                   "(one per table row)",
                                   p, double(v), rows));
    return static_cast<std::int64_t>(v);
}

Shape embedding_shape(std::span<const Shape> in, const Attrs&) {
    const Shape &ids = in[0], &table = in[1];
    if (table.size() != 2)
        throw ShapeError(fmt::format("needs a table of shape [V,C] (one row per id), got {}", format_shape(table)));
    Shape out = ids;
    out.push_back(table[1]);
    return out;
}

const bool embedding_registered = register_op({
    .name = "embedding",
    .formula = "y_p = table_{ids_p} (a row) at every position p of ids;  "
               "dL/dtable_v = Σ over positions p with ids_p = v of dL/dy_p (rows);  dL/dids = 0 (ids are indices)",
    .inputs = {"ids", "table"},
    .shape = embedding_shape,
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const Tensor& table = *c.in[1];
                const std::int64_t rows = table.dim(0), width = table.dim(1), n = c.in[0]->numel();
                const T* ids = c.in[0]->data<T>();
                T* y = c.out.data<T>();
                for (std::int64_t p = 0; p < n; ++p)
                    std::memcpy(y + p * width, table.data<T>() + row_of(ids, p, rows) * width, sizeof(T) * width);
            });
        },
    .backward =
        [](const BackwardCall& c) {
            if (c.grad_in[0]) c.grad_in[0]->zero();
            if (!c.grad_in[1]) return;
            dispatch(c.out.dtype(), [&]<class T>() {
                Tensor& gtable = *c.grad_in[1];
                const std::int64_t rows = gtable.dim(0), width = gtable.dim(1), n = c.in[0]->numel();
                const T *ids = c.in[0]->data<T>(), *g = c.grad_out.data<T>();
                T* gt = gtable.data<T>();
                gtable.zero();
                for (std::int64_t p = 0; p < n; ++p) {
                    T* row = gt + row_of(ids, p, rows) * width;
                    for (std::int64_t k = 0; k < width; ++k) row[k] += g[p * width + k];
                }
            });
        },
    // Five positions over four rows: some row is picked twice, so the sums are checked.
    .samples = {{.shapes = {{5}, {4, 3}}, .domains = {Domain::class_index, Domain::real}},
                {.shapes = {{2, 3}, {4, 2}}, .domains = {Domain::class_index, Domain::real}},
                {.shapes = {{2, 2, 3}, {3, 5}}, .domains = {Domain::class_index, Domain::real}},
                {.shapes = {{}, {3, 4}}, .domains = {Domain::class_index, Domain::real}}},
    .summary = "rows of a [V,C] table picked by whole-number ids of any shape: [...] → [...,C]",
    .bad_samples = {{.shapes = {{5}, {4}}, .error = "needs a table of shape [V,C] (one row per id), got [4]"},
                    {.shapes = {{2, 3}, {2, 3, 4}},
                     .error = "needs a table of shape [V,C] (one row per id), got [2,3,4]"}},
    .ids_input = 0,
    .ids_rows_of = 1,
    // dL/dtable = the rows of dL/dy added at the rows ids pick (scatter_rows); ids get none
    .vjp = [](VjpBuilder& b) { return refs(VjpRef{}, b.add_op("scatter_rows", {b.grad(), b.input(0), b.input(1)})); },
});

}  // namespace
}  // namespace chainrule
