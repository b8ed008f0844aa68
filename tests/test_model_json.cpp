// Model JSON: every class of malformed model is rejected with a message naming the
// file, the JSON path and what was expected; load -> save -> load is the same graph.
#define BOOST_TEST_MODULE model_json
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>

#include "core/error.hpp"
#include "format/model_json.hpp"
#include "testing.hpp"

using namespace chainrule;

namespace {

// A valid model with a placeholder to splice into.
std::string model(const std::string& nodes, const std::string& extra = "",
                  const std::string& outputs = R"({"prediction": "yhat", "loss": "L"})") {
    return R"({"format": "chainrule-model", "version": 1, "name": "m",
  "inputs": {"x": {"shape": ["N", 4]}, "y": {"shape": ["N", 1]}},
  "parameters": {"w": {"shape": [4, 1], "init": {"constant": 0.1}},
                 "b": {"shape": [1], "init": {"constant": 0.1}}},
  "nodes": )" + nodes + extra + R"(,
  "outputs": )" + outputs + "}";
}

const std::string kNodes = R"([
    {"name": "z", "op": "matmul", "inputs": ["x", "w"]},
    {"name": "a", "op": "add", "inputs": ["z", "b"]},
    {"name": "yhat", "op": "sigmoid", "inputs": ["a"]},
    {"name": "L", "op": "mse", "inputs": ["yhat", "y"]}])";

std::string error_of(const std::string& text) {
    try {
        parse_model(text, "m.json");
    } catch (const InputError& e) {
        return e.what();
    }
    return "(no error)";
}

void expect_error(const std::string& text, std::initializer_list<const char*> fragments) {
    std::string msg = error_of(text);
    for (const char* f : fragments) BOOST_TEST(msg.find(f) != std::string::npos, "'" << f << "' not in: " << msg);
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
    auto p = s.find(from);
    BOOST_REQUIRE(p != std::string::npos);
    return s.replace(p, from.size(), to);
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_valid_model_loads) {
    Model m = parse_model(model(kNodes), "m.json");
    BOOST_TEST(m.graph.size() == 8u);
    BOOST_TEST(m.warnings.empty());
}

BOOST_AUTO_TEST_CASE(malformed_json_reports_line_and_column) {
    std::string text = model(kNodes);
    text = replace(text, R"("op": "add",)", R"("op": "add")");  // missing comma on line 7
    expect_error(text, {"m.json:7:", "malformed JSON"});
    expect_error("", {"m.json:1:1: malformed JSON"});
}

BOOST_AUTO_TEST_CASE(unknown_keys_are_errors) {
    expect_error(replace(model(kNodes), R"("inputs": ["x", "w"]})", R"("inputs": ["x", "w"], "atrs": {}})"),
                 {"m.json: nodes[0]: unknown key 'atrs'", "allowed: name, op, inputs, attrs, doc"});
    expect_error(replace(model(kNodes), R"("name": "m",)", R"("name": "m", "dtyp": "float32",)"),
                 {"m.json: unknown key 'dtyp'"});
    expect_error(replace(model(kNodes), R"({"constant": 0.1}})", R"({"constant": 0.1}, "trainable": false})"),
                 {"m.json: parameters.w: unknown key 'trainable'"});
}

BOOST_AUTO_TEST_CASE(duplicate_keys_are_errors) {
    expect_error(replace(model(kNodes), R"("name": "m",)", R"("name": "m", "name": "n",)"),
                 {"m.json: top level: duplicate key 'name'"});
    expect_error(replace(model(kNodes), R"({"name": "z", "op": "matmul",)", R"({"name": "z", "op": "matmul", "op": "add",)"),
                 {"nodes[0]: duplicate key 'op'"});
}

BOOST_AUTO_TEST_CASE(unknown_op_suggests_the_closest) {
    expect_error(replace(model(kNodes), R"("op": "sigmoid")", R"("op": "sigmod")"),
                 {"m.json: nodes[2]: unknown op 'sigmod'", "did you mean 'sigmoid'?", "chainrule ops"});
}

BOOST_AUTO_TEST_CASE(names_that_refer_to_nothing) {
    expect_error(replace(model(kNodes), R"(["yhat", "y"])", R"(["yhat", "target"])"),
                 {"m.json: nodes[3].inputs[1]: 'target' names no input, parameter, constant or node"});
    expect_error(model(kNodes, "", R"({"prediction": "yhat", "loss": "loss"})"),
                 {"m.json: outputs.loss: 'loss' names no node"});
}

BOOST_AUTO_TEST_CASE(a_later_name_and_a_cycle_are_told_apart) {
    expect_error(replace(model(kNodes), R"(["z", "b"])", R"(["yhat", "b"])"),
                 {"nodes[1].inputs[0]", "the nodes form a cycle: a -> yhat -> a"});
    std::string later = R"([
    {"name": "a", "op": "add", "inputs": ["z", "b"]},
    {"name": "z", "op": "matmul", "inputs": ["x", "w"]},
    {"name": "yhat", "op": "sigmoid", "inputs": ["a"]},
    {"name": "L", "op": "mse", "inputs": ["yhat", "y"]}])";
    expect_error(model(later), {"nodes[0].inputs[0]: 'z' is defined later (nodes[1])", "move nodes[1] up"});
    expect_error(replace(model(kNodes), R"(["a"])", R"(["yhat"])"), {"cycle: yhat -> yhat"});
}

BOOST_AUTO_TEST_CASE(duplicate_names) {
    expect_error(replace(model(kNodes), R"({"name": "a", "op": "add")", R"({"name": "w", "op": "add")"),
                 {"m.json: nodes[1]: duplicate name 'w' (already defined at m.json: parameters.w)"});
}

BOOST_AUTO_TEST_CASE(wrong_arity) {
    expect_error(replace(model(kNodes), R"(["z", "b"])", R"(["z", "b", "b"])"),
                 {"m.json: nodes[1]: add takes 2 inputs (a, b), got 3"});
}

BOOST_AUTO_TEST_CASE(shape_mismatches_name_the_op_and_both_shapes) {
    expect_error(replace(model(kNodes), R"("shape": [4, 1])", R"("shape": [3, 1])"),
                 {"m.json: nodes[0]: matmul cannot multiply [N,4] by [3,1]", "; here A is x [N,4], B is w [3,1]"});
    // Symbols broadcast only against the same symbol or 1.
    std::string text = replace(model(kNodes), R"("y": {"shape": ["N", 1]})",
                               R"("y": {"shape": ["N", 1]}, "c": {"shape": [4, 1], "value": [[1],[2],[3],[4]]})");
    expect_error(replace(text, R"(["z", "b"])", R"(["z", "c"])"),
                 {"m.json: nodes[1]: add cannot broadcast [N,1] with [4,1]", "; here a is z [N,1], b is c [4,1]"});
    expect_error(replace(model(kNodes), R"("y": {"shape": ["N", 1]})", R"("y": {"shape": ["N", 2]})"),
                 {"m.json: nodes[3]: mse needs equal shapes", "[N,1] and [N,2]"});
    expect_error(model(kNodes, "", R"({"loss": "z"})"), {"outputs.loss", "must be a scalar", "[N,1]"});
}

BOOST_AUTO_TEST_CASE(bad_dtype_version_format) {
    expect_error(replace(model(kNodes), R"("name": "m",)", R"("name": "m", "dtype": "float16",)"),
                 {"m.json: dtype: expected \"float32\" or \"float64\", got \"float16\""});
    expect_error(replace(model(kNodes), R"("version": 1)", R"("version": 2)"), {"m.json: version", "version 1"});
    expect_error(replace(model(kNodes), R"("version": 1)", R"("version": "1")"), {"m.json: version"});
    expect_error(replace(model(kNodes), R"("format": "chainrule-model", )", ""), {"missing required key 'format'"});
    expect_error(replace(model(kNodes), R"("format": "chainrule-model")", R"("format": "onnx")"),
                 {"m.json: format: expected \"chainrule-model\""});
}

BOOST_AUTO_TEST_CASE(bad_init) {
    expect_error(replace(model(kNodes), R"({"constant": 0.1}})", R"({"gaussian": {"std": 1}}})"),
                 {"m.json: parameters.w.init: unknown init 'gaussian'"});
    expect_error(replace(model(kNodes), R"({"constant": 0.1}})", R"({"normal": {"mean": 0, "std": -1}}})"),
                 {"parameters.w.init.normal.std: std must be >= 0"});
    expect_error(replace(model(kNodes), R"({"constant": 0.1}})", R"({"value": [[1], [2]]}})"),
                 {"parameters.w", "init value has shape [2,1] but the parameter is declared [4,1]"});
    expect_error(replace(model(kNodes), R"({"constant": 0.1}})", R"({"value": [[1], [2, 3], [4], [5]]}})"),
                 {"parameters.w.init.value[1]: expected an array of 1 elements"});
    expect_error(replace(model(kNodes), R"({"constant": 0.1}})", R"({"constant": 0.1, "normal": {"std": 1}}})"),
                 {"parameters.w.init: expected exactly one of"});
}

BOOST_AUTO_TEST_CASE(numbers_and_dims) {
    expect_error(replace(model(kNodes), R"({"constant": 0.1}})", R"({"constant": 1e400}})"),
                 {"m.json:3:62: number 1e400 is out of range"});
    expect_error(replace(model(kNodes), R"("shape": [4, 1])", R"("shape": [4, 0])"),
                 {"parameters.w.shape[1]: dim 0 must be at least 1"});
    expect_error(replace(model(kNodes), R"("shape": [4, 1])", R"("shape": [4, -3])"),
                 {"parameters.w.shape[1]: dim -3 must be at least 1"});
    expect_error(replace(model(kNodes), R"("shape": [4, 1])", R"("shape": [4.5, 1])"),
                 {"parameters.w.shape[0]: expected a positive integer or a symbol"});
    expect_error(replace(model(kNodes), R"("shape": [4, 1])", R"("shape": [1048576, 1048576, 1048576])"),
                 {"parameters.w", "more than", "per-tensor cap"});
    expect_error(replace(model(kNodes), R"("shape": [4, 1])", R"("shape": ["N", 1])"),
                 {"parameters.w: a parameter's shape must be fixed numbers"});
    // Integer literals are fine where numbers are expected.
    BOOST_TEST(error_of(replace(model(kNodes), R"({"constant": 0.1}})", R"({"constant": 1}})")) == "(no error)");
}

BOOST_AUTO_TEST_CASE(a_huge_wrong_value_is_shown_briefly) {
    // 10,000 numbers where the model's name belongs: the message shows their start and size.
    std::string big = "[0";
    for (int i = 1; i < 10000; ++i) big += ",0";
    big += "]";
    std::string msg = error_of(replace(model(kNodes), R"("name": "m")", R"("name": )" + big));
    BOOST_TEST(msg.find("name: expected a string, got [0,0,0,") != std::string::npos, msg);
    BOOST_TEST(msg.find("... (20001 characters in all)") != std::string::npos, msg);
    BOOST_TEST(msg.size() < 200u, msg);
}

BOOST_AUTO_TEST_CASE(attrs_are_checked_against_the_op) {
    std::string text = replace(model(kNodes), R"({"name": "yhat", "op": "sigmoid", "inputs": ["a"]})",
                               R"({"name": "yhat", "op": "normalize", "inputs": ["a"], "attrs": {"axs": 0}})");
    expect_error(text, {"nodes[2].attrs.axs: normalize has no attr 'axs' (allowed: axis)"});
    text = replace(model(kNodes), R"({"name": "yhat", "op": "sigmoid", "inputs": ["a"]})",
                   R"({"name": "yhat", "op": "normalize", "inputs": ["a"], "attrs": {"axis": "last"}})");
    expect_error(text, {"nodes[2].attrs.axis: expected number"});
    text = replace(model(kNodes), R"({"name": "yhat", "op": "sigmoid", "inputs": ["a"]})",
                   R"({"name": "yhat", "op": "normalize", "inputs": ["a"], "attrs": {"axis": 5}})");
    expect_error(text, {"nodes[2]: normalize axis 5 is out of range for a tensor of rank 2"});
}

BOOST_AUTO_TEST_CASE(unused_nodes_are_a_warning_not_an_error) {
    std::string text = replace(model(kNodes), R"("b": {"shape": [1], "init": {"constant": 0.1}})",
                               R"("b": {"shape": [1], "init": {"constant": 0.1}}, "c": {"shape": [2], "init": {"constant": 0}})");
    Model m = parse_model(text, "m.json");
    BOOST_REQUIRE(m.warnings.size() == 1u);
    BOOST_TEST(m.warnings[0].find("parameters.c: parameter 'c' is not used") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(load_save_load_is_the_same_graph) {
    for (const char* name : {"worked_example", "slides_mnist", "iris_neuron", "mnist_mlp"}) {
        std::string path = testing::source_root() + "/models/" + name + ".json";
        Model a = load_model(path);
        std::string tmp = (std::filesystem::temp_directory_path() / (std::string("rt_") + name + ".json")).string();
        save_model(a, tmp);
        Model b = load_model(tmp);
        BOOST_TEST(model_to_json(a).dump() == model_to_json(b).dump(), name);
        BOOST_REQUIRE(a.graph.size() == b.graph.size());
        for (std::size_t i = 0; i < a.graph.size(); ++i) {
            const Node &x = a.graph.node(int(i)), &y = b.graph.node(int(i));
            BOOST_TEST(x.name == y.name);
            BOOST_TEST((x.kind == y.kind));
            BOOST_TEST(format_shape(x.shape) == format_shape(y.shape));
            BOOST_TEST(x.inputs == y.inputs);
            BOOST_TEST(x.attrs.dump() == y.attrs.dump());
        }
        std::filesystem::remove(tmp);
    }
}

BOOST_AUTO_TEST_CASE(trained_values_round_trip_exactly) {
    Model a = load_model(testing::source_root() + "/models/worked_example.json");
    a.graph.init_parameters(0);
    Tensor w(Dtype::f64, {4, 1});
    for (int i = 0; i < 4; ++i) w.set(i, 0.1 * (i + 1) / 3.0 + 1e-17 * i);
    a.graph.set_value("w", w);
    std::string tmp = (std::filesystem::temp_directory_path() / "rt_trained.json").string();
    save_model(a, tmp, true);
    Model b = load_model(tmp);
    b.graph.init_parameters(0);
    for (int i = 0; i < 4; ++i) BOOST_TEST(b.graph.value("w").at(i) == w.at(i));
    std::filesystem::remove(tmp);
}

BOOST_AUTO_TEST_CASE(feed_errors_name_the_file_and_the_name) {
    Model m = parse_model(model(kNodes), "m.json");
    m.graph.init_parameters(0);
    auto feed_error = [&](const std::string& text) {
        try {
            apply_feed(m.graph, parse_json_text(text, "f.json"), "f.json");
        } catch (const InputError& e) {
            return std::string(e.what());
        }
        return std::string("(no error)");
    };
    BOOST_TEST(feed_error(R"({"q": [1]})").find("f.json: q: 'q' names no input or parameter") != std::string::npos);
    BOOST_TEST(feed_error(R"({"z": [[1]]})").find("'z' is an op node; a feed may only set inputs and parameters") !=
               std::string::npos);
    BOOST_TEST(feed_error(R"({"x": [[1, 2, 3]]})").find("f.json: 'x' was given shape [1,3] but the model declares [N,4]") !=
               std::string::npos);
    BOOST_TEST(feed_error(R"({"x": [[1, 2, 3, "a"]]})").find("f.json: x[0][3]: expected a number") != std::string::npos);
    BOOST_TEST(feed_error(R"([1, 2])").find("f.json: a feed must be a JSON object") != std::string::npos);
    // A feed fixes the point: inputs without a default must be in it, and symbols agree.
    BOOST_TEST(feed_error(R"({"w": [[1], [2], [3], [4]]})") ==
               "f.json: input 'x' [N,4] is not in f.json; give it, or declare a default \"value\" for it in the model");
    BOOST_TEST(feed_error(R"({"x": [[1, 2, 3, 4]]})").find("f.json: input 'y' [N,1] is not in f.json") !=
               std::string::npos);
    BOOST_TEST(feed_error(R"({"x": [[1, 2, 3, 4], [1, 2, 3, 4]], "y": [[1], [0], [1]]})") ==
               "f.json: y: symbol N is 3 here but 2 in input 'x' of f.json");
    BOOST_TEST(feed_error(R"({"x": [[1, 2, 3, 4]], "y": [[1]], "w": [[1], [2], [3], [4]]})") == "(no error)");
}

// Walks over user-sized structures are iterative: a long cycle or chain is a message, not
// a stack overflow.
BOOST_AUTO_TEST_CASE(a_cycle_through_70000_nodes_is_named_without_recursion) {
    const int n = 70000;
    std::string nodes = "[";
    for (int i = 0; i < n; ++i) {
        nodes += fmt::format(R"({}{{"name": "n{}", "op": "neg", "inputs": ["n{}"]}})", i ? "," : "", i,
                             i == 0 ? n - 1 : i - 1);
    }
    nodes += R"(, {"name": "yhat", "op": "sigmoid", "inputs": ["x"]}, {"name": "L", "op": "mse", "inputs": ["yhat", "y"]}])";
    expect_error(model(nodes), {"m.json: nodes[0].inputs[0]: the nodes form a cycle: n0 -> n69999 -> n69998",
                                "-> ... (69980 more) ... ->", "n1 -> n0"});
}

BOOST_AUTO_TEST_CASE(a_forward_reference_across_a_100000_node_chain) {
    const int n = 100000;
    std::string nodes = "[";
    for (int i = 0; i < n; ++i) {
        std::string in = i == n - 1 ? std::string("x") : fmt::format("n{}", i + 1);
        nodes += fmt::format(R"({}{{"name": "n{}", "op": "neg", "inputs": ["{}"]}})", i ? "," : "", i, in);
    }
    nodes += R"(, {"name": "yhat", "op": "sigmoid", "inputs": ["x"]}, {"name": "L", "op": "mse", "inputs": ["yhat", "y"]}])";
    expect_error(model(nodes), {"m.json: nodes[0].inputs[0]: 'n1' is defined later (nodes[1])"});
}

BOOST_AUTO_TEST_CASE(a_30000_character_symbol_is_refused_without_recursion) {
    std::string sym(30000, 'N');
    expect_error(replace(model(kNodes), R"(["N", 4])", fmt::format(R"(["{}", 4])", sym)),
                 {"m.json: inputs.x.shape[0]: symbolic dim \"NNNN", "must be a name like \"N\" (letters, digits and _, "
                                                                    "at most 64 characters)"});
    expect_error(replace(model(kNodes), R"(["N", 4])", R"(["4N", 4])"), {"inputs.x.shape[0]: symbolic dim \"4N\""});
    expect_error(replace(model(kNodes), R"(["N", 4])", R"(["N-1", 4])"), {"inputs.x.shape[0]: symbolic dim \"N-1\""});
}

BOOST_AUTO_TEST_CASE(default_values_that_disagree_on_a_symbol_are_refused_at_check) {
    std::string text = replace(model(kNodes), R"("x": {"shape": ["N", 4]}, "y": {"shape": ["N", 1]})",
                               R"("x": {"shape": ["N", 4], "value": [[1, 2, 3, 4], [1, 2, 3, 4]]},
                                  "y": {"shape": ["N", 1], "value": [[0], [1], [0]]})");
    expect_error(text, {"m.json: inputs.y.value: symbol N is 3 here but 2 in inputs.x.value"});
    expect_error(replace(text, "[[0], [1], [0]]", "[[0], [1]]"), {"(no error)"});
}
