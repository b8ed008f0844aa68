// The gradient of one training step, as one object with two implementations: the whole
// batch in this process (LocalGradient, here), or the batch cut into shards over the
// processes of an MPI run and combined in shard order (ShardedGradient, train/distributed.hpp).
// Either way, compute() feeds the batch, runs forward and backward through the training
// plan, leaves every parameter's gradient in the graph and returns the batch's loss.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <string>

#include "data/dataset.hpp"
#include "graph/graph.hpp"
#include "train/feeder.hpp"

namespace chainrule {

// Where a step is, for messages ("at epoch 3, step 7 of 60"); formatted only when needed.
struct StepPlace {
    std::int64_t epoch = 0, step = 0, steps = 0;  // step counts from 0
    std::string text() const;
};

class Gradient {
public:
    virtual ~Gradient() = default;
    // The loss of the batch `rows` (of the training split) and every parameter's gradient, with
    // dropout's masks drawn from `step_seed`. `next`: the following step's rows, which may be
    // fetched while this step computes (empty: none). With --detect-anomaly, the first node
    // whose value or gradient is not finite is a RunError naming it and `at`.
    virtual double compute(std::span<const std::int64_t> rows, std::span<const std::int64_t> next,
                           std::uint64_t step_seed, const StepPlace& at) = 0;
    // Whether the run is to stop after this step (a signal; with several processes, one that
    // every process agreed on at the last compute()).
    virtual bool stop_requested() const = 0;
};

// What a gradient runs on: the graph and its training plan, the feeder and the split it reads.
struct GradientParts {
    Graph& graph;
    Plan& plan;
    Feeder& feeder;
    const data::Split& split;
    bool detect_anomaly = false;
    const std::atomic<bool>* stop = nullptr;  // set when the run is asked to stop
};

class LocalGradient final : public Gradient {
public:
    explicit LocalGradient(GradientParts parts) : p_(parts) {}
    double compute(std::span<const std::int64_t> rows, std::span<const std::int64_t> next, std::uint64_t step_seed,
                   const StepPlace& at) override;
    bool stop_requested() const override { return p_.stop && p_.stop->load(); }

private:
    GradientParts p_;
};

}  // namespace chainrule
