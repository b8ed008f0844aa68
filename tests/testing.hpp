// Helpers shared by the test suites.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <typeinfo>
#include <unistd.h>

#include "core/random.hpp"
#include "core/tensor.hpp"
#include "graph/graph.hpp"
#include "graph/labels.hpp"
#include "ops/op.hpp"
#include "ops/opcheck.hpp"

// Whether this build runs under AddressSanitizer (scripts/sanitize, which adds UBSan): there
// a step takes 10 to 50 times longer, so the slowest suites repeat the same checks fewer
// times (fewer epochs, steps or rows), never checking less of each.
#if defined(__SANITIZE_ADDRESS__)
#define CHAINRULE_TESTS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CHAINRULE_TESTS_SANITIZED 1
#endif
#endif

namespace chainrule::testing {

#ifdef CHAINRULE_TESTS_SANITIZED
inline constexpr bool sanitized = true;
#else
inline constexpr bool sanitized = false;
#endif

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

// Values for every input of `g` still without one, symbolic dims set to 3: valid class indices
// or ids where an op reads the input so (graph/labels.hpp), one-hot rows for an op's [N,C]
// labels, uniform(0.5, 2) elsewhere.
inline void draw_inputs(Graph& g, Rng& rng) {
    for (std::size_t id = 0; id < g.size(); ++id) {
        const Node& n = g.node(int(id));
        if (n.kind != NodeKind::input || !n.value.empty()) continue;
        Dims dims;
        for (const auto& d : n.shape) dims.push_back(d.symbolic() ? 3 : d.size);
        std::int64_t indices = 0, one_hot = 0;
        for (const ClassIndexUse& use : class_index_uses(g, int(id))) indices = std::max(indices, use.classes);
        for (const Node& user : g.nodes())
            for (std::size_t k = 0; k < user.inputs.size(); ++k)
                if (user.inputs[k] == int(id) && int(k) == user.op->labels_input) one_hot = 1;
        const Domain domain = indices > 0 ? Domain::class_index : one_hot ? Domain::one_hot : Domain::positive;
        g.set_value(n.name, random_tensor(dims, domain, rng, indices));
    }
}

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

// This process's own folder in the temporary directory (suites run side by side), named after
// the suite's executable and made on first use. A suite removes it when its tests end with
// `using chainrule::testing::RemoveScratch;` and BOOST_TEST_GLOBAL_FIXTURE(RemoveScratch).
inline std::filesystem::path scratch() {
    static const std::filesystem::path dir = [] {
        std::error_code ec;
        std::string suite = std::filesystem::read_symlink("/proc/self/exe", ec).filename().string();
        std::filesystem::path d = std::filesystem::temp_directory_path() /
                                  ("chainrule_" + (suite.empty() ? std::string("test") : suite) + "_" +
                                   std::to_string(::getpid()));
        std::filesystem::create_directories(d);
        return d;
    }();
    return dir;
}
struct RemoveScratch {
    ~RemoveScratch() {
        std::error_code ec;
        std::filesystem::remove_all(scratch(), ec);
    }
};

// A fresh, empty folder `name` in the scratch folder: what an earlier test left there is gone.
inline std::filesystem::path fresh_scratch_dir(const std::string& name) {
    const std::filesystem::path p = scratch() / name;
    std::filesystem::remove_all(p);
    std::filesystem::create_directories(p);
    return p;
}

// How prepare_graph draws the inputs' values.
enum class Draw { uniform, normal };

// Parameters initialised with seed 5; every input without a default value set to numbers drawn
// with seed 9 (uniform in [0, 1) or standard normal), symbolic dims set to 3.
inline void prepare_graph(Graph& g, Draw draw) {
    Rng rng(9);
    g.init_parameters(5);
    for (std::size_t i = 0; i < g.size(); ++i) {
        const Node& n = g.node(int(i));
        if (n.kind != NodeKind::input || !n.default_value.empty()) continue;
        Dims dims;
        for (const Dim& d : n.shape) dims.push_back(d.symbolic() ? 3 : d.size);
        Tensor t(Dtype::f64, dims);
        for (std::int64_t e = 0; e < t.numel(); ++e) t.set(e, draw == Draw::uniform ? rng.uniform() : rng.normal());
        g.set_value(n.name, t);
    }
}

// max |a − b| over max |b|: relative to the tensor's scale, since an entry near 0 that is a
// sum of larger terms differs in its last bits when a GEMM sums them in another order.
inline double relative_error(const Tensor& a, const Tensor& b) {
    double worst = 0, scale = 1e-300;
    for (std::int64_t e = 0; e < a.numel(); ++e)
        worst = std::max(worst, std::abs(a.at(e) - b.at(e))), scale = std::max(scale, std::abs(b.at(e)));
    return worst / scale;
}


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
