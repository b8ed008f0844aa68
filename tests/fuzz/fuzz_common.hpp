// Shared by the libFuzzer targets: an InputError is the expected answer to bad input;
// anything else (another exception, a crash, a leak, undefined behaviour) is a finding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <unistd.h>

#include "core/error.hpp"
#include "graph/graph.hpp"

namespace chainrule::fuzz {

// models/worked_example.json without its docs, embedded so that a target runs anywhere:
// the model the feed and checkpoint targets load their inputs into.
inline constexpr const char* kWorkedExample = R"({
  "format": "chainrule-model", "version": 1, "name": "worked_example", "dtype": "float64",
  "inputs": {
    "x": {"shape": ["N", 4], "value": [[5.1, 3.5, 1.4, 0.2], [4.9, 3.0, 1.4, 0.2], [4.7, 3.2, 1.3, 0.2]]},
    "y": {"shape": ["N", 1], "value": [[0], [1], [0]]}
  },
  "parameters": {
    "w": {"shape": [4, 1], "init": {"constant": 0.1}},
    "b": {"shape": [1], "init": {"constant": 0.1}}
  },
  "nodes": [
    {"name": "z", "op": "matmul", "inputs": ["x", "w"]},
    {"name": "a", "op": "add", "inputs": ["z", "b"]},
    {"name": "yhat", "op": "sigmoid", "inputs": ["a"]},
    {"name": "L", "op": "mse", "inputs": ["yhat", "y"]}
  ],
  "outputs": {"prediction": "yhat", "loss": "L"}
})";

inline std::string as_text(const std::uint8_t* data, std::size_t size) {
    return std::string(reinterpret_cast<const char*>(data), size);
}

// The data loaders read files: the input goes to a file of this process, rewritten each run.
// It is removed when the fuzzer exits normally and kept after a crash.
inline std::string as_file(const std::uint8_t* data, std::size_t size, const char* suffix) {
    struct Scratch {
        std::string path;
        ~Scratch() { std::remove(path.c_str()); }
    };
    static const Scratch scratch{(std::filesystem::temp_directory_path() /
                                  ("chainrule-fuzz-" + std::to_string(::getpid()) + suffix))
                                     .string()};
    std::FILE* f = std::fopen(scratch.path.c_str(), "wb");
    if (!f || std::fwrite(data, 1, size, f) != size || std::fclose(f) != 0) std::abort();
    return scratch.path;
}

// Runs forward and backward once, as `chainrule grad` does, when the graph is small:
// a loader that accepts a model must leave it in a state the engine can run. Large
// models are legal but would only make the fuzzer measure memory, so they are skipped.
inline void run_small(Graph& g) {
    constexpr std::int64_t kBudget = std::int64_t{1} << 16;  // elements over all nodes
    std::int64_t total = 0;
    for (const Node& n : g.nodes()) {
        std::int64_t count = 1;
        for (const Dim& d : n.shape) count *= d.symbolic() ? 3 : d.size;
        total += count;
        if (count > kBudget || total > kBudget) return;
    }
    g.init_parameters(1);
    Rng rng(2);
    for (std::size_t id = 0; id < g.size(); ++id) {
        Node& n = g.node(static_cast<int>(id));
        if (n.kind != NodeKind::input || !n.value.empty()) continue;
        Dims dims;
        for (const Dim& d : n.shape) dims.push_back(d.symbolic() ? 3 : d.size);
        Tensor t(Dtype::f64, dims);
        for (std::int64_t i = 0; i < t.numel(); ++i) t.set(i, rng.uniform());
        g.set_value(n.name, t);
    }
    try {
        Plan plan = g.plan();
        g.forward(plan);
        if (g.loss() >= 0) g.backward(plan);
    } catch (const RunError&) {
        // A failure while running is a legitimate outcome (exit 1), not a crash.
    }
}

}  // namespace chainrule::fuzz
