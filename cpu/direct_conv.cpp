#include "cpu/direct_conv.hpp"

#include <algorithm>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CHAINRULE_DIRECT_CONV 1
#endif

namespace chainrule {

namespace {

constexpr std::int64_t kLanes = 16;   // output columns per vector
constexpr std::int64_t kBlock = 8;    // output channels per pass over an image row
constexpr std::int64_t kMaxTaps = 1024;  // kh·kw held per channel block, as broadcasts

// The zero-padded image: rows of w + 2·pad_w + kLanes floats, so that a full vector load at
// any output column stays inside the row's padding.
std::int64_t padded_stride(const ConvSizes& s) { return s.w + 2 * s.pad_w + kLanes; }
std::int64_t padded_rows(const ConvSizes& s) { return s.h + 2 * s.pad_h; }
std::int64_t weight_blocks(const ConvSizes& s) { return (s.o + kBlock - 1) / kBlock; }

}  // namespace

bool direct_conv_fits(const ConvSizes& s) {
#ifdef CHAINRULE_DIRECT_CONV
    static const bool avx512 = __builtin_cpu_supports("avx512f");
    return avx512 && s.c == 1 && s.stride_h == 1 && s.stride_w == 1 && s.dilation_h == 1 && s.dilation_w == 1 &&
           s.kh * s.kw <= kMaxTaps;
#else
    (void)s;
    return false;
#endif
}

std::size_t direct_conv_scratch(const ConvSizes& s) {
    return std::size_t(padded_rows(s) * padded_stride(s) + weight_blocks(s) * kBlock * s.kh * s.kw);
}

#ifdef CHAINRULE_DIRECT_CONV
namespace {

// One row of outputs for a block of 8 channels: y[q][ox] for ox in [0, ow), q < count.
// `taps` holds the block's weights tap-major (tap t of channel q at t·8 + q).
__attribute__((target("avx512f"))) void output_row(const ConvSizes& s, const float* image, std::int64_t stride,
                                                   const float* taps, const float* bias, float* const* out,
                                                   std::int64_t count) {
    for (std::int64_t ox = 0; ox < s.ow; ox += kLanes) {
        const std::int64_t n = std::min(kLanes, s.ow - ox);
        const __mmask16 mask = __mmask16((1u << n) - 1);
        __m512 acc[kBlock];
        for (std::int64_t q = 0; q < kBlock; ++q) acc[q] = _mm512_set1_ps(bias ? bias[q] : 0.f);
        for (std::int64_t i = 0; i < s.kh; ++i) {
            const float* row = image + i * stride + ox;
            for (std::int64_t j = 0; j < s.kw; ++j) {
                const __m512 v = _mm512_loadu_ps(row + j);
                const float* t = taps + (i * s.kw + j) * kBlock;
                for (std::int64_t q = 0; q < kBlock; ++q) acc[q] = _mm512_fmadd_ps(_mm512_set1_ps(t[q]), v, acc[q]);
            }
        }
        for (std::int64_t q = 0; q < count; ++q) _mm512_mask_storeu_ps(out[q] + ox, mask, acc[q]);
    }
}

// Copies sample `x` into the interior of the zero-bordered image (the border is zeroed
// once by the caller and never written).
void fill_image(const ConvSizes& s, const float* x, float* image, std::int64_t stride) {
    for (std::int64_t r = 0; r < s.h; ++r) std::copy(x + r * s.w, x + (r + 1) * s.w, image + (r + s.pad_h) * stride + s.pad_w);
}

}  // namespace
#endif

void direct_conv_forward(const ConvSizes& s, const float* x, const float* w, const float* b, float* y, float* scratch) {
#ifdef CHAINRULE_DIRECT_CONV
    const std::int64_t stride = padded_stride(s), taps = s.kh * s.kw, plane = s.oh * s.ow;
    float* image = scratch;
    float* blocks = scratch + padded_rows(s) * stride;
    // The weights by blocks of 8 channels, tap-major, zeros past the last channel.
    for (std::int64_t blk = 0; blk < weight_blocks(s); ++blk)
        for (std::int64_t t = 0; t < taps; ++t)
            for (std::int64_t q = 0; q < kBlock; ++q) {
                const std::int64_t o = blk * kBlock + q;
                blocks[(blk * taps + t) * kBlock + q] = o < s.o ? w[o * taps + t] : 0.f;
            }
    float bias_block[kBlock] = {};
    std::fill(image, image + padded_rows(s) * stride, 0.f);  // the border stays zero below
    for (std::int64_t n = 0; n < s.n; ++n) {
        fill_image(s, x + n * s.h * s.w, image, stride);
        for (std::int64_t blk = 0; blk < weight_blocks(s); ++blk) {
            const std::int64_t first = blk * kBlock, count = std::min(kBlock, s.o - first);
            if (b) std::copy(b + first, b + first + count, bias_block);
            for (std::int64_t oy = 0; oy < s.oh; ++oy) {
                float* out[kBlock];
                for (std::int64_t q = 0; q < count; ++q) out[q] = y + (n * s.o + first + q) * plane + oy * s.ow;
                output_row(s, image + oy * stride, stride, blocks + blk * taps * kBlock, b ? bias_block : nullptr, out,
                           count);
            }
        }
    }
#else
    (void)s, (void)x, (void)w, (void)b, (void)y, (void)scratch;
#endif
}

}  // namespace chainrule
