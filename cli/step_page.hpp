// The browser page of `chainrule step MODEL --html PAGE` (docs/step-page.md): one
// self-contained HTML file with the graph as inline SVG (Graphviz), the whole backward walk
// as a JSON data block and a small script (cli/page/page.js) to step through it offline.
#pragma once

#include <string>
#include <vector>

#include "cli/common.hpp"
#include "cli/row_predictions.hpp"
#include "graph/stepper.hpp"

namespace chainrule::cli {

struct PageOptions {
    // Where the inputs and parameters came from: the inputs drawn at random ("x [N,784]"),
    // the data's rows, the weights, the seed; the page's header says them as stderr does.
    Point point;
    std::vector<RowPrediction> rows;  // each row's label and prediction after forward
};

// Walks `s` (which must not have stepped yet) to the end and returns the page's HTML.
// Throws RunError when Graphviz's `dot` is missing or fails.
std::string step_page(Stepper& s, const PageOptions& o = {});

// Text made safe inside <script type="application/json">: `<`, `>`, `&`, U+2028 and U+2029
// become \u escapes (JSON.parse reads them back), so `</script>` or `<!--` in a node name
// cannot end or comment out the block.
std::string script_safe_json(const std::string& json_text);

// base64 (RFC 4648, with padding) of raw bytes.
std::string base64(const void* data, std::size_t size);

}  // namespace chainrule::cli
