// Showing the stepper's steps (`chainrule step`): as text, as JSON, and the interactive
// session. The lecture's labels (cli/lecture_labels.hpp) are laid over each step here.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>

#include "core/json_io.hpp"
#include "graph/stepper.hpp"

namespace chainrule::cli {

struct ShowOptions {
    std::int64_t limit = 24;  // tensors with more elements are summarised
    int digits = 6;
};

// "step 3/8: y2 = sigmoid(a2)" and what it computed, as text.
std::string format_step(const Stepper& s, const Step& st, const ShowOptions& o = {});
// A node's kind, shape, value and, when reached, gradient (the `p NAME` command).
std::string format_node(const Stepper& s, int id, const ShowOptions& o = {});
// The loss and the gradient of every parameter (after the walk).
std::string format_summary(const Stepper& s, const ShowOptions& o = {});

// One entry of `step --json`'s "steps" (docs/backprop-walkthrough.md has the schema).
Json step_json(const Stepper& s, const Step& st);

// The interactive session: reads commands from `in` (Enter: next step; p NAME; c; b NODE;
// q; help), writing to `out`; a prompt is printed before each read when `prompt`.
// Ends on q, at the end of `in`, or on Enter/c once the walk is done.
void interact(Stepper& s, std::istream& in, std::ostream& out, bool prompt, const ShowOptions& o = {});

}  // namespace chainrule::cli
