// The optimizer seam: what a training step does with the gradients once backward is done.
// SGD is the one optimizer today; momentum, Adam, AdamW and RMSprop (PyTorch's formulas,
// DESIGN.md) come behind the same interface, each keeping its state (moment buffers, step
// count) in the checkpoint so that a resumed run is exact.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "core/json_io.hpp"
#include "graph/graph.hpp"
#include "train/checkpoint.hpp"

namespace chainrule {

enum class OptimizerKind { sgd };
const char* optimizer_name(OptimizerKind kind);  // its key in the JSON: "sgd"

// The `training.optimizer` block, typed: {"sgd": {"lr": x}}.
struct OptimizerSpec {
    OptimizerKind kind = OptimizerKind::sgd;
    double lr = 0.1;
};

// Validates the block; `at` is "FILE: training.optimizer".
OptimizerSpec parse_optimizer(const Json& j, const std::string& at);

class Optimizer {
public:
    virtual ~Optimizer() = default;
    // Updates `params` from their gradients. Must not allocate: it runs every step.
    virtual void step(Graph& g, std::span<const int> params) = 0;
    // Run state beyond the parameters, into and out of a checkpoint (SGD has none). A
    // checkpoint without the state an optimizer needs is an InputError naming `file`.
    virtual void save_state(Checkpoint&) const {}
    virtual void restore_state(const Checkpoint&, const std::string& /*file*/) {}
};

std::unique_ptr<Optimizer> make_optimizer(const OptimizerSpec& spec);

}  // namespace chainrule
