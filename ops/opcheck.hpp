// The op table's checks, as a library: tests/test_ops_table.cpp runs them on every built-in
// op, and `chainrule ops --check` on any registered op, a plugin's included. Each op's
// `samples` (ops/op.hpp) drive them:
//  - every sample has one shape per declared input, and the shape rule accepts it;
//  - float64 gradient: the backward's vector-Jacobian product against central finite
//    differences of L = Σ r ⊙ forward(x), r random, by ops/finite_difference's rule
//    (|analytic − numeric| <= 1e-8 + 1e-5 · max(|analytic|, |numeric|), the same as
//    `chainrule gradcheck`'s defaults), and not vacuous: some |dL/dx| > 1e-3 (skipped for
//    ops with exact_gradient = false);
//  - backward overwrites: the same gradients whatever the buffers held before;
//  - float32 agrees with float64, forward and backward;
//  - every bad sample is rejected by the shape rule with a ShapeError whose message
//    contains the sample's `error` fragment (a bad sample without one fails);
//  - the formula names dL/d<input> for every input (a check listed only when it fails,
//    like a missing samples list).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/random.hpp"
#include "ops/op.hpp"

namespace chainrule {

// A float64 tensor drawn from `domain`. For one_hot and class_index, `classes` is the
// number of classes (last dim of the first input).
Tensor sample_tensor(const Dims& dims, Domain domain, Rng& rng, std::int64_t classes = 2);
// Whether inputs drawn from `d` get a gradient (one-hot rows and class indices do not).
bool differentiable(Domain d);
// The inputs whose gradient `formula` does not name as "dL/d<input>" followed by anything
// but a letter or digit (dL/dx_i names x; dL/dxy does not).
std::vector<std::string> inputs_missing_from_formula(const Op& op);

struct OpCheck {
    std::string what;    // "sample 1 [5]: gradient vs central differences (float64)"
    bool passed = false;
    std::string detail;  // "max relative error 3.1e-10, max |dL/dx| 0.97", or what went wrong
};

// Runs every check on `op`; never throws for a misbehaving op (an exception from its shape
// rule, forward or backward is a failed check naming it).
std::vector<OpCheck> check_op(const Op& op, std::uint64_t seed = 7);

}  // namespace chainrule
