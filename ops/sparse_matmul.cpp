#include "ops/sparse_matmul.hpp"

#include <algorithm>

#include "core/simd.hpp"

namespace chainrule {
namespace {

// One row of C in blocks of columns: a block's sums stay in registers (8 AVX2 registers)
// while the row's nonzeros stream by; each product is rounded, then added (no FMA), so the
// clones and the baseline give the same bits.
template <class T>
CHAINRULE_INLINE void sparse_row(std::int64_t begin, std::int64_t end, const std::int32_t* index, const T* values,
                                 const T* b, std::int64_t m, T* c, bool accumulate) {
    constexpr std::int64_t block = 256 / sizeof(T);
    std::int64_t c0 = 0;
    for (; c0 + block <= m; c0 += block) {
        T acc[block] = {};
        for (std::int64_t k = begin; k < end; ++k) {
            const T v = values[k];
            const T* brow = b + std::int64_t(index[k]) * m + c0;
            for (std::int64_t t = 0; t < block; ++t) acc[t] += v * brow[t];
        }
        for (std::int64_t t = 0; t < block; ++t) c[c0 + t] = accumulate ? c[c0 + t] + acc[t] : acc[t];
    }
    if (c0 == m) return;
    const std::int64_t w = m - c0;
    T acc[block] = {};
    for (std::int64_t k = begin; k < end; ++k) {
        const T v = values[k];
        const T* brow = b + std::int64_t(index[k]) * m + c0;
        for (std::int64_t t = 0; t < w; ++t) acc[t] += v * brow[t];
    }
    for (std::int64_t t = 0; t < w; ++t) c[c0 + t] = accumulate ? c[c0 + t] + acc[t] : acc[t];
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
