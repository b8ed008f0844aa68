#include "cli/line_editor.hpp"

#include <cstdio>
#include <cstdlib>
#include <memory>

#include <editline/readline.h>

namespace chainrule::cli {

LineEditor::LineEditor() {
    rl_readline_name = "chainrule";  // the program's section in ~/.editrc
    using_history();
    stifle_history(1000);
}

LineEditor::~LineEditor() { clear_history(); }

std::optional<std::string> LineEditor::read(const std::string& prompt) {
    std::fflush(stdout);  // what the session wrote through std::cout, before editline writes the prompt
    // readline's line is malloc'ed, and the caller frees it.
    std::unique_ptr<char, decltype(&std::free)> line(readline(prompt.c_str()), &std::free);
    if (!line) {
        std::fputc('\n', stdout);  // Ctrl-D leaves the cursor after the prompt
        return std::nullopt;
    }
    std::string text(line.get());
    if (text.find_first_not_of(" \t") != std::string::npos && text != last_) {
        add_history(text.c_str());
        last_ = text;
    }
    return text;
}

LineSource LineEditor::source() {
    return {[this](const std::string& prompt) { return read(prompt); }, false};
}

}  // namespace chainrule::cli
