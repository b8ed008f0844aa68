// The interactive session of `chainrule step` (docs/backprop-walkthrough.md, "The session"):
// a line is a command, or a node's name to print it. On a terminal the lines come from
// cli/line_editor.hpp (editing and history); from a script or a pipe, from the stream.
#pragma once

#include <functional>
#include <iosfwd>
#include <optional>
#include <string>

#include "cli/step_view.hpp"

namespace chainrule::cli {

// Where the session's lines come from. `read(prompt)` returns the next line without its
// newline, nullopt at the end; `echo`: the source shows neither the prompt nor what was
// typed (a script, a pipe), so the session writes both, and its output reads as a transcript.
struct LineSource {
    std::function<std::optional<std::string>(const std::string& prompt)> read;
    bool echo = false;
};

// Runs the session on `s` until q or the end of the lines. `intro` follows the first line
// (the loss after forward), e.g. the rows' predictions. The grammar (also in its `help`):
//   Enter, n; c; back, u; l, list; q; help   commands without a node
//   p NAME, full NAME, explain NAME[i], until NODE (b NODE)   commands on a node
//   NAME                                     prints that node
// A word that is a command without a node is that command even when a node has its name
// (`p c` prints a node named c); a command on a node given no node prints the node of that
// name if there is one (`b` alone prints a parameter b), else says what it needs.
void interact(Stepper& s, const LineSource& lines, std::ostream& out, const ShowOptions& o = {},
              const std::string& intro = "");

// Lines from a stream: before each read the prompt is written when `prompt`, else each line
// is echoed after it.
void interact(Stepper& s, std::istream& in, std::ostream& out, bool prompt, const ShowOptions& o = {},
              const std::string& intro = "");

}  // namespace chainrule::cli
