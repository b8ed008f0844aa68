// The one wrapper around cblas ?gemm, shared by matmul and linear: speed is bought from
// OpenBLAS here, not written.
#pragma once

#include <cblas.h>
#include <cstdint>
#include <type_traits>

namespace chainrule {

// While chainrule's helper threads each run their own GEMMs (conv2d's chunks), or for a GEMM
// too small to share, OpenBLAS's threads stay out: two kinds of threads on the same cores
// only wait for each other.
class OneBlasThread {
public:
    explicit OneBlasThread(bool when = true) : saved_(when ? openblas_get_num_threads() : 1) {
        if (saved_ > 1) openblas_set_num_threads(1);
    }
    ~OneBlasThread() {
        if (saved_ > 1) openblas_set_num_threads(saved_);
    }
    OneBlasThread(const OneBlasThread&) = delete;
    OneBlasThread& operator=(const OneBlasThread&) = delete;

private:
    int saved_;
};

// Below this many multiply-adds a GEMM runs on one OpenBLAS thread. Measured here (SkylakeX
// kernels, 2 cores), OpenBLAS's second thread gains nothing up to some 10 M (1000×100×100 is
// slower on two), and once woken it spins for a while after the GEMM, taking a core from
// chainrule's helpers: the lecture's sparse step, whose GEMMs are all 1 M, then loses up
// to a few hundred µs waiting for a helper (docs/performance.md).
constexpr std::int64_t kSmallGemm = 4'000'000;

// C = op(A)·op(B) + beta·C, all row-major; C is [n,m], the inner dim is k, and op(X) is
// Xᵀ when its flag is set.
template <class T>
void gemm(bool ta, bool tb, std::int64_t n, std::int64_t m, std::int64_t k, const T* a, const T* b, T* c, T beta) {
    const OneBlasThread small(n * m * k < kSmallGemm);
    auto TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
    blasint lda = ta ? n : k, ldb = tb ? k : m;
    if constexpr (std::is_same_v<T, float>)
        cblas_sgemm(CblasRowMajor, TA, TB, n, m, k, 1.0f, a, lda, b, ldb, beta, c, m);
    else
        cblas_dgemm(CblasRowMajor, TA, TB, n, m, k, 1.0, a, lda, b, ldb, beta, c, m);
}

}  // namespace chainrule
