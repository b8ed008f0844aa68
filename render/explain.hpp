// How a step's numbers arise, from the graph alone: an op node's formula in its own names,
// the local derivative of an elementwise step, and one gradient entry written out as the
// lecture writes it (dL/dw0 = 1/N Σ (y′−y)·y′(1−y′)·x0 = 0.379799, term by term).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "graph/graph.hpp"

namespace chainrule {

// Op node `id`'s formula with its node names: "dL/dyhat = (yhat − y)/N".
std::string node_formula(const Graph& g, int id);
// The part for input `slot`: "dL/dw = xᵀ·dL/dz"; "" when the op's formula has none.
std::string node_input_formula(const Graph& g, int id, std::size_t slot);
// That part's shapes: "[4,1] = [4,3]·[3,1]" (names replaced by their shapes, ᵀ applied).
std::string node_input_shapes(const Graph& g, int id, std::size_t slot);

// ∂out/∂in for an elementwise op whose input `slot` has the output's shape: the op's
// backward applied to an upstream of ones (exact for such ops, as each output element
// depends on one input element). Empty otherwise. Needs the forward values.
Tensor local_derivative(const Graph& g, int id, std::size_t slot);
// "∂yhat/∂a = yhat(1−yhat)" in the node's names; "∂yhat/∂a" when the formula has no factor.
std::string local_derivative_text(const Graph& g, int id, std::size_t slot);

// One entry of a node's gradient as a sum over the entries j of its consumer c:
//   dL/dw[i] = Σ_j dL/dtop[j] · ∂…/∂…[j] · … · ∂c[j]/∂w[i]
// following the chain of elementwise nodes from c up to `top`, the first node that is
// not (or the loss). Every number is the graph's: values, gradients, the ops' backward.
struct ExplainFactor {
    std::string name;     // "dL/dyhat", "∂yhat/∂a", "∂z[j]/∂w[0,0]"
    std::string formula;  // "(yhat − y)/N", "yhat(1 − yhat)", "dL/dw = xᵀ·dL/dz"
    std::string op;       // the op whose formula it is
};
struct ExplainTerm {
    std::string at;               // j as an index of c: "[1,0]"
    std::vector<double> factors;  // one per ExplainFactor
    double value = 0;             // their product
};
struct Explanation {
    std::string node, entry;      // "w", "w[0,0]"
    std::string consumer;         // "z"
    std::vector<std::string> chain;  // from top down to the node: yhat, a, z, w
    std::vector<ExplainFactor> factors;
    std::vector<ExplainTerm> terms;  // the j where ∂c[j]/∂w[i] ≠ 0
    std::int64_t zero_terms = 0;     // the j left out because ∂c[j]/∂w[i] = 0
    double sum = 0;                  // Σ terms, in float64
    double grad = 0;                 // the graph's dL/dw[i]
};

// Parses "w[0]" (a flat index) or "w[0,0]"; throws InputError naming what is wrong (no
// such node, an index out of range, a node without gradient or with several consumers).
// Precondition: forward and backward have run with `plan` (the node's gradient is complete);
// the loss is the plan's.
Explanation explain_entry(const Graph& g, const Plan& plan, const std::string& entry);

// "[1,0]" for the flat index `flat` of `dims`.
std::string index_text(const Dims& dims, std::int64_t flat);

}  // namespace chainrule
