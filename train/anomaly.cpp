#include "train/anomaly.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

#include "core/error.hpp"
#include "core/print.hpp"

namespace chainrule {
namespace {

// "input a [80,1]: min … max … mean …", saying how many values are NaN or Inf.
std::string describe_tensor(const std::string& label, const Tensor& t) {
    TensorStats s = tensor_stats(t);
    std::string head = fmt::format("\n    {} {}: ", label, format_dims(t.dims()));
    if (s.nonfinite == t.numel()) return head + fmt::format("all {} values NaN/Inf", t.numel());
    return head + fmt::format("min {:.6g} max {:.6g} mean {:.6g}{}", s.min, s.max, s.mean,
                              s.nonfinite ? fmt::format(" ({} of {} NaN/Inf)", s.nonfinite, t.numel()) : "");
}

bool all_finite(const Tensor& t) {
    for (std::int64_t i = 0; i < t.numel(); ++i)
        if (!std::isfinite(t.at(i))) return false;
    return true;
}

}  // namespace

void check_values_finite(const Graph& g, const std::string& when) {
    for (const Node& n : g.nodes()) {
        if (n.kind != NodeKind::op || all_finite(n.value)) continue;
        std::string inputs;
        for (int i : n.inputs) inputs += describe_tensor("input " + g.node(i).name, g.node(i).value);
        throw RunError(fmt::format("anomaly {}: the value of node '{}' ({}) is NaN or Inf in {} of its {} "
                                   "elements; its inputs:{}",
                                   when, n.name, n.op->name, tensor_stats(n.value).nonfinite, n.value.numel(),
                                   inputs));
    }
}

void check_gradients_finite(const Graph& g, const Plan& plan, const std::string& when) {
    for (std::size_t k = g.size(); k-- > 0;) {
        const Node& n = g.node(int(k));
        if (!plan.wants_grad(int(k)) || n.grad.empty() || all_finite(n.grad)) continue;
        std::string msg = fmt::format("anomaly {}: the gradient of node '{}' ({}) is NaN or Inf in {} of its {} "
                                      "elements",
                                      when, n.name, n.op ? n.op->name : kind_name(n.kind),
                                      tensor_stats(n.grad).nonfinite, n.grad.numel());
        for (std::size_t c = k + 1; c < g.size(); ++c) {
            const Node& user = g.node(int(c));
            if (std::find(user.inputs.begin(), user.inputs.end(), int(k)) == user.inputs.end()) continue;
            msg += fmt::format("; it came from the backward of '{}' ({}), whose own gradient is finite:", user.name,
                               user.op->name);
            for (int i : user.inputs) msg += describe_tensor("input " + g.node(i).name, g.node(i).value);
            msg += describe_tensor("gradient of " + user.name, user.grad);
        }
        throw RunError(msg);
    }
}

}  // namespace chainrule
