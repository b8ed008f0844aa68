// Using what was trained: --weights RUN at a point (grad, gradcheck, step, dot), each row's
// label and prediction in `step`, and `chainrule predict` on new rows.
#define BOOST_TEST_MODULE predict
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <functional>

#include "core/json_io.hpp"
#include "testing.hpp"

using namespace chainrule;
using namespace chainrule::testing;
namespace fs = std::filesystem;

namespace {

CommandResult cr(const std::string& args) { return run_command(chainrule_binary() + " " + args); }
std::string model(const char* name) { return source_root() + "/models/" + name + ".json"; }

// A scratch folder of this process, removed when the tests end.
fs::path scratch() {
    static const fs::path dir = [] {
        fs::path d = fs::temp_directory_path() / ("chainrule_predict_" + std::to_string(::getpid()));
        fs::create_directories(d);
        return d;
    }();
    return dir;
}
struct RemoveScratch {
    ~RemoveScratch() {
        std::error_code ec;
        fs::remove_all(scratch(), ec);
    }
};

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
