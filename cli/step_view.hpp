// Showing the stepper's steps (`chainrule step`): as text, as JSON, and the interactive
// session. The lecture's labels (cli/lecture_labels.hpp) are laid over each step here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/json.hpp"
#include "cli/explain_view.hpp"
#include "graph/stepper.hpp"
#include "render/explain.hpp"

namespace chainrule::cli {

struct ShowOptions {
    std::int64_t limit = 24;  // tensors with more elements are summarised
    int digits = 6;
    std::size_t width = 100;  // the REPL wraps longer lines
};

// "step 3/8: y2 = sigmoid(a2)" and what it computed, as text.
std::string format_step(const Stepper& s, const Step& st, const ShowOptions& o = {});
// A node's kind, shape, value and, when reached, gradient (the `p NAME` command). With
// `at` (k indices, fewer than the node's rank) only the slice NAME[at...] of value and
// gradient is shown: `p att[0,1]` is head 1 of row 0 of an [N,H,T,T] attention, a T×T
// matrix. A node of rank 3 or more is followed by a line saying how to show its slices.
std::string format_node(const Stepper& s, int id, const ShowOptions& o = {}, const std::vector<std::int64_t>& at = {});

// The sub-tensor t[at...] (the first at.size() axes fixed), a copy; InputError naming `name`,
// the axis and its size when an index is out of range or there are rank or more of them.
Tensor leading_slice(const Tensor& t, const std::vector<std::int64_t>& at, const std::string& name);
// "att[0,1]" → {"att", {0, 1}}; "att" → {"att", {}}. InputError for a malformed index list.
std::pair<std::string, std::vector<std::int64_t>> parse_slice(const std::string& text);
// The loss and the gradient of every parameter (after the walk).
std::string format_summary(const Stepper& s, const ShowOptions& o = {});

// Every node with its kind or op, shape and, for op nodes, the formula in the model's names
// (`chainrule ops` for this model; the `l` command).
std::string format_nodes(const Stepper& s);

// One entry of `step --json`'s "steps" (docs/backprop-walkthrough.md has the schema).
Json step_json(const Stepper& s, const Step& st);

// The step after which node `id`'s gradient is complete (numbered from 1, as `step`
// prints them): the last step of the walk that sends it a contribution; 0 for the loss
// (seeded with 1 before the first step); nullopt when no step sends it one.
std::optional<std::size_t> complete_after(const Stepper& s, int id);

// How many steps the walk runs for `--until NODE` (and the session's `until NODE`): to an
// op node's own step, or until a parameter's or an input's gradient is complete. An
// InputError names the problem (no such node, did you mean, a node that gets no gradient).
std::size_t steps_until(const Stepper& s, const std::string& name);

}  // namespace chainrule::cli
