// A model's analytic gradients against central finite differences, in float64.
//
// For each checked entry θ_i:  numeric = (L(θ_i + h) − L(θ_i − h)) / 2h, with
// h = step · max(1, |θ_i|), and the entry passes when
//     |analytic − numeric| <= atol + rtol · max(|analytic|, |numeric|):
// ops/finite_difference's difference and rule, the ones the op checks (ops/opcheck) use.
// Large tensors are checked on a seeded random sample of entries (docs/cli.md).
#pragma once

#include <string>
#include <vector>

#include "graph/graph.hpp"

namespace chainrule {

struct GradcheckOptions {
    std::int64_t max_entries = 64;  // per tensor; <= 0 means every entry
    std::uint64_t seed = 0;         // picks the sampled entries
    double step = 1e-6;
    double rtol = 1e-5;
    double atol = 1e-8;
    bool inputs = false;            // check inputs too, not just parameters (not index inputs)
};

struct GradcheckEntry {
    std::int64_t index = 0;
    double analytic = 0, numeric = 0, abs_error = 0;
    bool ok = true;
};

struct GradcheckTensor {
    std::string name;
    std::int64_t total = 0;            // entries in the tensor
    std::vector<GradcheckEntry> entries;  // the checked ones
    double max_abs_error = 0, max_abs_numeric = 0;
    bool ok = true;
};

// An input that `inputs` leaves alone: an op reads it as indices (embedding's ids, the
// class-index labels of cross_entropy; graph/labels), so nudging it by h would not be a small
// change of the loss but an invalid id, and it has no gradient to compare.
struct GradcheckSkipped {
    std::string name;
    std::string reason;  // "ids of node 'te' (embedding), whose table 'tok' has 27 rows"
};

struct GradcheckReport {
    double loss = 0;
    std::vector<GradcheckTensor> tensors;
    std::vector<GradcheckSkipped> skipped;
    bool ok = true;
    bool vacuous = false;  // every numeric gradient was ~0: nothing was really checked
};

// The graph must be float64 and ready to run (parameters and inputs set).
GradcheckReport gradcheck(Graph& g, const GradcheckOptions& opt = {});

}  // namespace chainrule
