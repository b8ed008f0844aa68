// HessianGraph: H·v as the gradient of (∇L·v), with ∇L written as nodes.
#include "graph/hessian.hpp"

#include <fmt/format.h>

#include "core/error.hpp"
#include "graph/backward_graph.hpp"

namespace chainrule {

HessianGraph::HessianGraph(const Graph& g, std::vector<int> wrt) : graph_(g), wrt_(std::move(wrt)) {
    const int loss = graph_.loss();
    if (loss < 0) throw InputError("the model has no \"loss\" output: a Hessian needs a scalar to differentiate");
    if (wrt_.empty()) wrt_ = graph_.parameters();
    if (wrt_.empty()) throw InputError("the model has no parameters: there is no Hessian to take");
    for (int id : wrt_) {
        if (graph_.node(id).kind != NodeKind::parameter)
            throw std::logic_error("HessianGraph: a wrt node is not a parameter");
        size_ += checked_numel(to_dims(graph_.node(id).shape));
    }
    grads_ = append_backward(graph_, loss, wrt_);
    // s = Σ_k sum(dL/dp_k ⊙ v_k): one input v_k per parameter, zero until set, and one dot
    // node over every pair (a mul, a sum and an add per parameter cost a tiny model's product
    // more steps than its arithmetic).
    std::vector<std::string> pairs;
    for (std::size_t k = 0; k < wrt_.size(); ++k) {
        const Node& p = graph_.node(wrt_[k]);
        const int v = graph_.input(free_name(graph_, "v:" + p.name), p.shape, Tensor(graph_.dtype(), to_dims(p.shape)));
        vectors_.push_back(v);
        pairs.push_back(graph_.node(grads_[k]).name);
        pairs.push_back(graph_.node(v).name);
    }
    const std::string sum = graph_.node(graph_.op(free_name(graph_, "(dL/dp)·v"), "dot", pairs)).name;
    dot_ = graph_.id(sum);
    // Only the loss, the gradient nodes (read downstream) and the parameters' gradients are
    // read: fused chains may skip their insides, as in training.
    Pass pass = Pass::training();
    pass.loss = dot_;
    second_ = graph_.plan(pass);
}

void HessianGraph::set_point(const Graph& g) {
    for (std::size_t id = 0; id < g.size(); ++id) {
        const Node& from = g.node(int(id));
        if (from.kind == NodeKind::input || from.kind == NodeKind::parameter)
            graph_.node(int(id)).value = from.value.to(graph_.dtype());
    }
}

void HessianGraph::set_parameter(std::size_t k, const Tensor& value) {
    graph_.node(wrt_.at(k)).value.assign(value);
}

double HessianGraph::loss_and_gradient() {
    graph_.forward(second_);
    return graph_.node(graph_.loss()).value.at(0);
}

double HessianGraph::hvp(std::span<const Tensor* const> v, std::span<Tensor* const> out) {
    if (v.size() != wrt_.size() || out.size() != wrt_.size())
        throw std::logic_error("HessianGraph::hvp: one vector and one output per wrt parameter");
    for (std::size_t k = 0; k < wrt_.size(); ++k) graph_.node(vectors_[k]).value.assign(*v[k]);
    graph_.forward(second_);
    graph_.backward(second_);
    for (std::size_t k = 0; k < wrt_.size(); ++k) out[k]->assign(graph_.node(wrt_[k]).grad);
    return graph_.node(graph_.loss()).value.at(0);
}

Tensor HessianGraph::hessian() {
    if (size_ > 0 && size_ > kMaxHessianEntries / size_)
        throw InputError(fmt::format("the Hessian of {} parameter entries has {} × {} = {} entries, above the limit "
                                     "of {}; take fewer parameters (--params) or Hessian-vector products (`hvp`)",
                                     size_, size_, size_, double(size_) * double(size_), kMaxHessianEntries));
    Tensor h(Dtype::f64, {size_, size_});
    std::vector<Tensor> v, hv;
    std::vector<const Tensor*> vp;
    std::vector<Tensor*> hvp_out;
    for (int id : wrt_) {
        v.emplace_back(graph_.dtype(), to_dims(graph_.node(id).shape));
        hv.emplace_back(graph_.dtype(), to_dims(graph_.node(id).shape));
    }
    for (std::size_t k = 0; k < wrt_.size(); ++k) {
        vp.push_back(&v[k]);
        hvp_out.push_back(&hv[k]);
    }
    std::int64_t column = 0;
    for (std::size_t k = 0; k < wrt_.size(); ++k)
        for (std::int64_t i = 0; i < v[k].numel(); ++i, ++column) {
            v[k].set(i, 1.0);
            hvp(vp, hvp_out);
            v[k].set(i, 0.0);
            std::int64_t row = 0;
            for (const Tensor& part : hv)
                for (std::int64_t j = 0; j < part.numel(); ++j, ++row) h.set(row * size_ + column, part.at(j));
        }
    return h;
}

}  // namespace chainrule
