// libFuzzer target: model JSON text through parse_model, then one forward and backward
// pass for small models (`chainrule check` and `chainrule grad` on the same bytes). A model
// that loads must also survive model_to_json and load again: chainrule writes models
// (a run's model.json) and must read back what it wrote.
#include <cstdio>
#include <cstdlib>

#include "format/model_json.hpp"
#include "tests/fuzz/fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace chainrule;
    std::string written;
    try {
        Model m = parse_model(fuzz::as_text(data, size), "fuzz.json");
        (void)m.graph.parameter_count();
        written = model_to_json(m).dump();
        fuzz::run_small(m.graph);
    } catch (const InputError&) {
    }
    if (written.empty()) return 0;  // refused, as bad input should be
    try {
        (void)parse_model(written, "written.json");
    } catch (const InputError& e) {
        std::fprintf(stderr, "a model chainrule wrote does not load: %s\n%s\n", e.what(), written.c_str());
        std::abort();
    }
    return 0;
}
