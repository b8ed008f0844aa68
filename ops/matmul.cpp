// matmul(A[n,k], B[k,m]) -> [n,m], through cblas (OpenBLAS, wrapped in cpu/gemm.hpp). In a
// training pass over a sparse fed batch the planner runs its sparse form instead
// (ops/sparse_matmul.hpp).
#include <fmt/format.h>

#include "cpu/gemm.hpp"
#include "ops/op.hpp"

namespace chainrule {
namespace {

const bool registered = register_op({
    .name = "matmul",
    .formula = "C = A·B;  dL/dA = dL/dC·Bᵀ,  dL/dB = Aᵀ·dL/dC",
    .inputs = {"A", "B"},
    .shape =
        [](std::span<const Shape> in, const Attrs&) {
            const Shape &a = in[0], &b = in[1];
            if (a.size() != 2 || b.size() != 2)
                throw ShapeError(fmt::format("needs two 2-D inputs, got {} and {}",
                                             format_shape(a), format_shape(b)));
            if (!(a[1] == b[0]))
                throw ShapeError(fmt::format(
                    "cannot multiply {} by {}: the inner dims {} and {} differ (A[n,k]·B[k,m]; "
                    "did you mean to transpose one of them?)",
                    format_shape(a), format_shape(b), format_shape({a[1]}), format_shape({b[0]})));
            return Shape{a[0], b[1]};
        },
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const Tensor &a = *c.in[0], &b = *c.in[1];
                gemm<T>(false, false, a.dim(0), b.dim(1), a.dim(1), a.data<T>(), b.data<T>(),
                        c.out.data<T>(), T(0));
            });
        },
    .backward =
        [](const BackwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const Tensor &a = *c.in[0], &b = *c.in[1], &g = c.grad_out;
                std::int64_t n = a.dim(0), k = a.dim(1), m = b.dim(1);
                if (c.grad_in[0])  // [n,k] = G[n,m] · Bᵀ[m,k]
                    gemm<T>(false, true, n, k, m, g.data<T>(), b.data<T>(),
                            c.grad_in[0]->data<T>(), T(0));
                if (c.grad_in[1])  // [k,m] = Aᵀ[k,n] · G[n,m]
                    gemm<T>(true, false, k, m, n, a.data<T>(), g.data<T>(),
                            c.grad_in[1]->data<T>(), T(0));
            });
        },
    .samples = {{.shapes = {{3, 4}, {4, 2}}}, {.shapes = {{1, 5}, {5, 1}}}, {.shapes = {{2, 1}, {1, 3}}}},
    .summary = "matrix product of two 2-D tensors (cblas)",
    .bad_samples = {{.shapes = {{3, 4}, {3, 2}},
                     .error = "cannot multiply [3,4] by [3,2]: the inner dims [4] and [3]"},
                    {.shapes = {{3}, {3, 2}}, .error = "needs two 2-D inputs, got [3] and [3,2]"}},
    // Every row of C is a row of A times B: rows of A stay apart; a batch as B (its rows are
    // the inner dim) is summed over.
    .mixes_rows = [](const RowQuery& q) -> std::string {
        return q.batch_inputs.size() > 1 && q.batch_inputs[1] ? "has the batch's rows as its right operand, mixing them"
                                                              : "";
    },
    .fusable = Fusable::gemm,
});

}  // namespace
}  // namespace chainrule
