#define BOOST_TEST_MODULE csv
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fmt/format.h>
#include <sys/stat.h>
#include <fstream>
#include <unistd.h>

#include "data/csv.hpp"
#include "data/dataset.hpp"
#include "core/error.hpp"
#include "testing.hpp"

using namespace chainrule;
using namespace chainrule::data;
namespace fs = std::filesystem;

namespace {

const char* kWhere = "models/x.json: training.data";

// A fresh folder per test in this process's scratch folder (removed when the tests end).
struct TempDir {
    fs::path dir = testing::fresh_scratch_dir("csv");
    std::string write(const std::string& name, const std::string& text) const {
        std::ofstream(dir / name, std::ios::binary) << text;
        return (dir / name).string();
    }
};

template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const InputError& e) {
        return e.what();
    }
    return "(no InputError)";
}


std::string iris_dir_base() { return (fs::path(testing::source_root()) / "models").string(); }

DataSpec iris_spec(const std::string& extra) {
    std::string text = R"({"kind":"csv","path":"../data/iris.data","features":[0,1,2,3],"label":4)" + extra + "}";
    return parse_data_spec(Json::parse(text), kWhere, iris_dir_base());
}

DataSpec small_spec(const std::string& path, const std::string& extra = "") {
    std::string text = R"({"kind":"csv","path":")" + path + R"(","features":[0,1],"label":2)" + extra + "}";
    return parse_data_spec(Json::parse(text), kWhere, "");
}

std::vector<std::int64_t> range(std::int64_t a, std::int64_t b) {
    std::vector<std::int64_t> v;
    for (auto i = a; i < b; ++i) v.push_back(i);
    return v;
}

}  // namespace

using chainrule::testing::RemoveScratch;
BOOST_TEST_GLOBAL_FIXTURE(RemoveScratch);

BOOST_AUTO_TEST_CASE(lecture_split_of_the_first_100_rows) {
    Dataset ds = load_dataset(iris_spec(R"(,"classes":["Iris-setosa","Iris-versicolor"],"rows":[0,100],
                                          "split":{"per_class_train_fraction":0.8})"));
    BOOST_TEST(ds.classes == 2);
    BOOST_TEST(ds.train.count == 80);
    BOOST_TEST(ds.test.count == 20);
    // source_lines are 1-based lines; data row i is line i + 1 (no header).
    auto train_rows = range(0, 40), rest = range(50, 90);
    train_rows.insert(train_rows.end(), rest.begin(), rest.end());
    auto test_rows = range(40, 50), rest2 = range(90, 100);
    test_rows.insert(test_rows.end(), rest2.begin(), rest2.end());
    std::vector<std::int64_t> got_train, got_test;
    for (auto l : ds.train.source_lines) got_train.push_back(l - 1);
    for (auto l : ds.test.source_lines) got_test.push_back(l - 1);
    BOOST_TEST(got_train == train_rows, boost::test_tools::per_element());
    BOOST_TEST(got_test == test_rows, boost::test_tools::per_element());
    for (std::int64_t i = 0; i < 80; ++i) BOOST_TEST(ds.train.labels[std::size_t(i)] == (i < 40 ? 0 : 1));
    for (std::int64_t i = 0; i < 20; ++i) BOOST_TEST(ds.test.labels[std::size_t(i)] == (i < 10 ? 0 : 1));
    // Row 0 of iris.data is 5.1,3.5,1.4,0.2; row 40 (first test row) is 5.0,3.5,1.3,0.3.
    std::vector<double> first(ds.train.values.begin(), ds.train.values.begin() + 4);
    BOOST_TEST(first == (std::vector<double>{5.1, 3.5, 1.4, 0.2}), boost::test_tools::per_element());
    std::vector<double> first_test(ds.test.values.begin(), ds.test.values.begin() + 4);
    BOOST_TEST(first_test == (std::vector<double>{5.0, 3.5, 1.3, 0.3}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(all_150_rows_three_classes) {
    Dataset ds = load_dataset(iris_spec(R"(,"classes":["Iris-setosa","Iris-versicolor","Iris-virginica"])"));
    BOOST_TEST(ds.train.count == 120);
    BOOST_TEST(ds.test.count == 30);
    BOOST_TEST(ds.train.features == 4);
    BOOST_TEST(ds.train.sample_dims == Dims{4}, boost::test_tools::per_element());
    std::vector<int> per_class(3, 0);
    for (auto l : ds.test.labels) ++per_class[std::size_t(l)];
    BOOST_TEST(per_class == (std::vector<int>{10, 10, 10}), boost::test_tools::per_element());
    BOOST_TEST(ds.test.source_lines.front() == 41);
    BOOST_TEST(ds.test.source_lines.back() == 150);
    BOOST_TEST(ds.train.source_lines.back() == 140);
}

BOOST_AUTO_TEST_CASE(classes_default_to_order_of_first_appearance) {
    TempDir tmp;
    auto path = tmp.write("t.csv", "1,2,b\n3,4,a\n5,6,b\n7,8,a\n");
    Dataset ds = load_dataset(small_spec(path, R"(,"split":{"per_class_train_fraction":0.5})"));
    BOOST_TEST(ds.class_names == (std::vector<std::string>{"b", "a"}), boost::test_tools::per_element());
    BOOST_TEST(ds.train.labels == (std::vector<std::int32_t>{0, 1}), boost::test_tools::per_element());
    BOOST_TEST(ds.train.source_lines == (std::vector<std::int64_t>{1, 2}), boost::test_tools::per_element());
    BOOST_TEST(ds.test.source_lines == (std::vector<std::int64_t>{3, 4}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(split_rounds_to_nearest_per_class) {
    // 7 rows of a (0.8 * 7 = 5.6 -> 6 train), 3 of b (2.4 -> 2), 1 of c (0.8 -> 1, none to test).
    TempDir tmp;
    std::string text;
    for (int i = 0; i < 7; ++i) text += std::to_string(i) + ",0,a\n";
    for (int i = 0; i < 3; ++i) text += std::to_string(i) + ",1,b\n";
    text += "9,9,c\n";
    Dataset ds = load_dataset(small_spec(tmp.write("r.csv", text)));
    BOOST_TEST(ds.train.count == 9);
    BOOST_TEST(ds.test.source_lines == (std::vector<std::int64_t>{7, 10}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(crlf_bom_spaces_and_trailing_empty_lines_are_fine) {
    TempDir tmp;
    auto path = tmp.write("crlf.csv", "\xEF\xBB\xBF" "1.5, -2 ,x\r\n+3,4e1,y\r\n5,6,x\r\n7,8,y\r\n\r\n\n");
    Dataset ds = load_dataset(small_spec(path, R"(,"classes":["x","y"],"split":{"per_class_train_fraction":0.5})"));
    BOOST_TEST(ds.train.values == (std::vector<double>{1.5, -2, 3, 40}), boost::test_tools::per_element());
    BOOST_TEST(ds.test.values == (std::vector<double>{5, 6, 7, 8}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(bad_files_name_file_and_line) {
    TempDir tmp;
    const std::string good = "1,2,a\n3,4,b\n";
    struct Case {
        std::string text, where, what;
    };
    std::vector<Case> cases = {
        {good + "5,,a\n", ":3:", "column 1 is empty; expected a number"},
        {good + "nan,1,a\n", ":3:", "'nan' is not a finite number"},
        {good + "1,inf,a\n", ":3:", "'inf' is not a finite number"},
        {good + "1,abc,a\n", ":3:", "'abc' is not a finite number"},
        {good + "1,1e999,a\n", ":3:", "'1e999' is not a finite number"},
        {good + "1,2,3,a\n", ":3:", "4 fields, expected 3 comma-separated fields as on line 1"},
        {good + "1,2\n", ":3:", "2 fields, expected 3"},
        {good + "1,2,c\n", ":3:", "label 'c' in column 2 is not one of the classes (a, b)"},
        {good + "1,2,\n", ":3:", "column 2 is empty; expected a class name"},
        {good + "\n1,2,a\n", ":3:", "empty line inside the data"},
        {"", ":1:", "the file has no data"},
        {"\r\n\n", ":1:", "the file has no data"},
    };
    for (std::size_t i = 0; i < cases.size(); ++i) {
        auto path = tmp.write("bad" + std::to_string(i) + ".csv", cases[i].text);
        std::string msg = error_of([&] { load_dataset(small_spec(path, R"(,"classes":["a","b"])")); });
        CHECK_HAS(msg, path + cases[i].where);
        CHECK_HAS(msg, cases[i].what);
    }
}

BOOST_AUTO_TEST_CASE(missing_file) {
    std::string msg = error_of([&] { load_dataset(small_spec("/nonexistent/none.csv")); });
    CHECK_HAS(msg, "/nonexistent/none.csv: cannot open: No such file or directory");
}

// A missing `path` names the model file, the JSON path, the folder a relative path was taken
// from and what it became there: the usual mistake is a path written from the working directory.
BOOST_AUTO_TEST_CASE(a_missing_path_says_where_relative_paths_start) {
    TempDir tmp;
    const std::string models = (tmp.dir / "models").string(), data = (tmp.dir / "data").string();
    const std::string block = R"({"kind":"csv","path":"data/iris.csv","features":[0],"label":1})";
    std::string msg = error_of([&] { load_dataset(parse_data_spec(Json::parse(block), kWhere, models)); });
    CHECK_HAS(msg, "models/x.json: training.data.path: " + models + "/data/iris.csv: cannot open: No such file or "
                   "directory; expected a CSV file; a relative path in a model is taken from the model file's "
                   "folder, here '" + models + "', so \"data/iris.csv\" names " + models + "/data/iris.csv");
    // "../data/iris.csv" from models/ is data/iris.csv, written out as the path it became.
    const std::string up = R"({"kind":"csv","path":"../data/iris.csv","features":[0],"label":1})";
    msg = error_of([&] { load_dataset(parse_data_spec(Json::parse(up), kWhere, models)); });
    CHECK_HAS(msg, "so \"../data/iris.csv\" names " + data + "/iris.csv");
    // A model in the working directory: its folder is that one.
    msg = error_of([&] { load_dataset(parse_data_spec(Json::parse(block), kWhere, "")); });
    CHECK_HAS(msg, "training.data.path: data/iris.csv: cannot open");
    CHECK_HAS(msg, "taken from the model file's folder, here the working directory ('.'), so \"data/iris.csv\" "
                   "names data/iris.csv");
    // An absolute path is named as one, with the rule beside it.
    msg = error_of([&] { load_dataset(small_spec("/nonexistent/none.csv")); });
    CHECK_HAS(msg, "models/x.json: training.data.path: /nonexistent/none.csv: cannot open: No such file or directory; "
                   "expected a CSV file; \"/nonexistent/none.csv\" is absolute (a relative path would be taken "
                   "from the model file's folder, here the working directory ('.'))");
    // Something there that is no file is the reader's to name (and needs no rule about folders).
    msg = error_of([&] { load_dataset(small_spec(tmp.dir.string())); });
    CHECK_HAS(msg, tmp.dir.string() + ": is a directory; expected a file");
    BOOST_TEST(msg.find("relative path") == std::string::npos, msg);
}

BOOST_AUTO_TEST_CASE(spec_errors_name_the_json_path) {
    struct Case {
        std::string json, what;
    };
    const std::string head = R"("kind":"csv","path":"a.csv")";
    std::vector<Case> cases = {
        {R"({"kind":"csv","path":"a.csv","features":[0],"label":1,"colour":1})", "training.data: unknown key 'colour'"},
        {R"({"kind":"tsv"})", "training.data.kind: unknown data kind 'tsv'"},
        {R"({"kind":"csv","features":[0],"label":1})", "training.data: missing required key 'path'"},
        {R"({"kind":"csv","path":3,"features":[0],"label":1})", "training.data.path: expected a string"},
        {"{" + head + R"(,"features":[0,-1],"label":4})", "training.data.features[1]: -1 is out of range"},
        {"{" + head + R"(,"features":[0,0],"label":4})", "training.data.features[1]: column 0 is listed twice"},
        {"{" + head + R"(,"features":[],"label":4})", "training.data.features: expected at least one"},
        {"{" + head + R"(,"features":"0","label":4})", "training.data.features: expected an array"},
        {"{" + head + R"(,"features":[0.5],"label":4})", "training.data.features[0]: expected an integer"},
        {"{" + head + R"(,"features":[0],"label":-2})", "training.data.label: -2 is out of range"},
        {"{" + head + R"(,"features":[0],"label":0})", "training.data.label: column 0 is also a feature"},
        {"{" + head + R"(,"features":[0],"label":2000000})",
         "training.data.label: 2000000 is out of range; expected a 0-based column index from 0 to 1000000"},
        {"{" + head + R"(,"features":[0],"label":1,"rows":[5,5]})", "training.data.rows: [5, 5) is empty"},
        {"{" + head + R"(,"features":[0],"label":1,"rows":[9,3]})", "training.data.rows: [9, 3) is empty"},
        {"{" + head + R"(,"features":[0],"label":1,"rows":[-1,3]})", "training.data.rows[0]: -1 is out of range"},
        {"{" + head + R"(,"features":[0],"label":1,"rows":[1]})", "training.data.rows: expected [start, end]"},
        {"{" + head + R"(,"features":[0],"label":1,"split":{"per_class_train_fraction":1.0}})",
         "training.data.split.per_class_train_fraction: 1 is out of range"},
        {"{" + head + R"(,"features":[0],"label":1,"split":{"per_class_train_fraction":0}})",
         "training.data.split.per_class_train_fraction: 0 is out of range"},
        {"{" + head + R"(,"features":[0],"label":1,"split":{"fraction":0.5}})",
         "training.data.split: unknown key 'fraction'"},
        {"{" + head + R"(,"features":[0],"label":1,"classes":["a","b","a"]})",
         "training.data.classes[2]: duplicate class name 'a' (also at index 0)"},
        {"{" + head + R"(,"features":[0],"label":1,"classes":["a",""]})", "training.data.classes[1]: empty class name"},
        {"{" + head + R"(,"features":[0],"label":1,"limit":{"train":0}})", "training.data.limit.train: 0 is out of range"},
        {R"({"kind":"idx"})", "training.data: missing required key 'dir'"},
        {R"({"kind":"idx","dir":"d","path":"x"})", "training.data: unknown key 'path'"},
        {R"([1])", "training.data: expected an object"},
    };
    for (const auto& c : cases) {
        std::string msg = error_of([&] { parse_data_spec(Json::parse(c.json), kWhere, "models"); });
        CHECK_HAS(msg, std::string("models/x.json: ") + c.what);
    }
}

BOOST_AUTO_TEST_CASE(spec_paths_resolve_against_the_model_folder) {
    DataSpec s = iris_spec("");
    BOOST_TEST(s.path == (fs::path(testing::source_root()) / "data/iris.data").lexically_normal().string());
    DataSpec abs = parse_data_spec(Json::parse(R"({"kind":"idx","dir":"/abs/mnist"})"), kWhere, "models");
    BOOST_TEST(abs.dir == "/abs/mnist");
    DataSpec rel = parse_data_spec(Json::parse(R"({"kind":"idx","dir":"../data/mnist"})"), kWhere, "models");
    BOOST_TEST(rel.dir == "data/mnist");
    BOOST_TEST(s.train_fraction == 0.8);
    BOOST_TEST(s.row_begin == 0);
    BOOST_TEST(s.row_end == -1);
}

BOOST_AUTO_TEST_CASE(spec_errors_found_at_load_name_the_json_path) {
    std::string msg = error_of([&] { load_dataset(iris_spec(R"(,"rows":[100,151])")); });
    CHECK_HAS(msg, "models/x.json: training.data.rows: [100, 151) does not fit the 150 data rows");
    DataSpec s = parse_data_spec(Json::parse(R"({"kind":"csv","path":"../data/iris.data","features":[0,7],"label":4})"),
                                 kWhere, iris_dir_base());
    msg = error_of([&] { load_dataset(s); });
    CHECK_HAS(msg, "models/x.json: training.data.features[1]: column 7 is out of range");
    CHECK_HAS(msg, "has 5 columns");
    // Two rows of one class: 0.8 * 2 rounds to 2, nothing is left for testing.
    msg = error_of([&] { load_dataset(iris_spec(R"(,"rows":[0,2])")); });
    CHECK_HAS(msg, "training.data: the split leaves no test rows");
}

BOOST_AUTO_TEST_CASE(limit_keeps_the_first_rows_of_each_split) {
    Dataset ds = load_dataset(iris_spec(R"(,"limit":{"train":5,"test":3})"));
    BOOST_TEST(ds.train.count == 5);
    BOOST_TEST(ds.train.values.size() == 20u);
    BOOST_TEST(ds.test.count == 3);
    BOOST_TEST(ds.test.source_lines == (std::vector<std::int64_t>{41, 42, 43}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(gather_features_labels_and_one_hot) {
    Dataset ds = load_dataset(iris_spec(R"(,"classes":["Iris-setosa","Iris-versicolor","Iris-virginica"])"));
    BOOST_TEST(has_stream(ds, "features"));
    BOOST_TEST(has_stream(ds, "labels_one_hot"));
    BOOST_TEST(!has_stream(ds, "images"));
    BOOST_TEST(stream_width(ds, "features") == 4);
    BOOST_TEST(stream_width(ds, "labels") == 1);
    BOOST_TEST(stream_width(ds, "labels_one_hot") == 3);
    CHECK_HAS(error_of([&] { stream_width(ds, "images"); }), "csv data offers: features, labels, labels_one_hot");

    // Train rows 0 (line 1, setosa) and 119 (line 140, virginica), then 40 (line 51, versicolor).
    std::vector<std::int64_t> rows = {0, 119, 40};
    Tensor f32(Dtype::f32, {3, 4});
    gather(ds, ds.train, "features", rows, f32);
    const float want32[] = {5.1f, 3.5f, 1.4f, 0.2f, 6.9f, 3.1f, 5.4f, 2.1f, 7.0f, 3.2f, 4.7f, 1.4f};
    for (int i = 0; i < 12; ++i) BOOST_TEST(f32.data<float>()[i] == want32[i]);
    Tensor f64(Dtype::f64, {3, 4});
    gather(ds, ds.train, "features", rows, f64);
    BOOST_TEST(f64.at(4) == 6.9);
    BOOST_TEST(f64.at(11) == 1.4);

    Tensor labels(Dtype::f64, {3, 1});
    gather(ds, ds.train, "labels", rows, labels);
    BOOST_TEST(labels.at(0) == 0.0);
    BOOST_TEST(labels.at(1) == 2.0);
    BOOST_TEST(labels.at(2) == 1.0);

    Tensor hot(Dtype::f32, {3, 3});
    hot.fill(7);  // stale values must be cleared
    gather(ds, ds.train, "labels_one_hot", rows, hot);
    const double want_hot[] = {1, 0, 0, 0, 0, 1, 0, 1, 0};
    for (int i = 0; i < 9; ++i) BOOST_TEST(hot.at(i) == want_hot[i]);

    Tensor wrong(Dtype::f64, {3, 5});
    CHECK_HAS(error_of([&] { gather(ds, ds.train, "features", rows, wrong); }),
              "data stream 'features' gives 4 values per sample, but the input it feeds has shape [3,5]");
    std::vector<std::int64_t> bad_rows = {120};
    Tensor one(Dtype::f64, {1, 4});
    BOOST_CHECK_THROW(gather(ds, ds.train, "features", bad_rows, one), RunError);
}

BOOST_AUTO_TEST_CASE(one_sign_only) {
    BOOST_TEST(parse_number("+5.1").value() == 5.1);
    BOOST_TEST(parse_number("-5.1").value() == -5.1);
    for (const char* bad : {"+-5.1", "-+5.1", "++5", "--5", "+", "-"})
        BOOST_TEST(!parse_number(bad).has_value(), bad);
    TempDir t;
    auto p = t.write("signs.csv", "1,2,a\n+-5.1,2,b\n");
    CHECK_HAS(error_of([&] { csv_dataset(read_csv(p), small_spec(p)); }),
              p + ":2: column 0 '+-5.1' is not a finite number");
}

// Inferred classes are looked up in a hash map and capped: a column of ids taken for the
// label is refused at the first name past the cap, not loaded as 200,000 classes.
BOOST_AUTO_TEST_CASE(inferred_classes_are_capped) {
    TempDir t;
    std::string text;
    for (int i = 0; i < int(kMaxCsvClasses); ++i) text += fmt::format("{},1,c{}\n{},2,c{}\n", i, i, i, i);
    auto p = t.write("at_cap.csv", text);
    Dataset ds = csv_dataset(read_csv(p), small_spec(p, R"(,"split":{"per_class_train_fraction":0.5})"));
    BOOST_TEST(ds.classes == kMaxCsvClasses);
    BOOST_TEST(ds.class_names.back() == "c255");
    BOOST_TEST(ds.train.labels.back() == 255);
    auto q = t.write("past_cap.csv", text + "1,1,c0\n1,1,id-257\n");
    CHECK_HAS(error_of([&] { csv_dataset(read_csv(q), small_spec(q)); }),
              q + ":514: label 'id-257' in column 2 would be class 257; without a classes list a label column may "
                  "hold at most 256 distinct names");
}

BOOST_AUTO_TEST_CASE(repeated_labels_map_to_one_class) {
    TempDir t;
    auto p = t.write("repeat.csv", "1,1,b\n2,2,a\n3,3,b\n4,4,a\n5,5,c\n");
    DataSpec spec = small_spec(p, R"(,"split":{"per_class_train_fraction":0.5})");
    Dataset ds = csv_dataset(read_csv(p), spec);
    BOOST_TEST(ds.class_names == (std::vector<std::string>{"b", "a", "c"}), boost::test_tools::per_element());
    // b: lines 1, 3 -> first trains; a: lines 2, 4 -> first trains; c: line 5 trains.
    BOOST_TEST(ds.train.labels == (std::vector<std::int32_t>{0, 1, 2}), boost::test_tools::per_element());
    BOOST_TEST(ds.test.labels == (std::vector<std::int32_t>{0, 1}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(non_regular_files_are_refused_unread) {
    TempDir t;
    std::string fifo = (t.dir / "fifo.csv").string();
    BOOST_TEST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    CHECK_HAS(error_of([&] { read_csv(fifo); }), fifo + ": is not a regular file (a FIFO)");
    CHECK_HAS(error_of([&] { read_csv(t.dir.string()); }), t.dir.string() + ": is a directory");
    CHECK_HAS(error_of([&] { read_csv("/dev/zero"); }), "/dev/zero: is not a regular file (a character device)");
}
