// Training with SGD over a model's graph, evaluation, and the run directory.
//
// A run is deterministic for a fixed seed and thread count. After every epoch the run
// directory (--out) gets, each written atomically: checkpoint.ckpt (parameters, sampler
// state, metrics so far), metrics.csv, curves.svg and model.json (the model with its
// trained values). A resumed run continues from the checkpoint and ends with the same
// weights, bit for bit, as a run that was never stopped.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "data/dataset.hpp"
#include "graph/model_json.hpp"
#include "train/metrics.hpp"
#include "train/training.hpp"

namespace chainrule {

struct TrainOptions {
    std::optional<std::int64_t> epochs, batch_size, batches_per_epoch;
    std::optional<double> lr;
    std::optional<std::uint64_t> seed;
    std::string out_dir;          // "" = write nothing
    std::string resume;           // a run directory or a checkpoint file
    std::int64_t print_every = 0; // 0: the spec's, else about 20 lines per run
    bool detect_anomaly = false;  // name the first node whose value or gradient is NaN/Inf
    bool progress = false;        // live progress line on stderr (a terminal)
    int threads = 0;              // 0: leave OpenBLAS's default
    std::function<void(const std::string&)> print;  // one line of output; default: stdout
};

struct EvalResult {
    std::int64_t count = 0;
    double loss = 0;
    double accuracy = -1;           // -1 when the model has no prediction output
    Tensor predictions;             // [count, width] float64, when asked for
};

// Applies the options over the spec (command-line flags win over the JSON).
TrainingSpec with_overrides(TrainingSpec spec, const TrainOptions& opt);

// Sets the thread count of OpenBLAS (and so of chainrule's GEMMs).
void set_threads(int n);

// Trains `m` (parameters initialised from spec.seed unless resuming) and returns the
// metrics of every epoch, including those restored from a checkpoint.
std::vector<EpochMetrics> train(Model& m, const TrainingSpec& spec, const data::Dataset& ds, const TrainOptions& opt);

// Loss and accuracy of the graph's current parameters on a split, in chunks of 1000 rows.
// With `anomaly_at` ("at epoch 8"), every node's value is checked after each chunk's
// forward pass, and the first that is NaN or Inf is a RunError naming it, its op and its
// inputs' statistics ("anomaly at epoch 8, evaluating rows 0 to 19: ...").
EvalResult evaluate(Model& m, const TrainingSpec& spec, const data::Dataset& ds, const data::Split& split,
                    bool keep_predictions = false, const std::optional<std::string>& anomaly_at = {});

// The checkpoint file of a run directory, or the path itself when it is a file.
std::string checkpoint_path(const std::string& dir_or_file);

}  // namespace chainrule
