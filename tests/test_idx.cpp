#define BOOST_TEST_MODULE idx
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>
#include <filesystem>
#include <fstream>
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

#include "data/dataset.hpp"
#include "data/idx.hpp"
#include "core/error.hpp"
#include "testing.hpp"

using namespace chainrule;
using namespace chainrule::data;
namespace fs = std::filesystem;

// Counts every operator new of this test program, to show that gather allocates nothing.
// (noinline: GCC would otherwise pair the inlined free() with operator new and warn.)
static std::atomic<long> allocations{0};
[[gnu::noinline]] void* operator new(std::size_t n) {
    ++allocations;
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

using Bytes = std::string;

// A fresh folder per test in this process's scratch folder (removed when the tests end).
struct TempDir {
    fs::path dir = testing::fresh_scratch_dir("idx");
    std::string path(const std::string& name) const { return (dir / name).string(); }
};

void put32(Bytes& b, std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(char((v >> s) & 0xff));
}

Bytes idx_bytes(std::uint32_t magic, const std::vector<std::uint32_t>& dims, const Bytes& payload) {
    Bytes b;
    put32(b, magic);
    for (auto d : dims) put32(b, d);
    return b + payload;
}

Bytes pixels(std::size_t n, int seed) {
    Bytes p(n, '\0');
    for (std::size_t i = 0; i < n; ++i) p[i] = char((i * 37 + std::size_t(seed) * 11) % 256);
    return p;
}

Bytes gzip(const Bytes& data) {
    z_stream z{};
    BOOST_REQUIRE(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    Bytes out(deflateBound(&z, uLong(data.size())), '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = uInt(data.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = uInt(out.size());
    BOOST_REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

std::string write(const std::string& path, const Bytes& b) {
    std::ofstream(path, std::ios::binary) << b;
    return path;
}

template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const InputError& e) {
        return e.what();
    }
    return "(no InputError)";
}


Bytes labels_of(const std::vector<int>& l) {
    Bytes p;
    for (int v : l) p.push_back(char(v));
    return idx_bytes(kIdxLabelsMagic, {std::uint32_t(l.size())}, p);
}

// A small MNIST-shaped folder: 5 training and 2 test images of 3x2 pixels.
void write_set(const TempDir& t, bool gz) {
    auto put = [&](const char* name, const Bytes& b) {
        write(t.path(name) + (gz ? ".gz" : ""), gz ? gzip(b) : b);
    };
    Bytes train = pixels(30, 1);
    train[0] = char(255);
    train[1] = 0;
    train[2] = 51;
    put(kTrainImages, idx_bytes(kIdxImagesMagic, {5, 3, 2}, train));
    put(kTrainLabels, labels_of({3, 0, 9, 3, 1}));
    put(kTestImages, idx_bytes(kIdxImagesMagic, {2, 3, 2}, pixels(12, 2)));
    put(kTestLabels, labels_of({7, 2}));
}

DataSpec idx_spec(const std::string& dir, const std::string& extra = "") {
    return parse_data_spec(Json::parse(R"({"kind":"idx","dir":")" + dir + "\"" + extra + "}"),
                           "m.json: training.data", "");
}

long peak_rss_kb() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;
}

}  // namespace

using chainrule::testing::RemoveScratch;
BOOST_TEST_GLOBAL_FIXTURE(RemoveScratch);

// First, while the process is still small: a peak-memory jump would show here.
BOOST_AUTO_TEST_CASE(huge_claims_in_tiny_files_are_rejected_fast_and_small) {
    TempDir t;
    long before = peak_rss_kb();
    auto start = std::chrono::steady_clock::now();
    // 2^31 images of 28x28: over the byte cap before anything is read.
    auto p = write(t.path("a"), idx_bytes(kIdxImagesMagic, {0x80000000u, 28, 28}, pixels(84, 0)));
    CHECK_HAS(error_of([&] { read_idx(p); }), "one IDX file is limited to 100000000 bytes");
    // Within the cap, but the raw file is 100 bytes.
    p = write(t.path("b"), idx_bytes(kIdxImagesMagic, {100000, 28, 28}, pixels(84, 0)));
    CHECK_HAS(error_of([&] { read_idx(p); }), "truncated: header claims 100000 images of 28x28 (78400000 bytes)");
    // The same claim gzipped: no deflate stream of that size can expand that far.
    p = write(t.path("c.gz"), gzip(idx_bytes(kIdxImagesMagic, {100000, 28, 28}, pixels(84, 0))));
    CHECK_HAS(error_of([&] { read_idx(p); }), "more than a");
    // A claim a small gzip file could in principle hold (zeros deflate 1000:1): the buffer
    // grows with the data that arrives, so it stays small until the data runs out.
    p = write(t.path("d.gz"), gzip(idx_bytes(kIdxLabelsMagic, {50000}, pixels(100, 0))));
    CHECK_HAS(error_of([&] { read_idx(p); }), "truncated: header claims 50000 labels (50000 bytes) but the data ends after 100");
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    BOOST_TEST(seconds < 0.5);
    BOOST_TEST(peak_rss_kb() - before < 20 * 1024, "peak memory grew by " << peak_rss_kb() - before << " KiB");
}

BOOST_AUTO_TEST_CASE(raw_and_gzip_sets_load_the_same) {
    for (bool gz : {false, true}) {
        TempDir t;
        write_set(t, gz);
        Dataset ds = load_dataset(idx_spec(t.dir.string()));
        BOOST_TEST(ds.kind == "idx");
        BOOST_TEST(ds.classes == 10);
        BOOST_TEST(ds.class_names[9] == "9");
        BOOST_TEST(ds.train.count == 5);
        BOOST_TEST(ds.test.count == 2);
        BOOST_TEST(ds.train.features == 6);
        BOOST_TEST(ds.train.sample_dims == (Dims{3, 2}), boost::test_tools::per_element());
        BOOST_TEST(ds.train.labels == (std::vector<std::int32_t>{3, 0, 9, 3, 1}), boost::test_tools::per_element());
        BOOST_TEST(ds.test.labels == (std::vector<std::int32_t>{7, 2}), boost::test_tools::per_element());
        Bytes want = pixels(12, 2);
        BOOST_TEST(ds.test.pixels == std::vector<std::uint8_t>(want.begin(), want.end()), boost::test_tools::per_element());
        BOOST_TEST(read_idx(find_idx_file(t.dir.string(), kTestImages)).gzipped == gz);
    }
}

BOOST_AUTO_TEST_CASE(gz_is_preferred_when_both_exist) {
    TempDir t;
    write_set(t, false);
    write(t.path(std::string(kTestLabels) + ".gz"), gzip(labels_of({4, 4})));
    BOOST_TEST(find_idx_file(t.dir.string(), kTestLabels) == t.path(std::string(kTestLabels) + ".gz"));
    BOOST_TEST(find_idx_file(t.dir.string(), kTrainLabels) == t.path(kTrainLabels));
    BOOST_TEST(find_idx_file(t.dir.string(), "nothing") == "");
    Dataset ds = load_dataset(idx_spec(t.dir.string()));
    BOOST_TEST(ds.test.labels == (std::vector<std::int32_t>{4, 4}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(concatenated_gzip_members_are_one_stream) {
    TempDir t;
    Bytes whole = idx_bytes(kIdxLabelsMagic, {6}, Bytes{1, 2, 3, 4, 5, 6});
    auto p = write(t.path("m.gz"), gzip(whole.substr(0, 9)) + gzip(whole.substr(9)));
    IdxFile f = read_idx(p);
    BOOST_TEST(f.data == (std::vector<std::uint8_t>{1, 2, 3, 4, 5, 6}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(gather_images_as_floats_and_labels_one_hot) {
    TempDir t;
    write_set(t, true);
    Dataset ds = load_dataset(idx_spec(t.dir.string()));
    BOOST_TEST(stream_width(ds, "images") == 6);
    BOOST_TEST(stream_width(ds, "labels_one_hot") == 10);
    BOOST_TEST(!has_stream(ds, "features"));
    CHECK_HAS(error_of([&] { stream_width(ds, "pixels"); }), "idx data offers: images, labels, labels_one_hot");

    std::vector<std::int64_t> rows = {2, 0};
    Tensor f32(Dtype::f32, {2, 6});
    gather(ds, ds.train, "images", rows, f32);
    Tensor f64(Dtype::f64, {2, 6});
    gather(ds, ds.train, "images", rows, f64);
    for (int k = 0; k < 6; ++k) {
        int px = ds.train.pixels[std::size_t(2 * 6 + k)];
        BOOST_TEST(f32.data<float>()[k] == float(px) / 255.0f);
        BOOST_TEST(f64.data<double>()[k] == double(px) / 255.0);
    }
    // Row 0 begins with pixels 255, 0, 51.
    BOOST_TEST(f32.data<float>()[6] == 1.0f);
    BOOST_TEST(f32.data<float>()[7] == 0.0f);
    BOOST_TEST(f32.data<float>()[8] == 0.2f);
    BOOST_TEST(f64.data<double>()[6] == 1.0);
    BOOST_TEST(f64.data<double>()[8] == 0.2);

    Tensor hot(Dtype::f64, {2, 10});
    hot.fill(-1);
    gather(ds, ds.train, "labels_one_hot", rows, hot);
    for (int k = 0; k < 10; ++k) {
        BOOST_TEST(hot.at(k) == (k == 9 ? 1.0 : 0.0));
        BOOST_TEST(hot.at(10 + k) == (k == 3 ? 1.0 : 0.0));
    }
    Tensor lab(Dtype::f32, {2});
    gather(ds, ds.train, "labels", rows, lab);
    BOOST_TEST(lab.at(0) == 9.0);
    BOOST_TEST(lab.at(1) == 3.0);

    const std::string images = "images", one_hot = "labels_one_hot";
    const std::vector<std::int64_t> test_rows = {1, 0};
    long before = allocations.load();
    for (int i = 0; i < 10; ++i) {
        gather(ds, ds.train, images, rows, f32);
        gather(ds, ds.test, one_hot, test_rows, hot);
    }
    BOOST_TEST(allocations.load() - before == 0);
}

BOOST_AUTO_TEST_CASE(corrupt_files_are_rejected_with_the_reason) {
    TempDir t;
    const Bytes good = idx_bytes(kIdxImagesMagic, {2, 3, 2}, pixels(12, 0));
    const Bytes gz = gzip(good);
    Bytes bad_crc = gz;
    bad_crc[gz.size() - 8] = char(bad_crc[gz.size() - 8] ^ 0x55);
    Bytes bad_isize = gz;
    bad_isize[gz.size() - 1] = char(bad_isize[gz.size() - 1] ^ 1);
    struct Case {
        std::string name;
        Bytes bytes;
        std::string what;
    };
    std::vector<Case> cases = {
        {"magic", idx_bytes(0x00000802, {2, 3}, pixels(6, 0)), "bad magic 0x00000802; expected 0x00000801 (labels)"},
        {"magic.gz", gzip(idx_bytes(0x08030000, {}, "")), "bad magic 0x08030000"},
        {"short", Bytes{0, 0}, "too short for an IDX header"},
        {"empty", Bytes{}, "too short for an IDX header"},
        {"header", idx_bytes(kIdxImagesMagic, {2, 3}, ""), "truncated IDX header"},
        {"zero", idx_bytes(kIdxImagesMagic, {2, 0, 2}, ""), "dim 1 is 0"},
        {"side", idx_bytes(kIdxImagesMagic, {1, 2000, 2}, ""), "image sides are limited to 1024"},
        {"side.gz", gzip(idx_bytes(kIdxImagesMagic, {1, 2, 0xffffffffu}, "")), "image sides are limited to 1024"},
        {"cut", good.substr(0, good.size() - 1), "truncated: header claims 2 images of 3x2 (12 bytes) but only 11"},
        {"cut.gz", gzip(good.substr(0, good.size() - 1)), "truncated: header claims 2 images of 3x2 (12 bytes) but the data ends after 11"},
        {"stream.gz", gz.substr(0, gz.size() - 10), "truncated gzip stream"},
        {"trail", good + "x", "1 bytes of trailing garbage after the 2 images of 3x2"},
        {"trail.gz", gzip(good + "xy"), "trailing garbage after the 2 images of 3x2"},
        {"after.gz", gz + "garbage", "trailing garbage after the gzip data"},
        {"crc.gz", bad_crc, "corrupt gzip data (incorrect data check)"},
        {"isize.gz", bad_isize, "corrupt gzip data (incorrect length check)"},
    };
    for (const auto& c : cases) {
        auto p = write(t.path(c.name), c.bytes);
        std::string msg = error_of([&] { read_idx(p); });
        CHECK_HAS(msg, p + ": ");
        CHECK_HAS(msg, c.what);
    }
    CHECK_HAS(error_of([&] { read_idx(t.path("missing")); }), t.path("missing") + ": cannot open");
}

BOOST_AUTO_TEST_CASE(folder_level_errors) {
    TempDir t;
    write_set(t, false);
    auto spec = idx_spec(t.dir.string());
    // Count mismatch.
    write(t.path(kTestLabels), labels_of({1, 2, 3}));
    CHECK_HAS(error_of([&] { load_dataset(spec); }), "3 labels, but " + t.path(kTestImages) + " holds 2 images");
    // Label outside the classes.
    write(t.path(kTestLabels), labels_of({1, 10}));
    CHECK_HAS(error_of([&] { load_dataset(spec); }), "label 10 at index 1 is not a class id (0 to 9)");
    auto two = idx_spec(t.dir.string(), R"(,"classes":["cat","dog"])");
    write(t.path(kTestLabels), labels_of({1, 0}));
    CHECK_HAS(error_of([&] { load_dataset(two); }), t.path(kTrainLabels) + ": label 3 at index 0 is not a class id (0 to 1)");
    // Labels where images belong.
    write(t.path(kTestImages), labels_of({1, 0}));
    CHECK_HAS(error_of([&] { load_dataset(spec); }), t.path(kTestImages) + ": magic 0x00000801 (labels) where an images file (0x00000803) was expected");
    write(t.path(kTestImages), idx_bytes(kIdxImagesMagic, {2, 2, 3}, pixels(12, 2)));
    CHECK_HAS(error_of([&] { load_dataset(spec); }), "training images are 3x2 but test images are 2x3");
    fs::remove(t.path(kTrainImages));
    std::string msg = error_of([&] { load_dataset(spec); });
    CHECK_HAS(msg, "missing train-images-idx3-ubyte (or train-images-idx3-ubyte.gz)");
    msg = error_of([&] { load_dataset(idx_spec(t.path("nowhere"))); });
    CHECK_HAS(msg, "m.json: training.data.dir: '" + t.path("nowhere") + "' is not a folder");
}

// A missing `dir` names the model file, the JSON path, the folder a relative path was taken
// from and what it became there.
BOOST_AUTO_TEST_CASE(a_missing_dir_says_where_relative_paths_start) {
    TempDir t;
    const std::string models = t.path("models");
    fs::create_directories(models);
    DataSpec rel = parse_data_spec(Json::parse(R"({"kind":"idx","dir":"../data/mnist"})"), "m.json: training.data",
                                   models);
    std::string msg = error_of([&] { load_dataset(rel); });
    CHECK_HAS(msg, "m.json: training.data.dir: '" + t.path("data/mnist") + "' is not a folder (nothing is there); "
                   "expected one holding train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte "
                   "and t10k-labels-idx1-ubyte");
    CHECK_HAS(msg, "; a relative path in a model is taken from the model file's folder, here '" + models +
                   "', so \"../data/mnist\" names " + t.path("data/mnist"));
    // A file where the folder should be is not a folder either, and not "nothing".
    write(t.path("data"), "x");
    DataSpec file = parse_data_spec(Json::parse(R"({"kind":"idx","dir":"../data"})"), "m.json: training.data", models);
    msg = error_of([&] { load_dataset(file); });
    CHECK_HAS(msg, "m.json: training.data.dir: '" + t.path("data") + "' is not a folder; expected one holding");
    CHECK_HAS(msg, "so \"../data\" names " + t.path("data"));
    msg = error_of([&] { load_dataset(idx_spec("/nonexistent/mnist")); });
    CHECK_HAS(msg, "\"/nonexistent/mnist\" is absolute (a relative path would be taken from the model file's "
                   "folder, here the working directory ('.'))");
    // A folder named on the command line (--data, `chainrule data DIR`) is no model's: no rule.
    msg = error_of([&] { load_dataset(idx_folder_spec(t.path("nowhere"), "--data")); });
    CHECK_HAS(msg, "--data.dir: '" + t.path("nowhere") + "' is not a folder (nothing is there)");
    BOOST_TEST(msg.find("relative path") == std::string::npos, msg);
}

BOOST_AUTO_TEST_CASE(limit_keeps_the_first_samples) {
    TempDir t;
    write_set(t, true);
    Dataset ds = load_dataset(idx_spec(t.dir.string(), R"(,"limit":{"train":2})"));
    BOOST_TEST(ds.train.count == 2);
    BOOST_TEST(ds.train.pixels.size() == 12u);
    BOOST_TEST(ds.train.labels == (std::vector<std::int32_t>{3, 0}), boost::test_tools::per_element());
    BOOST_TEST(ds.test.count == 2);
}

// The real data set when scripts/get-mnist has fetched it; otherwise nothing to check.
BOOST_AUTO_TEST_CASE(real_mnist_when_present) {
    fs::path dir = fs::path(testing::source_root()) / "data" / "mnist";
    if (find_idx_file(dir.string(), kTestLabels).empty()) {
        BOOST_TEST_MESSAGE("data/mnist not fetched; skipped");
        return;
    }
    Dataset ds = load_dataset(idx_spec(dir.string()));
    BOOST_TEST(ds.train.count == 60000);
    BOOST_TEST(ds.test.count == 10000);
    BOOST_TEST(ds.train.labels[0] == 5);
    BOOST_TEST(ds.test.labels[0] == 7);
}

BOOST_AUTO_TEST_CASE(the_role_comes_from_the_lecture_s_names) {
    BOOST_TEST((idx_role_from_name("data/mnist/train-labels-idx1-ubyte.gz") == IdxRole::labels));
    BOOST_TEST((idx_role_from_name("t10k-labels-idx1-ubyte") == IdxRole::labels));
    BOOST_TEST((idx_role_from_name("/x/t10k-images-idx3-ubyte.gz") == IdxRole::images));
    BOOST_TEST((idx_role_from_name("emnist-letters-train-images-idx3-ubyte") == IdxRole::images));
    BOOST_TEST((idx_role_from_name("idx1-ubyte/digits.idx") == IdxRole::any));  // the folder says nothing
    BOOST_TEST((idx_role_from_name("labels.gz") == IdxRole::any));
}

// A file of the other kind is named by its magic before its header is read as the kind
// its role expects: the images header of a labels file used to be reported as "10 labels"
// or its dims as image sides.
BOOST_AUTO_TEST_CASE(a_file_of_the_other_kind_is_named_by_its_magic) {
    TempDir t;
    const Bytes images = idx_bytes(kIdxImagesMagic, {10, 83887105, 151126275}, "");
    const Bytes labels = labels_of({1, 2, 3});
    for (bool gz : {false, true}) {
        auto p = write(t.path(gz ? "i.gz" : "i"), gz ? gzip(images) : images);
        CHECK_HAS(error_of([&] { read_idx(p, IdxRole::labels); }),
                  p + ": magic 0x00000803 (images) where a labels file (0x00000801) was expected");
        auto q = write(t.path(gz ? "l.gz" : "l"), gz ? gzip(labels) : labels);
        CHECK_HAS(error_of([&] { read_idx(q, IdxRole::images); }),
                  q + ": magic 0x00000801 (labels) where an images file (0x00000803) was expected");
        BOOST_TEST(read_idx(q, IdxRole::labels).dims == (Dims{3}), boost::test_tools::per_element());
    }
    auto r = write(t.path("r"), idx_bytes(0x00000802, {2, 3}, pixels(6, 0)));
    CHECK_HAS(error_of([&] { read_idx(r, IdxRole::labels); }),
              r + ": bad magic 0x00000802 where a labels file (0x00000801) was expected");
    auto e = write(t.path("empty-idx1-ubyte.gz"), "");
    CHECK_HAS(error_of([&] { read_idx(e, IdxRole::labels); }), e + ": empty file; too short for an IDX header");
}

BOOST_AUTO_TEST_CASE(an_idx_folder_checks_each_file_s_role) {
    TempDir t;
    write_set(t, true);
    auto spec = idx_spec(t.dir.string());
    write(t.path(kTrainLabels) + ".gz", gzip(idx_bytes(kIdxImagesMagic, {10, 83887105, 151126275}, "")));
    CHECK_HAS(error_of([&] { load_dataset(spec); }),
              t.path(kTrainLabels) + ".gz: magic 0x00000803 (images) where a labels file (0x00000801) was expected");
}
