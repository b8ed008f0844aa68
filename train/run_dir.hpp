// The run directory (--out). After every epoch it gets, each written atomically:
// checkpoint.ckpt (parameters, sampler and optimizer state, settings, metrics so far),
// metrics.csv, curves.svg and model.json (the model with its trained values). The
// checkpoint is written first: the other files can always be rebuilt from it.
#pragma once

#include <string>
#include <vector>

#include "graph/model_json.hpp"
#include "train/checkpoint.hpp"
#include "train/metrics.hpp"

namespace chainrule {

// The checkpoint file of a run directory, or the path itself when it is a file.
std::string checkpoint_path(const std::string& dir_or_file);

class RunDir {
public:
    // "" writes nothing. Creates the folder (RunError when it cannot) and removes the
    // temporary files that a run killed while writing left behind.
    explicit RunDir(std::string dir);
    bool enabled() const { return !dir_.empty(); }
    std::string checkpoint_file() const;  // "" when disabled
    // Writes the epoch's files; `c` gets the history added to its info.
    void write_epoch(const Model& m, Checkpoint c, const std::vector<EpochMetrics>& history) const;

private:
    std::string dir_;
};

// A run continued from a checkpoint: its parameters are restored into the graph.
struct Resumed {
    std::string file;
    Checkpoint checkpoint;
    std::vector<EpochMetrics> history;
};
// `settings` are what the checkpoint must have been trained with (seed, lr, batch ...):
// any difference is an InputError naming the setting, since the run would not be the same.
Resumed resume_run(const std::string& dir_or_file, Graph& g, const Json& settings);

}  // namespace chainrule
