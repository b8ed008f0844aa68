// Making a plan (which nodes run in which order, which get gradients, what runs fused) and
// binding it to the inputs' dims (sizing values, gradients and contributions).
#include "graph/plan.hpp"

#include <fmt/format.h>
#include <map>
#include <stdexcept>

#include "core/error.hpp"
#include "graph/graph.hpp"

namespace chainrule {

const Tensor& Plan::contribution(int id, std::size_t slot) const {
    static const Tensor empty;
    if (id < 0 || std::size_t(id) >= contrib_.size() || slot >= contrib_[std::size_t(id)].size()) return empty;
    return contrib_[std::size_t(id)][slot];
}

std::size_t Plan::scratch_bytes() const {
    std::size_t total = 0;
    for (const Workspace& w : scratch_) total += w.bytes();
    return total;
}

namespace {

// The op nodes `loss` depends on that want a gradient, in reverse topological order.
std::vector<int> reverse_order(const std::vector<Node>& nodes, const std::vector<bool>& wants_grad, int loss) {
    std::vector<bool> reaches(nodes.size());
    reaches[std::size_t(loss)] = true;
    for (int id = loss; id >= 0; --id)
        if (reaches[std::size_t(id)])
            for (int j : nodes[std::size_t(id)].inputs) reaches[std::size_t(j)] = true;
    std::vector<int> order;
    for (int id = loss; id >= 0; --id)
        if (reaches[std::size_t(id)] && nodes[std::size_t(id)].kind == NodeKind::op && wants_grad[std::size_t(id)])
            order.push_back(id);
    return order;
}

}  // namespace

Plan Graph::plan(const Pass& pass) const {
    Plan p;
    p.pass_ = pass;
    p.graph_size_ = nodes_.size();
    p.loss_ = pass.loss >= 0 ? pass.loss : loss();
    if (p.loss_ >= int(nodes_.size())) throw std::logic_error("Pass::loss names no node of the graph");
    const std::size_t n = nodes_.size();
    p.wants_grad_.assign(n, false);
    p.readers_.assign(n, 0);
    p.reader_.assign(n, -1);
    p.is_output_.assign(n, false);
    for (std::size_t id = 0; id < n; ++id) {
        const Node& node = nodes_[id];
        if (node.kind == NodeKind::op) {
            p.forward_order_.push_back(int(id));
            for (int j : node.inputs) {
                p.wants_grad_[id] = p.wants_grad_[id] || p.wants_grad_[std::size_t(j)];
                ++p.readers_[std::size_t(j)];
                p.reader_[std::size_t(j)] = int(id);
            }
        } else {
            p.wants_grad_[id] = node.kind == NodeKind::parameter || pass.input_grads;
        }
    }
    for (const auto& [role, id] : outputs_) p.is_output_[std::size_t(id)] = true;
    p.sparse_.assign(n, nullptr);
    for (const auto& [id, rows] : pass.sparse_inputs) {
        if (id < 0 || std::size_t(id) >= n || nodes_[std::size_t(id)].kind != NodeKind::input)
            throw std::logic_error("Pass::sparse_inputs names a node that is not an input");
        p.sparse_[std::size_t(id)] = rows;
    }
    p.contrib_.assign(n, {});
    p.direct_.assign(n, {});
    if (p.loss_ >= 0) {
        p.backward_order_ = reverse_order(nodes_, p.wants_grad_, p.loss_);
        // A node's first contribution in the walk is written straight into its gradient; later
        // ones (and all, when the stepper keeps them apart) go to their own buffers first.
        std::vector<bool> seen(n);
        seen[std::size_t(p.loss_)] = true;
        for (int id : p.backward_order_) {
            const Node& node = nodes_[std::size_t(id)];
            p.contrib_[std::size_t(id)].resize(node.inputs.size());
            p.direct_[std::size_t(id)].assign(node.inputs.size(), false);
            for (std::size_t i = 0; i < node.inputs.size(); ++i) {
                const std::size_t j = std::size_t(node.inputs[i]);
                if (!p.wants_grad_[j]) continue;
                p.direct_[std::size_t(id)][i] = !pass.keep_contributions && !seen[j];
                seen[j] = true;
            }
        }
    }
    p.written_.assign(n, false);
    p.scratch_.resize(n);
    plan_forward_steps(p);
    plan_backward_steps(p);
    return p;
}

// Sizes every value, gradient and contribution for the inputs' dims, unless the plan is bound
// to them already and no other plan has resized the values since: then it costs a comparison
// of dims per node and allocates nothing.
void Graph::bind(Plan& p) {
    if (p.graph_size_ != nodes_.size())
        throw std::logic_error("a plan made for another graph, or before nodes were added to this one");
    bool same = p.bound_.size() == nodes_.size();
    for (std::size_t id = 0; same && id < nodes_.size(); ++id) same = same_dims(nodes_[id].value.dims(), p.bound_[id]);
    if (same) return;

    std::map<std::string, std::pair<std::int64_t, std::string>> symbols;  // symbol -> size, who bound it
    for (auto& n : nodes_) {
        if (n.kind == NodeKind::parameter && n.value.empty())
            throw InputError(fmt::format("parameter '{}' has no value: call init_parameters first", n.name));
        if (n.kind != NodeKind::input) continue;
        if (n.value.empty())
            throw InputError(fmt::format("input '{}' has no value: feed it (--feed FILE) or give it a default "
                                         "\"value\" in the model",
                                         n.name));
        const Dims& d = n.value.dims();
        for (std::size_t i = 0; i < n.shape.size(); ++i) {
            const Dim& s = n.shape[i];
            if (!s.symbolic()) continue;
            auto [it, fresh] = symbols.try_emplace(s.symbol, d[i], n.name);
            if (!fresh && it->second.first != d[i])
                throw InputError(fmt::format("symbol {} is {} in input '{}' but {} in input '{}'", s.symbol,
                                             it->second.first, it->second.second, d[i], n.name));
        }
    }
    for (int id : p.forward_order_) {
        Node& n = nodes_[std::size_t(id)];
        std::vector<Shape> in;
        std::vector<Dims> in_dims;
        for (int j : n.inputs) {
            in.push_back(fixed_shape(nodes_[std::size_t(j)].value.dims()));
            in_dims.push_back(nodes_[std::size_t(j)].value.dims());
        }
        Shape out;
        try {
            out = n.op->shape(in, n.attrs);
        } catch (const ShapeError& e) {
            throw InputError(fmt::format("{}: {}", where(n), shape_refusal(*this, n, in, e.what())));
        }
        sized(n, to_dims(out));
        workspace_bytes(n, in_dims, dtype_, where(n));  // refused before the op asks for it
    }
    p.bound_.resize(nodes_.size());
    for (std::size_t id = 0; id < nodes_.size(); ++id) {
        Node& n = nodes_[id];
        if (p.wants_grad_[id] || int(id) == p.loss_) n.grad.resize(dtype_, n.value.dims());
        p.bound_[id] = n.value.dims();
    }
    for (int id : p.backward_order_) {
        const Node& n = nodes_[std::size_t(id)];
        for (std::size_t i = 0; i < n.inputs.size(); ++i)
            if (p.wants_grad_[std::size_t(n.inputs[i])] && !p.direct_[std::size_t(id)][i])
                p.contrib_[std::size_t(id)][i].resize(dtype_, nodes_[std::size_t(n.inputs[i])].value.dims());
    }
}

}  // namespace chainrule
