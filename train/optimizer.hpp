// Optimizers, learning-rate schedules and gradient clipping with torch.optim 1.13's names,
// defaults and single-tensor (foreach=False) formulas, so a recipe moves across unchanged.
// Each optimizer is an entry of the optimizer table (train/optimizer_table.hpp); this file
// reads, writes, allocates and checkpoints every entry alike. docs/optimizers.md writes each
// update out; tests/test_optimizers.cpp follows the golden trajectories
// (tests/golden/optimizers.json) to 1e-9.
//
//     OptimizerSpec o = parse_optimizer(block["optimizer"], "m.json: training.optimizer");
//     Optimizer opt(o, g, g.parameters());   // moment buffers allocated here, once
//     opt.step(g, params, lr);               // every step: no allocation
//
// The trainer's step is: backward, clip_gradients (when asked), step at the epoch's
// scheduled_lr. The state (step count and buffers) travels in the checkpoint.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/json.hpp"
#include "core/tensor.hpp"
#include "graph/graph.hpp"
#include "train/checkpoint.hpp"
#include "train/optimizer_table.hpp"

namespace chainrule {

struct ScheduleSpec {
    enum class Kind { constant, step, exponential, cosine, warmup };
    Kind kind = Kind::constant;
    std::int64_t step_size = 1;   // step
    double gamma = 0.1;           // step, exponential
    std::int64_t t_max = 1;       // cosine
    double eta_min = 0;           // cosine
    std::int64_t epochs = 1;      // warmup
    double start_factor = 1.0 / 3;  // warmup
};

const char* schedule_name(ScheduleSpec::Kind k);  // "constant", "step", ...

// `j` is the {"sgd": {...}} object; `at` is its place ("m.json: training.optimizer").
// Unknown keys, wrong types and PyTorch's range checks are InputErrors naming the key. An
// optimizer is read as its entry in the optimizer table says (train/optimizer_table.hpp).
OptimizerSpec parse_optimizer(const Json& j, const std::string& at);
ScheduleSpec parse_schedule(const Json& j, const std::string& at);
// The spec as JSON, every field written (for checkpoints and a run's first line).
Json optimizer_json(const OptimizerSpec& o);
Json schedule_json(const ScheduleSpec& s);
// "adam(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0, amsgrad=false)"
std::string describe(const OptimizerSpec& o);
std::string describe(const ScheduleSpec& s);  // "cosine(t_max=100, eta_min=0)"

// The learning rate for the epoch after `epochs_done` completed epochs (closed forms of
// StepLR, ExponentialLR, CosineAnnealingLR and LinearLR to 1.0).
double scheduled_lr(const ScheduleSpec& s, double base_lr, std::int64_t epochs_done);

// torch.nn.utils.clip_grad_norm_: scales every gradient by min(1, max_norm / (norm + 1e-6))
// where norm is the L2 norm over all of them; returns that norm (before scaling).
double clip_grad_norm(std::span<Tensor* const> grads, double max_norm);

// The run settings a resumed run must share with its checkpoint for the optimizer's sake
// ("lr", "optimizer", "lr_schedule", "clip_grad_norm"); --fresh-optimizer waives them.
bool is_optimizer_setting(const std::string& key);

class Optimizer {
public:
    // `params` fixes the shapes and dtypes of the state; nothing is allocated after this. An
    // entry's max_parameters below the parameters' entries is an InputError saying both.
    Optimizer(const OptimizerSpec& spec, std::span<const Tensor* const> params);
    // The same for parameter nodes of `g` (their values must be set).
    Optimizer(const OptimizerSpec& spec, Graph& g, std::span<const int> params);

    const OptimizerSpec& spec() const { return spec_; }
    std::int64_t steps() const { return steps_; }
    // One update of every parameter from its gradient at learning rate `lr`. A second-order
    // entry (spec's entry has second_order) needs `curvature`: the loss at trial points and
    // Hessian-vector products on the batch the gradients came from (train/curvature.hpp).
    void step(std::span<Tensor* const> params, std::span<const Tensor* const> grads, double lr,
              Curvature* curvature = nullptr);
    // The same on the graph's parameter nodes and their gradients.
    void step(Graph& g, std::span<const int> params, double lr, Curvature* curvature = nullptr);
    bool second_order() const { return entry_->second_order; }
    // clip_grad_norm over the gradients of the graph's parameter nodes; returns the norm.
    double clip_gradients(Graph& g, std::span<const int> params, double max_norm);

    // Into and out of a checkpoint: info.optimizer_steps and its optimizer_state list. A
    // checkpoint without the state this optimizer needs is an InputError naming `file`.
    void save_state(Checkpoint& c) const;
    void restore_state(const Checkpoint& c, const std::string& file);

    // The state as named tensors (for a checkpoint): "momentum_buffer.0", "exp_avg.1", ...
    std::vector<std::pair<std::string, const Tensor*>> state() const;
    // Restores what state() wrote; a missing or misshapen entry is an InputError naming it.
    void restore(std::int64_t steps, const std::vector<std::pair<std::string, Tensor>>& state,
                 const std::string& where);

private:
    std::vector<std::pair<std::string, Tensor*>> named_state();
    const OptimizerEntry* entry_;
    OptimizerSpec spec_;
    std::int64_t steps_ = 0;
    // state_[k][i]: the entry's buffer i for parameter k; empty where this configuration
    // keeps none (adam without amsgrad has no max_exp_avg_sq).
    std::vector<std::vector<Tensor>> state_;
    std::vector<Tensor*> values_, grads_;  // step(Graph&)'s views, sized once
    std::vector<const Tensor*> const_grads_;
    void view(Graph& g, std::span<const int> params);
};

}  // namespace chainrule
