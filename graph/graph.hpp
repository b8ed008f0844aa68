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
//     Plan plan = g.plan();                 // Pass::exact(): every node's value exact
//     g.forward(plan);  g.backward(plan);
//     g.grad("w");
//
// The engine owns gradient accumulation: an op's backward writes its contribution for
// each input and the engine adds contributions when a node feeds several consumers. What
// a kind of pass runs and keeps is its Plan (graph/plan.hpp), a value the caller holds:
// the Graph itself keeps no state of any pass.
#pragma once

#include <map>
#include <span>
#include <optional>
#include <string>
#include <vector>

#include "core/random.hpp"
#include "core/shape.hpp"
#include "core/tensor.hpp"
#include "graph/plan.hpp"
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
    // Part of a gradient written as nodes (graph/backward_graph): its value depends on how
    // the loss it differentiates is normalised over the batch, so training in shards
    // refuses a loss that reads it.
    bool gradient = false;

    Tensor value, grad;
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
    // Names node `node_name` as the gradient of parameter or input `of` (a backward graph's
    // outputs, graph/backward_graph.hpp): the two must have the same shape.
    void set_gradient_output(const std::string& of, const std::string& node_name, std::string place = {});

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
    // Parameter or input id → the node holding its gradient, in the order set.
    const std::vector<std::pair<int, int>>& gradient_outputs() const { return gradient_outputs_; }
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

    // The plan of a kind of pass (graph/plan.hpp): the order, the fused steps, which nodes
    // get gradients. Values and gradients are sized when a forward binds the inputs' dims.
    Plan plan(const Pass& pass = {}) const;
    void forward(Plan& plan);
    // Fresh gradients of the plan's loss for every node that wants one, after forward(plan).
    void backward(Plan& plan);

    // ---- the backward walk, one node at a time (Stepper is a cursor into it) ----
    void backward_begin(Plan& plan);       // zero grads, seed dL/dL = 1
    void backward_node(Plan& plan, int id);  // run one op node's backward and accumulate
    void backward_end(Plan& plan);         // zero-fill gradients no path reached

private:
    int add_node(Node n);
    void check_new_name(const std::string& name, const std::string& place) const;
    std::string where(const Node& n) const;
    void sized(Node& n, const Dims& dims);

    // Planning (graph/plan.cpp, graph/fusion.cpp) and running (graph/run.cpp).
    void plan_forward_steps(Plan& p) const;
    void plan_backward_steps(Plan& p) const;
    bool bias_add(const Plan& p, int add, std::size_t& full) const;
    bool mse_of_normalize(const Plan& p, int mse, int next) const;
    void bind(Plan& p);
    void forward_node(Plan& p, int id, Tensor& out);
    void run_dense(Plan& p, const Plan::Step& s);
    void run_sigmoid_bias(Plan& p, const Plan::Step& s);
    void run_mse_normalize(Plan& p, const Plan::Step& s);
    Tensor* grad_target(Plan& p, int id, std::size_t slot);
    void finish_slot(Plan& p, int id, std::size_t slot);
    const SparseRows* sparse_for(const Plan& p, int op_node) const;
    std::optional<std::uint64_t> node_noise(const Plan& p, int id) const {
        return p.pass_.noise ? std::optional(noise_seed(*p.pass_.noise, std::uint64_t(id))) : std::nullopt;
    }

    Dtype dtype_;
    std::vector<Node> nodes_;
    std::map<std::string, int> index_;
    std::map<std::string, int> outputs_;
    std::vector<std::pair<int, int>> gradient_outputs_;
};

// An op's shape rule refusing node `n`'s inputs, as the user reads it: "matmul cannot multiply
// [N,4] by [5,3]: …; here A is y1 [N,4], B is W2 [5,3]". The rule speaks of its inputs by
// the op's generic names; the tail says which nodes they are in this graph.
std::string shape_refusal(const Graph& g, const Node& n, std::span<const Shape> in, const char* what);

// The bytes of scratch memory node `n` (an op node) needs for inputs of these dims, by its
// op's workspace fact (0 without one); an InputError naming `where` above the cap of one
// tensor of `dtype` (docs/limits.md).
std::int64_t workspace_bytes(const Node& n, std::span<const Dims> in, Dtype dtype, const std::string& where);

// One pass at the graph's current point with a plan made for it and dropped after: forward,
// or forward and backward (returning the loss). For programs and tests that look at one
// point; a loop over many points keeps its Plan instead (no planning, no allocation).
void forward_once(Graph& g, const Pass& pass = {});
double forward_backward_once(Graph& g, const Pass& pass = {});

}  // namespace chainrule
