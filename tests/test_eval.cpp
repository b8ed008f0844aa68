// `chainrule eval`: the per-row lines (label, predicted class, right/wrong, outputs), the
// confusion matrix, --wrong and --json, checked against each other, against the outputs
// printed on each line (the argmax / >= 0.5 rule) and against iris.data's own order.
#define BOOST_TEST_MODULE eval
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fmt/format.h>
#include <regex>
#include <unistd.h>

#include "core/json.hpp"
#include "testing.hpp"

using namespace chainrule;
using namespace chainrule::testing;
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kIris = {"Iris-setosa", "Iris-versicolor", "Iris-virginica"};

CommandResult cr(const std::string& args) { return run_command(chainrule_binary() + " " + args); }
std::string model(const char* name) { return source_root() + "/models/" + name + ".json"; }

// A run of `name` for `epochs` epochs in a fresh temporary folder (removed at the end).
struct Run {
    fs::path dir;
    std::string model_file;
    Run(const char* name, int epochs) : model_file(model(name)) {
        dir = scratch() / name;
        fs::remove_all(dir);
        CommandResult t = cr("train " + model_file + " --epochs " + std::to_string(epochs) + " --out " + dir.string() +
                             " --no-progress --threads 1");
        BOOST_TEST_REQUIRE(t.code == 0, t.err);
    }
    ~Run() { fs::remove_all(dir); }
    CommandResult eval(const std::string& flags) const {
        return cr("eval " + model_file + " --weights " + dir.string() + " " + flags);
    }
};

struct Line {
    std::int64_t row, file_line;
    std::string label, predicted;
    bool right;
    std::vector<double> outputs;
};

std::vector<Line> prediction_lines(const std::string& out) {
    static const std::regex re(R"(^  row +(\d+)  line +(\d+)  label (\S+) +predicted (\S+) +(right|wrong)  (.*)$)");
    std::vector<Line> lines;
    std::istringstream in(out);
    for (std::string s; std::getline(in, s);) {
        std::smatch m;
        if (!std::regex_match(s, m, re)) continue;
        Line l{std::stoll(m[1]), std::stoll(m[2]), m[3], m[4], m[5] == "right", {}};
        std::istringstream outs(m[6].str());
        for (double v; outs >> v;) l.outputs.push_back(v);
        lines.push_back(l);
    }
    return lines;
}

// The printed matrix: the line of each class name after the header, its counts and total.
std::vector<std::vector<std::int64_t>> printed_matrix(const std::string& out, const std::vector<std::string>& names) {
    auto at = out.find("confusion matrix (rows: true class, columns: predicted class)\n");
    BOOST_TEST_REQUIRE(at != std::string::npos, out);
    std::istringstream in(out.substr(at));
    std::string s;
    std::getline(in, s);
    std::getline(in, s);  // the column names
    std::istringstream head(s);
    for (const auto& n : names) {
        std::string got;
        head >> got;
        BOOST_TEST(got == n);
    }
    std::vector<std::vector<std::int64_t>> m;
    for (const auto& n : names) {
        std::getline(in, s);
        std::istringstream row(s);
        std::string name;
        row >> name;
        BOOST_TEST(name == n);
        std::vector<std::int64_t> counts(names.size());
        std::int64_t total = 0, sum = 0;
        for (auto& c : counts) row >> c, sum += c;
        row >> total;
        BOOST_TEST(total == sum);
        m.push_back(counts);
    }
    return m;
}

std::string name_of_line(std::int64_t file_line) {  // iris.data: 50 setosa, 50 versicolor, 50 virginica
    return kIris[std::size_t((file_line - 1) / 50)];
}

double printed_number(const std::string& out, const std::string& before) {
    auto at = out.find(before);
    BOOST_TEST_REQUIRE(at != std::string::npos, out);
    return std::stod(out.substr(at + before.size()));
}

}  // namespace

using chainrule::testing::RemoveScratch;
BOOST_TEST_GLOBAL_FIXTURE(RemoveScratch);

BOOST_AUTO_TEST_CASE(three_classes_rows_matrix_and_accuracy_agree) {
    Run run("iris_3class", 30);  // after 30 epochs versicolor is still called virginica: a matrix off the diagonal
    CommandResult r = run.eval("--predictions");
    BOOST_TEST_REQUIRE(r.code == 0, r.err);
    std::vector<Line> lines = prediction_lines(r.out);
    BOOST_TEST_REQUIRE(lines.size() == 30u, r.out);
    std::vector<std::vector<std::int64_t>> counted(3, std::vector<std::int64_t>(3, 0));
    std::int64_t right = 0;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const Line& l = lines[i];
        BOOST_TEST(l.row == std::int64_t(i));
        BOOST_TEST(l.label == name_of_line(l.file_line));
        BOOST_TEST_REQUIRE(l.outputs.size() == 3u);
        std::size_t best = std::size_t(std::max_element(l.outputs.begin(), l.outputs.end()) - l.outputs.begin());
        BOOST_TEST(l.predicted == kIris[best], "row " << i);
        BOOST_TEST(l.right == (l.label == l.predicted), "row " << i);
        auto idx = [](const std::string& n) { return std::size_t(std::find(kIris.begin(), kIris.end(), n) - kIris.begin()); };
        ++counted[idx(l.label)][idx(l.predicted)];
        right += l.right;
    }
    BOOST_TEST(right > 0);
    BOOST_TEST(right < 30);  // some wrong, so the marks and the off-diagonal are tested
    BOOST_TEST((printed_matrix(r.out, kIris) == counted));
    BOOST_TEST(printed_number(r.out, "test accuracy ") == double(right) / 30, boost::test_tools::tolerance(5e-5));
    CHECK_HAS(r.out, fmt::format("     30  {} right\n", right));

    // Without --predictions: the same matrix, no rows.
    CommandResult plain = run.eval("");
    BOOST_TEST(prediction_lines(plain.out).empty());
    BOOST_TEST((printed_matrix(plain.out, kIris) == counted));

    // --wrong: exactly the rows marked wrong, and their count.
    CommandResult wrong = run.eval("--wrong");
    std::vector<Line> wl = prediction_lines(wrong.out);
    std::vector<std::int64_t> expected, got;
    for (const auto& l : lines)
        if (!l.right) expected.push_back(l.row);
    for (const auto& l : wl) got.push_back(l.row);
    BOOST_TEST(got == expected);
    CHECK_HAS(wrong.out, fmt::format("{} of 30 rows predicted wrong\n", 30 - right));

    // --json: the same numbers, the rows' outputs those printed to 6 places.
    CommandResult js = run.eval("--predictions --json");
    BOOST_TEST_REQUIRE(js.code == 0, js.err);
    Json j = Json::parse(js.out);
    BOOST_TEST(j["epoch"].get<int>() == 30);
    BOOST_TEST(j["split"] == "test");
    BOOST_TEST(j["count"].get<int>() == 30);
    BOOST_TEST(j["classes"].get<std::vector<std::string>>() == kIris);
    BOOST_TEST((j["confusion"].get<std::vector<std::vector<std::int64_t>>>() == counted));
    BOOST_TEST(j["accuracy"].get<double>() == double(right) / 30);
    BOOST_TEST(j["loss"].get<double>() == printed_number(r.out, "test loss "), boost::test_tools::tolerance(1e-5));
    for (std::size_t k = 0; k < 3; ++k) {
        std::int64_t n = counted[k][0] + counted[k][1] + counted[k][2];
        BOOST_TEST(j["recall"][k].get<double>() == double(counted[k][k]) / double(n));
    }
    BOOST_TEST_REQUIRE(j["predictions"].size() == 30u);
    for (std::size_t i = 0; i < 30; ++i) {
        const Json& p = j["predictions"][i];
        BOOST_TEST(p["line"].get<std::int64_t>() == lines[i].file_line);
        BOOST_TEST(kIris[p["label"].get<std::size_t>()] == lines[i].label);
        BOOST_TEST(kIris[p["predicted"].get<std::size_t>()] == lines[i].predicted);
        BOOST_TEST(p["right"].get<bool>() == lines[i].right);
        for (std::size_t k = 0; k < 3; ++k)
            BOOST_TEST(p["outputs"][k].get<double>() == lines[i].outputs[k], boost::test_tools::tolerance(1e-5));
    }
    Json jw = Json::parse(run.eval("--wrong --json").out);
    BOOST_TEST(jw["predictions"].size() == std::size_t(30 - right));
    BOOST_TEST(!run.eval("--json").out.empty());
    BOOST_TEST(!Json::parse(run.eval("--json").out).contains("predictions"));
}

BOOST_AUTO_TEST_CASE(one_sigmoid_output_is_class_one_from_one_half) {
    Run run("iris_neuron", 5);  // after 5 epochs every output is just above 0.5: setosa is called versicolor
    CommandResult r = run.eval("--predictions");
    BOOST_TEST_REQUIRE(r.code == 0, r.err);
    std::vector<Line> lines = prediction_lines(r.out);
    BOOST_TEST_REQUIRE(lines.size() == 20u, r.out);
    std::vector<std::string> names(kIris.begin(), kIris.begin() + 2);
    std::vector<std::vector<std::int64_t>> counted(2, std::vector<std::int64_t>(2, 0));
    for (const auto& l : lines) {
        BOOST_TEST_REQUIRE(l.outputs.size() == 1u);
        BOOST_TEST(l.label == name_of_line(l.file_line));
        BOOST_TEST(l.predicted == names[l.outputs[0] >= 0.5 ? 1 : 0]);
        BOOST_TEST(l.right == (l.label == l.predicted));
        ++counted[l.label == names[1]][l.predicted == names[1]];
    }
    BOOST_TEST(counted[0][1] > 0);  // the wrong ones exist
    BOOST_TEST((printed_matrix(r.out, names) == counted));
    // --train-split says which split its figures are of.
    CommandResult train = run.eval("--train-split");
    CHECK_HAS(train.out, "on the training split (80 samples)");
    CHECK_HAS(train.out, "training accuracy ");
}
