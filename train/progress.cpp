#include "train/progress.hpp"

#include <cmath>
#include <fmt/format.h>

namespace chainrule {

std::string format_seconds(double s) {
    if (s >= 1) return fmt::format("{:.2f} s", s);
    if (s >= 1e-3) return fmt::format("{:.1f} ms", s * 1e3);
    return fmt::format("{:.0f} µs", s * 1e6);
}

void ProgressReporter::step_done(std::int64_t epoch, std::int64_t step, double loss, std::size_t rows) {
    samples_ += std::int64_t(rows);
    auto since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
    if (!report_ || since(last_) <= 0.1) return;
    last_ = Clock::now();
    const double elapsed = since(start_);
    const double done = double(epoch - 1 - start_epoch_) + double(step + 1) / double(steps_);
    report_({epoch, epochs_, step + 1, steps_, loss, double(samples_) / elapsed,
             elapsed / done * (double(epochs_ - start_epoch_) - done)});
}

void ProgressReporter::epoch_done(const std::function<void(const std::string&)>& print, const EpochMetrics& em,
                                  std::int64_t every) {
    if (em.epoch % every == 0 || em.epoch == epochs_ || em.epoch == start_epoch_ + 1)
        print(fmt::format("epoch {:>{}}/{}  train loss {:.6f}  test loss {:.6f}{}  ({})", em.epoch,
                          std::to_string(epochs_).size(), epochs_, em.train_loss, em.test_loss,
                          em.test_accuracy < 0 ? "" : fmt::format("  test accuracy {:.4f}", em.test_accuracy),
                          format_seconds(em.seconds)));
    if (!std::isfinite(em.test_loss) && !warned_test_loss_) {
        warned_test_loss_ = true;
        print(fmt::format("warning: the test loss is {} at epoch {} while the training loss is finite: the "
                          "model gives a NaN or Inf on some test rows; `--detect-anomaly` names the node",
                          em.test_loss, em.epoch));
    }
}

}  // namespace chainrule
