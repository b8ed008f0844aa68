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
//     g.forward();  g.backward();
//     g.grad("w");
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
    // Inputs and constants get gradients too (for `grad` and `step`); off for training,
    // so that dL/dx of a data batch is never computed.
    void set_grad_for_inputs(bool on);
    // The stepper wants every contribution kept apart from the accumulated gradient.
    void set_keep_contributions(bool on);
    // forward() and backward() run chains of ops as fused passes (matmul → add(bias) →
    // sigmoid, sigmoid ← add(bias), mse ← normalize) with the same numbers as the ops one
    // by one. With keep_intermediates off (training), values and gradients inside such a
    // chain that nothing downstream reads are not written and hold stale numbers; outputs,
    // parameters' gradients and everything a later step needs are always exact. On by
    // default, so that `grad`, `step` and `dot` see every node.
    void set_keep_intermediates(bool on) { keep_intermediates_ = on; }
    bool keep_intermediates() const { return keep_intermediates_; }

    void forward();
    // Fresh gradients of `loss` (default: the "loss" output) for every node that wants one.
    void backward(int loss = -1);
    void zero_grad();

    // ---- the backward walk, one node at a time (Stepper is a cursor into it) ----
    const std::vector<int>& backward_order(int loss = -1);  // op nodes, reverse topological
    void backward_begin(int loss = -1);   // zero grads, seed dL/dL = 1
    void backward_node(int id);           // run one op node's backward and accumulate
    void backward_end();                  // zero-fill gradients no path reached
    // What op node `id` sent to its input `slot` in the last backward_node(id) (kept only
    // with set_keep_contributions(true); otherwise empty).
    const Tensor& contribution(int id, std::size_t slot) const;

    // The fused passes forward() and backward() run, as text (for tests and docs), e.g.
    // "dense(xW1 → a1 → y1)"; empty before the first forward().
    std::vector<std::string> fusions() const;

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
    void plan_backward_steps();
    bool bias_add(int add, std::size_t& full) const;
    void run_dense(const Step& s);
    void run_sigmoid_bias(const Step& s);
    void run_mse_normalize(const Step& s);
    Tensor* grad_target(int id, std::size_t slot);
    void finish_slot(int id, std::size_t slot);

    int add_node(Node n);
    void check_new_name(const std::string& name, const std::string& place) const;
    std::string where(const Node& n) const;
    void bind_and_plan();
    void plan_backward(int loss);

    Dtype dtype_;
    std::vector<Node> nodes_;
    std::map<std::string, int> index_;
    std::map<std::string, int> outputs_;
    bool grad_for_inputs_ = false;
    bool keep_contributions_ = false;
    bool keep_intermediates_ = true;

    // plan, rebuilt when input shapes or the grad settings change
    std::vector<Dims> planned_input_dims_;
    bool planned_ = false;
    int planned_loss_ = -2;
    std::vector<int> forward_order_, backward_order_;
    std::vector<int> readers_;                       // per node: op input slots that read it
    std::vector<int> reader_;                        // per node: the last op node reading it
    std::vector<bool> is_output_;
    std::vector<Step> forward_steps_, backward_steps_;
    std::vector<std::vector<Tensor>> contrib_;       // per node, per input slot
    std::vector<std::vector<bool>> direct_;          // contribution written straight into grad
    std::vector<bool> written_;                      // grad holds something this pass
    std::vector<const Tensor*> in_ptrs_;
    std::vector<Tensor*> grad_ptrs_;
    Tensor empty_;
};

}  // namespace chainrule
