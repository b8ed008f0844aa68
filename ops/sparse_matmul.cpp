#include "ops/sparse_matmul.hpp"

#include <algorithm>

#include "core/simd.hpp"

namespace chainrule {
namespace {

// One row of C: each nonzero adds its value times a row of B to C's row, which stays in L1
// (400 bytes for 100 floats) while the nonzeros stream by. Each product is rounded, then
// added (no FMA), so the clones and the baseline give the same bits.
template <class T>
CHAINRULE_INLINE void sparse_row(std::int64_t begin, std::int64_t end, const std::int32_t* index, const T* values,
                                 const T* __restrict b, std::int64_t m, T* __restrict c, bool accumulate) {
    if (!accumulate) std::fill(c, c + m, T(0));
    for (std::int64_t k = begin; k < end; ++k) {
        const T v = values[k];
        const T* __restrict brow = b + std::int64_t(index[k]) * m;
        for (std::int64_t t = 0; t < m; ++t) c[t] += v * brow[t];
    }
}

CHAINRULE_SIMD_CLONES void sparse_rows_range(std::int64_t r0, std::int64_t r1, const std::int64_t* begin,
                                             const std::int64_t* end, const std::int32_t* index, const float* values,
                                             const float* b, std::int64_t m, float* c, bool accumulate) {
    for (std::int64_t r = r0; r < r1; ++r) sparse_row(begin[r], end[r], index, values, b, m, c + r * m, accumulate);
}
CHAINRULE_SIMD_CLONES void sparse_rows_range(std::int64_t r0, std::int64_t r1, const std::int64_t* begin,
                                             const std::int64_t* end, const std::int32_t* index, const double* values,
                                             const double* b, std::int64_t m, double* c, bool accumulate) {
    for (std::int64_t r = r0; r < r1; ++r) sparse_row(begin[r], end[r], index, values, b, m, c + r * m, accumulate);
}

template <class T>
void run(std::int64_t rows, const std::int64_t* begin, const std::int64_t* end, const std::int32_t* index,
         const T* values, const T* b, std::int64_t m, T* c, bool accumulate, Workers* workers) {
    auto part = [&](std::int64_t r0, std::int64_t r1) {
        sparse_rows_range(r0, r1, begin, end, index, values, b, m, c, accumulate);
    };
    if (workers && workers->threads() > 1)
        workers->run(rows, part);
    else
        part(0, rows);
}

}  // namespace

void sparse_times_dense(std::int64_t rows, const std::int64_t* begin, const std::int64_t* end,
                        const std::int32_t* index, const float* values, const float* b, std::int64_t m, float* c,
                        bool accumulate, Workers* workers) {
    run(rows, begin, end, index, values, b, m, c, accumulate, workers);
}
void sparse_times_dense(std::int64_t rows, const std::int64_t* begin, const std::int64_t* end,
                        const std::int32_t* index, const double* values, const double* b, std::int64_t m, double* c,
                        bool accumulate, Workers* workers) {
    run(rows, begin, end, index, values, b, m, c, accumulate, workers);
}

}  // namespace chainrule
