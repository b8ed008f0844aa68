// `chainrule data PATH`: what a data set holds, checked exactly as training checks it.
#include <algorithm>
#include <array>
#include <filesystem>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <cstdio>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "core/json.hpp"
#include "data/csv.hpp"
#include "data/dataset.hpp"
#include "data/idx.hpp"
#include "data/kind.hpp"
#include "data/png.hpp"

namespace chainrule::cli {
namespace {

namespace fs = std::filesystem;
using namespace chainrule::data;

struct Options {
    std::string path, png;
    int samples = 4;
};

constexpr int kPngImages = 100;  // a 10 x 10 grid
constexpr int kArtColumns = 28;  // wider images are averaged down to this

// A grayscale image as text, darkest to brightest.
std::vector<std::string> art(const std::uint8_t* px, std::int64_t rows, std::int64_t cols) {
    static constexpr std::string_view ramp = " .:-=+*#%@";
    const std::int64_t step = (std::max<std::int64_t>(rows, cols) + kArtColumns - 1) / kArtColumns;
    std::vector<std::string> lines;
    for (std::int64_t r = 0; r < rows; r += step) {
        std::string line;
        for (std::int64_t c = 0; c < cols; c += step) {
            int sum = 0, n = 0;
            for (std::int64_t y = r; y < std::min(rows, r + step); ++y)
                for (std::int64_t x = c; x < std::min(cols, c + step); ++x, ++n) sum += px[y * cols + x];
            line += ramp[std::size_t(sum / n * int(ramp.size()) / 256)];
        }
        lines.push_back(line);
    }
    return lines;
}

// Images side by side, two to a row, each under its caption.
void print_images(const std::uint8_t* pixels, std::int64_t count, std::int64_t rows, std::int64_t cols,
                  const std::vector<std::string>& captions) {
    const auto n = std::min<std::int64_t>(count, std::int64_t(captions.size()));
    for (std::int64_t i = 0; i < n; i += 2) {
        std::vector<std::vector<std::string>> block;
        for (std::int64_t k = i; k < std::min(n, i + 2); ++k) block.push_back(art(pixels + k * rows * cols, rows, cols));
        const std::size_t width = block[0][0].size();
        std::string head;
        for (std::size_t b = 0; b < block.size(); ++b)
            head += fmt::format("{:<{}}  ", captions[std::size_t(i) + b], width + 2);
        fmt::print("  {}\n", head);
        for (std::size_t y = 0; y < block[0].size(); ++y) {
            std::string line;
            for (const auto& img : block) line += "|" + img[y] + "|  ";
            fmt::print("  {}\n", line);
        }
    }
}

void write_png_grid(const std::string& file, const std::uint8_t* pixels, std::int64_t count, std::int64_t rows,
                    std::int64_t cols) {
    const std::int64_t n = std::min<std::int64_t>(count, kPngImages);
    const std::int64_t grid_cols = std::min<std::int64_t>(n, 10), grid_rows = (n + 9) / 10;
    // One-pixel gray lines between the images keep black borders apart.
    const std::int64_t w = grid_cols * (cols + 1) + 1, h = grid_rows * (rows + 1) + 1;
    std::vector<std::uint8_t> img(std::size_t(w * h), 96);
    for (std::int64_t k = 0; k < n; ++k) {
        const std::int64_t x0 = 1 + (k % 10) * (cols + 1), y0 = 1 + (k / 10) * (rows + 1);
        for (std::int64_t y = 0; y < rows; ++y)
            std::copy_n(pixels + (k * rows + y) * cols, cols, img.begin() + (y0 + y) * w + x0);
    }
    write_file_atomic(file, encode_png_gray(w, h, img));
    fmt::print("wrote {} ({} images, {}x{} pixels)\n", file, n, w, h);
}

std::string histogram(const std::vector<std::int32_t>& labels, const std::vector<std::string>& names) {
    std::vector<std::int64_t> count(names.size(), 0);
    for (auto l : labels) ++count[std::size_t(l)];
    std::string out;
    for (std::size_t c = 0; c < names.size(); ++c) out += fmt::format("{}{}: {}", c ? "  " : "", names[c], count[c]);
    return out;
}

void show_idx_file(const Options& o, IdxRole role) {
    IdxFile f = read_idx(o.path, role);
    const char* packing = f.gzipped ? "gzip" : "raw";
    if (f.magic == kIdxLabelsMagic) {
        const auto max = *std::max_element(f.data.begin(), f.data.end());
        std::vector<std::string> names;
        for (int c = 0; c <= max; ++c) names.push_back(std::to_string(c));
        std::vector<std::int32_t> labels(f.data.begin(), f.data.end());
        if (!o.png.empty()) throw InputError(fmt::format("{}: --png needs images, and this file holds labels", o.path));
        fmt::print("{}: IDX labels ({}), {} labels, uint8, classes 0 to {}\n", o.path, packing, f.dims[0], int(max));
        fmt::print("  labels: {}\n", histogram(labels, names));
        std::vector<int> first(f.data.begin(), f.data.begin() + std::min<std::int64_t>(f.dims[0], 20));
        fmt::print("  first: {}\n", fmt::join(first, " "));
        return;
    }
    double mean = 0;
    for (auto p : f.data) mean += p;
    mean /= double(f.data.size());
    fmt::print("{}: IDX images ({}), {} samples of [{},{}] uint8 (fed as pixel / 255), mean pixel {:.1f}\n", o.path,
               packing, f.dims[0], f.dims[1], f.dims[2], mean);
    std::vector<std::string> captions;
    for (int i = 0; i < o.samples; ++i) captions.push_back(fmt::format("#{}", i));
    print_images(f.data.data(), f.dims[0], f.dims[1], f.dims[2], captions);
    if (!o.png.empty()) write_png_grid(o.png, f.data.data(), f.dims[0], f.dims[1], f.dims[2]);
}

// `whole`: a CSV read without a model, shown as one set of rows rather than a split.
void show_dataset(const Options& o, const DataSpec& spec, const std::string& note, bool whole) {
    const DataKind& kind = data_kind(spec.kind, spec.where);
    Dataset ds = load_dataset(spec);
    const Split& tr = ds.train;
    if (!kind.images && !o.png.empty())
        throw InputError(fmt::format("{}: --png needs images, and {} data has none", kind.source(spec), kind.title));
    const std::string shape = fmt::format("[{}]", fmt::join(tr.sample_dims, ","));
    fmt::print("{}: {} data, {}\n", kind.source(spec), ds.kind,
               ds.classes ? fmt::format("{} classes ({})", ds.classes, fmt::join(ds.class_names, ", "))
                          : std::string("no label column"));
    if (!note.empty()) fmt::print("  {}\n", note);
    for (const Split* s : {&ds.train, &ds.test}) {
        if (s->count == 0) continue;
        const char* name = whole ? "rows" : s == &ds.train ? "train" : "test";
        fmt::print("  {:<5}  {} samples of {} {}\n", name, s->count, shape, kind.stored_as);
        if (ds.classes) fmt::print("         labels  {}\n", histogram(s->labels, ds.class_names));
    }
    std::vector<std::string> streams;
    for (const std::string& st : stream_names(ds.kind, ds.classes > 0))
        streams.push_back(fmt::format("{} [{}]", st, stream_width(ds, st)));
    fmt::print("  streams: {}\n", fmt::join(streams, ", "));

    const std::int64_t n = std::min<std::int64_t>(o.samples, tr.count);
    if (n > 0) fmt::print("first {} {}:\n", n, whole ? "rows" : "training samples");
    if (kind.images) {
        std::vector<std::string> captions;
        for (std::int64_t i = 0; i < n; ++i)
            captions.push_back(fmt::format("#{} label {}", i, ds.class_names[std::size_t(tr.labels[std::size_t(i)])]));
        print_images(tr.pixels.data(), tr.count, tr.sample_dims[0], tr.sample_dims[1], captions);
        if (!o.png.empty()) write_png_grid(o.png, tr.pixels.data(), tr.count, tr.sample_dims[0], tr.sample_dims[1]);
        return;
    }
    for (std::int64_t i = 0; i < n; ++i) fmt::print("  {}\n", kind.sample_text(ds, tr, i));
}

constexpr const char* kWhatDataIs =
    "an IDX file (raw or .gz), a folder of the four MNIST files, a CSV file or a model JSON";

void run(const Options& o) {
    // The error_code forms: a symlink loop or an over-long name is the user's path, not an
    // internal error.
    std::error_code ec;
    const fs::file_status st = fs::status(o.path, ec);
    if (!fs::exists(st)) {
        if (ec && ec != std::errc::no_such_file_or_directory)
            throw InputError(fmt::format("{}: cannot open: {}", o.path, ec.message()));
        // A missing folder is most often data/mnist before scripts/get-mnist has run.
        const bool idx_like = fs::path(o.path).extension().empty() || o.path.ends_with(".gz");
        throw InputError(fmt::format("{}: no such file or folder; expected {}{}", o.path, kWhatDataIs,
                                     idx_like ? " (scripts/get-mnist fetches MNIST into data/mnist)" : ""));
    }
    if (fs::is_directory(st)) {
        show_dataset(o, idx_folder_spec(o.path, o.path), "", false);
        return;
    }
    if (o.path.ends_with(".json")) {
        const Json model = read_json_file(o.path);
        const std::string at = o.path + ": training";
        if (!model.is_object() || !model.contains("training"))
            throw InputError(fmt::format("{}: no \"training\" block, so no data to show", o.path));
        const Json& data = require(get_object(model["training"], at), "data", at);
        const std::string dir = fs::path(o.path).parent_path().string();
        DataSpec spec = parse_data_spec(data, at + ".data", dir.empty() ? "." : dir);
        show_dataset(o, spec, data_kind(spec.kind, spec.where).describe(spec), false);
        return;
    }
    // A name like the lecture's (…-idx1-ubyte.gz) says what the file must be, whatever it
    // holds: even empty, it is an IDX file that is wrong, not a CSV file. A .gz name is
    // IDX too (CSV is read uncompressed).
    const IdxRole role = idx_role_from_name(o.path);
    if (role != IdxRole::any || o.path.ends_with(".gz")) return show_idx_file(o, role);
    std::uint64_t size = 0;
    FilePtr in = open_input_file(o.path, size);
    std::array<unsigned char, 3> head{};
    const std::size_t got = std::fread(head.data(), 1, head.size(), in.get());
    in.reset();
    const bool gzip = got >= 2 && head[0] == 0x1f && head[1] == 0x8b;
    const bool raw_idx = got == 3 && head[0] == 0 && head[1] == 0 && head[2] == 8;
    if (gzip || raw_idx) return show_idx_file(o, role);
    std::string note;
    DataSpec s = guess_csv_spec(o.path, note);
    show_dataset(o, s, note, true);
}

}  // namespace

void add_data(CLI::App& app) {
    auto* cmd = app.add_subcommand(
        "data", "Check a data set as training would and summarise it: kind, counts, shapes, labels, a few samples");
    auto o = std::make_shared<Options>();
    cmd->add_option("PATH", o->path,
                    "an IDX file (raw or .gz; a name ending in idx1-ubyte or idx3-ubyte says labels or images), a "
                    "folder of the four MNIST files, a CSV file, or a model JSON (its training.data block)")
        ->required();
    cmd->add_option("--png", o->png, "write the first 100 images as a 10x10 grayscale PNG grid");
    cmd->add_option("--samples", o->samples, "samples to print (default 4)")->check(CLI::Range(0, 1000));
    cmd->callback([o] { run(*o); });
}

}  // namespace chainrule::cli
