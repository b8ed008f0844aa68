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
    bool loading_plugin = false;  // ops registered now come from a plugin, not from chainrule itself
};

Registry& the_registry() {
    static Registry r;
    return r;
}

std::map<std::string, std::unique_ptr<const Op>>& registry() { return the_registry().ops; }

bool is_identifier(const std::string& s) {
    auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
    return !s.empty() && letter(s[0]) &&
           std::all_of(s.begin(), s.end(), [&](char c) { return letter(c) || (c >= '0' && c <= '9'); });
}

// What makes an Op unusable by the engine, the op checks or the model loader; "" when none.
std::string malformed(const Op& op, bool from_plugin) {
    if (!is_identifier(op.name))
        return fmt::format("the name '{}' is not an identifier (letters, digits and _, not starting with a digit)",
                           op.name);
    for (auto [present, what] : {std::pair{bool(op.shape), "shape rule"}, {bool(op.forward), "forward"},
                                 {bool(op.backward), "backward"}, {!op.formula.empty(), "formula"},
                                 {op.attrs.is_object(), "attrs object"}})
        if (!present) return fmt::format("op '{}' has no {}", op.name, what);
    if (op.inputs.empty())
        return fmt::format("op '{}' takes no inputs; an op needs at least one (a value without inputs is a "
                           "constant or an input node)",
                           op.name);
    for (std::size_t i = 0; i < op.inputs.size(); ++i) {
        if (op.inputs[i].empty()) return fmt::format("op '{}' has an input without a name (input {})", op.name, i);
        for (std::size_t j = 0; j < i; ++j)
            if (op.inputs[j] == op.inputs[i])
                return fmt::format("op '{}' names two inputs '{}' (inputs {} and {})", op.name, op.inputs[i], j, i);
    }
    if (op.optional_inputs >= op.inputs.size())
        return fmt::format("op '{}' makes {} of its {} input{} optional; at least the first must be given", op.name,
                           op.optional_inputs, op.inputs.size(), op.inputs.size() == 1 ? "" : "s");
    if (op.variadic && op.optional_inputs > 0)
        return fmt::format("op '{}' is variadic and has optional inputs; it may be one or the other", op.name);
    if (op.labels_input >= int(op.inputs.size()) || op.labels_input < -1)
        return fmt::format("op '{}' has labels_input {}, but its inputs are 0 to {} (-1: none)", op.name,
                           op.labels_input, op.inputs.size() - 1);
    const int inputs = int(op.inputs.size());
    if ((op.ids_input < 0) != (op.ids_rows_of < 0) || op.ids_input >= inputs || op.ids_rows_of >= inputs ||
        (op.ids_input >= 0 && op.ids_input == op.ids_rows_of))
        return fmt::format("op '{}' has ids_input {} and ids_rows_of {}, but they must be two different inputs "
                           "from 0 to {} (or both -1: none)",
                           op.name, op.ids_input, op.ids_rows_of, op.inputs.size() - 1);
    if (from_plugin && op.fusable != Fusable::no)
        return fmt::format("op '{}' declares a role in chainrule's fused passes (Op::fusable), which run chainrule's "
                           "own kernels in its place: only chainrule's own ops may",
                           op.name);
    return "";
}

}  // namespace

bool register_op(Op op) {
    auto error = [](std::string message) {
        Registry& r = the_registry();
        if (!r.holding_errors) throw std::invalid_argument(message);
        if (r.held_error.empty()) r.held_error = std::move(message);
        return false;
    };
    if (op.name.empty()) return error("register_op: the op has no name");
    if (std::string why = malformed(op, the_registry().loading_plugin); !why.empty())
        return error("register_op: " + why);
    auto& ops = registry();
    if (ops.count(op.name)) return error(fmt::format("register_op: an op named '{}' is already registered", op.name));
    std::string name = op.name;
    ops.emplace(name, std::make_unique<const Op>(std::move(op)));
    return true;
}

namespace detail {

void hold_registration_errors(bool on) { the_registry().holding_errors = on; }

void loading_plugin(bool on) { the_registry().loading_plugin = on; }

std::string take_held_registration_error() { return std::exchange(the_registry().held_error, {}); }

}  // namespace detail

std::size_t fewest_inputs(const Op& op) { return op.inputs.size() - std::min(op.optional_inputs, op.inputs.size()); }

std::size_t most_inputs(const Op& op) { return op.variadic ? SIZE_MAX : op.inputs.size(); }

std::string input_name(const Op& op, std::size_t slot) {
    if (op.inputs.empty()) return fmt::format("input {}", slot);
    const std::size_t repeated = op.inputs.size() - 1;
    if (op.variadic && slot >= repeated) return fmt::format("{}{}", op.inputs.back(), slot - repeated);
    return slot < op.inputs.size() ? op.inputs[slot] : fmt::format("input {}", slot);
}

std::string input_list(const Op& op) {
    std::string out;
    for (std::size_t k = 0; k < op.inputs.size(); ++k) out += (k ? ", " : "") + input_name(op, k);
    return op.variadic ? fmt::format("{}, {}, ...", out, input_name(op, op.inputs.size())) : out;
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


std::string closest_op_name(const std::string& name) {
    std::vector<std::string> names;
    for (auto& [candidate, op] : registry()) names.push_back(candidate);
    return closest_name(name, names);
}

}  // namespace chainrule
