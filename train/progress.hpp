// Progress of a run: what the progress callback is told every 0.1 s at most, and the line
// printed after an epoch. The library draws nothing itself (cli/progress draws the bar).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "train/metrics.hpp"

namespace chainrule {

// Where a run is, for a progress display.
struct TrainProgress {
    std::int64_t epoch = 0, epochs = 0;  // 1-based epoch of the total
    std::int64_t step = 0, steps = 0;    // 1-based step of the epoch
    double loss = 0;                     // of this step's batch
    double samples_per_second = 0;       // since this run started (or resumed)
    double eta_seconds = 0;              // to the last epoch at this pace
};

// A time in a unit that shows it: fast epochs are not "(0.000 s)".
std::string format_seconds(double s);

// Reports to the progress callback at most every 0.1 s. Reading the clock is all a step
// pays when nobody listens.
class ProgressReporter {
public:
    using Clock = std::chrono::steady_clock;
    ProgressReporter(const std::function<void(const TrainProgress&)>& report, std::int64_t start_epoch,
                     std::int64_t epochs, std::int64_t steps)
        : report_(report), start_epoch_(start_epoch), epochs_(epochs), steps_(steps) {}
    void step_done(std::int64_t epoch, std::int64_t step, double loss, std::size_t rows);

    // The epoch's line (every `every` epochs, the first of the run and the last) and, once per
    // run, a warning when the test loss is not finite while training goes on.
    void epoch_done(const std::function<void(const std::string&)>& print, const EpochMetrics& em, std::int64_t every);

private:
    const std::function<void(const TrainProgress&)>& report_;
    std::int64_t start_epoch_, epochs_, steps_, samples_ = 0;
    Clock::time_point start_ = Clock::now(), last_ = Clock::now();
    bool warned_test_loss_ = false;
};

}  // namespace chainrule
