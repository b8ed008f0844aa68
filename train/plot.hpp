// An SVG picture of a run: loss (train and test) and test accuracy per epoch.
#pragma once

#include <string>
#include <vector>

#include "train/metrics.hpp"

namespace chainrule {

std::string plot_svg(const std::vector<EpochMetrics>& history, const std::string& title);

}  // namespace chainrule
