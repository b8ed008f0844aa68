// libFuzzer target: a feed file applied to the lecture's worked example (as
// `chainrule grad models/worked_example.json --feed FILE`), then forward and backward.
#include "format/model_json.hpp"
#include "tests/fuzz/fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace chainrule;
    static const Model model = parse_model(fuzz::kWorkedExample, "worked_example.json");
    Model m = model;
    try {
        m.graph.init_parameters(0);
        apply_feed(m.graph, parse_json_text(fuzz::as_text(data, size), "feed.json"), "feed.json");
        forward_backward_once(m.graph);
    } catch (const InputError&) {
    } catch (const RunError&) {
    }
    return 0;
}
