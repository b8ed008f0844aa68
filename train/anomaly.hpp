// --detect-anomaly: after forward or backward, the first node whose value or gradient is
// NaN or Inf, named with what went into it, as a RunError "anomaly WHEN: ...".
#pragma once

#include <string>

#include "graph/graph.hpp"

namespace chainrule {

// After forward: the first op node (in graph order) whose value is not finite, with the
// values of its inputs, which are all finite.
void check_values_finite(const Graph& g, const std::string& when);
// After backward: walking from the loss towards the parameters, the first node whose
// gradient is not finite; its consumers' gradients are all finite, so one of their
// backward passes made it, and those are named with their inputs and gradient.
void check_gradients_finite(const Graph& g, const Plan& plan, const std::string& when);

}  // namespace chainrule
