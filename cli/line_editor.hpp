// Lines typed on a terminal, with editing and history: editline (libedit, BSD-3-Clause,
// Debian's libedit-dev) through its readline-compatible API. ← → Home End and the Emacs keys
// edit the line, ↑ ↓ go through the lines typed before in this session, Ctrl-R searches
// them. `chainrule step` uses it when stdin and stdout are a terminal, and reads plain lines
// otherwise (a script, a pipe: the test suites).
#pragma once

#include <optional>
#include <string>

#include "cli/repl.hpp"

namespace chainrule::cli {

// readline's state is the library's own, one per process: one LineEditor at a time.
class LineEditor {
public:
    LineEditor();
    ~LineEditor();  // forgets the session's history
    LineEditor(const LineEditor&) = delete;
    LineEditor& operator=(const LineEditor&) = delete;

    // The next line (shown after `prompt`); nullopt at the end (Ctrl-D on an empty line).
    // A line that is not empty and not the one before goes into the history.
    std::optional<std::string> read(const std::string& prompt);
    // The session's line source.
    LineSource source();

private:
    std::string last_;
};

}  // namespace chainrule::cli
