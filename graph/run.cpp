// Running a plan: forward in topological order, backward in reverse, gradients accumulated
// by the engine (an op's backward overwrites its contribution; the engine adds them up).
#include <fmt/format.h>
#include <stdexcept>

#include "core/error.hpp"
#include "graph/graph.hpp"
#include "ops/sparse_matmul.hpp"

namespace chainrule {

// The nonzeros lent for op node `op_node`'s input 0, when it has a sparse form and the form
// holds the input's current value; else null (the dense op runs).
const SparseRows* Graph::sparse_for(const Plan& p, int op_node) const {
    const Node& n = nodes_[std::size_t(op_node)];
    if (n.inputs.empty()) return nullptr;
    const SparseRows* s = p.sparse_[std::size_t(n.inputs[0])];
    if (!s || !s->current || !sparse_form(*n.op)) return nullptr;
    const Tensor& v = nodes_[std::size_t(n.inputs[0])].value;
    if (v.rank() != 2 || s->rows != v.dim(0) || s->cols != v.dim(1)) return nullptr;
    return s;
}

// Runs op node `id`'s forward into `out` (the plan's in_ptrs_ set): its sparse form when
// the plan lends its input 0's nonzeros.
void Graph::forward_node(Plan& p, int id, Tensor& out) {
    const Node& n = nodes_[std::size_t(id)];
    const ForwardCall call{p.in_ptrs_, out, n.attrs, &p.scratch_[std::size_t(id)], node_noise(p, id), p.pass_.workers};
    if (const SparseRows* x = sparse_for(p, id))
        sparse_form(*n.op)->forward(call, *x);
    else
        n.op->forward(call);
}

void Graph::forward(Plan& p) {
    bind(p);
    for (const Plan::Step& s : p.forward_steps_) {
        if (s.kind == Plan::Step::Kind::dense) {
            run_dense(p, s);
            continue;
        }
        Node& n = nodes_[std::size_t(s.node)];
        p.in_ptrs_.clear();
        for (int j : n.inputs) p.in_ptrs_.push_back(&nodes_[std::size_t(j)].value);
        forward_node(p, s.node, n.value);
    }
}

void Graph::backward_begin(Plan& p) {
    if (p.loss_ < 0) throw InputError("the model has no \"loss\" output to differentiate");
    if (p.bound_.size() != nodes_.size()) throw std::logic_error("backward before a forward with this plan");
    Node& l = nodes_[std::size_t(p.loss_)];
    if (l.value.numel() != 1)
        throw InputError(fmt::format("'{}' is not a scalar (shape {}); backward needs a scalar loss", l.name,
                                     format_dims(l.value.dims())));
    std::fill(p.written_.begin(), p.written_.end(), false);
    l.grad.fill(1.0);
    p.written_[std::size_t(p.loss_)] = true;
}

Tensor* Graph::grad_target(Plan& p, int id, std::size_t slot) {
    const std::size_t j = std::size_t(nodes_[std::size_t(id)].inputs[slot]);
    if (!p.wants_grad_[j]) return nullptr;
    return p.direct_[std::size_t(id)][slot] ? &nodes_[j].grad : &p.contrib_[std::size_t(id)][slot];
}

void Graph::backward_node(Plan& p, int id) {
    Node& n = nodes_[std::size_t(id)];
    p.in_ptrs_.clear();
    p.grad_ptrs_.clear();
    for (std::size_t i = 0; i < n.inputs.size(); ++i) {
        p.in_ptrs_.push_back(&nodes_[std::size_t(n.inputs[i])].value);
        p.grad_ptrs_.push_back(grad_target(p, id, i));
    }
    const BackwardCall call{p.in_ptrs_,          n.value, n.grad, p.grad_ptrs_, n.attrs, &p.scratch_[std::size_t(id)],
                            node_noise(p, id), p.pass_.workers};
    if (const SparseRows* x = sparse_for(p, id))
        sparse_form(*n.op)->backward(call, *x);
    else
        n.op->backward(call);
    for (std::size_t i = 0; i < n.inputs.size(); ++i)
        if (p.grad_ptrs_[i]) finish_slot(p, id, i);
}

// Adds what op node `id` wrote for input `slot` into that input's gradient (or marks a
// direct write as done).
void Graph::finish_slot(Plan& p, int id, std::size_t slot) {
    const Node& n = nodes_[std::size_t(id)];
    const std::size_t j = std::size_t(n.inputs[slot]);
    Node& in = nodes_[j];
    const bool direct = p.direct_[std::size_t(id)][slot];
    const Tensor& c = direct ? in.grad : p.contrib_[std::size_t(id)][slot];
    if (!same_dims(c.dims(), in.value.dims()))
        throw std::logic_error(fmt::format("op '{}' at {} left a gradient of shape {} for input '{}' of shape {}",
                                           n.op->name, where(n), format_dims(c.dims()), in.name,
                                           format_dims(in.value.dims())));
    if (direct) {
        p.written_[j] = true;
        return;
    }
    dispatch(dtype_, [&]<class T>() {
        const T* pc = c.template data<T>();
        T* g = in.grad.template data<T>();
        const std::int64_t count = in.grad.numel();
        if (p.written_[j])
            for (std::int64_t k = 0; k < count; ++k) g[k] += pc[k];
        else
            for (std::int64_t k = 0; k < count; ++k) g[k] = pc[k];
    });
    p.written_[j] = true;
}

void Graph::backward_end(Plan& p) {
    for (std::size_t j = 0; j < nodes_.size(); ++j)
        if (p.wants_grad_[j] && !p.written_[j]) nodes_[j].grad.zero();
}

void forward_once(Graph& g, const Pass& pass) {
    Plan plan = g.plan(pass);
    g.forward(plan);
}

double forward_backward_once(Graph& g, const Pass& pass) {
    Plan plan = g.plan(pass);
    g.forward(plan);
    g.backward(plan);
    return g.node(plan.loss()).value.at(0);
}

void Graph::backward(Plan& p) {
    backward_begin(p);
    for (const Plan::Step& s : p.backward_steps_) {
        switch (s.kind) {
            case Plan::Step::Kind::op: backward_node(p, s.node); break;
            case Plan::Step::Kind::sigmoid_bias:
            case Plan::Step::Kind::bias: run_sigmoid_bias(p, s); break;
            case Plan::Step::Kind::mse_normalize: run_mse_normalize(p, s); break;
            case Plan::Step::Kind::dense: break;  // forward only
        }
    }
    backward_end(p);
}

}  // namespace chainrule
