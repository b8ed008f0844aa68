// Graphviz pictures of a graph: `chainrule dot`.
#pragma once

#include <string>

#include "graph/graph.hpp"

namespace chainrule {

struct DotOptions {
    bool values = true;          // show values of tensors with at most `small` elements
    bool grads = false;          // and their gradients (run backward first)
    std::int64_t small = 8;
    int digits = 4;
    bool top_down = false;       // rankdir=TB instead of left to right
    bool legend = false;         // a box saying what each node shape and colour means
};

// DOT text: one node per graph node, labelled with name, op and shape (and small values);
// inputs, parameters, constants, ops and the loss each get their own shape and colour.
// Node k of the graph is DOT node "nk" with id="nk" and a class naming its kind
// ("cr-node cr-op", "cr-input", "cr-parameter", "cr-constant", plus "cr-loss"), which
// Graphviz copies into the SVG so that a script finds nodes by id, never by position.
std::string to_dot(const Graph& g, const DotOptions& o = {});

// A DOT double-quoted string's content: quotes and backslashes escaped, line breaks as \n,
// '&' as "&amp;" (Graphviz reads entities in labels), control characters and bytes that
// are not UTF-8 made visible (visible_text, core/text.hpp), so that the SVG is well formed.
std::string dot_escape(const std::string& s);

// The full path of `program` found on PATH, or "" when it is not there.
std::string find_program(const std::string& program);

// Renders DOT text to an SVG file with Graphviz's `dot -Tsvg`. Throws RunError when `dot`
// is not installed (naming the Debian package) or fails.
void render_svg(const std::string& dot_text, const std::string& path);
// The same SVG as text (the step page inlines it); `writing` names the file it is for in
// the message when dot fails.
std::string svg_text(const std::string& dot_text, const std::string& writing = {});

}  // namespace chainrule
