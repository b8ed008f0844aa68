// An SVG picture of a run, fit for a slide: loss (train and test) and test accuracy per
// epoch, with round-number ticks, a legend, the final values written at the line ends and
// markers on each epoch when there are few of them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>


namespace chainrule {

// One epoch of a run as the plot draws it (train/run_dir's curves_svg makes these from the
// run's history).
struct CurvePoint {
    std::int64_t epoch = 0;
    double train_loss = 0, test_loss = 0, test_accuracy = -1;  // accuracy -1: not measured
};

struct PlotOptions {
    bool log_loss = false;       // loss on a log scale (ticks at powers of ten)
    bool zoom_accuracy = false;  // accuracy axis spans the data rounded out, not 0 to 1
};

// Epochs up to this many get a marker on each point.
inline constexpr std::size_t kPlotMarkerEpochs = 30;

// Points that cannot be drawn (NaN or infinite losses, and losses <= 0 on a log scale) are
// skipped, and the legend says how many.
std::string plot_svg(const std::vector<CurvePoint>& history, const std::string& title, PlotOptions options = {});

}  // namespace chainrule
