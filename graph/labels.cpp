#include "graph/labels.hpp"

#include <cmath>
#include <fmt/format.h>

#include "core/error.hpp"
#include "core/json.hpp"

namespace chainrule {

namespace {

// The size of axis `axis` of node `id` (-1: the last), or 0 when it is symbolic or missing.
std::int64_t fixed_size(const Graph& g, int id, int axis) {
    const Shape& s = g.node(id).shape;
    if (s.empty()) return 0;
    const Dim& d = axis < 0 ? s.back() : s[std::size_t(axis)];
    return d.symbolic() ? 0 : d.size;
}

// "[1][2]" for flat entry i of a tensor of these dims (row-major), as its JSON value nests.
std::string nested_path(const std::string& where, const Dims& dims, std::int64_t i) {
    std::vector<std::size_t> index(dims.size());
    for (std::size_t k = dims.size(); k-- > 0;) {
        index[k] = std::size_t(i % dims[k]);
        i /= dims[k];
    }
    std::string path = where;
    for (std::size_t at : index) path = json_path(path, at);
    return path;
}

}  // namespace

std::vector<ClassIndexUse> class_index_uses(const Graph& g, int id) {
    std::vector<ClassIndexUse> uses;
    for (int k = 0; k < int(g.nodes().size()); ++k) {
        const Node& user = g.node(k);
        if (user.kind != NodeKind::op) continue;
        const auto reads_at = [&](int at) {
            return at >= 0 && std::size_t(at) < user.inputs.size() && user.inputs[std::size_t(at)] == id;
        };
        // Indices have the logits' shape without its last axis ([N] for [N,C], [N,T] for
        // [N,T,C]); labels of the logits' own shape are one-hot rows or soft targets.
        if (reads_at(user.op->labels_input) && g.node(id).shape.size() + 1 == g.node(user.inputs[0]).shape.size())
            uses.push_back({k, fixed_size(g, user.inputs[0], -1), false});
        if (reads_at(user.op->ids_input) && std::size_t(user.op->ids_rows_of) < user.inputs.size())
            uses.push_back({k, fixed_size(g, user.inputs[std::size_t(user.op->ids_rows_of)], 0), true});
    }
    return uses;
}

std::string describe_use(const Graph& g, const ClassIndexUse& use) {
    const Node& op = g.node(use.op);
    if (use.ids)
        return fmt::format("node '{}' ({}), whose table '{}' has {} rows", op.name, op.op->name,
                           g.node(op.inputs[std::size_t(op.op->ids_rows_of)]).name, use.classes);
    return fmt::format("node '{}' ({}), whose logits '{}' have {} columns", op.name, op.op->name,
                       g.node(op.inputs[0]).name, use.classes);
}

void check_class_indices(const Graph& g, int id, const Tensor& values, const std::string& where) {
    for (const ClassIndexUse& use : class_index_uses(g, id)) {
        if (use.classes <= 0) continue;
        for (std::int64_t i = 0; i < values.numel(); ++i) {
            const double v = values.at(i);
            if (v >= 0 && v < double(use.classes) && v == std::floor(v)) continue;
            throw InputError(fmt::format("{}: entry {} is {}, but input '{}' holds {} for {}: each must be "
                                         "a whole number from 0 to {}",
                                         nested_path(where, values.dims(), i), i, v, g.node(id).name,
                                         use.ids ? "ids" : "class indices", describe_use(g, use), use.classes - 1));
        }
    }
}

}  // namespace chainrule
