// An SVG picture of a run, fit for a slide: loss (train and test) and test accuracy per
// epoch, with round-number ticks, a legend, the final values written at the line ends and
// markers on each epoch when there are few of them.
#pragma once

#include <string>
#include <vector>

#include "train/metrics.hpp"

namespace chainrule {

struct PlotOptions {
    bool log_loss = false;       // loss on a log scale (ticks at powers of ten)
    bool zoom_accuracy = false;  // accuracy axis spans the data rounded out, not 0 to 1
};

// Epochs up to this many get a marker on each point.
inline constexpr std::size_t kPlotMarkerEpochs = 30;

// Points that cannot be drawn (NaN or infinite losses, and losses <= 0 on a log scale) are
// skipped, and the legend says how many.
std::string plot_svg(const std::vector<EpochMetrics>& history, const std::string& title, PlotOptions options = {});

}  // namespace chainrule
