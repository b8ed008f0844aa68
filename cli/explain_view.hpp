// One gradient entry written out term by term (`explain w[0]`, `step --explain`), and the
// REPL's line wrapping, which never breaks inside a number.
#pragma once

#include <string>

#include "core/json.hpp"
#include "render/explain.hpp"

namespace chainrule::cli {

// Numbers with `digits` significant digits, as `step --digits` prints them.
std::string format_explanation(const Explanation& x, int digits = 6);
Json explanation_json(const Explanation& x);

// Lines longer than `width` columns broken after a ", " (never inside a number), the rest
// of the line continuing under the first '[' of the broken line or under its text.
std::string wrap_lines(const std::string& text, std::size_t width);

}  // namespace chainrule::cli
