#include "ops/sparse_matmul.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "core/simd.hpp"
#include "cpu/gemm.hpp"

namespace chainrule {
namespace {

// 64 bytes of T as one GCC vector: a zmm register with AVX-512, two ymm with AVX2, four xmm
// in the baseline; the compiler splits it into what the CPU has.
template <class T>
struct Chunk;
template <>
struct Chunk<float> {
    typedef float type __attribute__((vector_size(64)));
};
template <>
struct Chunk<double> {
    typedef double type __attribute__((vector_size(64)));
};
template <class T>
constexpr std::int64_t kChunkLanes = 64 / std::int64_t(sizeof(T));

// Columns [first, first + R·lanes) of one row of C, held in R chunks of registers while the
// row's nonzeros stream by: each nonzero costs R loads of B's row and R multiply-adds, and C is
// written once. B's rows are `stride` values apart, a whole number of chunks and 64-byte
// aligned (copy_padded), so no load splits a cache line and no block needs a narrower tail;
// columns from m on are padding and are not stored. The nonzeros are summed in two
// interleaved sets (even and odd) so that one multiply-add's latency is not paid per nonzero.
// Every column is summed this way whatever block computes it: blocks and threads do not
// change the bits.
template <class T, int R>
CHAINRULE_INLINE void block(std::int64_t begin, std::int64_t end, const std::int32_t* index, const T* values,
                            const T* b, std::int64_t stride, std::int64_t first, std::int64_t m, T* c,
                            bool accumulate) {
    using V = typename Chunk<T>::type;
    constexpr std::int64_t L = kChunkLanes<T>;
    V even[R] = {}, odd[R] = {};
    std::int64_t k = begin;
    for (; k + 1 < end; k += 2) {
        const V v0 = values[k] - V{}, v1 = values[k + 1] - V{};  // broadcasts: x − (+0) is x, −0 included
        const T* row0 = b + std::int64_t(index[k]) * stride + first;
        const T* row1 = b + std::int64_t(index[k + 1]) * stride + first;
        for (int r = 0; r < R; ++r) {
            V x0, x1;
            std::memcpy(&x0, row0 + r * L, sizeof x0);
            std::memcpy(&x1, row1 + r * L, sizeof x1);
            even[r] += v0 * x0;
            odd[r] += v1 * x1;
        }
    }
    if (k < end) {
        const V v = values[k] - V{};
        const T* row = b + std::int64_t(index[k]) * stride + first;
        for (int r = 0; r < R; ++r) {
            V x;
            std::memcpy(&x, row + r * L, sizeof x);
            even[r] += v * x;
        }
    }
    T* out = c + first;
    const std::int64_t whole = std::min<std::int64_t>(R, (m - first) / L);
    for (int r = 0; r < R; ++r) {
        V sum = even[r] + odd[r];
        if (r < whole) {
            if (accumulate) {
                V old;
                std::memcpy(&old, out + r * L, sizeof old);
                sum = old + sum;
            }
            std::memcpy(out + r * L, &sum, sizeof sum);
        } else {
            // The one chunk that straddles column m: only its columns below m are C's.
            for (std::int64_t t = 0; t < m - first - r * L; ++t)
                out[r * L + t] = accumulate ? out[r * L + t] + sum[t] : sum[t];
            break;
        }
    }
}

// Rows [r0, r1) of C, each in blocks of at most kMaxChunks chunks: as many as, doubled for
// the two sets, fill half the CPU's vector registers.
template <class T, int kMaxChunks>
CHAINRULE_INLINE void rows_range(std::int64_t r0, std::int64_t r1, const std::int64_t* begin, const std::int64_t* end,
                                 const std::int32_t* index, const T* values, const T* b, std::int64_t stride,
                                 std::int64_t m, T* c, bool accumulate) {
    constexpr std::int64_t L = kChunkLanes<T>;
    for (std::int64_t r = r0; r < r1; ++r) {
        T* row = c + r * m;
        for (std::int64_t j = 0; j < m;) {
            const std::int64_t chunks = std::min<std::int64_t>(kMaxChunks, (stride - j) / L);
            // A plain switch, not a lambda: a lambda's body would not get the caller's target.
#define CHAINRULE_BLOCK(R) block<T, R>(begin[r], end[r], index, values, b, stride, j, m, row, accumulate)
            switch (chunks) {
                case 1: CHAINRULE_BLOCK(1); break;
                case 2: if constexpr (kMaxChunks >= 2) CHAINRULE_BLOCK(2); break;
                case 3: if constexpr (kMaxChunks >= 3) CHAINRULE_BLOCK(3); break;
                case 4: if constexpr (kMaxChunks >= 4) CHAINRULE_BLOCK(4); break;
                case 5: if constexpr (kMaxChunks >= 5) CHAINRULE_BLOCK(5); break;
                case 6: if constexpr (kMaxChunks >= 6) CHAINRULE_BLOCK(6); break;
                case 7: if constexpr (kMaxChunks >= 7) CHAINRULE_BLOCK(7); break;
                default: if constexpr (kMaxChunks >= 8) CHAINRULE_BLOCK(8); break;
            }
#undef CHAINRULE_BLOCK
            j += chunks * L;
        }
    }
}

// C = xᵀ·G for a band of x's columns: the band's rows of C in `band` (rows `stride` apart,
// the size of L1 or less), zeroed, then every row i of x with entries in the band adds
// x[i, j]·G[i, :] to band row j. G's row is loaded once per row of x, and the band's rows
// are read and written in L1: no transposed copy of x is needed, and each entry costs R
// loads, multiply-adds and stores that stay in L1. Each element of C sums its terms in
// increasing i, whatever the bands and threads.
struct Band {
    std::int64_t b0, b1;  // x's column blocks [b0, b1): columns [b0·kBlock, min(b1·kBlock, cols))
    std::int64_t first, width;  // the same as a column and a count
    std::int64_t i0, i1;  // x's rows [i0, i1)
};

template <class T, int R>
CHAINRULE_INLINE void band_chunks(const SparseRows& x, const T* values, const T* g, std::int64_t stride,
                                  const Band& band, std::int64_t chunk, T* out) {
    using V = typename Chunk<T>::type;
    constexpr std::int64_t L = kChunkLanes<T>;
    const std::int64_t* ends = x.block_end.data();
    const std::int32_t* index = x.row_index.data();
    for (std::int64_t i = band.i0; i < band.i1; ++i) {
        std::int64_t k = x.block_begin(i, band.b0);
        const std::int64_t end = ends[i * x.blocks + band.b1 - 1];
        if (k == end) continue;
        V gi[R];
        for (int r = 0; r < R; ++r) std::memcpy(&gi[r], g + i * stride + chunk + r * L, sizeof gi[r]);
        for (; k < end; ++k) {
            const V v = values[k] - V{};
            T* row = out + (std::int64_t(index[k]) - band.first) * stride + chunk;
            for (int r = 0; r < R; ++r) {
                V sum;
                std::memcpy(&sum, row + r * L, sizeof sum);
                sum += v * gi[r];
                std::memcpy(row + r * L, &sum, sizeof sum);
            }
        }
    }
}

template <class T, int kMaxChunks>
CHAINRULE_INLINE void band_range(const SparseRows& x, const T* values, const T* g, std::int64_t stride,
                                 const Band& band, T* out) {
    constexpr std::int64_t L = kChunkLanes<T>;
    std::fill(out, out + band.width * stride, T(0));
    for (std::int64_t j = 0; j < stride;) {
        const std::int64_t chunks = std::min<std::int64_t>(kMaxChunks, (stride - j) / L);
#define CHAINRULE_BAND(R) band_chunks<T, R>(x, values, g, stride, band, j, out)
        switch (chunks) {
            case 1: CHAINRULE_BAND(1); break;
            case 2: if constexpr (kMaxChunks >= 2) CHAINRULE_BAND(2); break;
            case 3: if constexpr (kMaxChunks >= 3) CHAINRULE_BAND(3); break;
            case 4: if constexpr (kMaxChunks >= 4) CHAINRULE_BAND(4); break;
            case 5: if constexpr (kMaxChunks >= 5) CHAINRULE_BAND(5); break;
            case 6: if constexpr (kMaxChunks >= 6) CHAINRULE_BAND(6); break;
            case 7: if constexpr (kMaxChunks >= 7) CHAINRULE_BAND(7); break;
            default: if constexpr (kMaxChunks >= 8) CHAINRULE_BAND(8); break;
        }
#undef CHAINRULE_BAND
        j += chunks * L;
    }
}

// One copy per instruction set, chosen at run time. Unlike the elementwise kernels
// (core/simd.hpp), these contract multiply-adds into FMAs where the CPU has them, as the BLAS
// they stand in for does: the bits then depend on the instruction set, like a GEMM's.
#define CHAINRULE_SPARSE_VARIANT(name, target, chunks)                                                              \
    target void name(std::int64_t r0, std::int64_t r1, const std::int64_t* begin, const std::int64_t* end,          \
                     const std::int32_t* index, const float* values, const float* b, std::int64_t stride,          \
                     std::int64_t m, float* c, bool accumulate) {                                                    \
        rows_range<float, chunks>(r0, r1, begin, end, index, values, b, stride, m, c, accumulate);                          \
    }                                                                                                                \
    target void name(std::int64_t r0, std::int64_t r1, const std::int64_t* begin, const std::int64_t* end,          \
                     const std::int32_t* index, const double* values, const double* b, std::int64_t stride,        \
                     std::int64_t m, double* c, bool accumulate) {                                                   \
        rows_range<double, chunks>(r0, r1, begin, end, index, values, b, stride, m, c, accumulate);                         \
    }                                                                                                                \
    target void name(const SparseRows& x, const float* values, const float* g, std::int64_t stride, const Band& band, \
                     float* out) {                                                                                   \
        band_range<float, chunks>(x, values, g, stride, band, out);                                                  \
    }                                                                                                                \
    target void name(const SparseRows& x, const double* values, const double* g, std::int64_t stride,               \
                     const Band& band, double* out) {                                                                \
        band_range<double, chunks>(x, values, g, stride, band, out);                                                 \
    }

CHAINRULE_SPARSE_VARIANT(rows_baseline, , 1)
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
CHAINRULE_SPARSE_VARIANT(rows_avx2, __attribute__((target("avx2,fma"))), 2)
CHAINRULE_SPARSE_VARIANT(rows_avx512, __attribute__((target("avx512f,avx512vl,avx2,fma"))), 8)
#endif
#undef CHAINRULE_SPARSE_VARIANT

enum class Isa { baseline, avx2, avx512 };

Isa best_isa() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (__builtin_cpu_supports("avx512f")) return Isa::avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
#endif
    return Isa::baseline;
}

// The variant for this CPU: a row kernel or a band kernel, by the arguments.
template <class... Args>
void on_best(Args&&... args) {
    static const Isa isa = best_isa();
    switch (isa) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
        case Isa::avx512: return rows_avx512(args...);
        case Isa::avx2: return rows_avx2(args...);
#endif
        default: return rows_baseline(args...);
    }
}

template <class T>
std::int64_t padded_width(std::int64_t m) {
    return (m + kChunkLanes<T> - 1) / kChunkLanes<T> * kChunkLanes<T>;
}

// n values of 64-byte aligned room in `scratch` (the node's workspace, so no allocation after
// the first step) or, outside a graph, in `local`.
template <class T>
T* aligned_room(std::size_t n, Workspace* scratch, std::vector<T>& local) {
    n += std::size_t(kChunkLanes<T>);
    T* room = scratch ? scratch->get<T>(n).data() : (local.resize(n), local.data());
    while (reinterpret_cast<std::uintptr_t>(room) % 64 != 0) ++room;
    return room;
}

bool is_padded(const void* b, std::int64_t m, std::int64_t stride) {
    return stride == m && reinterpret_cast<std::uintptr_t>(b) % 64 == 0;
}

// B as the kernels read it, when it is not already (is_padded): its rows copied a whole
// number of chunks apart into 64-byte aligned `room`, zeros in the padding.
template <class T>
void copy_padded(const T* b, std::int64_t b_rows, std::int64_t m, std::int64_t stride, T* room) {
    for (std::int64_t i = 0; i < b_rows; ++i) {
        std::copy(b + i * m, b + (i + 1) * m, room + i * stride);
        std::fill(room + i * stride + m, room + (i + 1) * stride, T(0));
    }
}

template <class T>
void run(std::int64_t rows, const std::int64_t* begin, const std::int64_t* end, const std::int32_t* index,
         const T* values, const T* b, std::int64_t b_rows, std::int64_t m, T* c, bool accumulate, Workers* workers,
         Workspace* scratch) {
    const std::int64_t stride = padded_width<T>(m);
    std::vector<T> local;
    T* room = is_padded(b, m, stride) ? nullptr : aligned_room<T>(std::size_t(b_rows * stride), scratch, local);
    const T* padded = room ? room : b;
    // B's padded copy (a new W each step: the update changed it), split over the threads too.
    auto pad = [&](std::int64_t r0, std::int64_t r1) { copy_padded(b + r0 * m, r1 - r0, m, stride, room + r0 * stride); };
    auto part = [&](std::int64_t r0, std::int64_t r1) {
        on_best(r0, r1, begin, end, index, values, padded, stride, m, c, accumulate);
    };
    if (workers && workers->threads() > 1) {
        if (room) workers->run(b_rows, pad);
        workers->run(rows, part);
    } else {
        if (room) pad(0, b_rows);
        part(0, rows);
    }
}

// A band's rows of C fit this: with the band's G rows and the entries streaming by, it stays
// in L1 (48 KiB on the machines measured, docs/performance.md).
constexpr std::int64_t kBandBytes = 32 * 1024;

// x's rows go in chunks of about this many, each chunk's part of C summed on its own and the
// parts then added in chunk order. The chunks depend on x's rows alone, so the bits do not
// depend on the threads; a thread's chunks are the rows it converted (data::gather splits
// the batch the same way), so x's entries and δ's rows are read from its own cache.
constexpr std::int64_t kChunkRows = 256;

template <class T>
void run_transposed(const SparseRows& x, const T* g, std::int64_t m, T* c, Workers* workers, Workspace* scratch) {
    constexpr std::int64_t kBlock = SparseRows::kBlock;
    const std::int64_t stride = padded_width<T>(m);
    const std::int64_t band_blocks =
        std::max<std::int64_t>(1, kBandBytes / (stride * std::int64_t(sizeof(T))) / kBlock);
    const std::int64_t chunks = std::max<std::int64_t>(1, (x.rows + kChunkRows / 2) / kChunkRows);
    const std::int64_t band_values = band_blocks * kBlock * stride, part_values = x.cols * m;
    std::vector<T> local;
    const bool copy_g = !is_padded(g, m, stride);
    // δ's padded copy, a band for each chunk, and C's part for each chunk after the first.
    T* room = aligned_room<T>(
        std::size_t((copy_g ? x.rows * stride : 0) + chunks * band_values + (chunks - 1) * part_values), scratch,
        local);
    T* band_rooms = room + (copy_g ? x.rows * stride : 0);
    T* parts = band_rooms + chunks * band_values;
    const T* values = x.row_values<T>().data();
    auto chunk_part = [&](std::int64_t c0, std::int64_t c1) {
        for (std::int64_t chunk = c0; chunk < c1; ++chunk) {
            const std::int64_t i0 = x.rows * chunk / chunks, i1 = x.rows * (chunk + 1) / chunks;
            if (copy_g) copy_padded(g + i0 * m, i1 - i0, m, stride, room + i0 * stride);  // this chunk's rows of δ
            const T* padded = copy_g ? room : g;
            T* out = band_rooms + chunk * band_values;
            T* part = chunk == 0 ? c : parts + (chunk - 1) * part_values;
            for (std::int64_t b0 = 0; b0 < x.blocks; b0 += band_blocks) {
                Band b{b0, std::min(x.blocks, b0 + band_blocks), b0 * kBlock, 0, i0, i1};
                b.width = std::min(x.cols, b.b1 * kBlock) - b.first;
                on_best(x, values, padded, stride, b, out);
                for (std::int64_t j = 0; j < b.width; ++j)
                    std::copy(out + j * stride, out + j * stride + m, part + (b.first + j) * m);
            }
        }
    };
    // C's rows [j0, j1) += the later chunks' parts, in chunk order.
    auto add_parts = [&](std::int64_t j0, std::int64_t j1) {
        for (std::int64_t chunk = 1; chunk < chunks; ++chunk) {
            const T* part = parts + (chunk - 1) * part_values;
            for (std::int64_t e = j0 * m; e < j1 * m; ++e) c[e] += part[e];
        }
    };
    if (workers && workers->threads() > 1) {
        workers->run(chunks, chunk_part);
        if (chunks > 1) workers->run(x.cols, add_parts);
    } else {
        chunk_part(0, chunks);
        add_parts(0, x.cols);
    }
}

}  // namespace

void sparse_times_dense(std::int64_t rows, const std::int64_t* begin, const std::int64_t* end,
                        const std::int32_t* index, const float* values, const float* b, std::int64_t b_rows,
                        std::int64_t m, float* c, bool accumulate, Workers* workers, Workspace* scratch) {
    run(rows, begin, end, index, values, b, b_rows, m, c, accumulate, workers, scratch);
}
void sparse_times_dense(std::int64_t rows, const std::int64_t* begin, const std::int64_t* end,
                        const std::int32_t* index, const double* values, const double* b, std::int64_t b_rows,
                        std::int64_t m, double* c, bool accumulate, Workers* workers, Workspace* scratch) {
    run(rows, begin, end, index, values, b, b_rows, m, c, accumulate, workers, scratch);
}

void sparse_transposed_times(const SparseRows& x, const float* g, std::int64_t m, float* c, Workers* workers,
                             Workspace* scratch) {
    run_transposed(x, g, m, c, workers, scratch);
}
void sparse_transposed_times(const SparseRows& x, const double* g, std::int64_t m, double* c, Workers* workers,
                             Workspace* scratch) {
    run_transposed(x, g, m, c, workers, scratch);
}

namespace {

// The dense op's backward for every input but W (slot 1), whose gradient xᵀ·G comes from x's
// nonzeros: the dense op's own code, so that the other gradients are its bits.
void backward_over_nonzeros(const Op& dense, const BackwardCall& c, const SparseRows& x) {
    Tensor* const gw = c.grad_in[1];
    std::array<Tensor*, 3> others{};  // matmul's two inputs, linear's three: no allocation per step
    std::copy(c.grad_in.begin(), c.grad_in.end(), others.begin());
    others[1] = nullptr;
    dense.backward(BackwardCall{c.in, c.out, c.grad_out, std::span<Tensor* const>(others.data(), c.grad_in.size()),
                                c.attrs, c.scratch, c.noise, c.workers});
    if (!gw) return;
    dispatch(c.out.dtype(), [&]<class T>() {
        sparse_transposed_times(x, c.grad_out.data<T>(), c.in[1]->dim(1), gw->data<T>(), c.workers, c.scratch);
    });
}

// C = x·W: the rows of C from x's nonzeros alone. A batched W ([G,k,m], torch.matmul's
// broadcast of x) has no sparse form: the dense op runs.
const SparseForm kMatmul{
    .forward =
        [](const ForwardCall& c, const SparseRows& x) {
            if (c.in[1]->rank() != 2) return find_op("matmul")->forward(c);
            dispatch(c.out.dtype(), [&]<class T>() {
                sparse_rows_times<T>(x, c.in[1]->data<T>(), c.in[1]->dim(1), c.out.data<T>(), false, c.workers,
                                     c.scratch);
            });
        },
    .backward =
        [](const BackwardCall& c, const SparseRows& x) {
            if (c.in[1]->rank() != 2) return find_op("matmul")->backward(c);
            backward_over_nonzeros(*find_op("matmul"), c, x);
        },
};

// y = x·W + b: the bias rows first, then x's nonzeros times W added onto them.
const SparseForm kLinear{
    .forward =
        [](const ForwardCall& c, const SparseRows& x) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const std::int64_t m = c.in[1]->dim(1);
                const T* b = c.in[2]->data<T>();
                T* y = c.out.data<T>();
                for (std::int64_t r = 0; r < x.rows; ++r) std::copy(b, b + m, y + r * m);
                sparse_rows_times<T>(x, c.in[1]->data<T>(), m, y, true, c.workers, c.scratch);
            });
        },
    .backward = [](const BackwardCall& c, const SparseRows& x) { backward_over_nonzeros(*find_op("linear"), c, x); },
};

}  // namespace

const SparseForm* sparse_form(const Op& op) {
    if (op.name == "matmul") return &kMatmul;
    if (op.name == "linear") return &kLinear;
    return nullptr;
}

}  // namespace chainrule
