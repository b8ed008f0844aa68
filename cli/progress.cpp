#include "cli/progress.hpp"

#include <cmath>
#include <cstdio>
#include <fmt/format.h>
#include <string>

namespace chainrule::cli {
namespace {

// Carriage return and "erase to the end of the line" (ANSI).
constexpr const char* kRewind = "\r\033[K";

std::string fmt_duration(double s) {
    if (!std::isfinite(s) || s < 0) return "?";
    if (s < 60) return fmt::format("{:.0f}s", s);
    if (s < 3600) return fmt::format("{}m{:02d}s", int(s) / 60, int(s) % 60);
    return fmt::format("{}h{:02d}m", int(s) / 3600, (int(s) % 3600) / 60);
}

}  // namespace

void ProgressLine::show(const TrainProgress& p) {
    constexpr int kWidth = 20;
    int filled = int(double(kWidth) * double(p.step) / double(p.steps));
    fmt::print(stderr, "{}epoch {}/{} [{}{}] step {}/{}  loss {:.5f}  {:.0f} samples/s  ETA {}", kRewind, p.epoch,
               p.epochs, std::string(filled, '='), std::string(kWidth - filled, ' '), p.step, p.steps, p.loss,
               p.samples_per_second, fmt_duration(p.eta_seconds));
    std::fflush(stderr);
    shown_ = true;
}

void ProgressLine::clear() {
    if (!shown_) return;
    fmt::print(stderr, "{}", kRewind);
    std::fflush(stderr);
    shown_ = false;
}

}  // namespace chainrule::cli
