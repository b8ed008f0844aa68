// The sparse first layer (docs/performance.md, "Sparse first layer"): the sparse forms of
// matmul and linear, which the planner (graph/plan) runs instead of the ops' own in a training
// pass when the feeder lends a fed batch's nonzeros (core/sparse_rows.hpp, filled by
// data::gather); and their sparse-times-dense products: x·W from x's rows, and xᵀ·G (the
// weight gradient) from the same rows, a band of x's columns at a time. Ops written elsewhere
// (plugins) never see any of this.
#pragma once

#include <cstdint>
#include <functional>

#include "core/sparse_rows.hpp"
#include "cpu/workers.hpp"
#include "ops/op.hpp"

namespace chainrule {

// An op's sparse form: its forward and backward when input 0 is given as its nonzeros too
// (the same values as in[0]); the same results as the op's own, to rounding.
struct SparseForm {
    std::function<void(const ForwardCall&, const SparseRows& x)> forward;
    std::function<void(const BackwardCall&, const SparseRows& x)> backward;
};
// The sparse form of `op` (matmul, linear), or nullptr when it has none.
const SparseForm* sparse_form(const Op& op);

// C[r, :] = Σ values[k]·B[index[k], :] over k in [begin[r], end[r]), for r in [0, rows); B
// ([b_rows, m]) and C row-major with m columns. With `accumulate`, the sum is added to
// C[r, :] instead (as a GEMM with beta = 1). Rows are split over `workers` (may be null);
// each row is summed the same way whatever the split, so the bits do not depend on it.
// `scratch` (may be null) holds a padded copy of B when B's rows are not whole 64-byte chunks.
void sparse_times_dense(std::int64_t rows, const std::int64_t* begin, const std::int64_t* end,
                        const std::int32_t* index, const float* values, const float* b, std::int64_t b_rows,
                        std::int64_t m, float* c, bool accumulate, Workers* workers, Workspace* scratch);
void sparse_times_dense(std::int64_t rows, const std::int64_t* begin, const std::int64_t* end,
                        const std::int32_t* index, const double* values, const double* b, std::int64_t b_rows,
                        std::int64_t m, double* c, bool accumulate, Workers* workers, Workspace* scratch);

// C[rows, m] = x·B (+ C with accumulate) from x's row form.
template <class T>
void sparse_rows_times(const SparseRows& x, const T* b, std::int64_t m, T* c, bool accumulate, Workers* workers,
                       Workspace* scratch = nullptr) {
    sparse_times_dense(x.rows, x.row_begin.data(), x.row_end.data(), x.row_index.data(),
                       x.row_values<T>().data(), b, x.cols, m, c, accumulate, workers, scratch);
}

// C[cols, m] = xᵀ·G (G is [rows, m]) from x's row form and its block index, in bands of C's
// rows that fit L1, for fixed chunks of about 256 of x's rows each; the chunks are split over
// `workers` (may be null) and their parts added in chunk order, so the bits do not depend on
// the threads.
void sparse_transposed_times(const SparseRows& x, const float* g, std::int64_t m, float* c, Workers* workers,
                             Workspace* scratch = nullptr);
void sparse_transposed_times(const SparseRows& x, const double* g, std::int64_t m, double* c, Workers* workers,
                             Workspace* scratch = nullptr);

}  // namespace chainrule
