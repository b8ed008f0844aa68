// One run of train(): its named parts, made (or restored from a checkpoint) before the first
// step, and what a step and an epoch do with them beyond the five lines of the loop
// (train/trainer.cpp): the checks of the loss and the parameters, the update, the epoch's
// evaluation and save, the stop, and a failure's agreement between the processes of an MPI run.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cpu/workers.hpp"
#include "data/dataset.hpp"
#include "format/model_json.hpp"
#include "train/curvature.hpp"
#include "train/distributed.hpp"
#include "train/feeder.hpp"
#include "train/gradient.hpp"
#include "train/optimizer.hpp"
#include "train/progress.hpp"
#include "train/run_dir.hpp"
#include "train/sampler.hpp"
#include "train/trainer.hpp"

namespace chainrule {

class Session {
public:
    // Setup and resume: on every process; the state (parameters, optimizer, sampler) is rank
    // 0's, read or initialised there alone and sent to the others. A failure anywhere ends
    // every process, reported once.
    Session(Model& m, const TrainingSpec& spec, const data::Dataset& ds, const TrainOptions& opt, Communicator& comm);
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    std::int64_t first_epoch() const { return start_epoch_ + 1; }
    std::int64_t steps() const { return batches_.steps; }
    // The learning rate of an epoch, as its schedule gives it.
    double learning_rate(std::int64_t epoch) const;
    // Dropout's masks for a step: a pure function of (seed, epoch, step), so a resumed run
    // draws the same ones without any state in the checkpoint.
    std::uint64_t step_seed(std::int64_t epoch, std::int64_t step) const;

    // ---- the parts a step uses ----
    Sampler& sampler() { return *sampler_; }
    Gradient& gradient() { return *gradient_; }
    // A NaN or Inf loss ends the run, naming the checkpoint that is still good.
    void check(double loss, const StepPlace& at);
    // Clipping (when asked) and the optimizer's step at the epoch's rate.
    void update(double lr);
    // Progress, and the stop when one was asked for.
    void report(const StepPlace& at, double loss, std::size_t rows);

    // The epoch's evaluation, metrics line, checks and save (when due), then the stop if asked.
    void end_epoch(std::int64_t epoch, double lr, double loss_sum, double seconds);
    // After the last epoch: the cost of combining shards; a resumed run with nothing left to
    // train repairs its run directory.
    void finish();
    // A failure during the epochs: with several processes, every process meets the same
    // numbers and stops at the same step, so rank 0 reports it and the others end quietly.
    [[noreturn]] void fail(std::exception_ptr e);

    const std::vector<EpochMetrics>& history() const { return history_; }

private:
    void prepare();          // batches, sampler, settings, shards
    Json agreement() const;  // what must be the same on every process
    void agree();            // ... compared with rank 0's: a difference is an InputError
    void prepare_state();    // resume or initialise (rank 0), the run directory
    void resume();           // rank 0: parameters, optimizer state, sampler and history
    void check_shards() const;
    void share_state();      // rank 0's state to every other process
    void adopt_state(const std::string& state);
    void make_parts();       // helpers, feeder, plan, gradient, progress
    Interrupted interrupted(const std::string& when);
    void save(const std::function<void()>& write);

    Model& m_;
    Graph& g_;
    const TrainingSpec& spec_;
    const data::Dataset& ds_;
    const TrainOptions& opt_;
    Communicator& comm_;
    std::function<void(const std::string&)> print_;
    std::vector<int> params_;
    BatchPlan batches_;
    std::optional<Sampler> sampler_;
    Json settings_;
    std::vector<EpochMetrics> history_;
    std::int64_t start_epoch_ = 0, shards_ = 1, asked_shards_ = 0, schedule_origin_ = 0, every_ = 1;
    bool resumed_ = false;
    std::optional<Checkpoint> resumed_checkpoint_;  // rank 0's
    std::string resumed_file_;
    std::optional<RunDir> run_dir_;
    std::optional<Optimizer> optimizer_;
    std::optional<Saver> saver_;
    std::optional<Workers> workers_;
    std::optional<Feeder> feeder_;
    Plan plan_;
    std::unique_ptr<Gradient> gradient_;
    std::optional<BatchCurvature> curvature_;  // a second-order optimizer's
    ShardedGradient* sharded_ = nullptr;  // gradient_, when the batch is cut into shards
    std::optional<ProgressReporter> progress_;
};

}  // namespace chainrule
