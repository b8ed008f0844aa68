// The two kinds of failure chainrule reports, mapped to exit codes by the CLI.
#pragma once

#include <stdexcept>
#include <string>

namespace chainrule {

// Bad input found anywhere (model, feed, data, checkpoint, usage): exit code 2.
// The message names the place: file, JSON path or line, and what was expected.
struct InputError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A failure while running (NaN loss, I/O error on output): exit code 1.
struct RunError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

}  // namespace chainrule
