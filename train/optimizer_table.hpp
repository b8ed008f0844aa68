// What an optimizer is: one entry of the optimizer table (train/optimizer_table.cpp), as an
// op is one registration (ops/op.hpp). An entry holds the optimizer's name, its
// hyper-parameters (JSON key, type, default, PyTorch's range check), its named state buffers
// and its update rule; train/optimizer.cpp does the rest for every entry alike: parsing the
// JSON block with its messages, optimizer_json and describe, allocating the state once,
// saving it to and restoring it from a checkpoint. A new optimizer is one entry (its update
// a few lines beside it, the formula in a comment) plus golden trajectories
// (tests/golden/make_optimizer_goldens.py), its object in models/schema.json and its lines in
// docs/optimizers.md; tests/test_optimizers.cpp holds every entry to all three.
//
//     {.name = "lion",
//      .hyper = {{.key = "lr", .fallback = {1e-4}, .low = 0},
//                {.key = "betas", .type = HyperParam::Type::pair, .fallback = {0.9, 0.99},
//                 .low = 0, .below = 1, .form = "[beta1, beta2]"},
//                {.key = "weight_decay", .low = 0}},
//      .state = {{.name = "exp_avg"}},
//      .update = lion},
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.hpp"

namespace chainrule {

// One hyper-parameter: how the JSON block names and checks it, and its default.
struct HyperParam {
    enum class Type { number, flag, pair };
    std::string key;                     // its JSON key: "betas"
    Type type = Type::number;            // a number, true/false, or two numbers
    std::vector<double> fallback = {0};  // the default: one number (a flag: 0 or 1), a pair's two
    bool required = false;               // no default: torch.optim.SGD's lr
    // PyTorch's check of each number: v >= low, and v < below when below is finite. The
    // messages read "must be >= 0, got -1" and "must be in [0, 1), got 1". Flags have none.
    double low = -std::numeric_limits<double>::infinity();
    double below = std::numeric_limits<double>::infinity();
    std::string form = {};  // how a pair's message names its numbers: "[beta1, beta2]"
};

// A model's choice of optimizer: an entry's name and its hyper-parameters' values. What
// parse_optimizer returns, what optimizer_json writes; `OptimizerSpec{}` is plain SGD at 0.1.
struct OptimizerSpec {
    std::string name = "sgd";
    double lr = 0.1;  // the "lr" hyper-parameter, kept apart: --lr and the schedule change it
    // Every other hyper-parameter by its JSON key (a number or flag: one value; a pair: two).
    // A key missing here has its entry's default.
    std::map<std::string, std::vector<double>, std::less<>> values = {};

    // The value of one of the entry's hyper-parameters; std::logic_error for a key the entry
    // does not have (a defect of the entry's update, not of the model).
    double number(std::string_view key) const;
    bool flag(std::string_view key) const { return number(key) != 0; }
    std::span<const double> pair(std::string_view key) const;
};

// What a second-order entry (newton, newton_cg) asks of the step it is in, on the step's batch:
// the loss at the parameters' current values, and Hessian-vector products there. The update
// moves UpdateCall::params to a trial point, asks loss(), and keeps or undoes the move. The
// trainer gives one to every step of an entry with `second_order` (train/curvature.hpp, from the
// backward pass written as nodes: graph/hessian.hpp); first-order entries are given none.
class Curvature {
public:
    virtual ~Curvature() = default;
    // The batch's loss with the parameters as they are now.
    virtual double loss() = 0;
    // out[k] = (H·v)[k], H the Hessian of the batch's loss at the parameters as they are now;
    // v[k] and out[k] shaped like params[k].
    virtual void hvp(std::span<const Tensor* const> v, std::span<Tensor* const> out) = 0;
};

// What an update is given: every parameter at once, with its gradient and its buffers. The
// update changes the parameters and the buffers, nothing else.
struct UpdateCall {
    std::span<Tensor* const> params;
    std::span<const Tensor* const> grads;      // grads[k] is dL/dparams[k], after clipping
    std::span<std::vector<Tensor>> state;      // state[k][i]: the entry's buffer i for params[k],
                                               // empty where this configuration keeps none
    const OptimizerSpec& spec;                 // the hyper-parameters
    double lr;                                 // this epoch's, from the schedule
    std::int64_t step;                         // 1 on the first update
    Curvature* curvature = nullptr;            // a second-order entry's; null for the others
};

// One state buffer per parameter, shaped like it and zero at the start.
struct StateBuffer {
    std::string name;  // PyTorch's state_dict key; "NAME.k" in a checkpoint's optimizer_state
    // Whether a configuration needs it (adam's max_exp_avg_sq only with amsgrad); null: always.
    std::function<bool(const OptimizerSpec&)> kept = {};
    // A running mean of squares (adam's exp_avg_sq): never below 0, so a checkpoint's
    // negative entry is refused rather than met as a NaN from its square root.
    bool squares = false;
    // One number for the whole model (newton's damping), not one per entry: a [1] tensor kept
    // with the first parameter, none with the others.
    bool scalar = false;
};

struct OptimizerEntry {
    std::string name;                // the JSON key: {"lion": {...}}
    std::vector<HyperParam> hyper;   // "lr" first; the order optimizer_json and describe write
    std::vector<StateBuffer> state;  // in checkpoint order, per parameter
    // Checks that join several hyper-parameters (sgd's nesterov), run after each one's own;
    // `at` is the block's JSON path. Throws InputError.
    std::function<void(const OptimizerSpec&, const std::string& at)> check = {};
    std::function<void(const UpdateCall&)> update;
    // Needs UpdateCall::curvature: the loss at trial points and Hessian-vector products.
    bool second_order = false;
    // Refused above this many parameter entries (0: any number), with the reason said.
    std::int64_t max_parameters = 0;
    std::string why_max = {};
};

// Every optimizer, in the order messages list them: sgd, adam, adamw, rmsprop, lion, newton, newton_cg.
std::span<const OptimizerEntry> optimizer_table();
const OptimizerEntry* find_optimizer(std::string_view name);  // null when there is none

}  // namespace chainrule
