// Graph: named nodes (input, parameter, constant, op), forward in topological order,
// backward in reverse topological order.
//
//     Graph g(Dtype::f64);
//     g.input("x", {{3,{}}, {4,{}}});
//     g.parameter("w", fixed_shape({4, 1}), Init::constant(0.1));
//     g.op("z", "matmul", {"x", "w"});      // shape inferred here; a mismatch throws
//     ...
//     g.set_output("loss", "L");
//     g.init_parameters(seed);
//     g.set_value("x", x);
//     g.forward();  g.backward();           // Pass::exact(): every node's value exact
//     g.grad("w");
//     g.forward(Pass::training());  g.backward(Pass::training());  // what a training step reads
//
// The engine owns gradient accumulation: an op's backward writes its contribution for
// each input and the engine adds contributions when a node feeds several consumers.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/random.hpp"
#include "core/shape.hpp"
#include "core/tensor.hpp"
#include "ops/op.hpp"

namespace chainrule {

enum class NodeKind { input, parameter, constant, op };
const char* kind_name(NodeKind k);

struct Init {
    enum class Kind { constant, normal, uniform, xavier_uniform, he_normal, value };
    Kind kind = Kind::constant;
    double a = 0, b = 0;  // constant: a; normal: mean a, std b; uniform: low a, high b
    Tensor value;         // Kind::value, float64

    static Init constant(double v) { return {Kind::constant, v, 0, {}}; }
    static Init normal(double mean, double std) { return {Kind::normal, mean, std, {}}; }
    static Init uniform(double low, double high) { return {Kind::uniform, low, high, {}}; }
    static Init xavier_uniform() { return {Kind::xavier_uniform, 0, 0, {}}; }
    static Init he_normal() { return {Kind::he_normal, 0, 0, {}}; }
    static Init values(Tensor v) { return {Kind::value, 0, 0, std::move(v)}; }
};

struct Node {
    std::string name;
    NodeKind kind = NodeKind::op;
    Shape shape;           // declared (input/parameter/constant) or inferred (op)
    const Op* op = nullptr;
    std::vector<int> inputs;
    Attrs attrs = Attrs::object();  // op's defaults merged with the model's
    Init init;                      // parameters
    Tensor default_value;           // inputs (optional) and constants
    std::string place;              // where it was defined, e.g. "nodes[3]", for messages
    std::string doc;

    Tensor value, grad;
    bool wants_grad = false;
};

// What one forward/backward pass computes and keeps. The graph caches the plan it builds
// for a pass, so running the same pass again costs nothing, and nothing is left switched
// on for the next caller.
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
    // every other pass, where such ops are the identity.
    std::optional<std::uint64_t> noise = {};
    // chainrule's helper threads, lent to ops that split their own work (conv2d splits the
    // batch); null: every op runs on the calling thread alone. Results do not depend on it.
    Workers* workers = nullptr;
    // A fed input's nonzeros (sparse_rows()), when current, go to the ops reading it as input
    // 0 (matmul and linear skip its zeros). Only training passes: everywhere else (`grad`,
    // `gradcheck`, `step`) the dense path runs, so those numbers cannot change.
    bool sparse_inputs = false;

    // The default: every node's value exact, gradients for parameters and what they feed.
    static Pass exact() { return {}; }
    // Every node's value and gradient, inputs' included (`grad`, `dot --grads`).
    static Pass inspect() { return {.input_grads = true}; }
    // Only outputs and parameters' gradients are read: fused chains skip their insides.
    // Without noise: evaluation; the trainer's steps use training_step.
    static Pass training() { return {.keep_intermediates = false, .sparse_inputs = true}; }
    // One step of training: as training(), and dropout draws its masks from `step_seed`.
    static Pass training_step(std::uint64_t step_seed) {
        return {.keep_intermediates = false, .noise = step_seed, .sparse_inputs = true};
    }
    // The stepper: every node's gradient and every contribution, one op at a time.
    static Pass stepping() { return {.input_grads = true, .keep_contributions = true}; }
};

class Graph {
public:
    explicit Graph(Dtype dtype = Dtype::f64) : dtype_(dtype) {}

    Dtype dtype() const { return dtype_; }
    std::string name, doc;

    // ---- building (every error is an InputError naming `place`, or the node) ----
    int input(const std::string& name, Shape shape, Tensor default_value = {}, std::string place = {});
    int parameter(const std::string& name, Shape shape, Init init, std::string place = {});
    int constant(const std::string& name, Tensor value, std::string place = {});
    int op(const std::string& name, const std::string& op_name, const std::vector<std::string>& inputs,
           Attrs attrs = Attrs::object(), std::string place = {},
           const std::vector<std::string>& input_places = {});
    // role: "prediction" or "loss" (the loss must be a scalar).
    void set_output(const std::string& role, const std::string& node_name, std::string place = {});

    // ---- looking ----
    std::size_t size() const { return nodes_.size(); }
    const Node& node(int id) const { return nodes_[id]; }
    Node& node(int id) { return nodes_[id]; }
    const std::vector<Node>& nodes() const { return nodes_; }
    int find(const std::string& name) const;    // -1 when absent
    int id(const std::string& name) const;      // throws InputError when absent
    int loss() const { return output("loss"); }
    int prediction() const { return output("prediction"); }
    int output(const std::string& role) const;  // -1 when absent
    const std::map<std::string, int>& outputs() const { return outputs_; }
    std::vector<int> parameters() const;
    std::vector<int> unused() const;            // nodes nothing consumes and no output names
    std::int64_t parameter_count() const;
    const Tensor& value(const std::string& n) const { return nodes_[id(n)].value; }
    const Tensor& grad(const std::string& n) const { return nodes_[id(n)].grad; }

    // ---- running ----
    void init_parameters(std::uint64_t seed);
    // Sets an input's or a parameter's value (converted to the graph's dtype); the shape
    // must fit the declared one (symbols bind in forward()).
    void set_value(const std::string& name, const Tensor& value);
    // The input's value tensor resized to `dims`, for filling in place (no copy, no allocation
    // once sized).
    Tensor& input_buffer(int id, const Dims& dims);
    // Input `id`'s compressed form beside its value, for whoever fills both (train/feeder.cpp:
    // data::gather, then finish()). Any other change of the value marks it stale.
    SparseRows& sparse_rows(int id);
    void forward(const Pass& pass = {});
    // Fresh gradients of the pass's loss for every node that wants one. Give it the pass
    // forward() ran with.
    void backward(const Pass& pass = {});

    // ---- the backward walk, one node at a time (Stepper is a cursor into it) ----
    const std::vector<int>& backward_order(const Pass& pass = {});  // op nodes, reverse topological
    void backward_begin(const Pass& pass = {});  // zero grads, seed dL/dL = 1
    void backward_node(int id);   // run one op node's backward (in the begun pass) and accumulate
    void backward_end();          // zero-fill gradients no path reached
    // What op node `id` sent to its input `slot` in the last backward_node(id) (kept only
    // in a pass with keep_contributions; otherwise empty).
    const Tensor& contribution(int id, std::size_t slot) const;

    // The fused passes forward() and backward() run, as text (for tests and docs), e.g.
    // "dense(xW1 → a1 → y1)"; empty before the first forward().
    std::vector<std::string> fusions() const;
    // Bytes of the op nodes' scratch memory (conv2d's columns, max_pool2d's argmax).
    std::size_t scratch_bytes() const;

private:
    // One entry of the forward or backward program: an op node, or a fused chain.
    struct Step {
        enum class Kind { op, dense, sigmoid_bias, bias, mse_normalize } kind = Kind::op;
        int node = -1;        // op: the node; dense: the matmul; sigmoid_bias/bias: the add; mse_normalize: the mse
        int next = -1;        // dense: the add; sigmoid_bias: the sigmoid; mse_normalize: the normalize
        int last = -1;        // dense: the sigmoid, or -1
        std::size_t full = 0; // dense, sigmoid_bias, bias: the add's input slot that is not the bias
    };
    void plan_forward_steps();
    void plan_backward_steps(bool keep_contributions);
    bool bias_add(int add, std::size_t& full) const;
    void run_dense(const Step& s, bool keep_intermediates);
    void run_sigmoid_bias(const Step& s, bool keep_intermediates);
    void run_mse_normalize(const Step& s, bool keep_intermediates);
    Tensor* grad_target(int id, std::size_t slot);
    void finish_slot(int id, std::size_t slot);

    int add_node(Node n);
    void check_new_name(const std::string& name, const std::string& place) const;
    std::string where(const Node& n) const;
    void bind_and_plan(bool input_grads);
    void sized(Node& n, const Dims& dims);
    int plan_backward(const Pass& pass);  // the loss node

    Dtype dtype_;
    std::vector<Node> nodes_;
    std::map<std::string, int> index_;
    std::map<std::string, int> outputs_;

    // The plan, rebuilt when the nodes, the input shapes or the pass's choices change.
    std::vector<Dims> planned_input_dims_;
    std::optional<bool> planned_input_grads_;   // forward plan; empty: none
    struct BackwardKey {
        int loss;
        bool keep_contributions;
        bool operator==(const BackwardKey&) const = default;
    };
    std::optional<BackwardKey> planned_backward_;
    std::vector<int> forward_order_, backward_order_;
    std::vector<int> readers_;                       // per node: op input slots that read it
    std::vector<int> reader_;                        // per node: the last op node reading it
    std::vector<bool> is_output_;
    std::vector<Step> forward_steps_, backward_steps_;
    std::vector<std::vector<Tensor>> contrib_;       // per node, per input slot
    std::vector<std::vector<bool>> direct_;          // contribution written straight into grad
    std::vector<bool> written_;                      // grad holds something this pass
    // Each op node's scratch memory (kept from its forward to its backward), and the begun
    // backward's noise.
    std::vector<Workspace> scratch_;
    std::optional<std::uint64_t> noise_;
    Workers* workers_ = nullptr;  // the pass's, lent to the ops it runs
    bool sparse_pass_ = false;    // the pass's sparse_inputs
    std::vector<SparseRows> sparse_;  // per node, grown on first use by sparse_rows()
    const SparseRows* sparse_for(int op_node) const;  // input 0's current form in this pass, or null
    std::optional<std::uint64_t> node_noise(int id) const {
        return noise_ ? std::optional(noise_seed(*noise_, std::uint64_t(id))) : std::nullopt;
    }
    std::vector<const Tensor*> in_ptrs_;
    std::vector<Tensor*> grad_ptrs_;
    Tensor empty_;
};

}  // namespace chainrule
