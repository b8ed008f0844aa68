#include "graph/graph.hpp"

#include <cmath>
#include <fmt/format.h>
#include <stdexcept>

#include "core/error.hpp"
#include "core/json_io.hpp"
#include "ops/broadcast.hpp"

namespace chainrule {

const char* kind_name(NodeKind k) {
    switch (k) {
        case NodeKind::input: return "input";
        case NodeKind::parameter: return "parameter";
        case NodeKind::constant: return "constant";
        case NodeKind::op: return "op";
    }
    return "?";
}

namespace {

std::string place_or_name(const std::string& place, const std::string& name) {
    return place.empty() ? fmt::format("node '{}'", name) : place;
}

void check_shape(const Shape& s, const std::string& where) {
    if (s.size() > kMaxRank)
        throw InputError(fmt::format("{}: rank {} is more than the maximum of {}", where, s.size(), kMaxRank));
    Dims concrete;
    for (const auto& d : s) {
        if (!d.symbolic() && d.size <= 0)
            throw InputError(fmt::format("{}: shape {} has a dim <= 0; every dim must be at least 1",
                                         where, format_shape(s)));
        concrete.push_back(d.symbolic() ? 1 : d.size);
    }
    try {
        checked_numel(concrete);
    } catch (const InputError& e) {
        throw InputError(fmt::format("{}: {}", where, e.what()));
    }
}

}  // namespace

std::string Graph::where(const Node& n) const { return place_or_name(n.place, n.name); }

void Graph::check_new_name(const std::string& name, const std::string& place) const {
    std::string at = place_or_name(place, name);
    if (name.empty()) throw InputError(fmt::format("{}: a node needs a non-empty name", at));
    auto it = index_.find(name);
    if (it != index_.end())
        throw InputError(fmt::format("{}: duplicate name '{}' (already defined at {})", at, name,
                                     where(nodes_[it->second])));
}

int Graph::add_node(Node n) {
    int id = static_cast<int>(nodes_.size());
    index_[n.name] = id;
    nodes_.push_back(std::move(n));
    planned_input_grads_.reset();
    return id;
}

int Graph::input(const std::string& name, Shape shape, Tensor default_value, std::string place) {
    check_new_name(name, place);
    std::string at = place_or_name(place, name);
    check_shape(shape, at);
    Node n{.name = name, .kind = NodeKind::input, .shape = shape, .place = std::move(place)};
    if (!default_value.empty()) {
        const Dims& d = default_value.dims();
        bool fits = d.size() == shape.size();
        for (std::size_t i = 0; fits && i < d.size(); ++i)
            fits = shape[i].symbolic() || shape[i].size == d[i];
        if (!fits)
            throw InputError(fmt::format("{}: default value has shape {} but the input is declared {}", at,
                                         format_dims(d), format_shape(shape)));
        n.default_value = default_value.to(dtype_);
        n.value = n.default_value;
    }
    return add_node(std::move(n));
}

int Graph::parameter(const std::string& name, Shape shape, Init init, std::string place) {
    check_new_name(name, place);
    std::string at = place_or_name(place, name);
    check_shape(shape, at);
    if (!is_fixed(shape))
        throw InputError(fmt::format("{}: a parameter's shape must be fixed numbers, got {}", at,
                                     format_shape(shape)));
    if (init.kind == Init::Kind::value && init.value.dims() != to_dims(shape))
        throw InputError(fmt::format("{}: init value has shape {} but the parameter is declared {}", at,
                                     format_dims(init.value.dims()), format_shape(shape)));
    Node n{.name = name, .kind = NodeKind::parameter, .shape = shape, .init = std::move(init),
           .place = std::move(place)};
    return add_node(std::move(n));
}

int Graph::constant(const std::string& name, Tensor value, std::string place) {
    check_new_name(name, place);
    Shape shape = fixed_shape(value.dims());
    check_shape(shape, place_or_name(place, name));
    Node n{.name = name, .kind = NodeKind::constant, .shape = shape, .default_value = value.to(dtype_),
           .place = std::move(place)};
    n.value = n.default_value;
    return add_node(std::move(n));
}

namespace {
// JSON integers above 2^63-1 arrive as unsigned numbers; read as int64 they would wrap
// (18446744073709551615 became axis -1), so no attr may hold one, at any depth.
void refuse_oversized_integers(const Attrs& v, const std::string& at) {
    if (v.is_number_unsigned() && v.get<std::uint64_t>() > std::uint64_t(INT64_MAX))
        throw InputError(fmt::format("{}: integer {} is too large (at most {})", at, v.get<std::uint64_t>(), INT64_MAX));
    if (v.is_array())
        for (std::size_t i = 0; i < v.size(); ++i) refuse_oversized_integers(v[i], fmt::format("{}[{}]", at, i));
}
}  // namespace

int Graph::op(const std::string& name, const std::string& op_name, const std::vector<std::string>& inputs,
              Attrs attrs, std::string place, const std::vector<std::string>& input_places) {
    check_new_name(name, place);
    std::string at = place_or_name(place, name);
    const Op* op = find_op(op_name);
    if (!op) {
        std::string guess = closest_op_name(op_name);
        throw InputError(fmt::format("{}: unknown op '{}'{}; `chainrule ops` lists the registered ops (an op from a plugin needs --plugin LIB.so)", at,
                                     op_name, guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess)));
    }
    const std::size_t fewest = op->inputs.size() - std::min(op->optional_inputs, op->inputs.size());
    if (inputs.size() < fewest || inputs.size() > op->inputs.size())
        throw InputError(fmt::format("{}: {} takes {}{} input{} ({}{}), got {}", at, op_name,
                                     fewest == op->inputs.size() ? "" : fmt::format("{} or ", fewest),
                                     op->inputs.size(), op->inputs.size() == 1 ? "" : "s", fmt::join(op->inputs, ", "),
                                     fewest == op->inputs.size() ? "" : fmt::format("; the last {} optional", op->inputs.size() - fewest),
                                     inputs.size()));
    Node n{.name = name, .kind = NodeKind::op, .op = op, .place = std::move(place)};
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        int id = find(inputs[i]);
        std::string in_at = i < input_places.size() ? input_places[i] : fmt::format("{} input {}", at, i);
        if (id < 0)
            throw InputError(fmt::format("{}: '{}' names no node defined before it", in_at, inputs[i]));
        n.inputs.push_back(id);
    }
    if (!attrs.is_object()) throw InputError(fmt::format("{}: attrs must be an object", at));
    n.attrs = op->attrs;
    for (auto& [key, v] : attrs.items()) {
        if (!op->attrs.contains(key)) {
            std::vector<std::string> allowed;
            for (auto& [k, d] : op->attrs.items()) allowed.push_back(k);
            throw InputError(fmt::format("{}.attrs.{}: {} has no attr '{}' (allowed: {})", at, key, op_name, key,
                                         allowed.empty() ? "none" : fmt::format("{}", fmt::join(allowed, ", "))));
        }
        const auto& def = op->attrs.at(key);
        // A null default means the op's shape rule validates whatever is given (e.g. sum's axis).
        bool same = def.is_null()               ? true
                    : def.is_number_integer() ? v.is_number_integer()
                    : def.is_number()       ? v.is_number()
                                            : def.type() == v.type();
        if (!same)
            throw InputError(fmt::format("{}.attrs.{}: expected {} like the default {}, got {}", at, key,
                                         def.type_name(), json_brief(def), json_brief(v)));
        refuse_oversized_integers(v, fmt::format("{}.attrs.{}", at, key));
        n.attrs[key] = v;
    }
    std::vector<Shape> in_shapes;
    for (int id : n.inputs) in_shapes.push_back(nodes_[id].shape);
    try {
        n.shape = op->shape(in_shapes, n.attrs);
    } catch (const ShapeError& e) {
        throw InputError(fmt::format("{}: {} {}", at, op_name, e.what()));
    }
    check_shape(n.shape, at);
    return add_node(std::move(n));
}

void Graph::set_output(const std::string& role, const std::string& node_name, std::string place) {
    std::string at = place.empty() ? fmt::format("output '{}'", role) : place;
    if (role != "prediction" && role != "loss")
        throw InputError(fmt::format("{}: unknown output role '{}' (expected \"prediction\" or \"loss\")", at, role));
    int id = find(node_name);
    if (id < 0) throw InputError(fmt::format("{}: '{}' names no node", at, node_name));
    if (role == "loss") {
        for (const auto& d : nodes_[id].shape)
            if (!d.is_one())
                throw InputError(fmt::format("{}: the loss '{}' must be a scalar, but has shape {}", at, node_name,
                                             format_shape(nodes_[id].shape)));
    }
    outputs_[role] = id;
    planned_backward_.reset();
}

int Graph::find(const std::string& n) const {
    auto it = index_.find(n);
    return it == index_.end() ? -1 : it->second;
}

int Graph::id(const std::string& n) const {
    int i = find(n);
    if (i < 0) throw InputError(fmt::format("'{}' names no node of model '{}'", n, name));
    return i;
}

int Graph::output(const std::string& role) const {
    auto it = outputs_.find(role);
    return it == outputs_.end() ? -1 : it->second;
}

std::vector<int> Graph::parameters() const {
    std::vector<int> out;
    for (std::size_t i = 0; i < nodes_.size(); ++i)
        if (nodes_[i].kind == NodeKind::parameter) out.push_back(static_cast<int>(i));
    return out;
}

std::vector<int> Graph::unused() const {
    std::vector<bool> used(nodes_.size());
    for (const auto& n : nodes_)
        for (int i : n.inputs) used[i] = true;
    for (const auto& [role, id] : outputs_) used[id] = true;
    std::vector<int> out;
    for (std::size_t i = 0; i < nodes_.size(); ++i)
        if (!used[i]) out.push_back(static_cast<int>(i));
    return out;
}

std::int64_t Graph::parameter_count() const {
    std::int64_t total = 0;
    for (int id : parameters()) total += checked_numel(to_dims(nodes_[id].shape));
    return total;
}

void Graph::init_parameters(std::uint64_t seed) {
    Rng rng(seed);
    for (int id : parameters()) {
        Node& n = nodes_[id];
        Dims dims = to_dims(n.shape);
        n.value.resize(dtype_, dims);
        // fan-in/fan-out: x·W convention for matrices, W[fan_in, fan_out] (a vector counts as
        // both); a convolution kernel [O, C, kh, kw] is PyTorch's: fan_in = C·kh·kw,
        // fan_out = O·kh·kw.
        double fan_in = double(dims.empty() ? 1 : dims[0]);
        double fan_out = double(dims.size() >= 2 ? dims[1] : fan_in);
        if (dims.size() >= 3) std::swap(fan_in, fan_out);
        for (std::size_t k = 2; k < dims.size(); ++k) fan_in *= double(dims[k]), fan_out *= double(dims[k]);
        const Init& in = n.init;
        for (std::int64_t i = 0; i < n.value.numel(); ++i) {
            double v = 0;
            switch (in.kind) {
                case Init::Kind::constant: v = in.a; break;
                case Init::Kind::normal: v = rng.normal(in.a, in.b); break;
                case Init::Kind::uniform: v = rng.uniform(in.a, in.b); break;
                case Init::Kind::xavier_uniform: {
                    double limit = std::sqrt(6.0 / (fan_in + fan_out));
                    v = rng.uniform(-limit, limit);
                    break;
                }
                case Init::Kind::he_normal: v = rng.normal(0.0, std::sqrt(2.0 / fan_in)); break;
                case Init::Kind::value: v = in.value.at(i); break;
            }
            n.value.set(i, v);
        }
    }
}

void Graph::set_value(const std::string& name, const Tensor& value) {
    Node& n = nodes_[id(name)];
    if (n.kind != NodeKind::input && n.kind != NodeKind::parameter)
        throw InputError(fmt::format("'{}' is {} node; only inputs and parameters can be fed",
                                     name, n.kind == NodeKind::op ? "an op" : "a constant"));
    const Dims& d = value.dims();
    bool fits = d.size() == n.shape.size();
    for (std::size_t i = 0; fits && i < d.size(); ++i) fits = n.shape[i].symbolic() || n.shape[i].size == d[i];
    if (!fits)
        throw InputError(fmt::format("'{}' was given shape {} but the model declares {}", name, format_dims(d),
                                     format_shape(n.shape)));
    sized(n, d);
    n.value.assign(value);
    if (std::size_t(id(name)) < sparse_.size()) sparse_[id(name)].current = false;
}

Tensor& Graph::input_buffer(int id, const Dims& dims) {
    sized(nodes_[id], dims);
    if (std::size_t(id) < sparse_.size()) sparse_[id].current = false;
    return nodes_[id].value;
}

SparseRows& Graph::sparse_rows(int id) {
    if (sparse_.size() < nodes_.size()) sparse_.resize(nodes_.size());
    return sparse_[id];
}

const SparseRows* Graph::sparse_for(int op_node) const {
    if (!sparse_pass_) return nullptr;
    const Node& n = nodes_[op_node];
    if (n.inputs.empty()) return nullptr;
    const int in = n.inputs[0];
    if (std::size_t(in) >= sparse_.size() || nodes_[in].kind != NodeKind::input) return nullptr;
    const SparseRows& s = sparse_[in];
    const Tensor& v = nodes_[in].value;
    if (!s.current || v.rank() != 2 || s.rows != v.dim(0) || s.cols != v.dim(1)) return nullptr;
    return &s;
}

// Resizes n's value; a shape over the cap (symbols bound to large sizes) names the node.
void Graph::sized(Node& n, const Dims& dims) {
    try {
        n.value.resize(dtype_, dims);
    } catch (const InputError& e) {
        throw InputError(fmt::format("{}: {}", where(n), e.what()));
    }
}

void Graph::bind_and_plan(bool input_grads) {
    bool same = planned_input_grads_ == input_grads;
    std::size_t k = 0;
    for (const auto& n : nodes_) {
        if (n.kind != NodeKind::input) continue;
        if (!same || k >= planned_input_dims_.size() || planned_input_dims_[k] != n.value.dims()) same = false;
        ++k;
    }
    if (same) return;

    std::map<std::string, std::pair<std::int64_t, std::string>> symbols;  // symbol -> size, who bound it
    planned_input_dims_.clear();
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
        planned_input_dims_.push_back(d);
    }

    forward_order_.clear();
    for (std::size_t id = 0; id < nodes_.size(); ++id) {
        Node& n = nodes_[id];
        if (n.kind == NodeKind::op) {
            std::vector<Shape> in;
            for (int j : n.inputs) in.push_back(fixed_shape(nodes_[j].value.dims()));
            Shape out;
            try {
                out = n.op->shape(in, n.attrs);
            } catch (const ShapeError& e) {
                throw InputError(fmt::format("{}: {} {}", where(n), n.op->name, e.what()));
            }
            sized(n, to_dims(out));
            forward_order_.push_back(static_cast<int>(id));
            n.wants_grad = false;
            for (int j : n.inputs) n.wants_grad = n.wants_grad || nodes_[j].wants_grad;
        } else {
            n.wants_grad = n.kind == NodeKind::parameter || input_grads;
        }
        if (n.wants_grad) n.grad.resize(dtype_, n.value.dims());
    }
    scratch_.resize(nodes_.size());  // keeps what the nodes had: no new allocation on a re-plan
    readers_.assign(nodes_.size(), 0);
    reader_.assign(nodes_.size(), -1);
    is_output_.assign(nodes_.size(), false);
    for (int id : forward_order_)
        for (int j : nodes_[id].inputs) ++readers_[j], reader_[j] = id;
    for (const auto& [role, id] : outputs_) is_output_[id] = true;
    plan_forward_steps();
    planned_input_grads_ = input_grads;
    planned_backward_.reset();
}

void Graph::forward(const Pass& pass) {
    bind_and_plan(pass.input_grads);
    noise_ = pass.noise;
    workers_ = pass.workers;
    sparse_pass_ = pass.sparse_inputs;
    for (const Step& s : forward_steps_) {
        if (s.kind == Step::Kind::dense) {
            run_dense(s, pass.keep_intermediates);
            continue;
        }
        Node& n = nodes_[s.node];
        in_ptrs_.clear();
        for (int j : n.inputs) in_ptrs_.push_back(&nodes_[j].value);
        n.op->forward(
            ForwardCall{in_ptrs_, n.value, n.attrs, &scratch_[s.node], node_noise(s.node), workers_, sparse_for(s.node)});
    }
}

int Graph::plan_backward(const Pass& pass) {
    int loss = pass.loss < 0 ? this->loss() : pass.loss;
    if (loss < 0) throw InputError("the model has no \"loss\" output to differentiate");
    bind_and_plan(pass.input_grads);
    const BackwardKey key{loss, pass.keep_contributions};
    if (planned_backward_ == key) return loss;
    std::vector<bool> reaches(nodes_.size());
    reaches[loss] = true;
    for (int id = loss; id >= 0; --id)
        if (reaches[id])
            for (int j : nodes_[id].inputs) reaches[j] = true;
    backward_order_.clear();
    for (int id = loss; id >= 0; --id)
        if (reaches[id] && nodes_[id].kind == NodeKind::op && nodes_[id].wants_grad) backward_order_.push_back(id);

    contrib_.assign(nodes_.size(), {});
    direct_.assign(nodes_.size(), {});
    std::vector<bool> seen(nodes_.size());
    seen[loss] = true;
    for (int id : backward_order_) {
        const Node& n = nodes_[id];
        contrib_[id].resize(n.inputs.size());
        direct_[id].assign(n.inputs.size(), false);
        for (std::size_t i = 0; i < n.inputs.size(); ++i) {
            int j = n.inputs[i];
            if (!nodes_[j].wants_grad) continue;
            direct_[id][i] = !pass.keep_contributions && !seen[j];
            seen[j] = true;
            if (!direct_[id][i]) contrib_[id][i].resize(dtype_, nodes_[j].value.dims());
        }
    }
    written_.assign(nodes_.size(), false);
    plan_backward_steps(pass.keep_contributions);
    planned_backward_ = key;
    return loss;
}

const std::vector<int>& Graph::backward_order(const Pass& pass) {
    plan_backward(pass);
    return backward_order_;
}

void Graph::backward_begin(const Pass& pass) {
    int loss = plan_backward(pass);
    noise_ = pass.noise;
    workers_ = pass.workers;
    sparse_pass_ = pass.sparse_inputs;
    if (nodes_[loss].value.numel() != 1)
        throw InputError(fmt::format("'{}' is not a scalar (shape {}); backward needs a scalar loss",
                                     nodes_[loss].name, format_dims(nodes_[loss].value.dims())));
    std::fill(written_.begin(), written_.end(), false);
    Node& l = nodes_[loss];
    if (!l.wants_grad) l.grad.resize(dtype_, l.value.dims());
    l.grad.fill(1.0);
    written_[loss] = true;
}

void Graph::backward_node(int id) {
    Node& n = nodes_[id];
    in_ptrs_.clear();
    grad_ptrs_.clear();
    for (std::size_t i = 0; i < n.inputs.size(); ++i) {
        Node& in = nodes_[n.inputs[i]];
        in_ptrs_.push_back(&in.value);
        grad_ptrs_.push_back(!in.wants_grad ? nullptr : direct_[id][i] ? &in.grad : &contrib_[id][i]);
    }
    n.op->backward(BackwardCall{in_ptrs_, n.value, n.grad, grad_ptrs_, n.attrs, &scratch_[id], node_noise(id), workers_,
                                sparse_for(id)});
    for (std::size_t i = 0; i < n.inputs.size(); ++i)
        if (grad_ptrs_[i]) finish_slot(id, i);
}

Tensor* Graph::grad_target(int id, std::size_t slot) {
    Node& in = nodes_[nodes_[id].inputs[slot]];
    if (!in.wants_grad) return nullptr;
    return direct_[id][slot] ? &in.grad : &contrib_[id][slot];
}

// Adds what op node `id` wrote for input `slot` into that input's gradient (or marks a
// direct write as done).
void Graph::finish_slot(int id, std::size_t slot) {
    const Node& n = nodes_[id];
    int j = n.inputs[slot];
    Node& in = nodes_[j];
    const Tensor& c = direct_[id][slot] ? in.grad : contrib_[id][slot];
    if (c.dims() != in.value.dims())
        throw std::logic_error(fmt::format("op '{}' at {} left a gradient of shape {} for input '{}' of shape {}",
                                           n.op->name, where(n), format_dims(c.dims()), in.name,
                                           format_dims(in.value.dims())));
    if (direct_[id][slot]) {
        written_[j] = true;
        return;
    }
    dispatch(dtype_, [&]<class T>() {
        const T* pc = c.template data<T>();
        T* g = in.grad.template data<T>();
        std::int64_t count = in.grad.numel();
        if (written_[j])
            for (std::int64_t k = 0; k < count; ++k) g[k] += pc[k];
        else
            for (std::int64_t k = 0; k < count; ++k) g[k] = pc[k];
    });
    written_[j] = true;
}

void Graph::backward_end() {
    for (std::size_t j = 0; j < nodes_.size(); ++j)
        if (nodes_[j].wants_grad && !written_[j]) nodes_[j].grad.zero();
}

void Graph::backward(const Pass& pass) {
    backward_begin(pass);
    for (const Step& s : backward_steps_) {
        switch (s.kind) {
            case Step::Kind::op: backward_node(s.node); break;
            case Step::Kind::sigmoid_bias:
            case Step::Kind::bias: run_sigmoid_bias(s, pass.keep_intermediates); break;
            case Step::Kind::mse_normalize: run_mse_normalize(s, pass.keep_intermediates); break;
            case Step::Kind::dense: break;  // forward only
        }
    }
    backward_end();
}

std::size_t Graph::scratch_bytes() const {
    std::size_t total = 0;
    for (const Workspace& w : scratch_) total += w.bytes();
    return total;
}

const Tensor& Graph::contribution(int id, std::size_t slot) const {
    if (id < 0 || static_cast<std::size_t>(id) >= contrib_.size() || slot >= contrib_[id].size()) return empty_;
    return contrib_[id][slot];
}

}  // namespace chainrule
