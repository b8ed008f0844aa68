// What one epoch of training measured: the rows of metrics.csv and the points of curves.svg.
#pragma once

#include <cstdint>

namespace chainrule {

// The most epochs one run may have (docs/limits.md): every epoch is a row of the history a
// checkpoint carries, and a count near 2^63 would overflow the epoch loop.
inline constexpr std::int64_t kMaxEpochs = 1'000'000;

struct EpochMetrics {
    std::int64_t epoch = 0;
    double train_loss = 0, test_loss = 0, test_accuracy = -1;  // accuracy -1: not measured
    double seconds = 0;                                         // training time of the epoch
    double lr = 0;                                              // the learning rate of the epoch
};

}  // namespace chainrule
