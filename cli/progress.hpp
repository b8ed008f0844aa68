// The live progress line of `chainrule train` on a terminal: epoch, a bar of the epoch's
// steps, loss, samples/s and ETA, redrawn in place on stderr.
#pragma once

#include "train/trainer.hpp"

namespace chainrule::cli {

class ProgressLine {
public:
    ProgressLine() = default;
    ~ProgressLine() { clear(); }
    ProgressLine(const ProgressLine&) = delete;
    ProgressLine& operator=(const ProgressLine&) = delete;

    void show(const TrainProgress& p);
    // Erases the line, so that what is printed next starts on a clean line.
    void clear();

private:
    bool shown_ = false;
};

}  // namespace chainrule::cli
