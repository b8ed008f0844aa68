// The training loop over a model's graph, and evaluation.
//
// A step is: the sampler's next batch, the feeder puts it into the inputs, forward,
// backward, the optimizer's update. A run is deterministic for a fixed seed and thread
// count. It saves its run directory (train/run_dir.hpp) after an epoch when
// `save_every_seconds` have passed since the last save, after the last epoch, and when it
// stops (asked to, or on a NaN); a resumed run ends with the same weights, bit for bit, as
// a run that was never stopped.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "data/dataset.hpp"
#include "graph/model_json.hpp"
#include "train/distributed.hpp"
#include "train/progress.hpp"
#include "train/metrics.hpp"
#include "train/run_dir.hpp"
#include "train/training.hpp"
#include "core/error.hpp"
#include "cpu/workers.hpp"

namespace chainrule {

struct TrainOptions {
    std::optional<std::int64_t> epochs, batch_size, batches_per_epoch;
    std::optional<double> lr;
    std::optional<std::uint64_t> seed;
    std::string out_dir;          // "" = write nothing
    std::string resume;           // a run directory or a checkpoint file
    // out_dir may replace a run that is there (its checkpoint.ckpt). Without it, only a
    // run resumed in its own folder may; any other is an InputError (train/run_dir.hpp).
    bool overwrite = false;
    std::int64_t print_every = 0; // 0: the spec's, else about 20 lines per run
    bool detect_anomaly = false;  // name the first node whose value or gradient is NaN/Inf
    bool fresh_optimizer = false; // on resume: keep the parameters, start optimizer state and schedule anew
    // Called after a step at most every 0.1 s; empty: no progress reports.
    std::function<void(const TrainProgress&)> progress;
    int threads = 0;              // 0: leave OpenBLAS's default
    double save_every_seconds = 5;  // 0: save after every epoch
    // When it becomes true (e.g. on SIGINT), the run saves its last whole epoch and throws
    // Interrupted after the current step.
    const std::atomic<bool>* stop = nullptr;
    std::function<void(const std::string&)> print;  // one line of output; default: stdout
    // The signal that set `stop` (0: none yet): with several processes, all of them stop
    // after the same step and exit with the code it asks for.
    std::function<int()> stop_signal;
    // Shards of each batch (docs/distributed.md); unset: the training block's `shards`, else
    // the number of processes, and when resuming the checkpoint's.
    std::optional<std::int64_t> shards;
    Communicator* comm = nullptr;  // null: one process
};

// A run stopped through TrainOptions::stop, its last whole epoch saved.
struct Interrupted : RunError {
    using RunError::RunError;
    int signal = 0;  // with shards: the signal that every process agreed to stop on
};

struct EvalResult {
    std::int64_t count = 0;
    double loss = 0;
    double accuracy = -1;           // -1 when the model has no prediction output
    Tensor predictions;             // [count, width] float64, when asked for
    std::vector<std::int32_t> predicted;  // per row, predicted_class(); empty without a prediction output
};

// The class one row of a prediction output stands for: with one output (a sigmoid's
// probability) 1 when it is at least 0.5, else 0; with several, the index of the largest
// (the first of equals). Accuracy, `eval` and its confusion matrix all use this rule.
std::int64_t predicted_class(const Tensor& outputs, std::int64_t row, std::int64_t width);

// Applies the options over the spec (command-line flags win over the JSON).
TrainingSpec with_overrides(TrainingSpec spec, const TrainOptions& opt);

// Trains `m` (parameters initialised from spec.seed unless resuming) and returns the
// metrics of every epoch, including those restored from a checkpoint.
std::vector<EpochMetrics> train(Model& m, const TrainingSpec& spec, const data::Dataset& ds, const TrainOptions& opt);

// Loss and accuracy of the graph's current parameters on a split, in chunks of 1000 rows.
// With `anomaly_at` ("at epoch 8"), every node's value is checked after each chunk's
// forward pass, and the first that is NaN or Inf is a RunError naming it, its op and its
// inputs' statistics ("anomaly at epoch 8, evaluating rows 0 to 19: ...").
EvalResult evaluate(Model& m, const TrainingSpec& spec, const data::Dataset& ds, const data::Split& split,
                    bool keep_predictions = false, const std::optional<std::string>& anomaly_at = {},
                    Workers* workers = nullptr);

}  // namespace chainrule
