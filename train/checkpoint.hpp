// Checkpoints: every parameter plus what a run needs to continue exactly where it stopped
// (epoch, random generator state, metrics so far).
//
// File layout (little-endian):
//     "CHAINRULE-CKPT\n\0"   16-byte magic
//     u64                    header length H
//     H bytes                JSON header: version, model, dtype, epoch, rng, metrics,
//                            tensors [{name, shape, offset, bytes}]
//     tensor data            raw, in header order, offsets relative to the data start
//     u32                    CRC-32 (zlib) of everything before it
// A checkpoint is written atomically (temp file, fsync, rename), so a kill at any moment
// leaves the previous checkpoint or the new one, never a broken file; a damaged file is
// rejected by its CRC before anything is used.
#pragma once

#include <string>
#include <vector>

#include "graph/graph.hpp"
#include "core/json.hpp"

namespace chainrule {

// The header (JSON: settings, sampler state, the metrics history) may be this long: room
// for the history of a run of kMaxEpochs (train/metrics.hpp), about 190 bytes an epoch at
// worst (tests/test_limits.cpp), inside the 1 GiB that any input file may have.
inline constexpr std::uint64_t kMaxCheckpointHeader = std::uint64_t{256} << 20;

struct Checkpoint {
    std::string model;                 // the model's name
    Dtype dtype = Dtype::f64;
    std::int64_t epoch = 0;            // epochs completed
    std::string rng;                   // sampler state after `epoch` epochs
    Json info = Json::object();        // free-form run facts: seed, lr, metrics history …
    std::vector<std::pair<std::string, Tensor>> tensors;
};

// Parameters of `g` plus the given run state.
Checkpoint make_checkpoint(const Graph& g, std::int64_t epoch, const std::string& rng, Json info);
std::string encode_checkpoint(const Checkpoint& c);
Checkpoint decode_checkpoint(const std::string& bytes, const std::string& file);  // InputError on damage
void save_checkpoint(const Checkpoint& c, const std::string& path);              // atomic
Checkpoint load_checkpoint(const std::string& path);
// Copies the checkpoint's tensors into the graph's parameters; every parameter must be
// there with its shape and the dtype must match (InputError naming the mismatch).
void restore_parameters(Graph& g, const Checkpoint& c, const std::string& file);

}  // namespace chainrule
