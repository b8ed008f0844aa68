#include "graph/labels.hpp"

#include <cmath>
#include <fmt/format.h>

#include "core/error.hpp"
#include "core/json_io.hpp"

namespace chainrule {

std::vector<ClassIndexUse> class_index_uses(const Graph& g, int id) {
    std::vector<ClassIndexUse> uses;
    if (g.node(id).shape.size() != 1) return uses;  // [N, C]: one-hot rows or soft targets
    for (int k = 0; k < int(g.nodes().size()); ++k) {
        const Node& user = g.node(k);
        if (user.kind != NodeKind::op || user.op->labels_input < 0) continue;
        const std::size_t at = std::size_t(user.op->labels_input);
        if (at >= user.inputs.size() || user.inputs[at] != id) continue;
        const Shape& logits = g.node(user.inputs[0]).shape;
        const bool fixed = !logits.empty() && !logits.back().symbolic();
        uses.push_back({k, fixed ? logits.back().size : 0});
    }
    return uses;
}

std::string describe_use(const Graph& g, const ClassIndexUse& use) {
    const Node& op = g.node(use.op);
    return fmt::format("node '{}' ({}), whose logits '{}' have {} columns", op.name, op.op->name,
                       g.node(op.inputs[0]).name, use.classes);
}

void check_class_indices(const Graph& g, int id, const Tensor& values, const std::string& where) {
    for (const ClassIndexUse& use : class_index_uses(g, id)) {
        if (use.classes <= 0) continue;
        for (std::int64_t i = 0; i < values.numel(); ++i) {
            const double v = values.at(i);
            if (v >= 0 && v < double(use.classes) && v == std::floor(v)) continue;
            throw InputError(fmt::format("{}: entry {} is {}, but input '{}' holds class indices for {}: each must be "
                                         "a whole number from 0 to {}",
                                         values.rank() == 1 ? json_path(where, std::size_t(i)) : where, i, v,
                                         g.node(id).name, describe_use(g, use), use.classes - 1));
        }
    }
}

}  // namespace chainrule
