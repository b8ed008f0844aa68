// Hessian-vector products and Hessians of a graph's loss, exact (no finite differences):
// the backward pass appended as nodes (append_backward), the dot product of the gradients
// with a vector v appended as nodes, s = Σ_k sum(dL/dp_k ⊙ v_k), and s differentiated again
// by the numeric backward: ds/dp = H·v (reverse over reverse). One product costs a forward
// and backward of the model plus a forward and backward of its backward pass.
//
//     HessianGraph h(model.graph);          // a copy with the backward pass: once
//     h.set_point(model.graph);             // the model's inputs and parameters
//     double loss = h.hvp(v, hv);           // v[k], hv[k] shaped like h.wrt()[k]
//     Tensor H = h.hessian();               // [n, n], n = h.size(): one hvp per column
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "graph/graph.hpp"

namespace chainrule {

// Above this many entries `hessian` is refused (the `hessian` command says so with the size).
inline constexpr std::int64_t kMaxHessianEntries = 100'000'000;

class HessianGraph {
public:
    // A copy of `g` (its values too) with the backward pass of g's loss with respect to the
    // parameter nodes `wrt` (node ids of g; empty: every parameter) and the dot product with
    // one input node per wrt node holding v. Throws InputError when an op on a path has no
    // vjp (naming it), when g has no loss, or when a wrt node is not a parameter.
    explicit HessianGraph(const Graph& g, std::vector<int> wrt = {});
    HessianGraph(const HessianGraph&) = delete;
    HessianGraph& operator=(const HessianGraph&) = delete;

    // The wrt parameters, as node ids (the same in g and in graph()).
    const std::vector<int>& wrt() const { return wrt_; }
    // Entries of all wrt parameters together: the Hessian is size() × size().
    std::int64_t size() const { return size_; }
    Graph& graph() { return graph_; }

    // Every input's and parameter's value copied from `g` (the graph this was made from, or
    // one with the same nodes): the point the products are taken at.
    void set_point(const Graph& g);
    // A parameter's value (k indexes wrt()), for an optimizer that moves the point.
    void set_parameter(std::size_t k, const Tensor& value);

    // H·v at the point: v[k] and out[k] shaped like wrt()[k]'s parameter. Returns the loss.
    double hvp(std::span<const Tensor* const> v, std::span<Tensor* const> out);
    // The gradient dL/dwrt()[k] at the point of the last hvp().
    const Tensor& gradient(std::size_t k) const { return graph_.node(grads_[k]).value; }
    // The loss and the gradient alone (no second backward).
    double loss_and_gradient();
    // The full Hessian [size(), size()] in float64, wrt parameters flattened in order,
    // row-major each: one hvp per column. Throws InputError above kMaxHessianEntries.
    Tensor hessian();

private:
    Graph graph_;
    std::vector<int> wrt_, grads_, vectors_;
    int dot_ = -1;
    std::int64_t size_ = 0;
    Plan second_, first_;
};

}  // namespace chainrule
