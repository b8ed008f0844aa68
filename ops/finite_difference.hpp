// Central finite differences in float64 and the one rule for comparing them with a backward.
// Both gradient checks use them: graph/gradcheck (`chainrule gradcheck`, a whole model) and
// ops/opcheck (the op table, `chainrule ops --check`, one op on its samples).
//
//   numeric = (L(x_i + h) − L(x_i − h)) / 2h,   h = step · max(1, |x_i|)
//   agrees:   |analytic − numeric| <= atol + rtol · max(|analytic|, |numeric|)
#pragma once

#include <cstdint>
#include <functional>

#include "core/tensor.hpp"

namespace chainrule {

struct FdTolerance {
    double step = 1e-6;
    double rtol = 1e-5;
    double atol = 1e-8;
};

// dL/dx[i] by central differences; x[i] is perturbed in place (L reads it) and restored.
double central_difference(Tensor& x, std::int64_t i, const std::function<double()>& loss, double step = 1e-6);

struct FdComparison {
    double abs_error = 0;  // |analytic − numeric|
    double relative = 0;   // abs_error / (atol/rtol + max(|analytic|, |numeric|)): agrees iff <= rtol
    bool ok = false;       // false for NaN or infinite errors too
};
FdComparison compare_to_numeric(double analytic, double numeric, const FdTolerance& tol = {});

}  // namespace chainrule
