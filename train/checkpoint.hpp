// Checkpoints: every parameter plus what a run needs to continue exactly where it stopped
// (epoch, random generator state, metrics so far).
//
// File layout (little-endian):
//     "CHAINRULE-CKPT\n\0"   16-byte magic
//     u64                    header length H
//     H bytes                JSON header: version, model, dtype, epoch, rng, info (settings,
//                            optimizer_steps, history), tensors and optimizer_state, each
//                            [{name, shape, offset, bytes}]
//     tensor data            raw, in header order (the parameters, then the optimizer
//                            state), offsets relative to the data start
//     u32                    CRC-32 (zlib) of everything before it
// A checkpoint is written atomically (temp file, fsync, rename), so a kill at any moment
// leaves the previous checkpoint or the new one, never a broken file; a damaged file is
// rejected by its CRC before anything is used.
//
// A file whose CRC is right may still lie (written by hand, or by another program): every
// field is checked when it is read, and a value no run could have written is an InputError
// naming the file and the field (docs/reliability.md). Version 2 keeps the parameters
// ("tensors", by node name) and the optimizer's buffers ("optimizer_state") apart, so no
// parameter name can be taken for optimizer state; version 1 files (one "tensors" list, the
// optimizer's buffers named "optimizer/NAME") are still read.
#pragma once

#include <string>
#include <vector>

#include "graph/graph.hpp"
#include "core/json.hpp"
#include "data/dataset.hpp"
#include "train/metrics.hpp"

namespace chainrule {

// The header (JSON: settings, sampler state, the metrics history) may be this long: room
// for the history of a run of kMaxEpochs (train/metrics.hpp), about 190 bytes an epoch at
// worst (tests/test_limits.cpp), inside the 1 GiB that any input file may have.
inline constexpr std::uint64_t kMaxCheckpointHeader = std::uint64_t{256} << 20;

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct Checkpoint {
    std::string model;                 // the model's name
    Dtype dtype = Dtype::f64;
    std::int64_t epoch = 0;            // epochs completed
    std::string rng;                   // sampler state after `epoch` epochs
    Json info = Json::object();        // run facts: settings, optimizer_steps, history …
    NamedTensors tensors;              // the model's parameters, by node name
    NamedTensors optimizer_state;      // the optimizer's buffers by its own names ("exp_avg.1")
};

// Parameters of `g` plus the given run state.
Checkpoint make_checkpoint(const Graph& g, std::int64_t epoch, const std::string& rng, Json info);
std::string encode_checkpoint(const Checkpoint& c);
// InputError on damage, and on any field no run could have written (see the top of this file).
Checkpoint decode_checkpoint(const std::string& bytes, const std::string& file);
void save_checkpoint(const Checkpoint& c, const std::string& path);              // atomic
Checkpoint load_checkpoint(const std::string& path);
// Whether a checkpoint's model name must be the graph's. Resuming and evaluating a run
// restore the model it was trained from; --weights of grad, step, dot, gradcheck and
// predict may lend a run's parameters to another graph holding the same parameters (the
// lecture's slide graph takes a run of mnist_mlp), matched by name, shape and dtype.
enum class ModelName { must_match, may_differ };

// Copies the checkpoint's tensors into the graph's parameters. The checkpoint must be of
// this model (its name, unless `name` says it may differ), with its dtype, and hold every
// parameter with its shape and no other (InputError naming the mismatch).
void restore_parameters(Graph& g, const Checkpoint& c, const std::string& file,
                        ModelName name = ModelName::must_match);

// The metrics history in info.history, checked (epochs rising within 1 to the checkpoint's
// epoch, losses and times finite, accuracy -1 or within [0, 1]); none: empty. An InputError
// names "FILE: info.history[i].KEY".
std::vector<EpochMetrics> checkpoint_history(const Checkpoint& c, const std::string& file);
Json history_json(const std::vector<EpochMetrics>& h);

// The vocabulary (id -> character) a run on text kept in info.vocabulary; empty when the
// checkpoint has none (a run on data without a vocabulary).
std::vector<std::string> run_vocabulary(const Checkpoint& c, const std::string& file);
// The data spec a run's weights are evaluated on: for a kind with a vocabulary, the run's
// (an InputError when the checkpoint has none), so that ids mean what they meant in
// training and a character the run never saw is an error at its file:line.
data::DataSpec data_for_run(const data::DataSpec& d, const Checkpoint& c, const std::string& file);

}  // namespace chainrule
