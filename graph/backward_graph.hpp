// The backward pass as a graph of its own: every op node's vector-Jacobian product written
// with ops (ops/vjp.hpp) appended to the graph as ordinary nodes, so a gradient can be run,
// drawn, stepped through and differentiated again like any forward pass.
//
//     auto grads = append_backward(g, g.loss(), {g.id("w"), g.id("b")});
//     // nodes "dL/dL" (1), "dL/dyhat", ..., "dL/dw": grads[0] is dL/dw's node
//
// A node used by several consumers gets the sum of their contributions (`add` nodes). Each
// gradient node is named after what it is: "dL/d<node>" for a node's total gradient, and the
// VJP's own intermediate nodes "<node>.vjp<k>". Only nodes on a path from a wrt node to the
// loss are differentiated. The numeric backward (Graph::backward) stays the fast path of
// first-order training; this is for gradients that must be values in the graph.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "graph/graph.hpp"

namespace chainrule {

// Appends the backward graph of the scalar node `loss` with respect to the nodes `wrt` and
// returns, per wrt node, the id of its gradient node (a node of zeros when no path reaches
// it). `symbol` names the differentiated value in gradient names ("L": dL/dx). Throws
// InputError naming the op and the node when a node on a path has an op without a vjp.
std::vector<int> append_backward(Graph& g, int loss, const std::vector<int>& wrt, const std::string& symbol = "L");

// append_backward with a map of the steps: what op node `id` sends to its input `slot` is
// node contributions[{id, slot}] (a step's node, as `chainrule step` shows it; tools lay
// labels over them, such as the lecture's (1)–(9)).
struct BackwardGraph {
    std::vector<int> grads;
    std::map<std::pair<int, std::size_t>, int> contributions;
};
BackwardGraph append_backward_steps(Graph& g, int loss, const std::vector<int>& wrt, const std::string& symbol = "L");

// The name `want`, or `want` with the first free suffix "#2", "#3", ... when a node has it.
std::string free_name(const Graph& g, const std::string& want);

}  // namespace chainrule
