// The second-order entries of the optimizer table (train/optimizer_table.cpp): damped Newton
// on the full Hessian, and Newton-CG on Hessian-vector products, both safeguarded by
// Levenberg–Marquardt damping. docs/optimizers.md writes them out; docs/higher-order.md shows
// Newton on the lecture's Iris neuron.
#pragma once

#include <cstdint>

#include "train/optimizer_table.hpp"

namespace chainrule {

// newton's refusal: above this many parameter entries the Hessian's n² numbers and n
// products per step are too many; newton_cg takes any size.
inline constexpr std::int64_t kNewtonMaxParameters = 2048;

// θ ← θ − η·d with (H + λI)·d = g, H from n Hessian-vector products, solved by Cholesky.
void newton(const UpdateCall& c);
// The same d from k conjugate-gradient iterations on (H + λI)·d = g (one product each).
void newton_cg(const UpdateCall& c);

}  // namespace chainrule
