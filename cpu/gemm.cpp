#include "cpu/gemm.hpp"

#include <algorithm>
#include <type_traits>

namespace chainrule {
namespace {

constexpr std::int64_t kMaxParts = 16;
constexpr std::int64_t kMinPartRows = 256;

// One call on whatever OpenBLAS thread count is set: C[n,m] with row stride ldc.
template <class T>
void blas(bool ta, bool tb, std::int64_t n, std::int64_t m, std::int64_t k, const T* a, std::int64_t lda, const T* b,
          std::int64_t ldb, T* c, std::int64_t ldc, T beta) {
    auto TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
    if constexpr (std::is_same_v<T, float>)
        cblas_sgemm(CblasRowMajor, TA, TB, blasint(n), blasint(m), blasint(k), 1.0f, a, blasint(lda), b,
                    blasint(ldb), beta, c, blasint(ldc));
    else
        cblas_dgemm(CblasRowMajor, TA, TB, blasint(n), blasint(m), blasint(k), 1.0, a, blasint(lda), b,
                    blasint(ldb), beta, c, blasint(ldc));
}

}  // namespace

std::int64_t gemm_parts(std::int64_t n, std::int64_t m, std::int64_t k) {
    const std::int64_t cut = std::max(n, m), macs = n * m * k;
    std::int64_t parts = 1;
    while (parts * 2 <= kMaxParts && cut / (parts * 2) >= kMinPartRows && macs / (parts * 2) >= kSmallGemm) parts *= 2;
    return parts;
}

template <class T>
void gemm(bool ta, bool tb, std::int64_t n, std::int64_t m, std::int64_t k, const T* a, const T* b, T* c, T beta,
          Workers* workers) {
    const std::int64_t lda = ta ? n : k, ldb = tb ? k : m, parts = gemm_parts(n, m, k);
    const OneBlasThread one;
    if (parts == 1) return blas(ta, tb, n, m, k, a, lda, b, ldb, c, m, beta);
    // Part p: C's rows [r0, r1) from op(A)'s same rows, or C's columns from op(B)'s same columns.
    const bool by_rows = n >= m;
    const std::int64_t cut = by_rows ? n : m;
    auto run = [&](std::int64_t p0, std::int64_t p1) {
        for (std::int64_t p = p0; p < p1; ++p) {
            const std::int64_t r0 = cut * p / parts, r1 = cut * (p + 1) / parts;
            if (by_rows)
                blas(ta, tb, r1 - r0, m, k, ta ? a + r0 : a + r0 * lda, lda, b, ldb, c + r0 * m, m, beta);
            else
                blas(ta, tb, n, r1 - r0, k, a, lda, tb ? b + r0 * ldb : b + r0, ldb, c + r0, m, beta);
        }
    };
    if (workers && workers->threads() > 1)
        workers->run(parts, run);
    else
        run(0, parts);
}

template void gemm<float>(bool, bool, std::int64_t, std::int64_t, std::int64_t, const float*, const float*, float*,
                          float, Workers*);
template void gemm<double>(bool, bool, std::int64_t, std::int64_t, std::int64_t, const double*, const double*,
                           double*, double, Workers*);

}  // namespace chainrule
