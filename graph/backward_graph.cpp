// append_backward: the graph pass that writes a graph's backward pass as nodes.
#include "graph/backward_graph.hpp"

#include <fmt/format.h>
#include <map>

#include "core/error.hpp"
#include "ops/vjp.hpp"

namespace chainrule {

std::string free_name(const Graph& g, const std::string& want) {
    if (g.find(want) < 0) return want;
    for (int k = 2;; ++k)
        if (std::string name = fmt::format("{}#{}", want, k); g.find(name) < 0) return name;
}

namespace {

// Nodes on a path from some wrt node to the loss: only they need a gradient.
std::vector<bool> on_a_path(const Graph& g, int loss, const std::vector<int>& wrt) {
    std::vector<bool> from_wrt(g.size(), false), to_loss(g.size(), false);
    for (int w : wrt) from_wrt[std::size_t(w)] = true;
    for (std::size_t i = 0; i < g.size(); ++i)
        for (int in : g.node(int(i)).inputs) from_wrt[i] = from_wrt[i] || from_wrt[std::size_t(in)];
    to_loss[std::size_t(loss)] = true;
    for (std::size_t i = std::size_t(loss) + 1; i-- > 0;)
        if (to_loss[i])
            for (int in : g.node(int(i)).inputs) to_loss[std::size_t(in)] = true;
    std::vector<bool> both(g.size());
    for (std::size_t i = 0; i < g.size(); ++i) both[i] = from_wrt[i] && to_loss[i];
    return both;
}

// The node's VJP appended to the graph; per input the node holding its contribution, or -1.
// A new node that is input k's whole gradient (its only use: `sole[k]`) is named `dL/d<input>`.
// Only the nodes the wanted inputs' gradients read are appended (not dL/dx of a fed x).
std::vector<int> append_vjp(Graph& g, int id, int upstream, const std::vector<std::string>& sole,
                            const std::vector<bool>& wanted) {
    const Node node = g.node(id);  // a copy: appending nodes moves the vector
    if (!node.op->vjp)
        throw InputError(fmt::format("{}: cannot differentiate the backward through node '{}': op '{}' has no vjp "
                                     "(its backward exists only as numbers; `chainrule ops` lists which ops have one)",
                                     node.place.empty() ? node.name : node.place, node.name, node.op->name));
    std::vector<Shape> shapes;
    for (int in : node.inputs) shapes.push_back(g.node(in).shape);
    const BuiltVjp vjp = build_vjp(*node.op, shapes, node.attrs);
    std::vector<int> at(node.inputs.begin(), node.inputs.end());  // ref → graph node
    at.push_back(id);
    at.push_back(upstream);
    const std::size_t first = vjp.builder.first_node();
    std::vector<bool> live(first + vjp.builder.nodes().size(), false);
    for (std::size_t j = 0; j < vjp.grads.size(); ++j)
        if (vjp.grads[j] && wanted[j]) live[std::size_t(vjp.grads[j].id)] = true;
    for (std::size_t k = vjp.builder.nodes().size(); k-- > 0;)
        if (live[first + k])
            for (VjpRef r : vjp.builder.nodes()[k].inputs) live[std::size_t(r.id)] = true;
    for (std::size_t k = 0; k < vjp.builder.nodes().size(); ++k) {
        const VjpNode& n = vjp.builder.nodes()[k];
        if (!live[first + k]) {
            at.push_back(-1);
            continue;
        }
        std::vector<std::string> inputs;
        for (VjpRef r : n.inputs) inputs.push_back(g.node(at[std::size_t(r.id)]).name);
        std::string name = fmt::format("{}.vjp{}", node.name, k + 1);
        for (std::size_t j = 0; j < vjp.grads.size(); ++j)
            if (vjp.grads[j].id == int(vjp.builder.first_node() + k) && !sole[j].empty()) name = sole[j];
        name = free_name(g, name);
        at.push_back(g.op(name, n.op->name, inputs, n.attrs, fmt::format("the backward of {}", node.name)));
    }
    std::vector<int> out;
    for (std::size_t j = 0; j < vjp.grads.size(); ++j)
        out.push_back(vjp.grads[j] && wanted[j] ? at[std::size_t(vjp.grads[j].id)] : -1);
    return out;
}

}  // namespace

std::vector<int> append_backward(Graph& g, int loss, const std::vector<int>& wrt, const std::string& symbol) {
    return append_backward_steps(g, loss, wrt, symbol).grads;
}

BackwardGraph append_backward_steps(Graph& g, int loss, const std::vector<int>& wrt, const std::string& symbol) {
    BackwardGraph result;
    const std::size_t first_new = g.size();
    const Node& l = g.node(loss);
    if (!l.shape.empty())
        throw InputError(fmt::format("{}: the gradient needs a scalar, but '{}' has shape {}", l.name, l.name,
                                     format_shape(l.shape)));
    const std::vector<bool> needed = on_a_path(g, loss, wrt);
    // How many contributions each node will get: one per (consumer on a path, input slot).
    std::vector<int> uses(g.size(), 0);
    for (std::size_t i = 0; i <= std::size_t(loss); ++i)
        if (needed[i])
            for (int in : g.node(int(i)).inputs) uses[std::size_t(in)] += needed[std::size_t(in)] ? 1 : 0;
    std::map<int, std::vector<int>> contributions;
    std::map<int, int> total;
    contributions[loss].push_back(g.constant(free_name(g, fmt::format("d{}/d{}", symbol, g.node(loss).name)),
                                             Tensor::of(1.0)));
    for (std::size_t i = std::size_t(loss) + 1; i-- > 0;) {
        const int id = int(i);
        if (!needed[i] || !contributions.count(id)) continue;
        // The contributions of every consumer, summed into one node named dL/d<node>.
        const std::vector<int>& parts = contributions[id];
        int sum = parts[0];
        for (std::size_t k = 1; k < parts.size(); ++k) {
            const std::string name = k + 1 == parts.size()
                                         ? free_name(g, fmt::format("d{}/d{}", symbol, g.node(id).name))
                                         : free_name(g, fmt::format("d{}/d{}.part{}", symbol, g.node(id).name, k));
            sum = g.op(name, "add", {g.node(sum).name, g.node(parts[k]).name});
        }
        total[id] = sum;
        if (g.node(id).kind != NodeKind::op) continue;
        bool any = false;
        for (int in : g.node(id).inputs) any = any || needed[std::size_t(in)];
        if (!any) continue;
        const std::vector<int> inputs = g.node(id).inputs;
        std::vector<std::string> sole;
        std::vector<bool> wanted;
        for (int in : inputs) {
            sole.push_back(uses[std::size_t(in)] == 1 ? fmt::format("d{}/d{}", symbol, g.node(in).name) : "");
            wanted.push_back(needed[std::size_t(in)]);
        }
        const std::vector<int> grads = append_vjp(g, id, sum, sole, wanted);
        for (std::size_t k = 0; k < inputs.size(); ++k)
            if (grads[k] >= 0 && needed[std::size_t(inputs[k])]) {
                contributions[inputs[k]].push_back(grads[k]);
                result.contributions[{id, k}] = grads[k];
            }
    }
    std::vector<int>& out = result.grads;
    for (int w : wrt) {
        const std::string name = fmt::format("d{}/d{}", symbol, g.node(w).name);
        if (total.count(w)) {
            // A gradient that is another node's (add passes dL/dy on): a copy under its own name.
            const bool named = g.node(total[w]).name == name;
            out.push_back(named ? total[w]
                                : g.op(free_name(g, name), "scale", {g.node(total[w]).name}, {{"factor", 1.0}}));
            continue;
        }
        // No path: the gradient is zero (x·0 keeps x's shape and symbols).
        out.push_back(g.op(free_name(g, name), "scale", {g.node(w).name},
                           {{"factor", 0.0}, {"shift", 0.0}}));
    }
    for (std::size_t i = first_new; i < g.size(); ++i) g.node(int(i)).gradient = true;
    return result;
}

}  // namespace chainrule
