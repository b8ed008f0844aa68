// Showing the stepper's steps (`chainrule step`): as text, as JSON, and the interactive
// session. The lecture's labels (cli/lecture_labels.hpp) are laid over each step here.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>

#include "core/json_io.hpp"
#include "cli/explain_view.hpp"
#include "graph/explain.hpp"
#include "graph/stepper.hpp"

namespace chainrule::cli {

struct ShowOptions {
    std::int64_t limit = 24;  // tensors with more elements are summarised
    int digits = 6;
    std::size_t width = 100;  // the REPL wraps longer lines
};

// "step 3/8: y2 = sigmoid(a2)" and what it computed, as text.
std::string format_step(const Stepper& s, const Step& st, const ShowOptions& o = {});
// A node's kind, shape, value and, when reached, gradient (the `p NAME` command).
std::string format_node(const Stepper& s, int id, const ShowOptions& o = {});
// The loss and the gradient of every parameter (after the walk).
std::string format_summary(const Stepper& s, const ShowOptions& o = {});

// Every node with its kind or op, shape and, for op nodes, the formula in the model's names
// (`chainrule ops` for this model; the `l` command).
std::string format_nodes(const Stepper& s);

// One entry of `step --json`'s "steps" (docs/backprop-walkthrough.md has the schema).
Json step_json(const Stepper& s, const Step& st);

// The interactive session: reads commands from `in` (Enter/n: next step; back; p NAME;
// full NAME; l; explain NAME[i]; b NODE; c; q; help), writing to `out`; a prompt is printed before each read when `prompt`.
// Ends on q or at the end of `in`; at the end of the walk, n says the walk is done.
// `intro` follows the first line (the loss after forward), e.g. the rows' predictions.
void interact(Stepper& s, std::istream& in, std::ostream& out, bool prompt, const ShowOptions& o = {},
              const std::string& intro = "");

}  // namespace chainrule::cli
