// Human-readable tensors: whole when small, summary statistics and a few entries when large.
#pragma once

#include <string>

#include "core/tensor.hpp"

namespace chainrule {

struct TensorStats {
    double min = 0, max = 0, mean = 0, norm = 0;
    std::int64_t nonfinite = 0;
};
TensorStats tensor_stats(const Tensor& t);

// "[[0.753989], [0.740775]]" for tensors with at most `limit` elements, otherwise
// "shape [784,100]  min … max … mean … norm …  first: a, b, c …".
std::string format_tensor(const Tensor& t, std::int64_t limit = 24, int digits = 6);

}  // namespace chainrule
