// Which rows of the training split make each batch. The lecture draws every row at random
// with replacement; "shuffle" walks a fresh permutation each epoch (the last batch of an
// epoch may be short); a batch as large as the split is the whole split in file order.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/random.hpp"

namespace chainrule {

// `training.sampling`, decided when the spec is parsed. Assignable from its JSON name
// (`spec.sampling = "shuffle"`); any other name is an InputError.
class Sampling {
public:
    enum Kind { with_replacement, shuffle };
    constexpr Sampling(Kind k = shuffle) : kind_(k) {}
    Sampling(const char* name);
    static bool is_name(const std::string& name);
    Kind kind() const { return kind_; }
    const char* name() const { return kind_ == shuffle ? "shuffle" : "with_replacement"; }
    friend bool operator==(Sampling, Sampling) = default;

private:
    Kind kind_;
};

// The most shards a batch may be cut into (docs/distributed.md, docs/limits.md).
inline constexpr std::int64_t kMaxShards = 4096;

// The batches of a run: their size and number per epoch, from the spec and the split.
struct BatchPlan {
    std::int64_t rows = 0;     // rows in the training split
    std::int64_t batch = 0;    // rows per step (the last shuffled batch may have fewer)
    std::int64_t steps = 0;    // steps per epoch
    bool full_batch = false;   // every step is the whole split in file order
};
// batch_size 0 or >= rows: one full batch per epoch; batches_per_epoch 0: ceil(rows / batch).
BatchPlan plan_batches(std::int64_t rows, std::int64_t batch_size, std::int64_t batches_per_epoch);

// Draws the batches from its own generator, whose state goes into the checkpoint. After
// construction nothing allocates: rows() is a view of a buffer sized once.
class Sampler {
public:
    Sampler(Sampling sampling, const BatchPlan& plan, std::uint64_t seed);
    void start_epoch();                                  // shuffle: the epoch's permutation
    std::span<const std::int64_t> batch(std::int64_t step);  // the rows of step 0 .. steps-1
    // The rows of the step after the one batch() last gave, drawn now: the next batch() returns
    // them. The rows batch() gave stay as they were. For fetching the next batch's data early.
    std::span<const std::int64_t> ahead(std::int64_t step);
    std::string state() const { return rng_.state(); }
    void set_state(const std::string& s) { rng_.set_state(s); }
    // What the checkpoint calls this sampling ("full_batch" for a full batch).
    const char* name() const { return plan_.full_batch ? "full_batch" : sampling_.name(); }

private:
    Sampling sampling_;
    BatchPlan plan_;
    Rng rng_;
    std::vector<std::int64_t> rows_, order_, ahead_;
    std::int64_t ahead_step_ = -1, ahead_count_ = 0;  // the step ahead_ holds, if any
    std::span<const std::int64_t> draw(std::int64_t step, std::vector<std::int64_t>& into);
};

}  // namespace chainrule
