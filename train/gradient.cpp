#include "train/gradient.hpp"

#include <fmt/format.h>

#include "train/anomaly.hpp"

namespace chainrule {

std::string StepPlace::text() const { return fmt::format("at epoch {}, step {} of {}", epoch, step + 1, steps); }

double LocalGradient::compute(std::span<const std::int64_t> rows, std::span<const std::int64_t> next,
                              std::uint64_t step_seed, const StepPlace& at) {
    Graph& g = p_.graph;
    p_.feeder.feed(p_.split, rows);
    p_.plan.set_noise(step_seed);
    g.forward(p_.plan);
    // The next batch's pixels come into cache while backward starts on one thread.
    if (!next.empty()) p_.feeder.prefetch(p_.split, next);
    if (p_.detect_anomaly) check_values_finite(g, at.text());
    g.backward(p_.plan);
    if (p_.detect_anomaly) check_gradients_finite(g, p_.plan, at.text());
    return g.node(p_.plan.loss()).value.at(0);
}

}  // namespace chainrule
