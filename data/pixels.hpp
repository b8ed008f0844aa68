// Pixel conversion for a batch of images: bytes to floats / 255, exactly rounded.
#pragma once

#include <algorithm>
#include <cstdint>

#include "core/simd.hpp"
#include "core/sparse_rows.hpp"

namespace chainrule::data {

// v / 255 without a division or a table lookup, so that the conversion vectorizes: 1/255
// split in two parts whose first product with any byte is exact, so one rounding remains.
// The static_asserts prove the result equals T(v) / T(255), correctly rounded, for every
// byte. (With FMA contraction that proof would not hold: the build targets baseline x86-64
// and the SIMD clones have no FMA.)
template <class T>
struct PixelScale;
template <>
struct PixelScale<float> {
    static constexpr float hi = 0x1.01p-8f, lo = 0x1.010102p-24f;  // hi has 9 bits: v·hi is exact
};
template <>
struct PixelScale<double> {
    static constexpr double hi = 0x1.010102p-8, lo = -0x1.fdfdfdfdfdfep-33;  // hi has 24 bits
};

template <class T>
constexpr T scale_pixel(std::uint8_t v) {
    const T x = T(v);
    return x * PixelScale<T>::hi + x * PixelScale<T>::lo;
}

template <class T>
constexpr bool pixel_scale_is_exact() {
    for (int v = 0; v < 256; ++v)
        if (scale_pixel<T>(std::uint8_t(v)) != T(v) / T(255)) return false;
    return true;
}
static_assert(pixel_scale_is_exact<float>() && pixel_scale_is_exact<double>());

// out[i, :] = pixels[rows[i], :] / 255 for i < count, rows of `width` bytes; after_row(i, px, o)
// right after row i is converted (px its bytes, o its values), while both are in cache.
template <class T, class AfterRow>
CHAINRULE_INLINE void convert_pixel_rows(const std::uint8_t* pixels, const std::int64_t* rows, std::int64_t count,
                                         std::int64_t width, T* out, AfterRow&& after_row) {
    // Rows are drawn at random from tens of MB: fetching a few rows ahead overlaps the
    // memory latency with the conversion instead of adding to it.
    constexpr std::int64_t ahead = 4;
    for (std::int64_t i = 0; i < count; ++i) {
        if (i + ahead < count) {
            const std::uint8_t* next = pixels + rows[i + ahead] * width;
            for (std::int64_t k = 0; k < width; k += 64) __builtin_prefetch(next + k);
        }
        const std::uint8_t* px = pixels + rows[i] * width;
        T* o = out + i * width;
        for (std::int64_t k = 0; k < width; ++k) o[k] = scale_pixel<T>(px[k]);
        after_row(i, px, o);
    }
}

template <class T>
CHAINRULE_INLINE void gather_pixel_rows(const std::uint8_t* pixels, const std::int64_t* rows, std::int64_t count,
                                        std::int64_t width, T* out) {
    convert_pixel_rows(pixels, rows, count, width, out, [](std::int64_t, const std::uint8_t*, const T*) {});
}

// The nonzeros of a converted row: their columns into idx and values (copied from o, so
// both forms hold the same bits) into val; returns how many. After each block of
// SparseRows::kBlock columns, base + the count so far into block_end (the row's block index).
// Branch-free: every pixel is written, and the slot advances only past nonzeros.
// (data/dataset.cpp has an AVX-512 one.)
template <class T>
CHAINRULE_INLINE std::int64_t compact_pixel_row(const std::uint8_t* px, const T* o, std::int64_t width,
                                                std::int32_t* idx, T* val, std::int64_t base,
                                                std::int64_t* block_end) {
    constexpr std::int64_t kBlock = SparseRows::kBlock;
    std::int64_t n = 0;
    for (std::int64_t k0 = 0; k0 < width; k0 += kBlock) {
        for (std::int64_t k = k0; k < std::min(width, k0 + kBlock); ++k) {
            idx[n] = std::int32_t(k);
            val[n] = o[k];
            n += px[k] != 0;
        }
        block_end[k0 / kBlock] = base + n;
    }
    return n;
}

// As gather_pixel_rows, and each row's nonzeros also into the row form of a SparseRows
// (core/sparse_rows.hpp) by compact(px, o, width, idx, val, base, block_end). The rows are
// packed one after another from slot first_slot, where index and values point: row i's
// columns and values at [begin[i], end[i]), its block index at block_end + i·blocks. Packed,
// a batch's entries take a fifth of the room of one slot per pixel and stay in cache.
template <class T, class Compact>
CHAINRULE_INLINE void gather_pixel_rows_sparse(const std::uint8_t* pixels, const std::int64_t* rows, std::int64_t count,
                                               std::int64_t width, T* out, std::int64_t first_slot,
                                               std::int64_t* begin, std::int64_t* end, std::int32_t* index,
                                               T* values, std::int64_t* block_end, Compact compact) {
    const std::int64_t blocks = (width + SparseRows::kBlock - 1) / SparseRows::kBlock;
    std::int64_t filled = 0;
    convert_pixel_rows(pixels, rows, count, width, out, [&](std::int64_t i, const std::uint8_t* px, const T* o) {
        const std::int64_t base = first_slot + filled;
        begin[i] = base;
        filled += compact(px, o, width, index + filled, values + filled, base, block_end + i * blocks);
        end[i] = first_slot + filled;
    });
}

}  // namespace chainrule::data
