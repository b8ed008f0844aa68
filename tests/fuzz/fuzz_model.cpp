// libFuzzer target: model JSON text through parse_model, then one forward and backward
// pass for small models (`chainrule check` and `chainrule grad` on the same bytes).
#include "graph/model_json.hpp"
#include "tests/fuzz/fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace chainrule;
    try {
        Model m = parse_model(fuzz::as_text(data, size), "fuzz.json");
        (void)m.graph.parameter_count();
        fuzz::run_small(m.graph);
    } catch (const InputError&) {
    }
    return 0;
}
