// The op registry: the one piece of global mutable state in chainrule.
#include <algorithm>
#include <fmt/format.h>
#include <map>
#include <memory>
#include <utility>

#include "core/text.hpp"
#include "ops/op.hpp"
#include "ops/plugin.hpp"

namespace chainrule {
namespace {

struct Registry {
    std::map<std::string, std::unique_ptr<const Op>> ops;
    // While dlopen runs a plugin's static initializers, an exception cannot pass through it
    // (std::terminate): register_op keeps its first error here for load_plugin to report.
    bool holding_errors = false;
    std::string held_error;
};

Registry& the_registry() {
    static Registry r;
    return r;
}

std::map<std::string, std::unique_ptr<const Op>>& registry() { return the_registry().ops; }

}  // namespace

bool register_op(Op op) {
    auto error = [](std::string message) {
        Registry& r = the_registry();
        if (!r.holding_errors) throw std::invalid_argument(message);
        if (r.held_error.empty()) r.held_error = std::move(message);
        return false;
    };
    if (op.name.empty()) return error("register_op: the op has no name");
    for (auto [present, what] : {std::pair{bool(op.shape), "shape rule"}, {bool(op.forward), "forward"},
                                 {bool(op.backward), "backward"}, {!op.formula.empty(), "formula"},
                                 {op.attrs.is_object(), "attrs object"}})
        if (!present) return error(fmt::format("register_op: op '{}' has no {}", op.name, what));
    auto& ops = registry();
    if (ops.count(op.name)) return error(fmt::format("register_op: an op named '{}' is already registered", op.name));
    std::string name = op.name;
    ops.emplace(name, std::make_unique<const Op>(std::move(op)));
    return true;
}

namespace detail {

void hold_registration_errors(bool on) { the_registry().holding_errors = on; }

std::string take_held_registration_error() { return std::exchange(the_registry().held_error, {}); }

}  // namespace detail

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


std::string closest_op_name(const std::string& name) {
    std::vector<std::string> names;
    for (auto& [candidate, op] : registry()) names.push_back(candidate);
    return closest_name(name, names);
}

}  // namespace chainrule
