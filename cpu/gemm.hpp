// The one wrapper around cblas ?gemm, shared by matmul, linear and conv2d: speed is bought
// from OpenBLAS here, not written.
//
// A GEMM large enough to share is cut into a fixed number of parts along C's rows (or its
// columns, when C is wider than tall), each one OpenBLAS call on one OpenBLAS thread, and the
// parts are spread over chainrule's helper threads. The parts depend on the shape alone, so a
// product's bits do not depend on the thread count, with or without helpers; OpenBLAS's own
// threads would change them (its 2-thread sgemm of [1000,784]·[784,100] differs from its
// 1-thread one in the last bits, measured with 0.3.21's Cooperlake kernels), and on the
// 2-core machines measured they were also half as fast as two parts on two helpers
// (docs/performance.md, "GEMMs on chainrule's threads").
#pragma once

#include <cblas.h>
#include <cstdint>

#include "cpu/workers.hpp"

namespace chainrule {

// While chainrule's helper threads each run their own GEMMs (conv2d's chunks, a GEMM's parts),
// or for a GEMM too small to share, OpenBLAS's threads stay out: two kinds of threads on the
// same cores only wait for each other.
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

// Below this many multiply-adds a GEMM is one call: a part of it would cost more to hand to a
// helper than it saves (measured on 2 cores: 1000×100×100 gains nothing from a second thread).
constexpr std::int64_t kSmallGemm = 4'000'000;

// How many parts a GEMM of C[n,m] with inner dim k is cut into: a power of two up to 16,
// each part at least kSmallGemm multiply-adds and 256 rows (or columns) of C, so that packing
// the shared operand again per part stays small beside the part's own work (on one thread,
// the lecture's [1000,784]·[784,100] in 4 parts took about 9 % longer than in one call, in 2
// parts 0-7 %). 1 for a small GEMM.
std::int64_t gemm_parts(std::int64_t n, std::int64_t m, std::int64_t k);

// C = op(A)·op(B) + beta·C, all row-major; C is [n,m], the inner dim is k, and op(X) is
// Xᵀ when its flag is set. The parts (gemm_parts) run on `workers` when given, else one
// after another on the calling thread: the same bits either way.
template <class T>
void gemm(bool ta, bool tb, std::int64_t n, std::int64_t m, std::int64_t k, const T* a, const T* b, T* c, T beta,
          Workers* workers = nullptr);

extern template void gemm<float>(bool, bool, std::int64_t, std::int64_t, std::int64_t, const float*, const float*,
                                 float*, float, Workers*);
extern template void gemm<double>(bool, bool, std::int64_t, std::int64_t, std::int64_t, const double*,
                                  const double*, double*, double, Workers*);

}  // namespace chainrule
