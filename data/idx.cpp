#include "data/idx.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <memory>
#include <unistd.h>
#include <zlib.h>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/json.hpp"
#include "data/kind.hpp"

namespace chainrule::data {
namespace {

// The bytes of a file, inflated on the fly when it starts with the gzip magic. Gzip
// members may follow each other (as gzip itself allows); anything else after the last
// member is trailing garbage.
class Source {
public:
    explicit Source(const std::string& path) : path_(path) {
        f_ = open_input_file(path, file_size_);
        fill(2);
        gzip_ = avail_ >= 2 && in_[0] == 0x1f && in_[1] == 0x8b;
        if (gzip_) {
            if (inflateInit2(&z_, 15 + 16) != Z_OK) throw RunError("zlib: inflateInit2 failed");
            z_ready_ = true;
        }
    }
    ~Source() {
        if (z_ready_) inflateEnd(&z_);
    }
    Source(const Source&) = delete;
    Source& operator=(const Source&) = delete;

    bool gzip() const { return gzip_; }
    std::uint64_t file_size() const { return file_size_; }

    // The gzip trailer's ISIZE: the uncompressed size mod 2^32 of the last member. pread
    // leaves the stream's position alone, and the file is not opened a second time (by
    // then the path might name something else).
    std::uint32_t gzip_isize() const {
        std::array<unsigned char, 4> b{};
        if (file_size_ < 4 ||
            ::pread(::fileno(f_.get()), b.data(), 4, static_cast<off_t>(file_size_ - 4)) != 4)
            return 0;
        return std::uint32_t(b[0]) | std::uint32_t(b[1]) << 8 | std::uint32_t(b[2]) << 16 | std::uint32_t(b[3]) << 24;
    }

    // Up to n bytes; fewer only at the end of the data.
    std::size_t read(std::uint8_t* dst, std::size_t n) {
        if (!gzip_) {
            std::size_t got = 0;
            if (avail_ > 0) {
                got = std::min(n, avail_);
                std::memcpy(dst, in_.data() + pos_, got);
                pos_ += got;
                avail_ -= got;
            }
            got += std::fread(dst + got, 1, n - got, f_.get());
            if (got < n && std::ferror(f_.get())) throw InputError(fmt::format("{}: read error", path_));
            return got;
        }
        z_.next_out = dst;
        z_.avail_out = static_cast<uInt>(n);
        while (z_.avail_out > 0 && !finished_) {
            if (avail_ == 0 && !fill(1))
                throw InputError(fmt::format("{}: truncated gzip stream (the compressed data ends early)", path_));
            z_.next_in = in_.data() + pos_;
            z_.avail_in = static_cast<uInt>(avail_);
            int rc = inflate(&z_, Z_NO_FLUSH);
            std::size_t used = avail_ - z_.avail_in;
            pos_ += used;
            avail_ -= used;
            if (rc == Z_STREAM_END) {
                if (!fill(1)) {
                    finished_ = true;
                } else if (fill(2) && in_[pos_] == 0x1f && in_[pos_ + 1] == 0x8b) {
                    inflateReset(&z_);
                } else {
                    throw InputError(fmt::format("{}: trailing garbage after the gzip data", path_));
                }
            } else if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT) {
                throw InputError(fmt::format("{}: corrupt gzip data ({})", path_, z_.msg ? z_.msg : "data error"));
            } else if (rc == Z_MEM_ERROR) {
                throw RunError(fmt::format("{}: out of memory while inflating", path_));
            } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
                throw InputError(fmt::format("{}: cannot inflate (zlib error {})", path_, rc));
            }
        }
        return n - z_.avail_out;
    }

private:
    // Makes at least `want` unread bytes available in in_ if the file has them.
    bool fill(std::size_t want) {
        if (avail_ >= want) return true;
        std::memmove(in_.data(), in_.data() + pos_, avail_);
        pos_ = 0;
        while (avail_ < want) {
            std::size_t got = std::fread(in_.data() + avail_, 1, in_.size() - avail_, f_.get());
            if (got == 0) {
                if (std::ferror(f_.get())) throw InputError(fmt::format("{}: read error", path_));
                return false;
            }
            avail_ += got;
        }
        return true;
    }

    std::string path_;
    FilePtr f_;
    std::uint64_t file_size_ = 0;
    bool gzip_ = false, z_ready_ = false, finished_ = false;
    z_stream z_{};
    std::array<std::uint8_t, 1 << 16> in_{};
    std::size_t pos_ = 0, avail_ = 0;
};

std::uint32_t big_endian(const std::uint8_t* b) {
    return std::uint32_t(b[0]) << 24 | std::uint32_t(b[1]) << 16 | std::uint32_t(b[2]) << 8 | std::uint32_t(b[3]);
}

std::string describe(const Dims& d) {
    if (d.size() == 1) return fmt::format("{} labels", d[0]);
    return fmt::format("{} images of {}x{}", d[0], d[1], d[2]);
}

}  // namespace

IdxRole idx_role_from_name(const std::string& path) {
    std::string name = std::filesystem::path(path).filename().string();
    if (name.ends_with(".gz")) name.resize(name.size() - 3);
    if (name.ends_with("idx1-ubyte")) return IdxRole::labels;
    if (name.ends_with("idx3-ubyte")) return IdxRole::images;
    return IdxRole::any;
}

IdxFile read_idx(const std::string& path, IdxRole role) {
    IdxFile out;
    out.path = path;
    Source src(path);
    out.gzipped = src.gzip();
    std::array<std::uint8_t, 16> head{};
    if (src.read(head.data(), 4) < 4)
        throw InputError(fmt::format("{}: {}too short for an IDX header (4-byte magic, then dims)", path,
                                     src.file_size() == 0 ? "empty file; " : ""));
    out.magic = big_endian(head.data());
    if (role != IdxRole::any) {
        const bool labels = role == IdxRole::labels;
        const std::uint32_t want = labels ? kIdxLabelsMagic : kIdxImagesMagic;
        const std::uint32_t other = labels ? kIdxImagesMagic : kIdxLabelsMagic;
        const char* wanted = labels ? "a labels file" : "an images file";
        if (out.magic == other)
            throw InputError(fmt::format("{}: magic 0x{:08x} ({}) where {} (0x{:08x}) was expected", path, out.magic,
                                         labels ? "images" : "labels", wanted, want));
        if (out.magic != want)
            throw InputError(fmt::format("{}: bad magic 0x{:08x} where {} (0x{:08x}) was expected", path, out.magic,
                                         wanted, want));
    } else if (out.magic != kIdxLabelsMagic && out.magic != kIdxImagesMagic) {
        throw InputError(fmt::format("{}: bad magic 0x{:08x}; expected 0x{:08x} (labels) or 0x{:08x} (images)", path,
                                     out.magic, kIdxLabelsMagic, kIdxImagesMagic));
    }
    const std::size_t rank = out.magic & 0xff;
    if (src.read(head.data(), 4 * rank) < 4 * rank)
        throw InputError(fmt::format("{}: truncated IDX header (expected {} dims of 4 bytes)", path, rank));
    for (std::size_t i = 0; i < rank; ++i) {
        std::uint32_t d = big_endian(head.data() + 4 * i);
        if (d == 0) throw InputError(fmt::format("{}: dim {} is 0; every IDX dim must be at least 1", path, i));
        out.dims.push_back(d);
    }
    // Side caps first, so that the product below cannot overflow.
    for (std::size_t i = 1; i < rank; ++i)
        if (out.dims[i] > kIdxMaxSide)
            throw InputError(fmt::format("{}: header claims {}; image sides are limited to {}", path,
                                         describe(out.dims), kIdxMaxSide));
    const std::int64_t per_item = rank == 3 ? out.dims[1] * out.dims[2] : 1;
    if (out.dims[0] > kIdxMaxBytes / per_item)
        throw InputError(fmt::format("{}: header claims {} ({} bytes); one IDX file is limited to {} bytes", path,
                                     describe(out.dims), out.dims[0] * per_item, kIdxMaxBytes));
    const std::int64_t payload = out.dims[0] * per_item;
    const std::int64_t header = 4 + 4 * std::int64_t(rank);

    if (!src.gzip()) {
        const auto size = std::int64_t(src.file_size());
        if (size < header + payload)
            throw InputError(fmt::format("{}: truncated: header claims {} ({} bytes) but only {} follow the header",
                                         path, describe(out.dims), payload, size - header));
        if (size > header + payload)
            throw InputError(fmt::format("{}: {} bytes of trailing garbage after the {} the header declares", path,
                                         size - header - payload, describe(out.dims)));
    } else if (payload > kMaxDeflateRatio * std::int64_t(src.file_size())) {
        throw InputError(fmt::format("{}: truncated: header claims {} ({} bytes), more than a {}-byte gzip file can "
                                     "hold",
                                     path, describe(out.dims), payload, src.file_size()));
    }

    // A gzip trailer that agrees with the header makes a one-shot allocation safe enough
    // (the cap above bounds it); otherwise the buffer grows only as data arrives.
    const bool sized = !src.gzip() || src.gzip_isize() == std::uint32_t(header + payload);
    constexpr std::int64_t chunk = std::int64_t{1} << 20;
    std::int64_t have = 0;
    if (sized) out.data.reserve(std::size_t(payload));
    while (have < payload) {
        std::int64_t want = std::min(payload - have, sized ? payload - have : std::max(chunk, have));
        out.data.resize(std::size_t(have + want));
        std::int64_t got = std::int64_t(src.read(out.data.data() + have, std::size_t(want)));
        have += got;
        if (got < want)
            throw InputError(fmt::format("{}: truncated: header claims {} ({} bytes) but the data ends after {}", path,
                                         describe(out.dims), payload, have));
    }
    std::uint8_t extra = 0;
    if (src.read(&extra, 1) != 0)
        throw InputError(fmt::format("{}: trailing garbage after the {} the header declares", path,
                                     describe(out.dims)));
    return out;
}

std::string find_idx_file(const std::string& dir, const std::string& name) {
    namespace fs = std::filesystem;
    std::error_code ec;
    for (const std::string& candidate : {name + ".gz", name}) {
        // Anything by that name counts (a folder, a FIFO, a broken link): the reader then
        // says what is wrong with it instead of "missing".
        fs::path p = fs::path(dir) / candidate;
        if (fs::exists(fs::symlink_status(p, ec))) return p.string();
    }
    return {};
}

namespace {

Split idx_split(const std::string& dir, const char* images_name, const char* labels_name, std::int64_t classes,
                std::int64_t limit) {
    std::string paths[2];
    const char* names[2] = {images_name, labels_name};
    for (int i = 0; i < 2; ++i) {
        paths[i] = find_idx_file(dir, names[i]);
        if (paths[i].empty())
            throw InputError(fmt::format("{}: missing {} (or {}.gz); an idx folder holds {}, {}, {} and {}, each raw "
                                         "or gzipped (scripts/get-mnist fetches MNIST)",
                                         dir, names[i], names[i], kTrainImages, kTrainLabels, kTestImages,
                                         kTestLabels));
    }
    // The file names give the roles: a file of the other kind is refused by its magic,
    // before its header is taken for the kind its name promises.
    IdxFile images = read_idx(paths[0], IdxRole::images);
    IdxFile labels = read_idx(paths[1], IdxRole::labels);
    if (labels.dims[0] != images.dims[0])
        throw InputError(fmt::format("{}: {} labels, but {} holds {} images; the counts must match", paths[1],
                                     labels.dims[0], paths[0], images.dims[0]));
    for (std::size_t i = 0; i < labels.data.size(); ++i)
        if (labels.data[i] >= classes)
            throw InputError(fmt::format("{}: label {} at index {} is not a class id (0 to {})", paths[1],
                                         labels.data[i], i, classes - 1));
    Split s;
    s.count = images.dims[0];
    s.sample_dims = {images.dims[1], images.dims[2]};
    s.features = images.dims[1] * images.dims[2];
    if (limit >= 0 && limit < s.count) {
        s.count = limit;
        images.data.resize(std::size_t(limit * s.features));
        images.data.shrink_to_fit();
    }
    s.pixels = std::move(images.data);
    s.labels.assign(labels.data.begin(), labels.data.begin() + s.count);
    return s;
}

}  // namespace

Dataset idx_dataset(const DataSpec& spec) {
    Dataset ds;
    ds.kind = idx_kind().name;
    ds.class_names = spec.classes;
    if (ds.class_names.empty())
        for (int i = 0; i < 10; ++i) ds.class_names.push_back(std::to_string(i));
    ds.classes = std::int64_t(ds.class_names.size());
    ds.train = idx_split(spec.dir, kTrainImages, kTrainLabels, ds.classes, spec.train_limit);
    ds.test = idx_split(spec.dir, kTestImages, kTestLabels, ds.classes, spec.test_limit);
    if (ds.train.sample_dims != ds.test.sample_dims)
        throw InputError(fmt::format("{}: training images are {}x{} but test images are {}x{}", spec.dir,
                                     ds.train.sample_dims[0], ds.train.sample_dims[1], ds.test.sample_dims[0],
                                     ds.test.sample_dims[1]));
    return ds;
}

// The idx kind (data/kind.hpp).
namespace {

void parse_idx_spec(const Json& j, DataSpec& s) {
    check_keys(j, {"kind", "dir", "classes", "limit"}, s.where);
    s.dir = resolve_data_path(j, "dir", s);
    if (j.contains("classes")) s.classes = parse_class_names(j["classes"], json_path(s.where, "classes"));
    if (j.contains("limit")) parse_limit(j["limit"], json_path(s.where, "limit"), s);
}

void validate_idx_spec(const DataSpec& s) {
    std::error_code ec;
    if (std::filesystem::is_directory(s.dir, ec)) return;
    const bool nothing = !std::filesystem::exists(std::filesystem::symlink_status(s.dir, ec));
    throw missing_path_error(s, "dir", s.dir,
                             fmt::format("'{}' is not a folder{}; expected one holding {}, {}, {} and {} (raw or "
                                         ".gz; scripts/get-mnist fetches MNIST)",
                                         s.dir, nothing ? " (nothing is there)" : "", kTrainImages, kTrainLabels,
                                         kTestImages, kTestLabels));
}

constexpr std::array<StreamDef, 3> kIdxStreams = {{
    {kImages, StreamForm::pixels, nullptr},  // as wide as the files' images
    kLabelsStream,
    kLabelsOneHotStream,
}};

std::string idx_source(const DataSpec& s) { return s.dir; }
std::string no_note(const DataSpec&) { return {}; }

// An input of 784 columns most likely takes MNIST's 28x28 images, any other width the
// one-hot labels.
const char* idx_stream_for_columns(std::int64_t columns) { return columns == 784 ? kImages : kLabelsOneHot; }

}  // namespace

const DataKind& idx_kind() {
    static const DataKind kind{
        .name = "idx",
        .title = "IDX",
        .parse = parse_idx_spec,
        .validate = validate_idx_spec,
        .load = idx_dataset,
        .streams = kIdxStreams,
        .images = true,
        .stored_as = "uint8 (fed as pixel / 255)",
        .source = idx_source,
        .describe = no_note,
        .sample_text = nullptr,
        .stream_for_columns = idx_stream_for_columns,
        .vocabulary = false,
    };
    return kind;
}

DataSpec idx_folder_spec(const std::string& dir, const std::string& where) {
    DataSpec s;
    s.kind = idx_kind().name;
    s.dir = dir;
    s.where = where;
    return s;
}

}  // namespace chainrule::data
