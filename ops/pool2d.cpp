// max_pool2d(x) and avg_pool2d(x) over NCHW windows, PyTorch's attrs and sizes: kernel_size
// (required), stride (default: kernel_size), padding (default 0, at most half the kernel);
// each an integer or [h, w].
//
//     max: y = max over the window (padding is −inf); dL/dx = dL/dy at the first maximum of
//          each window (row-major order) when there are ties, as PyTorch does; 0 elsewhere.
//     avg: y = Σ window / (kh·kw), padding counted in the divisor (count_include_pad=True);
//          dL/dx = Σ over the windows holding x of dL/dy / (kh·kw).
#include <algorithm>
#include <cmath>
#include <cstdint>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <limits>
#include <vector>

#include "ops/pool2d.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {
using namespace pool2d;

// Below this many input elements a pass stays on one thread (a helper's wake-up costs more).
constexpr std::int64_t kSplitElements = 1 << 15;

// f(first plane, last plane) over all N·C planes, split over the helpers when there are
// any. Planes do not share inputs or outputs, so the split cannot change a bit.
template <class F>
void each_planes(Workers* workers, const Window2d& g, F&& f) {
    const std::int64_t planes = g.n * g.c;
    if (!workers || workers->threads() < 2 || planes * g.h * g.w < kSplitElements) return f(std::int64_t(0), planes);
    workers->run(planes, f);
}

// One output row of 2×2 windows over input rows r0 and r0 + w: y and which cell of each
// window is its maximum (0 1 / 2 3: a byte per window, not an index, to keep the pass's
// memory traffic small). Written without branches so that the compiler vectorizes it;
// built for AVX-512, AVX2 and baseline x86-64, chosen when the library loads (comparisons
// only: every build gives the same results).
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CHAINRULE_POOL_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CHAINRULE_POOL_CLONES
#endif
#define CHAINRULE_MAX_POOL_ROW(T)                                                                                  \
    CHAINRULE_POOL_CLONES void max_pool_row(const T* __restrict r0, T* __restrict y, std::uint8_t* __restrict code, \
                                            std::int64_t ow, std::int64_t w) {                                    \
        const T* __restrict r1 = r0 + w;                                                                         \
        for (std::int64_t ox = 0; ox < ow; ++ox) {                                                               \
            T top = r0[2 * ox];                                                                                  \
            std::uint8_t at = 0;                                                                                 \
            const T next[3] = {r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]};                                      \
            for (int i = 0; i < 3; ++i) {                                                                        \
                const bool take = !std::isnan(top) && (next[i] > top || std::isnan(next[i]));                    \
                top = take ? next[i] : top;                                                                      \
                at = take ? std::uint8_t(i + 1) : at;                                                            \
            }                                                                                                    \
            y[ox] = top;                                                                                         \
            code[ox] = at;                                                                                       \
        }                                                                                                        \
    }
CHAINRULE_MAX_POOL_ROW(float)
CHAINRULE_MAX_POOL_ROW(double)

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// The same for float32 with AVX-512, 16 windows at a time under a mask, so that LeNet's short
// rows (14 and 5 windows) do not fall to the compiler's scalar tail with its branches. The
// four cells of 16 windows are split from two rows of 32 floats into even and odd lanes.
__attribute__((target("avx512f"))) void max_pool_row_avx512(const float* r0, float* y, std::uint8_t* code_out,
                                                            std::int64_t ow, std::int64_t w) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    for (std::int64_t ox = 0; ox < ow; ox += 16) {
        const std::int64_t n = std::min<std::int64_t>(16, ow - ox);
        const __mmask16 out = __mmask16((1u << n) - 1);
        const __mmask16 lo = __mmask16(n >= 8 ? 0xffff : (1u << (2 * n)) - 1);
        const __mmask16 hi = __mmask16(n <= 8 ? 0 : (1u << (2 * n - 16)) - 1);
        __m512 cell[4];
        for (int r = 0; r < 2; ++r) {
            const float* row = r0 + r * w + 2 * ox;
            const __m512 a = _mm512_maskz_loadu_ps(lo, row), b = _mm512_maskz_loadu_ps(hi, row + 16);
            cell[2 * r] = _mm512_permutex2var_ps(a, even, b);
            cell[2 * r + 1] = _mm512_permutex2var_ps(a, odd, b);
        }
        __m512 top = cell[0];
        __m512i code = _mm512_setzero_si512();  // which cell: 0 1 / 2 3
        for (int i = 1; i < 4; ++i) {
            const __mmask16 take = _mm512_cmp_ps_mask(cell[i], top, _CMP_GT_OQ) |
                                   (_mm512_cmp_ps_mask(cell[i], cell[i], _CMP_UNORD_Q) &
                                    _mm512_cmp_ps_mask(top, top, _CMP_ORD_Q));
            top = _mm512_mask_mov_ps(top, take, cell[i]);
            code = _mm512_mask_mov_epi32(code, take, _mm512_set1_epi32(i));
        }
        _mm512_mask_storeu_ps(y + ox, out, top);
        _mm512_mask_cvtepi32_storeu_epi8(code_out + ox, out, code);
    }
}
#endif

}  // namespace

// pool2d.hpp's row of 2×2 windows: the kernels above, the widest this CPU runs.
void pool2d::max_pool_row_best(const float* r0, float* y, std::uint8_t* code, std::int64_t ow, std::int64_t w) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    static const bool avx512 = __builtin_cpu_supports("avx512f");
    if (avx512) return max_pool_row_avx512(r0, y, code, ow, w);
#endif
    max_pool_row(r0, y, code, ow, w);
}
void pool2d::max_pool_row_best(const double* r0, double* y, std::uint8_t* code, std::int64_t ow, std::int64_t w) {
    max_pool_row(r0, y, code, ow, w);
}

namespace {

// The planes [first, last) with 2×2 windows, each window's cell code in `codes` (one per
// output), or in `row_codes` (one row's worth, dropped) when `codes` is null.
template <class T>
void max_pool_2x2(const Window2d& g, const T* x, T* y, std::uint8_t* codes, std::uint8_t* row_codes,
                  std::int64_t first, std::int64_t last) {
    for (std::int64_t p = first; p < last; ++p)
        for (std::int64_t oy = 0; oy < g.oh; ++oy) {
            const std::int64_t row = p * g.h * g.w + 2 * oy * g.w, out = (p * g.oh + oy) * g.ow;
            max_pool_row_best(x + row, y + out, codes ? codes + out : row_codes, g.ow, g.w);
        }
}

// One row of windows of the backward: rows r0 and r0 + w of dL/dx get each window's dL/dy at
// its code's cell and 0 in its other three (columns [0, 2·ow)).
template <class T>
void max_pool_back_row(const T* gy, const std::uint8_t* codes, T* r0, std::int64_t ow, std::int64_t w) {
    T* r1 = r0 + w;
    std::fill(r0, r0 + 2 * ow, T(0));
    std::fill(r1, r1 + 2 * ow, T(0));
    for (std::int64_t ox = 0; ox < ow; ++ox) (codes[ox] >> 1 ? r1 : r0)[2 * ox + (codes[ox] & 1)] = gy[ox];
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// The same for float32 with AVX-512, 16 windows at a time: each cell's values (dL/dy where
// the code names it, else 0) interleaved back into the two rows.
__attribute__((target("avx512f"))) void max_pool_back_row_avx512(const float* gy, const std::uint8_t* codes, float* r0,
                                                                 std::int64_t ow, std::int64_t w) {
    const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i second = _mm512_add_epi32(first, _mm512_set1_epi32(8));
    for (std::int64_t ox = 0; ox < ow; ox += 16) {
        const std::int64_t n = std::min<std::int64_t>(16, ow - ox);
        const __mmask16 out = __mmask16((1u << n) - 1);
        const __mmask16 lo = __mmask16(n >= 8 ? 0xffff : (1u << (2 * n)) - 1);
        const __mmask16 hi = __mmask16(n <= 8 ? 0 : (1u << (2 * n - 16)) - 1);
        alignas(16) std::uint8_t bytes[16] = {};
        std::copy(codes + ox, codes + ox + n, bytes);
        const __m512i code = _mm512_maskz_cvtepu8_epi32(__mmask16(0xffff), _mm_load_si128(reinterpret_cast<const __m128i*>(bytes)));
        const __m512 g = _mm512_maskz_loadu_ps(out, gy + ox);
        __m512 cell[4];
        for (int i = 0; i < 4; ++i) cell[i] = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(code, _mm512_set1_epi32(i)), g);
        for (int r = 0; r < 2; ++r) {
            float* row = r0 + r * w + 2 * ox;
            _mm512_mask_storeu_ps(row, lo, _mm512_permutex2var_ps(cell[2 * r], first, cell[2 * r + 1]));
            _mm512_mask_storeu_ps(row + 16, hi, _mm512_permutex2var_ps(cell[2 * r], second, cell[2 * r + 1]));
        }
    }
}
#endif

void max_pool_back_row_best(const float* gy, const std::uint8_t* codes, float* r0, std::int64_t ow, std::int64_t w) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    static const bool avx512 = __builtin_cpu_supports("avx512f");
    if (avx512) return max_pool_back_row_avx512(gy, codes, r0, ow, w);
#endif
    max_pool_back_row(gy, codes, r0, ow, w);
}
void max_pool_back_row_best(const double* gy, const std::uint8_t* codes, double* r0, std::int64_t ow, std::int64_t w) {
    max_pool_back_row(gy, codes, r0, ow, w);
}

// dL/dx of the planes [first, last) from the forward's cell codes: each dL/dy to its
// window's maximum (windows do not overlap), 0 elsewhere, a row of windows at a time; the
// last row and column, in no window when H or W is odd, are zeroed apart.
template <class T>
void max_pool_2x2_backward(const Window2d& g, const T* gy, const std::uint8_t* codes, T* gx, std::int64_t first,
                           std::int64_t last) {
    for (std::int64_t p = first; p < last; ++p) {
        T* plane = gx + p * g.h * g.w;
        for (std::int64_t oy = 0; oy < g.oh; ++oy) {
            const std::int64_t o = (p * g.oh + oy) * g.ow;
            T* r0 = plane + 2 * oy * g.w;
            max_pool_back_row_best(gy + o, codes + o, r0, g.ow, g.w);
            if (g.w > 2 * g.ow) r0[g.w - 1] = r0[2 * g.w - 1] = T(0);
        }
        if (g.h > 2 * g.oh) std::fill(plane + (g.h - 1) * g.w, plane + g.h * g.w, T(0));
    }
}

const bool max_registered = register_op({
    .name = "max_pool2d",
    .formula = "y = max over each window;  dL/dx = dL/dy at the window's first maximum, 0 elsewhere",
    .inputs = {"x"},
    .attrs = kPoolAttrs,
    .shape = pooled,
    .forward =
        [](const ForwardCall& c) {
            Window2d g = runtime_geometry(*c.in[0], c.attrs);
            dispatch(c.out.dtype(), [&]<class T>() {
                const T* x = c.in[0]->data<T>();
                T* y = c.out.data<T>();
                // Each window's argmax (2×2 windows: which cell), for this node's backward (in a graph).
                const bool fast = is_2x2(g);
                std::int64_t* kept = c.scratch && !fast ? c.scratch->get<std::int64_t>(std::size_t(c.out.numel())).data() : nullptr;
                std::uint8_t* codes = c.scratch && fast ? c.scratch->get<std::uint8_t>(std::size_t(c.out.numel())).data() : nullptr;
                std::vector<std::uint8_t> row_codes(c.scratch ? 0 : std::size_t(g.ow));  // outside a graph only
                auto planes = [&](std::int64_t first, std::int64_t last) {
                    if (fast) return max_pool_2x2(g, x, y, codes, row_codes.data(), first, last);
                    each_window_max(g, x, first, last, [&](std::int64_t o, std::int64_t at) {
                        y[o] = at < 0 ? -std::numeric_limits<T>::infinity() : x[at];
                        if (kept) kept[o] = at;
                    });
                };
                each_planes(c.scratch ? c.workers : nullptr, g, planes);  // row_codes is one row
            });
        },
    .backward =
        [](const BackwardCall& c) {
            if (!c.grad_in[0]) return;
            Window2d g = runtime_geometry(*c.in[0], c.attrs);
            dispatch(c.out.dtype(), [&]<class T>() {
                const T* x = c.in[0]->data<T>();
                const T* gy = c.grad_out.data<T>();
                T* gx = c.grad_in[0]->data<T>();
                // The forward's argmax when in a graph; each plane's windows stay in the plane.
                const bool fast = is_2x2(g);
                const std::int64_t* kept =
                    c.scratch && !fast ? c.scratch->get<std::int64_t>(std::size_t(c.out.numel())).data() : nullptr;
                const std::uint8_t* codes =
                    c.scratch && fast ? c.scratch->get<std::uint8_t>(std::size_t(c.out.numel())).data() : nullptr;
                auto planes = [&](std::int64_t first, std::int64_t last) {
                    if (codes) return max_pool_2x2_backward(g, gy, codes, gx, first, last);
                    std::fill(gx + first * g.h * g.w, gx + last * g.h * g.w, T(0));
                    if (kept) {
                        for (std::int64_t o = first * g.oh * g.ow; o < last * g.oh * g.ow; ++o)
                            if (kept[o] >= 0) gx[kept[o]] += gy[o];
                        return;
                    }
                    each_window_max(g, x, first, last, [&](std::int64_t o, std::int64_t at) {
                        if (at >= 0) gx[at] += gy[o];
                    });
                };
                each_planes(c.workers, g, planes);
            });
        },
    .samples = kPoolSamples,
    .summary = "max over NCHW windows; attrs kernel_size, stride (= kernel_size), padding (−inf)",
    .bad_samples = kPoolBadSamples,
    // Each window's argmax, kept from forward to backward: which cell (a byte) for 2×2
    // windows, the flat index otherwise; in whole doubles, as Workspace keeps them.
    .workspace = [](std::span<const Dims> in, const Attrs& attrs, Dtype) -> std::int64_t {
        const Window2d g = geometry(in[0], attrs, window_dims);
        const std::int64_t bytes = g.n * g.c * g.oh * g.ow * (is_2x2(g) ? 1 : std::int64_t(sizeof(std::int64_t)));
        return (bytes + 7) / 8 * 8;
    },
    // dL/dx = dL/dy put at each window's first maximum (max_unpool2d); the maxima do not move
    // under a small change of x, so the rule is linear in dL/dy
    .vjp = [](VjpBuilder& b) { return refs(b.add_op("max_unpool2d", {b.grad(), b.input(0)}, b.attrs())); },
});

const bool avg_registered = register_op({
    .name = "avg_pool2d",
    .formula = "y = Σ window / (kh·kw) (padding counts);  dL/dx = Σ over windows holding x of dL/dy / (kh·kw)",
    .inputs = {"x"},
    .attrs = kPoolAttrs,
    .shape = pooled,
    .forward =
        [](const ForwardCall& c) {
            Window2d g = runtime_geometry(*c.in[0], c.attrs);
            dispatch(c.out.dtype(), [&]<class T>() {
                average_windows(g, c.in[0]->data<T>(), c.out.data<T>());
            });
        },
    .backward =
        [](const BackwardCall& c) {
            if (!c.grad_in[0]) return;
            Window2d g = runtime_geometry(*c.in[0], c.attrs);
            dispatch(c.out.dtype(), [&]<class T>() {
                spread_windows(g, c.grad_out.data<T>(), c.grad_in[0]->data<T>());
            });
        },
    .samples = kPoolSamples,
    .summary = "mean over NCHW windows, padding counted in the divisor; attrs as max_pool2d",
    .bad_samples = kPoolBadSamples,
    // dL/dx = dL/dy / (kh·kw) spread over each window (avg_unpool2d), linear in dL/dy
    .vjp = [](VjpBuilder& b) { return refs(b.add_op("avg_unpool2d", {b.grad(), b.input(0)}, b.attrs())); },
});

}  // namespace
}  // namespace chainrule
