// Using what was trained: --weights RUN at a point (grad, gradcheck, step, dot), each row's
// label and prediction in `step`, and `chainrule predict` on new rows.
#define BOOST_TEST_MODULE predict
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <functional>

#include "core/files.hpp"
#include "core/json.hpp"
#include "testing.hpp"

using namespace chainrule;
using namespace chainrule::testing;
namespace fs = std::filesystem;

namespace {

CommandResult cr(const std::string& args) { return run_command(chainrule_binary() + " " + args); }
std::string model(const char* name) { return source_root() + "/models/" + name + ".json"; }

// A model file like models/NAME.json with `change` applied; its data paths made absolute.
std::string variant(const char* name, const std::string& as, const std::function<void(Json&)>& change) {
    Json j = Json::parse(read_text_file(model(name)));
    if (j.contains("training") && j["training"]["data"].contains("path"))
        j["training"]["data"]["path"] = fs::absolute(source_root() + "/data/iris.data").string();
    change(j);
    fs::path p = scratch() / (as + ".json");
    std::ofstream(p) << j.dump(1);
    return p.string();
}

// Trains a model into a run directory once per name.
std::string trained(const std::string& model_path, const std::string& name, const std::string& flags) {
    fs::path run = scratch() / ("run_" + name);
    if (!fs::exists(run / "checkpoint.ckpt")) {
        CommandResult r = cr("train " + model_path + " --out " + run.string() + " --no-progress " + flags);
        BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
    }
    return run.string();
}

std::string iris_run() { return trained(model("iris_neuron"), "iris", "--epochs 50"); }

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(RemoveScratch);

BOOST_AUTO_TEST_CASE(weights_put_a_runs_parameters_at_the_point) {
    const std::string run = iris_run();
    CommandResult fresh = cr("grad " + model("iris_neuron") + " --json");
    CommandResult with = cr("grad " + model("iris_neuron") + " --weights " + run + " --json");
    CommandResult file = cr("grad " + model("iris_neuron") + " --weights " + run + "/checkpoint.ckpt --json");
    BOOST_REQUIRE_MESSAGE(with.code == 0, with.err);
    BOOST_REQUIRE_MESSAGE(file.code == 0, file.err);
    CHECK_HAS(with.err, "note: parameters from " + run + "/checkpoint.ckpt (epoch 50)");
    Json a = Json::parse(fresh.out), b = Json::parse(with.out), c = Json::parse(file.out);
    BOOST_TEST(a["nodes"]["w"]["value"] == Json::parse("[[0.1],[0.1],[0.1],[0.1]]"));
    BOOST_TEST(b["nodes"]["w"]["value"] != a["nodes"]["w"]["value"]);
    BOOST_TEST(b == c);
    // The numbers are the run's: its model.json holds the trained values as the initial ones.
    CommandResult saved = cr("grad " + run + "/model.json --json");
    BOOST_REQUIRE_MESSAGE(saved.code == 0, saved.err);
    Json d = Json::parse(saved.out);
    BOOST_TEST(d["nodes"]["w"]["value"] == b["nodes"]["w"]["value"]);
    BOOST_TEST(d["nodes"]["b"]["value"] == b["nodes"]["b"]["value"]);
    BOOST_TEST(d["loss"] == b["loss"]);
    // A feed that names a parameter still wins over the run's.
    std::string feed = (scratch() / "feed_b.json").string();
    std::ofstream(feed) << R"({"x": [[5.1, 3.5, 1.4, 0.2]], "y": [[0]], "b": [0.5]})";
    CommandResult fed = cr("grad " + model("iris_neuron") + " --weights " + run + " --feed " + feed + " --json");
    BOOST_REQUIRE_MESSAGE(fed.code == 0, fed.err);
    Json e = Json::parse(fed.out);
    BOOST_TEST(e["nodes"]["b"]["value"] == Json::parse("[0.5]"));
    BOOST_TEST(e["nodes"]["w"]["value"] == b["nodes"]["w"]["value"]);
}

BOOST_AUTO_TEST_CASE(step_and_dot_take_weights_too) {
    const std::string run = iris_run();
    CommandResult step = cr("step " + model("iris_neuron") + " --rows test:8:4 --weights " + run + " --all");
    BOOST_REQUIRE_MESSAGE(step.code == 0, step.err);
    // iris_neuron's test split: 10 setosa, then 10 versicolor; trained, all four are right.
    CHECK_HAS(step.out, "prediction yhat per row (class 1 when it is at least 0.5):\n"
                        "  test 8   label Iris-setosa      predicted Iris-setosa      right  yhat = ");
    CHECK_HAS(step.out, "  test 11  label Iris-versicolor  predicted Iris-versicolor  right  yhat = ");
    BOOST_TEST(step.out.find("prediction yhat") < step.out.find("step 1/4"));
    CommandResult untrained = cr("step " + model("iris_neuron") + " --rows test:8:4 --all");
    CHECK_HAS(untrained.out, "  test 8   label Iris-setosa      predicted Iris-versicolor  wrong  yhat = ");
    CommandResult dot = cr("dot " + model("iris_neuron") + " --weights " + run);
    CommandResult plain = cr("dot " + model("iris_neuron"));
    BOOST_REQUIRE_MESSAGE(dot.code == 0, dot.err);
    BOOST_TEST(has(plain.out, "parameter  [1]\\n= [0.1]"), plain.out);
    BOOST_TEST(!has(dot.out, "parameter  [1]\\n= [0.1]"), dot.out);
}

BOOST_AUTO_TEST_CASE(the_rows_labels_come_from_the_target_without_rows) {
    // The worked example's own y: the labels the loss compares yhat with.
    CommandResult r = cr("step " + model("worked_example") + " --all");
    BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK_HAS(r.out, "prediction yhat per row (class 1 when it is at least 0.5):\n"
                     "  0  label 0  predicted 1  wrong  yhat = 0.754\n"
                     "  1  label 1  predicted 1  right  yhat = 0.7408\n"
                     "  2  label 0  predicted 1  wrong  yhat = 0.7389\n");
    // A target drawn uniform(0,1) holds no labels: predictions alone.
    CommandResult drawn = cr("step " + model("slides_mnist") + " --all");
    CHECK_HAS(drawn.out, "prediction S per row (the class of the largest output):\n  0  predicted ");
    BOOST_TEST(!has(drawn.out, "label"), drawn.out);
}

BOOST_AUTO_TEST_CASE(gradcheck_widens_a_float32_run) {
    std::string f32 = variant("iris_neuron", "iris_f32", [](Json& j) { j["dtype"] = "float32"; });
    const std::string run = trained(f32, "iris_f32", "--epochs 20");
    CommandResult r = cr("gradcheck " + f32 + " --weights " + run);
    BOOST_TEST(r.code == 0, r.out << r.err);
    CHECK_HAS(r.err, "(epoch 20, float32 widened to float64)");
    CHECK_HAS(r.out, "gradcheck passed");
    // The float32 model itself takes its run as it is; a float64 run does not fit a float32 model.
    CommandResult same = cr("grad " + f32 + " --weights " + run);
    BOOST_TEST(same.code == 0, same.err);
    BOOST_TEST(!has(same.err, "widened"), same.err);
    CommandResult narrow = cr("grad " + f32 + " --weights " + iris_run());
    BOOST_TEST(narrow.code == 2);
    CHECK_HAS(narrow.err, "checkpoint.ckpt: checkpoint is float64 but model 'iris_neuron' is float32");
}

BOOST_AUTO_TEST_CASE(weights_that_do_not_fit_are_refused) {
    const std::string missing = (scratch() / "nothing").string();
    CommandResult r = cr("grad " + model("iris_neuron") + " --weights " + missing);
    BOOST_TEST(r.code == 2);
    CHECK_HAS(r.err, "--weights " + missing + ": nothing is there; give a run directory");
    fs::create_directories(scratch() / "empty_dir");
    r = cr("step " + model("iris_neuron") + " --all --weights " + (scratch() / "empty_dir").string());
    BOOST_TEST(r.code == 2);
    CHECK_HAS(r.err, "empty_dir: the folder holds no checkpoint.ckpt, so it is no run directory");
    // Another model's run: w is [4,3] there.
    const std::string other = trained(variant("iris_3class", "iris3", [](Json&) {}), "iris3", "--epochs 2");
    r = cr("gradcheck " + model("iris_neuron") + " --weights " + other);
    BOOST_TEST(r.code == 2);
    CHECK_HAS(r.err, "checkpoint.ckpt: checkpoint has no parameter 'w'");
    std::string junk = (scratch() / "junk.ckpt").string();
    std::ofstream(junk) << "not a checkpoint";
    r = cr("dot " + model("iris_neuron") + " --weights " + junk);
    BOOST_TEST(r.code == 2);
    CHECK_HAS(r.err, junk);
}

namespace {

// An IDX file of `count` images of h×w pixels, pixel k of image i = (7·i + 31·k) mod 256.
std::vector<std::uint8_t> write_idx_images(const fs::path& path, int count, int h, int w) {
    std::vector<std::uint8_t> pixels;
    std::string bytes = {0, 0, 8, 3};
    for (int v : {count, h, w})
        for (int shift : {24, 16, 8, 0}) bytes += char((v >> shift) & 0xff);
    for (int i = 0; i < count; ++i)
        for (int k = 0; k < h * w; ++k) pixels.push_back(std::uint8_t((7 * i + 31 * k) % 256));
    bytes.append(pixels.begin(), pixels.end());
    std::ofstream(path, std::ios::binary) << bytes;
    return pixels;
}

Json json_of(const CommandResult& r) {
    BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
    return Json::parse(r.out);
}

}  // namespace

// predict's outputs are the model's at the run's weights: grad on the same rows gives the same yhat.
BOOST_AUTO_TEST_CASE(predict_gives_the_trained_models_outputs_on_new_rows) {
    const std::string run = iris_run(), iris = source_root() + "/data/iris.data";
    Json p = json_of(cr("predict " + model("iris_neuron") + " --weights " + run + " --data " + iris + " --first 3 --json"));
    BOOST_TEST(p["count"] == 3);
    BOOST_TEST(p["epoch"] == 50);
    BOOST_TEST(p["prediction"] == "yhat");
    BOOST_TEST(p["classes"] == Json::parse(R"(["Iris-setosa", "Iris-versicolor"])"));
    BOOST_TEST(p["right"] == 3);
    BOOST_TEST(p["labelled"] == 3);
    // The training file's first three lines, laid out as training reads them, fed to grad.
    std::string feed = (scratch() / "first3.json").string();
    std::ofstream(feed) << R"({"x": [[5.1,3.5,1.4,0.2], [4.9,3.0,1.4,0.2], [4.7,3.2,1.3,0.2]], "y": [[0], [0], [0]]})";
    Json g = json_of(cr("grad " + model("iris_neuron") + " --weights " + run + " --feed " + feed + " --json"));
    for (std::size_t i = 0; i < 3; ++i) {
        const Json& row = p["rows"][i];
        BOOST_TEST(row["row"] == "line " + std::to_string(i + 1));
        BOOST_TEST(row["label"] == "Iris-setosa");
        BOOST_TEST(row["predicted"] == 0);
        BOOST_TEST(row["class"] == "Iris-setosa");
        BOOST_TEST(row["right"] == true);
        const double want = g["nodes"]["yhat"]["value"][i][0].get<double>();
        BOOST_TEST(row["outputs"][0].get<double>() == want, boost::test_tools::tolerance(1e-12));
        BOOST_TEST(row["score"].get<double>() == want, boost::test_tools::tolerance(1e-12));
        BOOST_TEST(want < 0.5);
    }
    // A feed of the same rows, labels left out: the same outputs, no labels.
    std::string bare_feed = (scratch() / "first3_x.json").string();
    std::ofstream(bare_feed) << R"({"x": [[5.1,3.5,1.4,0.2], [4.9,3.0,1.4,0.2], [4.7,3.2,1.3,0.2]]})";
    Json f = json_of(cr("predict " + model("iris_neuron") + " --weights " + run + " --feed " + bare_feed + " --json"));
    BOOST_TEST(f["count"] == 3);
    BOOST_TEST(!f.contains("labelled"));
    for (std::size_t i = 0; i < 3; ++i) {
        BOOST_TEST(!f["rows"][i].contains("label"));
        BOOST_TEST(f["rows"][i]["outputs"] == p["rows"][i]["outputs"]);
    }
    // Without --data: the training block's own file, every row of it.
    CommandResult own = cr("predict " + model("iris_neuron") + " --weights " + run);
    BOOST_REQUIRE_MESSAGE(own.code == 0, own.err);
    CHECK_HAS(own.out, "data/iris.data: 150 rows\nprediction yhat per row (class 1 when it is at least 0.5):\n"
                       "  line 1    label Iris-setosa      predicted Iris-setosa      right  yhat = ");
    // Virginica is no class of this model: its rows have no label.
    CHECK_HAS(own.out, "  line 150  label -                predicted ");
    CHECK_HAS(own.out, " of 100 labelled rows right (");
}

BOOST_AUTO_TEST_CASE(predict_reads_bare_csv_rows_and_idx_images) {
    const std::string run = iris_run();
    // A CSV of the input's own numbers, with a header.
    std::string csv = (scratch() / "new.csv").string();
    std::ofstream(csv) << "sepal_l,sepal_w,petal_l,petal_w\n5.0,3.4,1.5,0.2\n6.0,2.7,5.1,1.6\n";
    CommandResult r = cr("predict " + model("iris_neuron") + " --weights " + run + " --data " + csv);
    BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK_HAS(r.out, "on " + csv + ": 2 rows\n");
    CHECK_HAS(r.out, "  line 2  predicted Iris-setosa      yhat = ");
    CHECK_HAS(r.out, "  line 3  predicted Iris-versicolor  yhat = ");
    BOOST_TEST(!has(r.out, "labelled"), r.out);
    // IDX images of 2×2 = 4 pixels go to x [N,4] as pixels / 255, as training feeds them.
    const fs::path idx = scratch() / "four-pixels-idx3-ubyte";
    std::vector<std::uint8_t> pixels = write_idx_images(idx, 3, 2, 2);
    Json p = json_of(cr("predict " + model("iris_neuron") + " --weights " + run + " --data " + idx.string() + " --json"));
    BOOST_TEST(p["count"] == 3);
    BOOST_TEST(p["input"] == idx.string());
    Json x = Json::array();
    for (int i = 0; i < 3; ++i) {
        Json row = Json::array();
        for (int k = 0; k < 4; ++k) row.push_back(double(pixels[std::size_t(4 * i + k)]) / 255);
        x.push_back(row);
    }
    std::string feed = (scratch() / "pixels.json").string();
    std::ofstream(feed) << Json{{"x", x}}.dump();
    Json f = json_of(cr("predict " + model("iris_neuron") + " --weights " + run + " --feed " + feed + " --json"));
    for (std::size_t i = 0; i < 3; ++i) {
        BOOST_TEST(p["rows"][i]["row"] == "image " + std::to_string(i));
        BOOST_TEST(p["rows"][i]["outputs"] == f["rows"][i]["outputs"]);
    }
}

BOOST_AUTO_TEST_CASE(predict_refuses_rows_that_do_not_fit) {
    const std::string run = iris_run();
    auto refused = [&](const std::string& args, const std::string& part) {
        CommandResult r = cr("predict " + model("iris_neuron") + " --weights " + run + " " + args);
        BOOST_TEST(r.code == 2, args << ": " << r.err);
        CHECK_HAS(r.err, part);
    };
    std::string three = (scratch() / "three.csv").string();
    std::ofstream(three) << "1,2,3\n4,5,6\n";
    refused("--data " + three, three + ":1: 3 fields: predict takes 4 numbers a row (input 'x'), or a row of the "
                                       "training data with the features at columns 0, 1, 2, 3");
    std::string word = (scratch() / "word.csv").string();
    std::ofstream(word) << "1,2,3,4\n1,abc,3,4\n";
    refused("--data " + word, word + ":2: field 2 is 'abc', not a finite number");
    const fs::path nine = scratch() / "nine-pixels-idx3-ubyte";
    write_idx_images(nine, 2, 3, 3);
    refused("--data " + nine.string(), nine.string() + ": images of 3×3 = 9 pixels, but input 'x' [N,4] takes 4 values");
    refused("--data " + (scratch() / "absent.csv").string(), "absent.csv: nothing is there");
    // The worked example has no training block: its rows must be given.
    CommandResult none = cr("predict " + model("worked_example") + " --weights " + run);
    BOOST_TEST(none.code == 2);
    CHECK_HAS(none.err, "worked_example.json: the model has no \"training\" block naming its data; give the new rows "
                        "with --data FILE or --feed FILE");
    CommandResult no_weights = cr("predict " + model("iris_neuron"));
    BOOST_TEST(no_weights.code == 2);
    CHECK_HAS(no_weights.err, "--weights");
}
