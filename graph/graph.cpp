#include "graph/graph.hpp"

#include <cmath>
#include <fmt/format.h>
#include <stdexcept>

#include "core/error.hpp"
#include "core/json.hpp"
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

std::string shape_refusal(const Graph& g, const Node& n, std::span<const Shape> in, const char* what) {
    std::string here;
    bool renamed = false;
    for (std::size_t k = 0; k < n.inputs.size() && k < in.size(); ++k) {
        const std::string generic = input_name(*n.op, k);
        const std::string& name = g.node(n.inputs[k]).name;
        renamed = renamed || generic != name;
        here += fmt::format("{}{} is {} {}", k ? ", " : "", generic, name, format_shape(in[k]));
    }
    return renamed ? fmt::format("{} {}; here {}", n.op->name, what, here) : fmt::format("{} {}", n.op->name, what);
}

// The bytes of scratch node `n` needs at these input dims (its op's workspace fact), refused
// above the cap of one tensor (kMaxElements elements of the dtype), like a tensor's shape.
std::int64_t workspace_bytes(const Node& n, std::span<const Dims> in, Dtype dtype, const std::string& where) {
    if (!n.op || !n.op->workspace) return 0;
    const std::int64_t bytes = n.op->workspace(in, n.attrs, dtype);
    const std::int64_t cap = kMaxElements * std::int64_t(dtype_size(dtype));
    if (bytes < 0 || bytes > cap) {
        std::string dims;
        for (const Dims& d : in) dims += (dims.empty() ? "" : ", ") + format_dims(d);
        throw InputError(fmt::format("{}: {} needs {} of scratch memory for inputs {}, more than the {} GiB that "
                                     "one tensor of {} may have (docs/limits.md)",
                                     where, n.op->name, bytes < 0 ? std::string("more bytes than int64 counts")
                                                                  : fmt::format("{} bytes", bytes),
                                     dims, cap >> 30, dtype_name(dtype)));
    }
    return bytes;
}

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
    const std::size_t fewest = fewest_inputs(*op), most = most_inputs(*op);
    if (inputs.size() < fewest || inputs.size() > most)
        throw InputError(fmt::format("{}: {} takes {}{} input{} ({}{}), got {}", at, op_name,
                                     fewest == most || op->variadic ? "" : fmt::format("{} or ", fewest),
                                     op->variadic ? fmt::format("{} or more", fewest) : std::to_string(most),
                                     fewest == 1 && most == 1 ? "" : "s", input_list(*op),
                                     fewest == most || op->variadic ? "" : fmt::format("; the last {} optional", most - fewest),
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
        throw InputError(fmt::format("{}: {}", at, shape_refusal(*this, n, in_shapes, e.what())));
    }
    check_shape(n.shape, at);
    // Its scratch memory with every symbol 1, as check_shape counts its output.
    std::vector<Dims> in_dims;
    for (const Shape& s : in_shapes) {
        Dims d;
        for (const Dim& dim : s) d.push_back(dim.symbolic() ? 1 : dim.size);
        in_dims.push_back(std::move(d));
    }
    workspace_bytes(n, in_dims, dtype_, at);
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

void Graph::set_gradient_output(const std::string& of, const std::string& node_name, std::string place) {
    std::string at = place.empty() ? fmt::format("gradient output '{}'", of) : place;
    int param = find(of);
    if (param < 0) throw InputError(fmt::format("{}: '{}' names no parameter or input", at, of));
    if (nodes_[param].kind != NodeKind::parameter && nodes_[param].kind != NodeKind::input)
        throw InputError(fmt::format("{}: '{}' is {} node; a gradient output is of a parameter or an input", at, of,
                                     nodes_[param].kind == NodeKind::op ? "an op" : "a constant"));
    int id = find(node_name);
    if (id < 0) throw InputError(fmt::format("{}: '{}' names no node", at, node_name));
    if (nodes_[id].shape != nodes_[param].shape)
        throw InputError(fmt::format("{}: '{}' has shape {}, but the gradient of '{}' has its shape {}", at, node_name,
                                     format_shape(nodes_[id].shape), of, format_shape(nodes_[param].shape)));
    for (const auto& [p, g] : gradient_outputs_)
        if (p == param) throw InputError(fmt::format("{}: the gradient of '{}' is named twice", at, of));
    gradient_outputs_.emplace_back(param, id);
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
    for (const auto& [of, id] : gradient_outputs_) used[id] = true;
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
}

Tensor& Graph::input_buffer(int id, const Dims& dims) {
    sized(nodes_[id], dims);
    return nodes_[id].value;
}

// Resizes n's value; a shape over the cap (symbols bound to large sizes) names the node.
void Graph::sized(Node& n, const Dims& dims) {
    try {
        n.value.resize(dtype_, dims);
    } catch (const InputError& e) {
        throw InputError(fmt::format("{}: {}", where(n), e.what()));
    }
}

}  // namespace chainrule
