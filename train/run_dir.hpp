// The run directory (--out). When the trainer saves (train/trainer.hpp says how often), it
// gets, each written atomically: checkpoint.ckpt (parameters, sampler and optimizer state,
// settings, metrics so far), metrics.csv, curves.svg and model.json (the model with its
// trained values, its data path relative to the run directory, so that it can be evaluated
// from any working directory). The checkpoint is written first: the other files can always
// be rebuilt from it. One training at a time owns a run directory (a lock on DIR/.lock,
// removed when the run ends), and a folder that holds a run is not replaced unless asked.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "graph/model_json.hpp"
#include "train/checkpoint.hpp"
#include "train/metrics.hpp"

namespace chainrule {

// The checkpoint file of a run directory, or the path itself when it is a file.
std::string checkpoint_path(const std::string& dir_or_file);

class RunDir {
public:
    // "" writes nothing. Creates the folder (RunError when it cannot), locks it (an
    // InputError when another training holds it: two runs would delete each other's
    // temporary files) and removes the temporary files that a run killed while writing
    // left behind. A folder that holds a run (a checkpoint.ckpt) is an InputError saying
    // how to continue it (--resume) or replace it (--overwrite), unless `replace_run`. The
    // lock is released, and its file removed, when the RunDir goes (or the process dies).
    explicit RunDir(std::string dir, bool replace_run = false);
    ~RunDir();
    RunDir(const RunDir&) = delete;
    RunDir& operator=(const RunDir&) = delete;
    bool enabled() const { return !dir_.empty(); }
    const std::string& dir() const { return dir_; }
    std::string checkpoint_file() const;  // "" when disabled
    // Writes the four files for checkpoint `c`, whose epoch the model's parameters must be
    // at; `c` gets the history added to its info.
    void write_epoch(const Model& m, Checkpoint c, const std::vector<EpochMetrics>& history) const;

private:
    void lock();
    void unlock();
    std::string dir_;
    int lock_fd_ = -1;
};

// The model as a run directory keeps it: trained values, and a relative data path made
// relative to the run directory `dir` (an absolute one stays as it is).
Json model_json_for_run(const Model& m, const std::string& dir);

// The run directory's saves: due by time or at the last epoch; in between, the last whole
// epoch's state is kept in memory, so that a stop (a signal, a NaN) can still save it.
class Saver {
public:
    Saver(const RunDir& dir, double every_seconds, std::int64_t last_epoch)
        : dir_(dir), every_(every_seconds), last_epoch_(last_epoch) {}
    // The checkpoint that a run resumed from: the last good one until this run saves.
    void resumed_from(const std::string& file, std::int64_t epoch) { good_ = {file, epoch}; }
    // An epoch ended with these parameters: its checkpoint is kept, and written when due.
    void epoch_done(const Model& m, Checkpoint c, const std::vector<EpochMetrics>& history);
    // Writes the kept epoch, if any. The graph's parameters are set back to it first: a stop
    // mid-epoch (or a NaN) has moved them on.
    void flush(Model& m);
    // "the last good checkpoint is DIR/checkpoint.ckpt (epoch 7)", or that there is none.
    std::string last_good() const;

private:
    void write(const Model& m);
    const RunDir& dir_;
    double every_;
    std::int64_t last_epoch_;
    std::optional<Checkpoint> pending_;
    std::vector<EpochMetrics> pending_history_;
    std::optional<std::pair<std::string, std::int64_t>> good_;
    std::chrono::steady_clock::time_point last_save_ = std::chrono::steady_clock::now();
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

// The metrics history a checkpoint carries, and the model's name, for redrawing a run's
// pictures without its model (`chainrule plot`).
struct RunHistory {
    std::string file, model;
    std::vector<EpochMetrics> history;
};
RunHistory load_run_history(const std::string& dir_or_file);

}  // namespace chainrule
