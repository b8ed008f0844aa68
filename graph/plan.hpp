// Plan: what one kind of pass over a graph runs and keeps, as a value (ggml's cplan).
//
//     Plan plan = g.plan(Pass::training());   // order, fused steps, buffers: once
//     g.forward(plan);  g.backward(plan);      // every step, allocating nothing
//
// A Graph holds nodes, their values and gradients; everything that belongs to one kind of
// pass lives in its plan: the order of the op nodes, the fused steps, which nodes get
// gradients, each node's scratch memory (kept from its forward to its backward), the
// contributions the stepper shows, and what the pass lends to the ops (helper threads, a
// training step's noise seed, a fed batch's nonzeros). Two plans of one graph do not
// disturb each other's state; the trainer keeps one for its steps and one for evaluation,
// the stepper owns its own.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/sparse_rows.hpp"
#include "core/tensor.hpp"
#include "cpu/workers.hpp"
#include "ops/op.hpp"

namespace chainrule {

class Graph;

// What a pass computes and keeps, and what it lends to the ops.
//
// forward() and backward() run chains of ops as fused passes (matmul → add(bias) →
// sigmoid, sigmoid ← add(bias), mse ← normalize) with the same numbers as the ops one by
// one. Without keep_intermediates, values and gradients inside such a chain that nothing
// downstream reads are not written and hold stale numbers; outputs, parameters' gradients
// and everything a later step needs are always exact.
struct Pass {
    bool input_grads = false;        // inputs and constants get gradients too
    bool keep_intermediates = true;  // every node's value and gradient exact
    bool keep_contributions = false; // each contribution kept apart (no fused backward)
    int loss = -1;                   // the node differentiated; -1: the "loss" output
    // A training step's seed (noise_seed(noise_seed(seed, epoch), step)): ops with noise
    // (dropout) draw from it, each node from its own noise_seed(noise, node index). Empty in
    // every other pass, where such ops are the identity. Plan::set_noise changes it per step.
    std::optional<std::uint64_t> noise = {};
    // chainrule's helper threads, lent to ops that split their own work (conv2d splits the
    // batch); null: every op runs on the calling thread alone. Results do not depend on it.
    Workers* workers = nullptr;
    // Fed inputs' nonzeros (input node, its form, filled by whoever feeds it: train/feeder):
    // in a pass that lends them, an op with a sparse form (ops/sparse_matmul.hpp) reading
    // such an input as input 0 runs that form whenever the form is current for the input's
    // value. Only training lends them: `grad`, `gradcheck` and `step` run the dense ops.
    std::vector<std::pair<int, const SparseRows*>> sparse_inputs = {};

    // The default: every node's value exact, gradients for parameters and what they feed.
    static Pass exact() { return {}; }
    // Every node's value and gradient, inputs' included (`grad`, `dot --grads`).
    static Pass inspect() { return {.input_grads = true}; }
    // Only outputs and parameters' gradients are read: fused chains skip their insides.
    // Without noise: evaluation; a training step sets the noise per step.
    static Pass training() { return {.keep_intermediates = false}; }
    // One step of training: as training(), and dropout draws its masks from `step_seed`.
    static Pass training_step(std::uint64_t step_seed) { return {.keep_intermediates = false, .noise = step_seed}; }
    // The stepper: every node's gradient and every contribution, one op at a time.
    static Pass stepping() { return {.input_grads = true, .keep_contributions = true}; }
};

class Plan {
public:
    Plan() = default;

    const Pass& pass() const { return pass_; }
    int loss() const { return loss_; }  // -1 when the graph has none (forward only)
    // A training step's noise seed (dropout's masks); empty: ops with noise are the identity.
    void set_noise(std::optional<std::uint64_t> seed) { pass_.noise = seed; }

    // Op nodes in the order backward visits them (reverse topological, those the loss depends on).
    const std::vector<int>& backward_order() const { return backward_order_; }
    // Whether node `id` gets a gradient in this pass.
    bool wants_grad(int id) const { return wants_grad_[std::size_t(id)]; }
    // What op node `id` sent to its input `slot` in the last backward_node(id) (kept only
    // with keep_contributions; otherwise empty).
    const Tensor& contribution(int id, std::size_t slot) const;
    // The fused passes this plan runs, as text (for tests and docs), e.g.
    // "forward dense: xW1 → a1 → y1".
    const std::vector<std::string>& fusions() const { return fusions_; }
    // Bytes of the op nodes' scratch memory so far (conv2d's columns, max_pool2d's argmax).
    std::size_t scratch_bytes() const;

private:
    friend class Graph;

    // One entry of the forward or backward program: an op node, or a fused chain.
    struct Step {
        enum class Kind { op, dense, sigmoid_bias, bias, mse_normalize } kind = Kind::op;
        int node = -1;        // op: the node; dense: the matmul; sigmoid_bias/bias: the add; mse_normalize: the mse
        int next = -1;        // dense: the add; sigmoid_bias: the sigmoid; mse_normalize: the normalize
        int last = -1;        // dense: the sigmoid, or -1
        std::size_t full = 0; // dense, sigmoid_bias, bias: the add's input slot that is not the bias
    };

    Pass pass_;
    int loss_ = -1;
    std::size_t graph_size_ = 0;   // the node count it was made for
    std::vector<Step> forward_steps_, backward_steps_;
    std::vector<int> forward_order_, backward_order_;
    std::vector<bool> wants_grad_;
    std::vector<int> readers_;                     // per node: op input slots that read it
    std::vector<int> reader_;                      // per node: the last op node reading it
    std::vector<bool> is_output_;
    std::vector<const SparseRows*> sparse_;        // per node: the nonzeros lent for it, or null
    std::vector<std::string> fusions_;

    // Bound to the inputs' dims at the last forward: values, gradients and contributions are
    // sized for them, and a forward with other dims binds again.
    std::vector<Dims> bound_;                      // per node, its value's dims
    std::vector<std::vector<Tensor>> contrib_;     // per node, per input slot
    std::vector<std::vector<bool>> direct_;        // contribution written straight into grad
    std::vector<bool> written_;                    // grad holds something this pass
    std::vector<Workspace> scratch_;               // per node, kept from its forward to its backward
    std::vector<const Tensor*> in_ptrs_;
    std::vector<Tensor*> grad_ptrs_;
};

}  // namespace chainrule
