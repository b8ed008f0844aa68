// The caps of docs/limits.md: input that asks for more than a cap is refused with a clear
// InputError, quickly, and before anything of the size it asks for is allocated.
#define BOOST_TEST_MODULE limits
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <functional>
#include <string>
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/json.hpp"
#include "core/tensor.hpp"
#include "data/csv.hpp"
#include "data/idx.hpp"
#include "core/error.hpp"
#include "core/json.hpp"
#include "core/files.hpp"
#include "graph/memory.hpp"
#include "format/model_json.hpp"
#include "graph/plan.hpp"
#include "core/tensor.hpp"
#include "ops/broadcast.hpp"
#include "train/checkpoint.hpp"
#include "train/run_dir.hpp"
#include "testing.hpp"

using namespace chainrule;
namespace fs = std::filesystem;

namespace {

std::int64_t current_rss_kb() {
    std::ifstream statm("/proc/self/statm");
    std::int64_t size = 0, resident = 0;
    statm >> size >> resident;
    return resident * ::sysconf(_SC_PAGESIZE) / 1024;
}

std::int64_t peak_rss_kb() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

// Runs `f`, which must throw an InputError containing `fragment`, and checks that the
// process's peak memory did not rise more than `limit_mb` above what it used before and
// that it took under a second. The peak can only show an allocation above the earlier
// peak, so the check first requires that the earlier peak leaves room to see one.
void refused_small_and_fast(const std::function<void()>& f, const std::string& fragment, std::int64_t limit_mb = 64) {
    const std::int64_t limit_kb = limit_mb * 1024;
    const std::int64_t before = current_rss_kb();
    BOOST_TEST_REQUIRE(peak_rss_kb() < before + limit_kb, "an earlier test left a high peak; cannot measure");
    auto start = std::chrono::steady_clock::now();
    std::string message;
    try {
        f();
    } catch (const InputError& e) {
        message = e.what();
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    BOOST_TEST(message.find(fragment) != std::string::npos, "message '" << message << "' lacks '" << fragment << "'");
    BOOST_TEST(peak_rss_kb() - before < limit_kb, "peak memory rose " << (peak_rss_kb() - before) / 1024 << " MB");
    BOOST_TEST(seconds < 1.0, "took " << seconds << " s");
}

std::string model_with_parameter_shape(const std::string& shape) {
    return fmt::format(R"({{"format": "chainrule-model", "version": 1,
        "parameters": {{"w": {{"shape": {}, "init": {{"constant": 0.5}}}}}},
        "nodes": [{{"name": "L", "op": "sum", "inputs": ["w"]}}], "outputs": {{"loss": "L"}}}})",
                       shape);
}

}  // namespace

using chainrule::testing::RemoveScratch;
BOOST_TEST_GLOBAL_FIXTURE(RemoveScratch);

BOOST_AUTO_TEST_CASE(shape_of_2_pow_40_elements_is_refused_before_allocation) {
    refused_small_and_fast([] { parse_model(model_with_parameter_shape("[1099511627776]"), "big.json"); },
                           "big.json: parameters.w: shape [1099511627776] has more than 2147483648 elements");
    refused_small_and_fast([] { parse_model(model_with_parameter_shape("[1048576, 1048576]"), "big.json"); },
                           "per-tensor cap");
}

BOOST_AUTO_TEST_CASE(a_few_bytes_of_json_cannot_claim_a_gigabyte_tensor) {
    // The first row of each level claims [1000,1000,1000] (8 GB of float64); the rest is short.
    std::string ones999;
    for (int i = 0; i < 999; ++i) ones999 += i ? ",1" : "1";
    std::string text = "[[[" + ones999 + ",1]," + ones999 + "]," + ones999 + "]";
    refused_small_and_fast([&] { tensor_from_json(parse_json_text(text, "t.json"), "t.json: value"); },
                           "t.json: value[0][1]: expected an array of 1000 elements (the shape is [1000,1000,1000])");
}

BOOST_AUTO_TEST_CASE(deep_nesting_is_refused_by_the_parser) {
    std::string deep = std::string(100000, '[') + std::string(100000, ']');
    refused_small_and_fast([&] { parse_json_text(deep, "deep.json"); }, "deep.json: ");
    refused_small_and_fast([&] { parse_json_text(deep, "deep.json"); }, "nesting deeper than 64 levels");
    // 64 levels are fine: the cap is about nesting no chainrule file needs.
    std::string ok = std::string(64, '[') + std::string(64, ']');
    BOOST_CHECK_NO_THROW(parse_json_text(ok, "ok.json"));
    std::string over = "[" + ok + "]";
    BOOST_CHECK_THROW(parse_json_text(over, "over.json"), InputError);
}

BOOST_AUTO_TEST_CASE(dims_that_overflow_int64_when_multiplied) {
    // 2^32 * 2^32 * 2^32 wraps int64 (to 0), and (2^63-1)^2 wraps to 1: a product computed
    // naively would pass the cap. checked_numel must stop before multiplying.
    constexpr std::int64_t big = std::int64_t{1} << 32;
    constexpr std::int64_t max = INT64_MAX;
    for (const Dims& dims : {Dims{big, big, big}, Dims{max, max}, Dims{max, 2}, Dims{2, max}, Dims{big, 1, big}}) {
        BOOST_TEST_CONTEXT(format_dims(dims)) {
            BOOST_CHECK_EXCEPTION(checked_numel(dims), InputError, [](const InputError& e) {
                return std::string(e.what()).find("per-tensor cap") != std::string::npos;
            });
        }
    }
    refused_small_and_fast(
        [] { parse_model(model_with_parameter_shape("[4294967296, 4294967296, 4294967296]"), "wrap.json"); },
        "wrap.json: parameters.w: shape [4294967296,4294967296,4294967296] has more than");
    refused_small_and_fast(
        [] { parse_model(model_with_parameter_shape("[9223372036854775807, 9223372036854775807]"), "wrap.json"); },
        "per-tensor cap");
    // The cap itself is allowed, one more element is not.
    BOOST_TEST(checked_numel({kMaxElements}) == kMaxElements);
    BOOST_TEST(checked_numel({1 << 16, 1 << 15}) == kMaxElements);
    BOOST_CHECK_THROW(checked_numel({kMaxElements + 1}), InputError);
    BOOST_CHECK_THROW(checked_numel({(1 << 16) + 1, 1 << 15}), InputError);
}

BOOST_AUTO_TEST_CASE(an_op_whose_output_passes_the_cap_is_refused_at_its_node) {
    // [65536,1] + [1,65536] broadcasts to 2^32 elements: each input is small, the sum is not.
    std::string text = R"({"format": "chainrule-model", "version": 1,
        "inputs": {"a": {"shape": [65536, 1]}, "b": {"shape": [1, 65536]}},
        "nodes": [{"name": "s", "op": "add", "inputs": ["a", "b"]}], "outputs": {"prediction": "s"}})";
    refused_small_and_fast([&] { parse_model(text, "outer.json"); },
                           "outer.json: nodes[0]: shape [65536,65536] has more than 2147483648 elements");
}

BOOST_AUTO_TEST_CASE(rank_above_the_cap_is_refused) {
    BOOST_CHECK_EXCEPTION(parse_model(model_with_parameter_shape("[1,1,1,1,1,1,1,1,1]"), "r.json"), InputError,
                          [](const InputError& e) {
                              return std::string(e.what()).find("rank 9 is more than the maximum of 8") !=
                                     std::string::npos;
                          });
    BOOST_CHECK_NO_THROW(parse_model(model_with_parameter_shape("[1,1,1,1,1,1,1,2]"), "r.json"));
    BOOST_TEST(kMaxRank == 8u);
}

BOOST_AUTO_TEST_CASE(text_files_over_1_gib_are_refused_unread) {
    // A sparse file: 1 GiB + 1 byte long, nothing written, so the test costs no disk.
    fs::path p = testing::scratch() / "huge.json";
    {
        std::ofstream out(p);
    }
    fs::resize_file(p, (std::uintmax_t{1} << 30) + 1);
    refused_small_and_fast([&] { read_text_file(p.string()); }, "more than the 1 GiB cap for text files");
    refused_small_and_fast([&] { load_model(p.string()); }, p.string() + ": file is 1073741825 bytes");
    fs::remove(p);
}

namespace {

fs::path temp_file(const std::string& name, const std::string& bytes) {
    fs::path p = testing::scratch() / name;
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
}

std::string big_endian(std::uint32_t v) {
    return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
}

}  // namespace

BOOST_AUTO_TEST_CASE(idx_header_claiming_2_pow_31_images_in_100_bytes) {
    std::string bytes = big_endian(0x803) + big_endian(0x80000000u) + big_endian(28) + big_endian(28);
    bytes.resize(100, '\0');
    fs::path p = temp_file("images.idx", bytes);
    refused_small_and_fast([&] { data::read_idx(p.string()); },
                           "header claims 2147483648 images of 28x28 (1683627180032 bytes); one IDX file is limited "
                           "to 100000000 bytes");
    // Under the payload cap but larger than the file: refused from the file size, unread.
    bytes = big_endian(0x803) + big_endian(100000) + big_endian(28) + big_endian(28);
    bytes.resize(100, '\0');
    fs::path q = temp_file("short.idx", bytes);
    refused_small_and_fast([&] { data::read_idx(q.string()); }, "truncated: header claims 100000 images of 28x28");
    // Every dim at its largest: the side cap stops it before rows * cols * count is formed.
    fs::path r = temp_file("max.idx", big_endian(0x803) + big_endian(0xffffffffu) + big_endian(0xffffffffu) +
                                          big_endian(0xffffffffu));
    refused_small_and_fast([&] { data::read_idx(r.string()); }, "image sides are limited to 1024");
    fs::remove(p);
    fs::remove(q);
    fs::remove(r);
}

BOOST_AUTO_TEST_CASE(idx_gzip_claiming_more_than_deflate_can_hold) {
    // A gzip member of an IDX header alone (claiming 100000 images) is ~40 bytes: deflate
    // cannot expand that to 78 MB, so the reader refuses before inflating anything.
    std::string header = big_endian(0x803) + big_endian(100000) + big_endian(28) + big_endian(28);
    // Stored (uncompressed) deflate block inside a minimal gzip wrapper, CRC and size correct.
    std::string gz = {'\x1f', '\x8b', 8, 0, 0, 0, 0, 0, 0, '\xff'};
    gz += std::string{1, char(header.size()), 0, char(~header.size()), '\xff'} + header;
    std::uint32_t crc = static_cast<std::uint32_t>(::crc32(0, reinterpret_cast<const Bytef*>(header.data()),
                                                            static_cast<uInt>(header.size())));
    for (std::uint32_t v : {crc, std::uint32_t(header.size())})
        for (int k = 0; k < 4; ++k) gz += char(v >> (8 * k));
    fs::path p = temp_file("claims.idx.gz", gz);
    refused_small_and_fast([&] { data::read_idx(p.string()); }, "more than a");
    fs::remove(p);
}

BOOST_AUTO_TEST_CASE(csv_over_its_cap_is_refused_unread) {
    fs::path p = testing::scratch() / "huge.csv";
    {
        std::ofstream out(p);
    }
    fs::resize_file(p, std::uintmax_t(data::kMaxCsvBytes) + 1);
    refused_small_and_fast([&] { data::read_csv(p.string()); }, "file is 67108865 bytes, more than the 64 MiB cap for CSV files");
    fs::remove(p);
}

// The caps above come from the file size; a device has none (/dev/zero says 0 bytes and
// never ends). Every reader refuses it at once, before reading a byte.
BOOST_AUTO_TEST_CASE(an_endless_device_is_refused_unread) {
    const std::string what = "/dev/zero: is not a regular file (a character device)";
    refused_small_and_fast([] { read_text_file("/dev/zero"); }, what);
    refused_small_and_fast([] { load_model("/dev/zero"); }, what);
    refused_small_and_fast([] { data::read_csv("/dev/zero"); }, what);
    refused_small_and_fast([] { data::read_idx("/dev/zero"); }, what);
    refused_small_and_fast([] { read_text_file("/dev/urandom"); }, "/dev/urandom: is not a regular file");
}

// A run of the longest allowed length must write a checkpoint it can read back: the history
// it carries (one entry per epoch, every number at its longest) fits the header cap.
BOOST_AUTO_TEST_CASE(the_history_of_the_longest_run_fits_the_checkpoint_header) {
    namespace fs = std::filesystem;
    fs::path dir = testing::scratch() / "history";
    fs::remove_all(dir);
    Model m = parse_model(R"({"format": "chainrule-model", "version": 1,
        "parameters": {"w": {"shape": [1], "init": {"constant": 1}}},
        "nodes": [{"name": "L", "op": "sum", "inputs": ["w"]}], "outputs": {"loss": "L"}})", "m.json");
    m.graph.init_parameters(0);
    auto header_bytes = [&](std::int64_t epochs) {
        std::vector<EpochMetrics> h;
        for (std::int64_t e = 0; e < epochs; ++e)  // 17 significant digits, longest exponents and signs
            h.push_back({kMaxEpochs, -1.2345678901234567e-308, -1.2345678901234567e-308, 0.12345678901234568,
                         1.2345678901234567e-300, 1.2345678901234567e-300});
        RunDir run(dir.string(), true);  // each size replaces the last
        run.write_epoch(m, make_checkpoint(m.graph, kMaxEpochs, "state", Json::object()), h);
        return std::int64_t(fs::file_size(dir / "checkpoint.ckpt"));
    };
    const std::int64_t base = header_bytes(0), per_epoch = (header_bytes(1000) - base) / 1000;
    BOOST_TEST_MESSAGE("history: " << per_epoch << " bytes per epoch at worst");
    BOOST_TEST(per_epoch > 100);  // the entries were really written
    BOOST_TEST(std::uint64_t(base + per_epoch * kMaxEpochs) < kMaxCheckpointHeader);
    fs::remove_all(dir);
}

namespace {

std::string conv_model(int side, int kernel, const std::string& dtype) {
    return fmt::format(R"({{"format": "chainrule-model", "version": 1, "dtype": "{}",
        "inputs": {{"x": {{"shape": ["N", 1, {}, {}]}}}},
        "parameters": {{"K": {{"shape": [2, 1, {}, {}], "init": {{"constant": 0.5}}}}}},
        "nodes": [{{"name": "h", "op": "conv2d", "inputs": ["x", "K"]}},
                  {{"name": "L", "op": "sum", "inputs": ["h"]}}], "outputs": {{"loss": "L"}}}})",
                       dtype, side, side, kernel, kernel);
}

}  // namespace

BOOST_AUTO_TEST_CASE(an_op_whose_scratch_passes_the_cap_is_refused_at_its_node) {
    // A 500x500 kernel over 600x600 images: im2col's columns alone are 250000 x 10201 values
    // per sample (20 GB of float64) while every tensor of the model is small.
    refused_small_and_fast([] { parse_model(conv_model(600, 500, "float64"), "wide.json"); },
                           "wide.json: nodes[0]: conv2d needs");
    refused_small_and_fast([] { parse_model(conv_model(600, 500, "float64"), "wide.json"); },
                           "of scratch memory for inputs [1,1,600,600], [2,1,500,500]");
}

BOOST_AUTO_TEST_CASE(memory_use_counts_values_gradients_and_the_ops_workspaces) {
    const Model m = parse_model(conv_model(8, 3, "float64"), "small.json");
    const Graph& g = m.graph;
    const MemoryUse use = memory_use(g, Pass::training(), 5);
    // Values at N = 5, float64: x 5·64, K 2·9, h 5·2·36, L 1 elements.
    BOOST_TEST(use.values == (5 * 64 + 18 + 5 * 72 + 1) * 8);
    BOOST_TEST(use.parameters == 18 * 8);
    // The gradients a training step keeps: K's, h's and the loss's at least, x's never.
    BOOST_TEST(use.gradients >= (18 + 5 * 72 + 1) * 8);
    BOOST_TEST(use.gradients < use.values);
    // The workspace is the conv2d's own fact at these dims, and more than nothing.
    const Node& conv = g.node(g.find("h"));
    const std::vector<Dims> in{{5, 1, 8, 8}, {2, 1, 3, 3}};
    BOOST_TEST(use.workspaces == conv.op->workspace(in, conv.attrs, Dtype::f64));
    BOOST_TEST(use.workspaces > 0);
    BOOST_TEST(use.total() == use.values + use.gradients + use.workspaces);
    BOOST_TEST_REQUIRE(use.largest.size() == 3u);
    BOOST_TEST(use.largest[0].bytes >= use.largest[1].bytes);
    // At a batch where x is within the per-tensor cap (N·64 elements) and h is not (N·72), h is named.
    BOOST_CHECK_EXCEPTION(memory_use(g, Pass::training(), 32537631), InputError, [](const InputError& e) {
        return std::string(e.what()).find("nodes[0]: shape [32537631,2,6,6] has more than") != std::string::npos;
    });
}
