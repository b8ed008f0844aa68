#include "train/sampler.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <numeric>

#include "core/error.hpp"

namespace chainrule {

Sampling::Sampling(const char* name) {
    std::string n = name;
    if (!is_name(n))
        throw InputError(fmt::format("unknown sampling \"{}\"; expected \"shuffle\" or \"with_replacement\"", n));
    kind_ = n == "shuffle" ? shuffle : with_replacement;
}

bool Sampling::is_name(const std::string& name) { return name == "shuffle" || name == "with_replacement"; }

BatchPlan plan_batches(std::int64_t rows, std::int64_t batch_size, std::int64_t batches_per_epoch) {
    BatchPlan p;
    p.rows = rows;
    p.full_batch = batch_size == 0 || batch_size >= rows;
    p.batch = p.full_batch ? rows : batch_size;
    p.steps = p.full_batch ? 1 : batches_per_epoch > 0 ? batches_per_epoch : (rows + p.batch - 1) / p.batch;
    return p;
}

Sampler::Sampler(Sampling sampling, const BatchPlan& plan, std::uint64_t seed)
    : sampling_(sampling), plan_(plan), rng_(seed), rows_(std::size_t(plan.batch)), order_(std::size_t(plan.rows)),
      ahead_(std::size_t(plan.batch)) {
    std::iota(rows_.begin(), rows_.end(), 0);  // a full batch: the split in file order, always
    std::iota(ahead_.begin(), ahead_.end(), 0);
}

void Sampler::start_epoch() {
    if (plan_.full_batch || sampling_.kind() != Sampling::shuffle) return;
    std::iota(order_.begin(), order_.end(), 0);
    for (std::int64_t i = plan_.rows - 1; i > 0; --i) std::swap(order_[i], order_[rng_.below(std::uint64_t(i + 1))]);
}

std::span<const std::int64_t> Sampler::batch(std::int64_t step) {
    if (ahead_step_ == step) {
        ahead_step_ = -1;
        std::swap(rows_, ahead_);
        return std::span<const std::int64_t>(rows_).first(std::size_t(ahead_count_));
    }
    ahead_step_ = -1;
    return draw(step, rows_);
}

std::span<const std::int64_t> Sampler::ahead(std::int64_t step) {
    const std::span<const std::int64_t> rows = draw(step, ahead_);
    ahead_step_ = step;
    ahead_count_ = std::int64_t(rows.size());
    return rows;
}

std::span<const std::int64_t> Sampler::draw(std::int64_t step, std::vector<std::int64_t>& into) {
    if (plan_.full_batch) return into;
    const std::int64_t n = plan_.rows, size = plan_.batch;
    if (sampling_.kind() == Sampling::with_replacement) {
        for (auto& r : into) r = std::int64_t(rng_.below(std::uint64_t(n)));
        return into;
    }
    // Consecutive stretches of the permutation, wrapping round when there are more steps
    // than the split holds batches.
    const std::int64_t start = (step * size) % n, b = std::min(size, n - start);
    std::copy_n(order_.begin() + start, b, into.begin());
    return std::span<const std::int64_t>(into).first(std::size_t(b));
}

}  // namespace chainrule
