// Vector-Jacobian products written with ops, so that a gradient is itself a graph that can
// be evaluated, drawn, and differentiated again (tinygrad's gradient table, PyTorch's
// derivatives.yaml). An op's `vjp` (ops/op.hpp) gets a VjpBuilder holding refs to the node's
// inputs, its output and the incoming gradient dL/dy, adds nodes (op name, input refs,
// attrs) and returns one ref per input, or none where the gradient is zero:
//
//     .vjp = [](VjpBuilder& b) {  // tanh: dL/dx = dL/dy · (1 − y²)
//         return refs(b.mul(b.grad(), b.scale(b.mul(b.output(), b.output()), -1, 1)));
//     },
//
// The builder infers every node's shape with the op's own shape rule (symbols such as N
// kept), so a rule may look at ranks and fixed sizes (matmul's transposes, mse's columns).
// The graph pass (graph/backward_graph) turns the nodes into graph nodes; evaluate_vjp runs
// them on tensors (the op table's check against the numeric backward).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ops/op.hpp"

namespace chainrule {

struct VjpNode {
    const Op* op;
    std::vector<VjpRef> inputs;
    Attrs attrs;  // the op's defaults merged with the rule's
    Shape shape;
};

class VjpBuilder {
public:
    // `in` holds the shapes of the inputs given (an optional one left out is absent).
    VjpBuilder(const Op& op, std::vector<Shape> in, Attrs attrs);

    // ---- what the rule differentiates ----
    const Op& op() const { return op_; }
    const Attrs& attrs() const { return attrs_; }
    std::size_t input_count() const { return in_.size(); }
    VjpRef input(std::size_t i) const { return {int(i)}; }
    VjpRef output() const { return {int(in_.size())}; }
    VjpRef grad() const { return {int(in_.size()) + 1}; }
    const Shape& shape(VjpRef r) const;
    std::size_t rank(VjpRef r) const { return shape(r).size(); }

    // ---- building: a node of op `name` on `inputs`; its shape from the op's shape rule ----
    VjpRef add_op(const std::string& name, std::vector<VjpRef> inputs, const Attrs& attrs = Attrs::object());
    VjpRef add(VjpRef a, VjpRef b) { return add_op("add", {a, b}); }
    VjpRef sub(VjpRef a, VjpRef b) { return add_op("sub", {a, b}); }
    VjpRef mul(VjpRef a, VjpRef b) { return add_op("mul", {a, b}); }
    VjpRef div(VjpRef a, VjpRef b) { return add_op("div", {a, b}); }
    VjpRef neg(VjpRef a) { return add_op("neg", {a}); }
    // factor·x + shift
    VjpRef scale(VjpRef x, double factor, double shift = 0);
    // x summed over the axes along which `like` was broadcast to x's shape (none: x itself).
    VjpRef sum_to(VjpRef x, VjpRef like);
    // x broadcast to `like`'s shape (none when it has it).
    VjpRef broadcast_like(VjpRef x, VjpRef like);
    // The last two axes swapped.
    VjpRef transpose_last2(VjpRef x);

    const std::vector<VjpNode>& nodes() const { return nodes_; }
    std::size_t first_node() const { return in_.size() + 2; }  // refs below are inputs, output, grad

private:
    const Op& op_;
    std::vector<Shape> in_;
    Shape out_;
    Attrs attrs_;
    std::vector<VjpNode> nodes_;
};

// One ref per input, for a rule's return.
template <class... R>
std::vector<VjpRef> refs(R... r) {
    return {r...};
}

// The rule of `op` built for these input shapes and attrs (merged over the op's defaults);
// the returned refs, one per input. The op must have a vjp.
struct BuiltVjp {
    VjpBuilder builder;
    std::vector<VjpRef> grads;
};
BuiltVjp build_vjp(const Op& op, std::vector<Shape> in, const Attrs& attrs);

// Evaluates a built VJP on tensors: the inputs, the output and dL/dy; per input its
// gradient, or nothing where the rule gives none (a zero gradient).
std::vector<std::optional<Tensor>> evaluate_vjp(const BuiltVjp& vjp, const std::vector<Tensor>& in, const Tensor& out,
                                                const Tensor& grad_out);

// The ops a VJP of `op` uses (on any of its samples) that have no vjp themselves, sorted;
// empty when every one has one. An op is twice differentiable when it has a vjp and this is
// empty: the graph of its gradient can be differentiated in turn.
std::vector<std::string> vjp_ops_without_vjp(const Op& op);
bool twice_differentiable(const Op& op);

}  // namespace chainrule
