// Helpers shared by the test suites.
#pragma once

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <typeinfo>
#include <unistd.h>

#include "core/random.hpp"
#include "core/tensor.hpp"
#include "ops/op.hpp"
#include "ops/opcheck.hpp"

namespace chainrule::testing {

inline std::string source_root() {
    const char* r = std::getenv("CHAINRULE_SOURCE_ROOT");
    return r ? r : ".";
}
inline std::string build_root() {
    const char* r = std::getenv("CHAINRULE_BUILD_ROOT");
    return r ? r : "build";
}

// A float64 tensor drawn from `domain` (ops/opcheck.hpp).
inline Tensor random_tensor(const Dims& dims, Domain domain, Rng& rng, std::int64_t classes = 2) {
    return sample_tensor(dims, domain, rng, classes);
}
using chainrule::differentiable;

// Runs a shell command; returns its exit code (128 + signal when killed) with stdout and
// stderr captured separately.
struct CommandResult {
    int code = -1;
    std::string out, err;
};
inline CommandResult run_command(const std::string& cmd) {
    char tmpl[] = "/tmp/chainrule_test_stderr_XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd >= 0) close(fd);
    CommandResult r;
    FILE* p = popen((cmd + " 2>" + tmpl).c_str(), "r");
    if (!p) return r;
    std::array<char, 4096> buf;
    std::size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
    int status = pclose(p);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::ifstream e(tmpl);
    std::stringstream ss;
    ss << e.rdbuf();
    r.err = ss.str();
    std::remove(tmpl);
    return r;
}

inline std::string chainrule_binary() { return build_root() + "/cli/chainrule"; }


// The message of the E that f() throws, or "(no E was thrown)".
template <class E, class F>
std::string message_of(F&& f) {
    try {
        f();
    } catch (const E& e) {
        return e.what();
    }
    return "(no " + std::string(typeid(E).name()) + " was thrown)";
}

}  // namespace chainrule::testing

// A message check that prints the whole message when the part is missing.
#define CHECK_HAS(text, part) BOOST_TEST((text).find(part) != std::string::npos, "'" << (text) << "' lacks '" << (part) << "'")
