// libFuzzer target: a feed file applied to the lecture's worked example (as
// `chainrule grad models/worked_example.json --feed FILE`), then forward and backward.
#include "graph/model_json.hpp"
#include "tests/fuzz/fuzz_common.hpp"

namespace {

// models/worked_example.json without its docs; embedded so that the target runs anywhere.
constexpr const char* kModel = R"({
  "format": "chainrule-model", "version": 1, "name": "worked_example", "dtype": "float64",
  "inputs": {
    "x": {"shape": ["N", 4], "value": [[5.1, 3.5, 1.4, 0.2], [4.9, 3.0, 1.4, 0.2], [4.7, 3.2, 1.3, 0.2]]},
    "y": {"shape": ["N", 1], "value": [[0], [1], [0]]}
  },
  "parameters": {
    "w": {"shape": [4, 1], "init": {"constant": 0.1}},
    "b": {"shape": [1], "init": {"constant": 0.1}}
  },
  "nodes": [
    {"name": "z", "op": "matmul", "inputs": ["x", "w"]},
    {"name": "a", "op": "add", "inputs": ["z", "b"]},
    {"name": "yhat", "op": "sigmoid", "inputs": ["a"]},
    {"name": "L", "op": "mse", "inputs": ["yhat", "y"]}
  ],
  "outputs": {"prediction": "yhat", "loss": "L"}
})";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace chainrule;
    static const Model model = parse_model(kModel, "worked_example.json");
    Model m = model;
    try {
        m.graph.init_parameters(0);
        apply_feed(m.graph, parse_json_text(fuzz::as_text(data, size), "feed.json"), "feed.json");
        m.graph.forward();
        m.graph.backward();
    } catch (const InputError&) {
    } catch (const RunError&) {
    }
    return 0;
}
