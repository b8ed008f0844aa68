// The op registry: the one piece of global mutable state in chainrule.
#include <algorithm>
#include <fmt/format.h>
#include <map>
#include <memory>

#include "ops/op.hpp"

namespace chainrule {
namespace {

std::map<std::string, std::unique_ptr<const Op>>& registry() {
    static std::map<std::string, std::unique_ptr<const Op>> ops;
    return ops;
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diag = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
            diag = up;
        }
    }
    return row[b.size()];
}

}  // namespace

bool register_op(Op op) {
    if (op.name.empty()) throw std::invalid_argument("register_op: the op has no name");
    auto missing = [&](const char* what) {
        throw std::invalid_argument(fmt::format("register_op: op '{}' has no {}", op.name, what));
    };
    if (!op.shape) missing("shape rule");
    if (!op.forward) missing("forward");
    if (!op.backward) missing("backward");
    if (op.formula.empty()) missing("formula");
    if (!op.attrs.is_object()) missing("attrs object");
    auto& ops = registry();
    if (ops.count(op.name))
        throw std::invalid_argument(
            fmt::format("register_op: an op named '{}' is already registered", op.name));
    std::string name = op.name;
    ops.emplace(name, std::make_unique<const Op>(std::move(op)));
    return true;
}

const Op* find_op(const std::string& name) {
    auto& ops = registry();
    auto it = ops.find(name);
    return it == ops.end() ? nullptr : it->second.get();
}

std::vector<const Op*> all_ops() {
    std::vector<const Op*> out;
    for (auto& [name, op] : registry()) out.push_back(op.get());
    return out;
}

std::vector<std::string> op_names() {
    std::vector<std::string> out;
    for (auto& [name, op] : registry()) out.push_back(name);
    return out;
}

std::string closest_op_name(const std::string& name) {
    std::string best;
    std::size_t best_d = std::max<std::size_t>(2, name.size() / 3) + 1;
    for (auto& [candidate, op] : registry()) {
        std::size_t d = edit_distance(name, candidate);
        if (d < best_d) {
            best_d = d;
            best = candidate;
        }
    }
    return best;
}

}  // namespace chainrule
