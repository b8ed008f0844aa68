// The table of data kinds (data/kind.hpp): what every entry must provide, what the callers
// ask it (streams, widths, hints, the unknown-kind message), and the stream forms a next kind
// (text: token ids, a label per position) would use.
#define BOOST_TEST_MODULE data_kinds
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "data/csv.hpp"
#include "data/dataset.hpp"
#include "data/idx.hpp"
#include "data/kind.hpp"
#include "testing.hpp"

using namespace chainrule;
using namespace chainrule::data;
namespace fs = std::filesystem;

namespace {

template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const InputError& e) {
        return e.what();
    }
    return "(no InputError)";
}

std::vector<std::string> names_of(std::span<const StreamDef> streams) {
    std::vector<std::string> names;
    for (const StreamDef& s : streams) names.emplace_back(s.name);
    return names;
}

std::vector<double> values(const Tensor& t) {
    std::vector<double> v;
    for (std::int64_t i = 0; i < t.numel(); ++i) v.push_back(t.at(i));
    return v;
}

DataSpec spec_of(const std::string& json) { return parse_data_spec(Json::parse(json), "m.json: training.data", ""); }

}  // namespace

BOOST_AUTO_TEST_CASE(the_table_lists_each_kind_once_by_name) {
    std::vector<std::string> names;
    for (const DataKind* k : data_kinds()) names.emplace_back(k->name);
    BOOST_TEST(names == (std::vector<std::string>{"csv", "idx", "text"}), boost::test_tools::per_element());
    BOOST_TEST(find_data_kind("csv") == &csv_kind());
    BOOST_TEST(find_data_kind("idx") == &idx_kind());
    BOOST_TEST(find_data_kind("tsv") == nullptr);
    BOOST_TEST(find_data_kind("") == nullptr);
    BOOST_TEST(data_kind_list() == R"("csv", "idx" or "text")");
    // The unknown-kind message lists the table's names.
    CHECK_HAS(error_of([] { spec_of(R"({"kind":"parquet"})"); }),
              R"(m.json: training.data.kind: unknown data kind 'parquet'; expected "csv", "idx" or "text")");
    CHECK_HAS(error_of([] { data_kind("tsv", "here"); }), R"(here: unknown data kind 'tsv'; expected "csv", "idx" or "text")");
}

// What a new kind's entry must give; the callers (training, the feeder, `chainrule data`)
// rely on each field without asking which kind it is.
BOOST_AUTO_TEST_CASE(every_entry_is_complete) {
    for (const DataKind* k : data_kinds()) {
        BOOST_TEST_CONTEXT(k->name) {
            BOOST_TEST(k->title != nullptr);
            BOOST_TEST(k->parse != nullptr);
            BOOST_TEST(k->validate != nullptr);
            BOOST_TEST(k->load != nullptr);
            BOOST_TEST(k->source != nullptr);
            BOOST_TEST(k->describe != nullptr);
            BOOST_TEST(k->stored_as != nullptr);
            BOOST_TEST_REQUIRE(!k->streams.empty());
            // The sample stream first, then the label streams; images are pixels.
            const StreamForm sample = k->streams.front().form;
            BOOST_TEST((sample != StreamForm::class_ids && sample != StreamForm::one_hot));
            BOOST_TEST(k->images == (sample == StreamForm::pixels));
            if (!k->images) BOOST_TEST(k->sample_text != nullptr);
            for (std::size_t i = 1; i < k->streams.size(); ++i)
                BOOST_TEST((k->streams[i].form == StreamForm::class_ids || k->streams[i].form == StreamForm::one_hot));
        }
    }
}

BOOST_AUTO_TEST_CASE(streams_sample_first) {
    BOOST_TEST(names_of(csv_kind().streams) == (std::vector<std::string>{"features", "labels", "labels_one_hot"}),
               boost::test_tools::per_element());
    BOOST_TEST(names_of(idx_kind().streams) == (std::vector<std::string>{"images", "labels", "labels_one_hot"}),
               boost::test_tools::per_element());
    BOOST_TEST(stream_names("csv", false) == std::vector<std::string>{"features"}, boost::test_tools::per_element());
    BOOST_TEST(stream_names("parquet").empty());
    BOOST_TEST(stream_list("idx") == "images, labels or labels_one_hot");
    BOOST_TEST(csv_kind().images == false);
    BOOST_TEST(idx_kind().images == true);
}

BOOST_AUTO_TEST_CASE(widths_the_spec_gives) {
    DataSpec csv = spec_of(R"({"kind":"csv","path":"a.csv","features":[0,2,5],"label":1,"classes":["a","b"]})");
    BOOST_TEST(*stream_width_from_spec(csv, "features") == 3);
    BOOST_TEST(*stream_width_from_spec(csv, "labels") == 1);
    BOOST_TEST(*stream_width_from_spec(csv, "labels_one_hot") == 2);
    BOOST_TEST(!stream_width_from_spec(csv, "images"));
    DataSpec unlisted = spec_of(R"({"kind":"csv","path":"a.csv","features":[0],"label":1})");
    BOOST_TEST(!stream_width_from_spec(unlisted, "labels_one_hot"));  // the file says how many
    DataSpec idx = spec_of(R"({"kind":"idx","dir":"d"})");
    BOOST_TEST(!stream_width_from_spec(idx, "images"));  // the files say how large
    BOOST_TEST(*stream_width_from_spec(idx, "labels") == 1);
}

// The hint behind "did you forget ...?" and `--rows --data DIR`'s feeds.
BOOST_AUTO_TEST_CASE(likely_streams_by_width) {
    DataSpec csv = spec_of(R"({"kind":"csv","path":"a.csv","features":[0,1,2,3],"label":4,"classes":["a","b","c"]})");
    BOOST_TEST(likely_stream(csv, 4) == "features");
    BOOST_TEST(likely_stream(csv, 3) == "labels_one_hot");
    BOOST_TEST(likely_stream(csv, 7) == "features");
    BOOST_TEST(likely_stream(csv, std::nullopt) == "features");
    DataSpec idx = spec_of(R"({"kind":"idx","dir":"d"})");
    BOOST_TEST(likely_stream(idx, 784) == "images");
    BOOST_TEST(likely_stream(idx, 10) == "labels_one_hot");
    BOOST_TEST(likely_stream(idx, 5) == "labels_one_hot");
    BOOST_TEST(likely_stream(idx, std::nullopt) == "images");
    DataSpec fashion = spec_of(R"({"kind":"idx","dir":"d","classes":["a","b","c"]})");
    BOOST_TEST(likely_stream(fashion, 3) == "labels_one_hot");
}

BOOST_AUTO_TEST_CASE(specs_made_without_a_block) {
    DataSpec folder = idx_folder_spec("some/dir", "--data");
    BOOST_TEST(folder.kind == "idx");
    BOOST_TEST(folder.dir == "some/dir");
    BOOST_TEST(folder.where == "--data");
    BOOST_TEST(folder.written.empty());
    BOOST_TEST(idx_kind().source(folder) == "some/dir");
    BOOST_TEST(idx_kind().describe(folder).empty());
    const std::string iris = (fs::path(testing::source_root()) / "data/iris.data").string();
    std::string note;
    DataSpec guessed = guess_csv_spec(iris, note);
    BOOST_TEST(guessed.kind == "csv");
    BOOST_TEST(guessed.label == 4);
    BOOST_TEST(csv_kind().source(guessed) == iris);
    BOOST_TEST(note == "5 columns; features: columns 0,1,2,3; label: column 4; no split (a model's training.data "
                       "block defines one)");
    DataSpec iris_block = parse_data_spec(
        Json::parse(R"({"kind":"csv","path":"../data/iris.data","features":[0,1,2,3],"label":4,"rows":[0,100]})"),
        "m.json: training.data", (fs::path(testing::source_root()) / "models").string());
    BOOST_TEST(csv_kind().describe(iris_block) ==
               "rows [0, 100), features: columns 0,1,2,3, label: column 4; per class the first 80% (rounded) train, "
               "the rest test");
    Dataset ds = load_dataset(iris_block);
    BOOST_TEST(csv_kind().sample_text(ds, ds.train, 0) == "line 1: 5.1, 3.5, 1.4, 0.2 -> Iris-setosa");
}

// A text kind (next characters of words) keeps token ids and, for a transformer, a label per
// position: the forms it needs are there and fed like the others.
BOOST_AUTO_TEST_CASE(token_ids_and_a_label_per_position_are_fed) {
    Dataset ds;
    ds.kind = "csv";  // any kind: the streams below are given by their definitions
    ds.classes = 5;
    ds.labels_per_sample = 3;
    Split& s = ds.train;
    s.count = 2;
    s.features = 3;
    s.tokens = {0, 1, 2, 0, 3, 4};  // two windows of three token ids
    s.labels = {1, 2, 0, 3, 4, 0};  // the next token at each position
    const std::vector<std::int64_t> rows = {1, 0};

    const StreamDef tokens{"tokens", StreamForm::tokens, nullptr};
    Tensor x(Dtype::f32, {2, 3});
    gather(ds, s, tokens, rows, x);
    BOOST_TEST(values(x) == (std::vector<double>{0, 3, 4, 0, 1, 2}), boost::test_tools::per_element());

    BOOST_TEST(stream_width(ds, "labels") == 3);
    Tensor y(Dtype::f64, {2, 3});
    gather(ds, s, "labels", rows, y);
    BOOST_TEST(values(y) == (std::vector<double>{3, 4, 0, 1, 2, 0}), boost::test_tools::per_element());

    BOOST_TEST(stream_width(ds, "labels_one_hot") == 15);
    Tensor hot(Dtype::f64, {2, 15});
    hot.fill(7);  // stale values must be cleared
    gather(ds, s, "labels_one_hot", rows, hot);
    std::vector<double> want(30, 0.0);
    const int ids[] = {3, 4, 0, 1, 2, 0};
    for (int p = 0; p < 6; ++p) want[std::size_t(p * 5 + ids[p])] = 1;
    BOOST_TEST(values(hot) == want, boost::test_tools::per_element());

    Tensor wrong(Dtype::f64, {2, 1});
    CHECK_HAS(error_of([&] { gather(ds, s, "labels", rows, wrong); }),
              "data stream 'labels' gives 3 values per sample, but the input it feeds has shape [2,1] for a batch of 2");
}
