#include "data/dataset.hpp"

#include <algorithm>
#include <array>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <fmt/format.h>

#include "core/error.hpp"
#include "data/kind.hpp"
#include "data/pixels.hpp"

namespace chainrule::data {
namespace {

bool is_label_form(StreamForm f) { return f == StreamForm::class_ids || f == StreamForm::one_hot; }

// The stream of that name the data set offers, or null.
const StreamDef* find_stream(const Dataset& ds, std::string_view name) {
    const DataKind* kind = find_data_kind(ds.kind);
    if (!kind) return nullptr;
    for (const StreamDef& s : kind->streams)
        if (name == s.name) return is_label_form(s.form) && ds.classes == 0 ? nullptr : &s;
    return nullptr;
}

std::int64_t width_of(const Dataset& ds, const StreamDef& s) {
    switch (s.form) {
        case StreamForm::pixels:
        case StreamForm::numbers:
        case StreamForm::tokens: return ds.train.features;
        case StreamForm::class_ids: return ds.labels_per_sample;
        case StreamForm::one_hot: return ds.labels_per_sample * ds.classes;
    }
    return 0;
}

[[noreturn]] void unknown_stream(const Dataset& ds, const std::string& name) {
    std::string offered;
    for (const auto& s : stream_names(ds.kind, ds.classes > 0)) offered += (offered.empty() ? "" : ", ") + s;
    throw InputError(fmt::format("unknown data stream '{}'; {} data offers: {}", name, ds.kind, offered));
}

CHAINRULE_SIMD_CLONES void gather_images(const std::uint8_t* px, const std::int64_t* rows, std::int64_t count,
                                         std::int64_t width, float* out) {
    gather_pixel_rows(px, rows, count, width, out);
}
CHAINRULE_SIMD_CLONES void gather_images(const std::uint8_t* px, const std::int64_t* rows, std::int64_t count,
                                         std::int64_t width, double* out) {
    gather_pixel_rows(px, rows, count, width, out);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CHAINRULE_AVX512_COMPACT 1
#define CHAINRULE_VBMI2 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi2,popcnt")))
// compact_pixel_row with AVX-512's byte compress (VBMI2): 64 pixels at a time, the nonzero
// bytes and their columns packed by two compresses, then widened 16 (float64: 8) at a time to
// columns and values. A value is computed from its byte as scale_pixel does (a product with
// each part of 1/255 and their sum; the build does not contract them into an FMA), so it
// has the bits of the dense row's. The same entries and block index as the plain loop; one
// block index entry per 32 columns, so two per 64.
struct PackedBytes {
    alignas(64) std::uint8_t pixels[64];
    alignas(64) std::uint8_t columns[64];
    std::int64_t count;
};

CHAINRULE_VBMI2 inline void pack_nonzero_bytes(const std::uint8_t* px, std::int64_t left, PackedBytes& p,
                                               __mmask64& nz) {
    static constexpr auto kLanes = [] {
        std::array<std::uint8_t, 64> l{};
        for (int i = 0; i < 64; ++i) l[std::size_t(i)] = std::uint8_t(i);
        return l;
    }();
    const __mmask64 in = left >= 64 ? ~__mmask64(0) : (__mmask64(1) << left) - 1;
    const __m512i bytes = _mm512_maskz_loadu_epi8(in, px);
    nz = _mm512_test_epi8_mask(bytes, bytes);
    p.count = std::int64_t(_mm_popcnt_u64(nz));
    _mm512_store_si512(p.pixels, _mm512_maskz_compress_epi8(nz, bytes));
    _mm512_store_si512(p.columns, _mm512_maskz_compress_epi8(nz, _mm512_loadu_si512(kLanes.data())));
}

CHAINRULE_VBMI2 inline void write_block_ends(std::int64_t k, std::int64_t width, __mmask64 nz, std::int64_t at,
                                             std::int64_t count, std::int64_t* block_end) {
    const std::int64_t b = k / SparseRows::kBlock;
    block_end[b] = at + _mm_popcnt_u32(std::uint32_t(nz));
    if (k + SparseRows::kBlock < width) block_end[b + 1] = at + count;
}

CHAINRULE_VBMI2 std::int64_t compact_row_vbmi2(const std::uint8_t* px, const float*, std::int64_t width,
                                               std::int32_t* idx, float* val, std::int64_t base,
                                               std::int64_t* block_end) {
    static_assert(SparseRows::kBlock == 32);
    const __m512 hi = _mm512_set1_ps(PixelScale<float>::hi), lo = _mm512_set1_ps(PixelScale<float>::lo);
    std::int64_t n = 0;
    PackedBytes p;
    for (std::int64_t k = 0; k < width; k += 64) {
        __mmask64 nz;
        pack_nonzero_bytes(px + k, width - k, p, nz);
        for (std::int64_t g = 0; g < p.count; g += 16) {
            const auto keep = __mmask16(p.count - g >= 16 ? 0xffff : (1u << (p.count - g)) - 1);
            // maskz forms: the plain widenings trip GCC 12's maybe-uninitialized warning
            const __m512i bytes = _mm512_maskz_cvtepu8_epi32(0xffff, _mm_load_si128(reinterpret_cast<const __m128i*>(p.pixels + g)));
            const __m512i cols = _mm512_maskz_cvtepu8_epi32(0xffff, _mm_load_si128(reinterpret_cast<const __m128i*>(p.columns + g)));
            const __m512 x = _mm512_maskz_cvtepi32_ps(0xffff, bytes);
            _mm512_mask_storeu_ps(val + n + g, keep, _mm512_add_ps(_mm512_mul_ps(x, hi), _mm512_mul_ps(x, lo)));
            _mm512_mask_storeu_epi32(idx + n + g, keep, _mm512_add_epi32(cols, _mm512_set1_epi32(std::int32_t(k))));
        }
        write_block_ends(k, width, nz, base + n, p.count, block_end);
        n += p.count;
    }
    return n;
}
CHAINRULE_VBMI2 std::int64_t compact_row_vbmi2(const std::uint8_t* px, const double*, std::int64_t width,
                                               std::int32_t* idx, double* val, std::int64_t base,
                                               std::int64_t* block_end) {
    const __m512d hi = _mm512_set1_pd(PixelScale<double>::hi), lo = _mm512_set1_pd(PixelScale<double>::lo);
    std::int64_t n = 0;
    PackedBytes p;
    for (std::int64_t k = 0; k < width; k += 64) {
        __mmask64 nz;
        pack_nonzero_bytes(px + k, width - k, p, nz);
        for (std::int64_t g = 0; g < p.count; g += 8) {
            const auto keep = __mmask8(p.count - g >= 8 ? 0xff : (1u << (p.count - g)) - 1);
            const __m256i bytes = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p.pixels + g)));
            const __m256i cols = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p.columns + g)));
            const __m512d x = _mm512_maskz_cvtepi32_pd(0xff, bytes);
            _mm512_mask_storeu_pd(val + n + g, keep, _mm512_add_pd(_mm512_mul_pd(x, hi), _mm512_mul_pd(x, lo)));
            _mm256_mask_storeu_epi32(idx + n + g, keep, _mm256_add_epi32(cols, _mm256_set1_epi32(std::int32_t(k))));
        }
        write_block_ends(k, width, nz, base + n, p.count, block_end);
        n += p.count;
    }
    return n;
}
#endif

// The conversion's clones with a compaction: the plain loop (inlined into each clone) or,
// where built, the AVX-512 VBMI2 one (a call per row).
#define CHAINRULE_GATHER_SPARSE(name, T, compact)                                                                   \
    CHAINRULE_SIMD_CLONES void name(const std::uint8_t* px, const std::int64_t* rows, std::int64_t count,           \
                                    std::int64_t width, T* out, std::int64_t first_slot, std::int64_t* begin,       \
                                    std::int64_t* end, std::int32_t* index, T* values, std::int64_t* block_end) {   \
        std::int64_t (*row)(const std::uint8_t*, const T*, std::int64_t, std::int32_t*, T*, std::int64_t,           \
                            std::int64_t*) = compact;                                                               \
        gather_pixel_rows_sparse(px, rows, count, width, out, first_slot, begin, end, index, values, block_end,    \
                                 row);                                                                        \
    }
CHAINRULE_GATHER_SPARSE(gather_images_sparse, float, compact_pixel_row<float>)
CHAINRULE_GATHER_SPARSE(gather_images_sparse, double, compact_pixel_row<double>)
#ifdef CHAINRULE_AVX512_COMPACT
CHAINRULE_GATHER_SPARSE(gather_images_sparse_vbmi2, float, compact_row_vbmi2)
CHAINRULE_GATHER_SPARSE(gather_images_sparse_vbmi2, double, compact_row_vbmi2)
#endif
#undef CHAINRULE_GATHER_SPARSE

// The compaction for this CPU.
template <class T>
void gather_sparse_rows(const std::uint8_t* px, const std::int64_t* rows, std::int64_t count, std::int64_t width,
                        T* out, std::int64_t first_slot, std::int64_t* begin, std::int64_t* end, std::int32_t* index, T* values,
                        std::int64_t* block_end) {
#ifdef CHAINRULE_AVX512_COMPACT
    static const bool vbmi2 = __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                              __builtin_cpu_supports("avx512vbmi2");
    if (vbmi2) return gather_images_sparse_vbmi2(px, rows, count, width, out, first_slot, begin, end, index, values, block_end);
#endif
    gather_images_sparse(px, rows, count, width, out, first_slot, begin, end, index, values, block_end);
}

}  // namespace

double pixel_density(const Split& split) {
    if (split.pixels.empty()) return 1.0;
    std::int64_t nonzero = 0;
    for (std::uint8_t p : split.pixels) nonzero += p != 0;
    return double(nonzero) / double(split.pixels.size());
}

DataSpec parse_data_spec(const Json& j, const std::string& where, const std::string& base_dir) {
    get_object(j, where);
    DataSpec s;
    s.where = where;
    s.base_dir = base_dir;
    s.kind = get_string(require(j, "kind", where), json_path(where, "kind"));
    data_kind(s.kind, json_path(where, "kind")).parse(j, s);
    return s;
}

Dataset load_dataset(const DataSpec& spec) {
    const DataKind& kind = data_kind(spec.kind, spec.where);
    kind.validate(spec);
    return kind.load(spec);
}

std::vector<std::string> stream_names(const std::string& kind_name, bool labelled) {
    std::vector<std::string> names;
    if (const DataKind* kind = find_data_kind(kind_name))
        for (const StreamDef& s : kind->streams)
            if (labelled || !is_label_form(s.form)) names.emplace_back(s.name);
    return names;
}

std::string stream_list(const std::string& kind, bool labelled) {
    std::vector<std::string> names = stream_names(kind, labelled);
    std::string out;
    for (std::size_t i = 0; i < names.size(); ++i)
        out += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
    return out;
}

bool has_stream(const Dataset& ds, const std::string& stream) { return find_stream(ds, stream) != nullptr; }

std::int64_t stream_width(const Dataset& ds, const std::string& stream) {
    const StreamDef* s = find_stream(ds, stream);
    if (!s) unknown_stream(ds, stream);
    return width_of(ds, *s);
}

std::optional<std::int64_t> stream_width_from_spec(const DataSpec& spec, const std::string& stream) {
    if (const DataKind* kind = find_data_kind(spec.kind))
        for (const StreamDef& s : kind->streams)
            if (stream == s.name && s.width_from_spec) return s.width_from_spec(spec);
    return std::nullopt;
}

std::string likely_stream(const DataSpec& spec, std::optional<std::int64_t> columns) {
    const DataKind* kind = find_data_kind(spec.kind);
    if (!kind || kind->streams.empty()) return {};
    if (columns) {
        for (const StreamDef& s : kind->streams)
            if (s.form != StreamForm::class_ids && s.width_from_spec && s.width_from_spec(spec) == columns)
                return s.name;
        if (kind->stream_for_columns) return kind->stream_for_columns(*columns);
    }
    return kind->streams.front().name;
}

void gather(const Dataset& ds, const Split& split, const std::string& stream, std::span<const std::int64_t> rows,
            Tensor& dst, const RowSplitter& split_rows, SparseRows* sparse) {
    const StreamDef* s = find_stream(ds, stream);
    if (!s) unknown_stream(ds, stream);
    gather(ds, split, *s, rows, dst, split_rows, sparse);
}

void gather(const Dataset& ds, const Split& split, const StreamDef& stream, std::span<const std::int64_t> rows,
            Tensor& dst, const RowSplitter& split_rows, SparseRows* sparse) {
    const std::int64_t width = width_of(ds, stream);
    const auto n = std::int64_t(rows.size());
    if (dst.rank() == 0 || dst.dim(0) != n || dst.numel() != n * width)
        throw InputError(fmt::format("data stream '{}' gives {} values per sample, but the input it feeds has "
                                     "shape {} for a batch of {}",
                                     stream.name, width, format_dims(dst.dims()), n));
    for (auto r : rows)
        if (r < 0 || r >= split.count)
            throw RunError(fmt::format("gather: row {} is outside the split (0 to {})", r, split.count - 1));
    dispatch(dst.dtype(), [&]<class T>() {
        T* out = dst.data<T>();
        switch (stream.form) {
            case StreamForm::pixels: {
                // A lambda holding one reference fits inside std::function, so handing it to
                // split_rows allocates nothing (tests/test_alloc.cpp checks every batch).
                struct Job {
                    const std::uint8_t* px;
                    const std::int64_t* rows;
                    std::int64_t width;
                    T* out;
                    SparseRows* sparse;
                } job{split.pixels.data(), rows.data(), width, out, sparse};
                if (sparse) sparse->reshape(dst.dtype(), n, width);
                auto part = [&job](std::int64_t b, std::int64_t e) {
                    if (!job.sparse) {
                        gather_images(job.px, job.rows + b, e - b, job.width, job.out + b * job.width);
                        return;
                    }
                    SparseRows& sp = *job.sparse;
                    gather_sparse_rows(job.px, job.rows + b, e - b, job.width, job.out + b * job.width,
                                         b * job.width, sp.row_begin.data() + b, sp.row_end.data() + b,
                                         sp.row_index.data() + b * job.width,
                                         sp.row_values<T>().data() + b * job.width, sp.block_end.data() + b * sp.blocks);
                };
                if (split_rows)
                    split_rows(n, part);
                else
                    part(0, n);
                break;
            }
            case StreamForm::numbers:
                for (auto r : rows) {
                    const double* v = split.values.data() + r * width;
                    for (std::int64_t k = 0; k < width; ++k) out[k] = T(v[k]);
                    out += width;
                }
                break;
            case StreamForm::tokens:
                for (auto r : rows) {
                    const std::int32_t* v = split.tokens.data() + r * width;
                    for (std::int64_t k = 0; k < width; ++k) out[k] = T(v[k]);
                    out += width;
                }
                break;
            case StreamForm::class_ids:
                for (auto r : rows) {
                    const std::int32_t* v = split.labels.data() + r * width;
                    for (std::int64_t k = 0; k < width; ++k) *out++ = T(v[k]);
                }
                break;
            case StreamForm::one_hot: {
                // labels_per_sample rows of `classes` values per sample, each with a 1 at its id;
                // a padding label (−1, text "sequence" targets after the end) is a row of zeros.
                const std::int64_t per = ds.labels_per_sample;
                std::fill(out, out + n * width, T(0));
                for (auto r : rows)
                    for (std::int64_t k = 0; k < per; ++k, out += ds.classes)
                        if (const std::int32_t id = split.labels[std::size_t(r * per + k)]; id >= 0) out[id] = T(1);
                break;
            }
        }
    });
}

}  // namespace chainrule::data
