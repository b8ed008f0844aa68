// The VjpBuilder, evaluating a built VJP on tensors, and the twice-differentiable fact.
#include "ops/vjp.hpp"

#include <fmt/format.h>
#include <optional>
#include <set>
#include <stdexcept>

namespace chainrule {

VjpBuilder::VjpBuilder(const Op& op, std::vector<Shape> in, Attrs attrs)
    : op_(op), in_(std::move(in)), attrs_(std::move(attrs)) {
    out_ = op_.shape(in_, attrs_);
}

const Shape& VjpBuilder::shape(VjpRef r) const {
    if (!r) throw std::logic_error(fmt::format("vjp of {}: the shape of no gradient was asked", op_.name));
    const std::size_t id = std::size_t(r.id);
    if (id < in_.size()) return in_[id];
    if (id < first_node()) return out_;  // the output and dL/dy have the output's shape
    return nodes_.at(id - first_node()).shape;
}

VjpRef VjpBuilder::add_op(const std::string& name, std::vector<VjpRef> inputs, const Attrs& attrs) {
    const Op* op = find_op(name);
    if (!op) throw std::logic_error(fmt::format("vjp of {}: no op named '{}'", op_.name, name));
    Attrs merged = op->attrs;
    for (auto& [k, v] : attrs.items()) merged[k] = v;
    std::vector<Shape> shapes;
    for (VjpRef r : inputs) shapes.push_back(shape(r));
    Shape s;
    try {
        s = op->shape(shapes, merged);
    } catch (const ShapeError& e) {
        throw std::logic_error(fmt::format("vjp of {}: {} does not fit: {}", op_.name, name, e.what()));
    }
    nodes_.push_back({op, std::move(inputs), std::move(merged), std::move(s)});
    return {int(first_node() + nodes_.size() - 1)};
}

VjpRef VjpBuilder::scale(VjpRef x, double factor, double shift) {
    return add_op("scale", {x}, {{"factor", factor}, {"shift", shift}});
}

VjpRef VjpBuilder::sum_to(VjpRef x, VjpRef like) {
    return shape(x) == shape(like) ? x : add_op("sum_to", {x, like});
}

VjpRef VjpBuilder::broadcast_like(VjpRef x, VjpRef like) {
    return shape(x) == shape(like) ? x : add_op("broadcast_like", {x, like});
}

VjpRef VjpBuilder::transpose_last2(VjpRef x) {
    const std::size_t r = rank(x);
    Attrs perm = Attrs::array();
    for (std::size_t i = 0; i < r; ++i) perm.push_back(i + 2 < r ? i : i + 2 == r ? r - 1 : r - 2);
    return add_op("transpose", {x}, {{"perm", perm}});
}

BuiltVjp build_vjp(const Op& op, std::vector<Shape> in, const Attrs& attrs) {
    if (!op.vjp) throw std::logic_error(fmt::format("op '{}' has no vjp", op.name));
    Attrs merged = op.attrs;
    for (auto& [k, v] : attrs.items()) merged[k] = v;
    BuiltVjp b{VjpBuilder(op, std::move(in), std::move(merged)), {}};
    b.grads = op.vjp(b.builder);
    if (b.grads.size() != b.builder.input_count())
        throw std::logic_error(fmt::format("vjp of {} gives {} gradients for {} inputs", op.name, b.grads.size(),
                                           b.builder.input_count()));
    return b;
}

std::vector<std::optional<Tensor>> evaluate_vjp(const BuiltVjp& vjp, const std::vector<Tensor>& in, const Tensor& out,
                                                const Tensor& grad_out) {
    std::vector<const Tensor*> value;
    for (const Tensor& t : in) value.push_back(&t);
    value.push_back(&out);
    value.push_back(&grad_out);
    std::vector<Tensor> computed;
    computed.reserve(vjp.builder.nodes().size());
    for (const VjpNode& n : vjp.builder.nodes()) {
        std::vector<const Tensor*> args;
        Dims dims;
        for (VjpRef r : n.inputs) args.push_back(value.at(std::size_t(r.id)));
        std::vector<Shape> shapes;
        for (const Tensor* t : args) shapes.push_back(fixed_shape(t->dims()));
        computed.emplace_back(out.dtype(), to_dims(n.op->shape(shapes, n.attrs)));
        n.op->forward(ForwardCall{args, computed.back(), n.attrs});
        value.push_back(&computed.back());
    }
    std::vector<std::optional<Tensor>> grads;
    for (VjpRef r : vjp.grads)
        grads.push_back(r ? std::optional<Tensor>(*value.at(std::size_t(r.id))) : std::nullopt);
    return grads;
}

std::vector<std::string> vjp_ops_without_vjp(const Op& op) {
    std::set<std::string> missing;
    for (const OpSample& s : op.samples) {
        std::vector<Shape> shapes;
        for (const Dims& d : s.shapes) shapes.push_back(fixed_shape(d));
        // A sample whose attrs the rule declines (cross_entropy's ignore_index) uses no op.
        std::optional<BuiltVjp> built;
        try {
            built.emplace(build_vjp(op, shapes, s.attrs));
        } catch (const ShapeError&) {
            continue;
        }
        for (const VjpNode& n : built->builder.nodes())
            if (!n.op->vjp) missing.insert(n.op->name);
    }
    return {missing.begin(), missing.end()};
}

bool twice_differentiable(const Op& op) { return op.vjp && vjp_ops_without_vjp(op).empty(); }

}  // namespace chainrule
