// The command line as a user meets it: numbers, JSON layout, exit codes and messages.
#define BOOST_TEST_MODULE cli
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>

#include "core/files.hpp"
#include "core/json.hpp"
#include "format/model_json.hpp"
#include "testing.hpp"

using namespace chainrule;
using namespace chainrule::testing;

namespace {

CommandResult cr(const std::string& args) { return run_command(chainrule_binary() + " " + args); }
std::string model(const char* name) { return source_root() + "/models/" + name + ".json"; }

// A file of this process's scratch folder holding `text`; the folder, with what commands
// wrote beside its files, goes when the tests end.
std::string scratch_file(const std::string& name, const std::string& text) {
    const std::filesystem::path p = scratch() / name;
    std::ofstream(p) << text;
    return p.string();
}

// A nested array's numbers in row-major order.
void flatten(const Json& j, std::vector<double>& out) {
    if (!j.is_array()) return out.push_back(j.get<double>());
    for (const Json& e : j) flatten(e, out);
}

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(RemoveScratch);

BOOST_AUTO_TEST_CASE(grad_prints_the_worked_example) {
    CommandResult r = cr("grad " + model("worked_example"));
    BOOST_TEST(r.code == 0);
    BOOST_TEST(r.out.find("loss L = 0.1969326615") != std::string::npos, r.out);
    BOOST_TEST(r.out.find("dL/dw  [[0.379799], [0.265454], [0.103813], [0.0155094]]") != std::string::npos, r.out);
}

BOOST_AUTO_TEST_CASE(grad_json_has_every_node_with_round_trip_numbers) {
    CommandResult r = cr("grad " + model("worked_example") + " --json");
    BOOST_REQUIRE(r.code == 0);
    Json j = parse_json_text(r.out, "stdout");
    BOOST_TEST(std::abs(j["loss"].get<double>() - 0.19693266148617494) < 1e-16);
    for (const char* n : {"x", "y", "w", "b", "z", "a", "yhat", "L"}) {
        BOOST_REQUIRE(j["nodes"].contains(n));
        for (const char* k : {"op", "shape", "value", "grad"}) BOOST_TEST(j["nodes"][n].contains(k), n << "." << k);
    }
    BOOST_TEST(j["nodes"]["z"]["op"] == "matmul");
    BOOST_TEST(j["nodes"]["w"]["shape"] == Json::parse("[4,1]"));
    // Every printed number parses back to exactly the double chainrule computed.
    Model m = load_model(model("worked_example"));
    m.graph.init_parameters(0);
    forward_backward_once(m.graph, Pass::inspect());
    BOOST_TEST(j["loss"].get<double>() == m.graph.value("L").at(0));
    for (std::int64_t i = 0; i < 4; ++i) BOOST_TEST(j["nodes"]["w"]["grad"][i][0].get<double>() == m.graph.grad("w").at(i));
    for (std::int64_t i = 0; i < 12; ++i) BOOST_TEST(j["nodes"]["x"]["grad"][i / 4][i % 4].get<double>() == m.graph.grad("x").at(i));
}

BOOST_AUTO_TEST_CASE(gradcheck_passes_on_the_lecture_network_and_fails_on_the_lectures_update) {
    CommandResult ok = cr("gradcheck " + model("slides_mnist"));
    BOOST_TEST(ok.code == 0, ok.err);
    BOOST_TEST(ok.out.find("gradcheck passed") != std::string::npos);
    CommandResult bad = cr("gradcheck " + model("mnist_lecture") + " --max-entries 8");
    BOOST_TEST(bad.code == 1);
    BOOST_TEST(bad.err.find("deliberately not the derivative") != std::string::npos, bad.err);
    BOOST_TEST(bad.err.find("gradcheck failed") != std::string::npos, bad.err);
}

BOOST_AUTO_TEST_CASE(a_nan_loss_exits_1) {
    // log of a negative number: the loss is NaN at this point.
    std::string feed = scratch_file("feed.json", R"({"w": [[-1], [-1], [-1], [-1]]})");
    std::string text = read_text_file(model("worked_example"));
    auto p = text.find(R"("op": "sigmoid")");
    text.replace(p, 15, R"("op": "log")");
    CommandResult r = cr("grad " + scratch_file("nan.json", text) + " --feed " + feed);
    BOOST_TEST(r.code == 1);
    BOOST_TEST(r.err.find("the loss is NaN at this point") != std::string::npos, r.err);
}

BOOST_AUTO_TEST_CASE(bad_input_exits_2_with_the_place) {
    CommandResult r = cr("check " + scratch_file("bad.json", "{\"format\": \"chainrule-model\",\n \"version\": 1,\n \"nodes\": [}"));
    BOOST_TEST(r.code == 2);
    BOOST_TEST(r.err.find(":3:") != std::string::npos, r.err);
    BOOST_TEST(r.err.find("malformed JSON") != std::string::npos, r.err);
    r = cr("check /nonexistent/model.json");
    BOOST_TEST(r.code == 2);
    BOOST_TEST(r.err.find("/nonexistent/model.json: cannot open") != std::string::npos, r.err);
    r = cr("train " + model("slides_mnist"));
    BOOST_TEST(r.code == 2);
    BOOST_TEST(r.err.find("has no \"training\" block") != std::string::npos, r.err);
    r = cr("frobnicate");
    BOOST_TEST(r.code == 2);
    r = cr("eval " + model("iris_neuron") + " --weights " + scratch_file("junk.ckpt", "not a checkpoint"));
    BOOST_TEST(r.code == 2);
    BOOST_TEST(r.err.find("not a valid checkpoint") != std::string::npos, r.err);
}

BOOST_AUTO_TEST_CASE(every_command_has_help) {
    for (const char* c : {"check", "grad", "gradcheck", "train", "eval", "step", "dot", "data", "ops"}) {
        CommandResult r = cr(std::string(c) + " --help");
        BOOST_TEST(r.code == 0, c);
        BOOST_TEST(r.out.find("Usage") != std::string::npos, c);
    }
}

BOOST_AUTO_TEST_CASE(the_anomaly_example_runs_as_docs_reliability_shows) {
    const std::string ex = source_root() + "/examples/anomaly/iris_log_diverges.json";
    CommandResult plain = cr("train " + ex + " --no-progress");
    BOOST_TEST(plain.code == 1);
    CHECK_HAS(plain.out, "warning: the test loss is nan at epoch 8 while the training loss is finite");
    CHECK_HAS(plain.err, "error: the loss became NaN at epoch 9, step 1 of 1");
    // The same from saved weights: eval --detect-anomaly on the epoch-8 checkpoint.
    const std::string out = scratch_file("anomaly_run", "") + "_dir";
    BOOST_REQUIRE(cr("train " + ex + " --no-progress --epochs 8 --out " + out).code == 0);
    CommandResult eval = cr("eval " + ex + " --weights " + out + " --detect-anomaly");
    BOOST_TEST(eval.code == 1);
    CHECK_HAS(eval.err, "error: anomaly in the epoch 8 weights, evaluating rows 0 to 19: the value of node 'yhat' "
                        "(log) is NaN or Inf in 10 of its 20 elements");
    CommandResult quiet_eval = cr("eval " + ex + " --weights " + out);  // without the flag: a nan loss
    BOOST_TEST(quiet_eval.code == 0);
    CHECK_HAS(quiet_eval.out, "test loss nan\n");
    std::filesystem::remove_all(out);
    CommandResult detect = cr("train " + ex + " --no-progress --detect-anomaly");
    BOOST_TEST(detect.code == 1);
    CHECK_HAS(detect.err, "error: anomaly at epoch 8, evaluating rows 0 to 19: the value of node 'yhat' (log) is NaN "
                          "or Inf in 10 of its 20 elements; its inputs:\n    input a [20,1]: min -0.239065 max "
                          "0.860876 mean 0.286418");
}

// With --feed, the feed fixes the point: nothing is drawn at random behind the user's back.
BOOST_AUTO_TEST_CASE(a_feed_that_leaves_out_an_input_is_refused_with_its_name) {
    for (const char* cmd : {"grad", "step", "gradcheck", "dot"}) {
        std::string empty = scratch_file("empty_feed.json", "{}");
        CommandResult r = cr(std::string(cmd) + " " + model("slides_mnist") + " --feed " + empty);
        BOOST_TEST(r.code == 2, cmd << ": " << r.err);
        BOOST_TEST(r.err.find("empty_feed.json: input 'x' [N,784] is not in " + empty +
                              "; give it, or declare a default \"value\" for it in the model") != std::string::npos,
                   cmd << ": " << r.err);
        BOOST_TEST(r.out.empty(), cmd);
    }
}

// Every numeric flag gets the training block's range checks: refused with exit 2, never
// wrapped (-1 as 2^64 − 1), clamped or ignored.
BOOST_AUTO_TEST_CASE(numeric_flags_out_of_range_are_refused) {
    const std::pair<const char*, const char*> train_flags[] = {
        {"--seed -1", "--seed: '-1' is not a whole number from 0 to 18446744073709551615"},
        {"--seed 18446744073709551616", "--seed: '18446744073709551616' is not a whole number"},
        {"--batches-per-epoch -7", "--batches-per-epoch: '-7' is not a whole number from 1 to"},
        {"--print-every -1", "--print-every: '-1' is not a whole number from 1 to 1000000"},
        {"--threads -5", "--threads: '-5' is not a whole number from 1 to 256"},
        {"--epochs 99999999999999999999", "--epochs: '99999999999999999999' is not a whole number from 1 to 1000000"},
        {"--lr nan", "--lr: 'nan' is not a finite number > 0"},
        {"--lr -0.1", "--lr: '-0.1' is not a finite number > 0"},
    };
    for (auto [flags, message] : train_flags) {
        CommandResult r = cr("train " + model("iris_neuron") + " " + flags);
        BOOST_TEST(r.code == 2, flags << ": " << r.err);
        BOOST_TEST(r.err.find(message) != std::string::npos, flags << ": " << r.err);
        BOOST_TEST(r.out.empty(), flags);
    }
    const std::pair<const char*, const char*> gradcheck_flags[] = {
        {"--step 0", "--step: '0' is not a finite number > 0"},
        {"--step nan", "--step: 'nan' is not a finite number > 0"},
        {"--rtol nan", "--rtol: 'nan' is not a finite number >= 0"},
        {"--atol -1", "--atol: '-1' is not a finite number >= 0"},
        {"--seed -1", "--seed: '-1' is not a whole number"},
    };
    for (auto [flags, message] : gradcheck_flags) {
        CommandResult r = cr("gradcheck " + model("worked_example") + " " + flags);
        BOOST_TEST(r.code == 2, flags << ": " << r.err);
        BOOST_TEST(r.err.find(message) != std::string::npos, flags << ": " << r.err);
    }
}

// Inputs drawn at random are announced, and only when no feed gives them.
BOOST_AUTO_TEST_CASE(random_inputs_are_announced) {
    for (const char* cmd : {"grad", "step", "gradcheck", "dot"}) {
        CommandResult r = cr(std::string(cmd) + " " + model("slides_mnist") + (std::string(cmd) == "step" ? " --all" : ""));
        BOOST_TEST(r.code == 0, cmd << ": " << r.err);
        BOOST_TEST(r.err.find("note: x [N,784], t [N,10] drawn at random (uniform(0,1)") != std::string::npos,
                   cmd << ": " << r.err);
        BOOST_TEST(r.err.find("give real values with --feed FILE") != std::string::npos, cmd);
    }
    CommandResult quiet = cr("grad " + model("worked_example"));  // every input has a default value
    BOOST_TEST(quiet.err.find("drawn at random") == std::string::npos, quiet.err);
}

namespace {

void put_be32(std::string& s, std::uint32_t x) {
    for (int shift = 24; shift >= 0; shift -= 8) s.push_back(char((x >> shift) & 0xff));
}

// An IDX folder whose image r has every pixel 10·r + 1 and label r, in both splits.
std::string tiny_idx_dir() {
    const std::filesystem::path dir = scratch() / "idx";
    std::filesystem::create_directories(dir);
    for (const char* split : {"train", "t10k"}) {
        std::string img, lab;
        put_be32(img, 0x803), put_be32(img, 3), put_be32(img, 28), put_be32(img, 28);
        put_be32(lab, 0x801), put_be32(lab, 3);
        for (int r = 0; r < 3; ++r) {
            img.append(784, char(10 * r + 1));
            lab.push_back(char(r));
        }
        std::ofstream(dir / (std::string(split) + "-images-idx3-ubyte"), std::ios::binary) << img;
        std::ofstream(dir / (std::string(split) + "-labels-idx1-ubyte"), std::ios::binary) << lab;
    }
    return dir.string();
}

}  // namespace

BOOST_AUTO_TEST_CASE(rows_feed_the_models_own_data) {
    // iris_neuron's test split is rows 40-49 and 90-99 of the first 100 (per class, the last 20 %).
    CommandResult r = cr("grad " + model("iris_neuron") + " --rows test:1:2 --json");
    BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
    BOOST_TEST(r.err.find("note: x (features), y (labels) from rows 1 to 2 of the test split") != std::string::npos, r.err);
    BOOST_TEST(r.err.find("drawn at random") == std::string::npos, r.err);
    Json j = parse_json_text(r.out, "stdout");
    std::ifstream iris(source_root() + "/data/iris.data");
    std::string line;
    for (int i = 0; i <= 41; ++i) std::getline(iris, line);  // line 42: data row 41
    double first = std::stod(line.substr(0, line.find(',')));
    BOOST_TEST(j["nodes"]["x"]["shape"] == Json::parse("[2,4]"));
    BOOST_TEST(j["nodes"]["x"]["value"][0][0].get<double>() == first);
    BOOST_TEST(j["nodes"]["y"]["value"][1][0].get<double>() == 0.0);  // setosa
}

BOOST_AUTO_TEST_CASE(rows_with_data_feed_a_model_without_a_training_block) {
    std::string dir = tiny_idx_dir();
    CommandResult r = cr("grad " + model("slides_mnist") + " --rows test:1:2 --data " + dir + " --json");
    BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
    Json j = parse_json_text(r.out, "stdout");
    BOOST_TEST(j["nodes"]["x"]["shape"] == Json::parse("[2,784]"));
    BOOST_TEST(std::abs(j["nodes"]["x"]["value"][0][5].get<double>() - 11.0 / 255) < 1e-15);
    BOOST_TEST(std::abs(j["nodes"]["x"]["value"][1][783].get<double>() - 21.0 / 255) < 1e-15);
    BOOST_TEST(j["nodes"]["t"]["value"][0] == Json::parse("[0,1,0,0,0,0,0,0,0,0]"));
    BOOST_TEST(j["nodes"]["t"]["value"][1] == Json::parse("[0,0,1,0,0,0,0,0,0,0]"));
    std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(rows_are_refused_with_what_to_do) {
    struct Case {
        std::string args, message;
    } cases[] = {
        {"grad " + model("iris_neuron") + " --rows test:19:2",
         "--rows test:19:2: the test split of " + model("iris_neuron") + " has 20 rows (0 to 19)"},
        {"grad " + model("slides_mnist") + " --rows test:0:3",
         "has no \"training\" block; name a folder of IDX files with --data (e.g. --data data/mnist)"},
        {"step " + model("iris_neuron") + " --rows valid:0:3", "'valid:0:3' is not SPLIT:START:COUNT"},
        {"dot " + model("iris_neuron") + " --rows test:0:0", "'test:0:0' is not SPLIT:START:COUNT"},
        {"gradcheck " + model("iris_neuron") + " --rows test:-1:2", "'test:-1:2' is not SPLIT:START:COUNT"},
        {"grad " + model("iris_neuron") + " --rows test:0:2 --feed f.json", "--feed excludes --rows"},
        {"grad " + model("iris_neuron") + " --data data/mnist", "--data requires --rows"},
    };
    for (const auto& c : cases) {
        CommandResult r = cr(c.args);
        BOOST_TEST(r.code == 2, c.args);
        BOOST_TEST(r.err.find(c.message) != std::string::npos, c.args << "\n" << r.err);
    }
}

BOOST_AUTO_TEST_CASE(a_random_input_too_large_names_the_input) {
    std::string m = scratch_file("huge.json", R"({"format": "chainrule-model", "version": 1,
        "inputs": {"x": {"shape": ["N", 1000000000]}},
        "nodes": [{"name": "s", "op": "sum", "inputs": ["x"]}], "outputs": {"loss": "s"}})");
    CommandResult r = cr("grad " + m);
    BOOST_TEST(r.code == 2);
    BOOST_TEST(r.err.find("huge.json: inputs.x: input 'x' drawn at random with every symbol = 3: shape "
                          "[3,1000000000] has more than 2147483648 elements") != std::string::npos, r.err);
}

BOOST_AUTO_TEST_CASE(dot_limit_rankdir_and_legend) {
    // The worked example's x has 12 elements: hidden at the default --limit 8, shown at 12.
    CommandResult def = cr("dot " + model("worked_example"));
    BOOST_REQUIRE(def.code == 0);
    BOOST_TEST(def.out.find("5.1, 3.5") == std::string::npos, def.out);
    BOOST_TEST(def.out.find("rankdir=LR") != std::string::npos);
    BOOST_TEST(def.out.find("cluster_legend") == std::string::npos);
    CommandResult wide = cr("dot " + model("worked_example") + " --limit 12 --rankdir TB --legend");
    BOOST_REQUIRE(wide.code == 0);
    BOOST_TEST(wide.out.find("= [[5.1, 3.5, 1.4, 0.2],") != std::string::npos, wide.out);
    BOOST_TEST(wide.out.find("rankdir=TB") != std::string::npos);
    BOOST_TEST(wide.out.find("subgraph cluster_legend") != std::string::npos);
    BOOST_TEST(wide.out.find("label=\"parameter (trained)\", shape=box, style=\"filled\", fillcolor=\"#fbe7a9\"") !=
               std::string::npos, wide.out);
    // Stable ids and classes, so that a page's script finds nodes by id.
    BOOST_TEST(wide.out.find("n2 [id=\"n2\", class=\"cr-node cr-parameter\"") != std::string::npos, wide.out);
    BOOST_TEST(wide.out.find("n7 [id=\"n7\", class=\"cr-node cr-op cr-loss\"") != std::string::npos, wide.out);
    CommandResult none = cr("dot " + model("worked_example") + " --limit 0");
    BOOST_TEST(none.out.find("\\n= [") == std::string::npos, none.out);
    BOOST_TEST(def.out.find("\\n= [") != std::string::npos);
    CommandResult bad = cr("dot " + model("worked_example") + " --rankdir BT");
    BOOST_TEST(bad.code == 2);
    BOOST_TEST(bad.err.find("--rankdir: BT not in {LR,TB}") != std::string::npos, bad.err);
}

BOOST_AUTO_TEST_CASE(threads_that_the_address_space_limit_cannot_hold_are_refused_not_hung) {
#if defined(__SANITIZE_ADDRESS__)
    // AddressSanitizer reserves terabytes of address space: no program of its build starts
    // under `ulimit -v`, so this case is checked by the plain build only.
    BOOST_TEST_MESSAGE("skipped under AddressSanitizer");
#else
    CommandResult r = run_command("ulimit -v 400000 && timeout 60 " + chainrule_binary() + " train " +
                                  model("iris_3class") + " --epochs 1 --threads 16 --no-progress");
    BOOST_TEST(r.code == 1, r.err);  // not 124: it ends at once
    BOOST_TEST(r.err.find("--threads 16 needs about") != std::string::npos, r.err);
    // How much is in use depends on whether OpenBLAS's own threads have mapped their buffers yet.
    BOOST_TEST(r.err.find("but the limit (ulimit -v) is 390 MiB: use --threads ") != std::string::npos, r.err);
    BOOST_TEST(r.err.find(" or fewer, or raise the limit") != std::string::npos, r.err);
    CommandResult ok = run_command("ulimit -v 800000 && timeout 60 " + chainrule_binary() + " train " +
                                   model("iris_3class") + " --epochs 1 --threads 2 --no-progress");
    BOOST_TEST(ok.code == 0, ok.err);
#endif
}

BOOST_AUTO_TEST_CASE(check_reports_the_memory_of_a_training_step) {
    CommandResult r = cr("check " + model("mnist_cnn"));
    BOOST_TEST(r.code == 0, r.err);
    // 7,430 float32 parameters are 29.0 KiB; momentum keeps one buffer of the same size.
    BOOST_TEST(r.out.find("memory for a training step of 100 rows: ") != std::string::npos, r.out);
    BOOST_TEST(r.out.find("of which parameters 29.0 KiB") != std::string::npos, r.out);
    BOOST_TEST(r.out.find("optimizer state 29.0 KiB") != std::string::npos, r.out);
    BOOST_TEST(r.out.find("workspaces ") != std::string::npos, r.out);
    BOOST_TEST(r.out.find("workspaces 0 bytes") == std::string::npos, r.out);
    // A model without a training block: one row, no optimizer.
    CommandResult w = cr("check " + model("worked_example"));
    BOOST_TEST(w.out.find("memory for a forward and backward pass with every symbol 1") != std::string::npos, w.out);
    BOOST_TEST(w.out.find("optimizer state") == std::string::npos, w.out);
}

// The sequence ops in one model: embedding → layer_norm → gelu → causal_mask → softmax, whose
// parameters (the table, the norm's weight and bias) gradcheck checks against finite differences.
namespace {

std::string token_model(const std::string& ids_value) {
    return R"({"format": "chainrule-model", "version": 1, "name": "tokens", "dtype": "float64",
  "inputs": {"ids": {"shape": ["N", 3])" + ids_value + R"(}},
  "parameters": {"E": {"shape": [5, 3], "init": {"normal": {"mean": 0, "std": 1}}},
                 "g": {"shape": [3], "init": {"normal": {"mean": 1, "std": 0.5}}},
                 "b": {"shape": [3], "init": {"normal": {"mean": 0, "std": 0.5}}}},
  "nodes": [{"name": "e", "op": "embedding", "inputs": ["ids", "E"]},
            {"name": "h", "op": "layer_norm", "inputs": ["e", "g", "b"], "attrs": {"eps": 0.01}},
            {"name": "a", "op": "gelu", "inputs": ["h"], "attrs": {"approximate": "tanh"}},
            {"name": "m", "op": "causal_mask", "inputs": ["a"]},
            {"name": "p", "op": "softmax", "inputs": ["m"]},
            {"name": "ph", "op": "mul", "inputs": ["p", "h"]},
            {"name": "L", "op": "sum", "inputs": ["ph"]}],
  "outputs": {"loss": "L"}})";
}

}  // namespace

BOOST_AUTO_TEST_CASE(gradcheck_passes_on_embedding_layer_norm_gelu_and_causal_mask) {
    // Ids 1 and 4 repeat, so the table's gradient sums over positions.
    std::string m = scratch_file("tokens.json", token_model(R"(, "value": [[1, 4, 0], [4, 1, 1]])"));
    CommandResult ok = cr("gradcheck " + m + " --max-entries 0");
    BOOST_TEST(ok.code == 0, ok.out << ok.err);
    BOOST_TEST(ok.out.find("gradcheck passed") != std::string::npos, ok.out);
    // Without a value or feed, the ids are drawn as valid rows of the table.
    CommandResult drawn = cr("gradcheck " + scratch_file("tokens_drawn.json", token_model("")));
    BOOST_TEST(drawn.code == 0, drawn.out << drawn.err);
}

BOOST_AUTO_TEST_CASE(bad_ids_are_refused_naming_the_file_the_input_and_the_position) {
    const std::pair<const char*, const char*> bad[] = {
        {"[[1, 4, 0], [0, 2.5, 1]]", "inputs.ids.value[1][1]: entry 4 is 2.5, but input 'ids' holds ids for node "
                                     "'e' (embedding), whose table 'E' has 5 rows: each must be a whole number "
                                     "from 0 to 4"},
        {"[[1, 4, -1], [0, 2, 1]]", "inputs.ids.value[0][2]: entry 2 is -1, but input 'ids' holds ids"},
        {"[[1, 4, 0], [0, 2, 5]]", "inputs.ids.value[1][2]: entry 5 is 5, but input 'ids' holds ids"},
    };
    for (auto [value, message] : bad) {
        std::string m = scratch_file("bad_ids.json", token_model(std::string(", \"value\": ") + value));
        CommandResult r = cr("gradcheck " + m);
        BOOST_TEST(r.code == 2, value << ": " << r.err);
        BOOST_TEST(r.err.find(m + ": " + message) != std::string::npos, r.err);
        std::string feed = scratch_file("ids.feed.json", std::string("{\"ids\": ") + value + "}");
        CommandResult f = cr("grad " + scratch_file("tokens_fed.json", token_model("")) + " --feed " + feed);
        BOOST_TEST(f.code == 2, value << ": " << f.err);
        std::string fed = std::string(message).replace(0, std::string("inputs.ids.value").size(), "ids");
        BOOST_TEST(f.err.find(feed + ": " + fed) != std::string::npos, f.err);
    }
}

// The backward pass written as a model (graph/backward_graph): every parameter's gradient is an
// output, and evaluating those nodes as a forward pass gives `chainrule grad`'s numbers on the
// original (rtol 1e-12 in float64); the lecture's nine steps carry their labels; check and dot
// read the file.
BOOST_AUTO_TEST_CASE(grad_backward_graph_writes_the_backward_pass_as_a_model) {
    const std::string out = scratch_file("slides_backward.json", "");
    CommandResult w = cr("grad " + model("slides_mnist") + " --backward-graph " + out);
    BOOST_REQUIRE_MESSAGE(w.code == 0, w.err);
    BOOST_TEST(w.out.find("the gradients of 4 parameters are outputs") != std::string::npos, w.out);
    Json file = read_json_file(out);
    const Json& grads = file["outputs"]["gradients"];
    BOOST_TEST(grads == Json::parse(R"({"W1": "dL/dW1", "b1": "dL/db1", "W2": "dL/dW2", "b2": "dL/db2"})"), grads.dump());
    // The lecture's (1)–(9), each on one node, with its formula.
    std::string docs;
    for (const Json& n : file["nodes"])
        if (n.contains("doc")) docs += n["doc"].get<std::string>() + "\n";
    for (int k = 1; k <= 9; ++k) {
        const std::string label = "(" + std::to_string(k) + ") ∂L/∂";
        const auto at = docs.find(label);
        BOOST_TEST((at != std::string::npos && docs.find(label, at + 1) == std::string::npos), label << " in\n" << docs);
    }
    BOOST_TEST(docs.find("(5) ∂L/∂W″ = y1ᵀ·δ2 (local derivative ∂a2/∂W″ = y1)") != std::string::npos, docs);

    Json original = parse_json_text(cr("grad " + model("slides_mnist") + " --json").out, "grad");
    CommandResult back = cr("grad " + out + " --json");
    BOOST_REQUIRE_MESSAGE(back.code == 0, back.err);
    Json backward = parse_json_text(back.out, "grad of the backward graph");
    BOOST_TEST(backward["loss"] == original["loss"]);
    for (auto& [param, node] : grads.items()) {
        const Json& want = original["nodes"][param]["grad"];
        const Json& got = backward["nodes"][node.get<std::string>()]["value"];
        std::vector<double> g, w;
        flatten(got, g);
        flatten(want, w);
        BOOST_REQUIRE_EQUAL(g.size(), w.size());
        double worst = 0, scale = 1e-300;
        for (std::size_t i = 0; i < w.size(); ++i)
            worst = std::max(worst, std::abs(g[i] - w[i])), scale = std::max(scale, std::abs(w[i]));
        BOOST_TEST(worst <= 1e-12 * scale, param << ": max |difference| " << worst << " of scale " << scale);
    }
    BOOST_TEST(cr("check " + out).code == 0);
    CommandResult dot = cr("dot " + out);
    BOOST_TEST(dot.code == 0);
    BOOST_TEST(dot.out.find("dL/dW1") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_gradient_output_of_the_wrong_shape_is_refused_with_its_place) {
    Json j = read_json_file(model("worked_example"));
    j["outputs"]["gradients"] = Json::parse(R"({"w": "z"})");
    CommandResult r = cr("check " + scratch_file("bad_gradient_output.json", j.dump(1)));
    BOOST_TEST(r.code == 2);
    BOOST_TEST(r.err.find("bad_gradient_output.json: outputs.gradients.w: 'z' has shape [N,1], but the gradient of "
                          "'w' has its shape [4,1]") != std::string::npos,
               r.err);
    j["outputs"]["gradients"] = Json::parse(R"({"z": "w"})");
    r = cr("check " + scratch_file("bad_gradient_output2.json", j.dump(1)));
    BOOST_TEST(r.code == 2);
    BOOST_TEST(r.err.find("outputs.gradients.z: 'z' is an op node; a gradient output is of a parameter or an input") !=
                   std::string::npos,
               r.err);
}
