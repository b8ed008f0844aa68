// The `training` block of a model (docs/model-format.md), validated against the graph.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "data/dataset.hpp"
#include "graph/graph.hpp"
#include "core/json.hpp"
#include "train/metrics.hpp"
#include "train/optimizer.hpp"
#include "train/sampler.hpp"

namespace chainrule {

struct TrainingSpec {
    data::DataSpec data;
    std::vector<std::pair<std::string, std::string>> feed;  // input name -> stream
    std::int64_t epochs = 1;
    std::int64_t batch_size = 0;         // 0: full batch (the whole training split, in file order)
    std::int64_t batches_per_epoch = 0;  // 0: ceil(training rows / batch_size)
    Sampling sampling = Sampling::shuffle;
    OptimizerSpec optimizer;             // {"sgd": {"lr": 0.1}} unless the block says otherwise
    ScheduleSpec lr_schedule;            // constant unless the block says otherwise
    double clip_grad_norm = 0;           // 0: no clipping
    std::uint64_t seed = 0;
    std::int64_t shards = 0;             // 0: as many as processes (docs/distributed.md)
    std::vector<std::string> metrics = {"loss", "accuracy"};
    std::int64_t print_every = 0;        // 0: about 20 lines per run
    // "sparse_inputs": "auto" (true, the default): a fed image batch sparse enough goes to the
    // matmuls reading it as their nonzeros (train/feeder.hpp, docs/performance.md); "off"
    // (false): always the dense GEMM.
    bool sparse_inputs = true;
};

// Validates the block: keys, types, ranges, and that every fed name is an input of the
// graph and every input without a default value is fed, and that the graph has a loss.
// Does not read data files.
// `file` and `dir` are the model file and its folder (relative data paths start there).
TrainingSpec parse_training(const Json& j, const Graph& g, const std::string& file, const std::string& dir);

// A spec that feeds every input without a default value from the IDX files in `dir`, each
// input from the stream whose width fits it ([N,784] images, [N,10] one-hot labels, [N]
// labels): how `--rows --data DIR` feeds a model that has no training block.
TrainingSpec feed_from_idx_dir(const Graph& g, const std::string& dir);

// A fed input's first dim is the batch: it must be symbolic. InputError at `where` if not.
void check_batch_dim(const Node& input, const std::string& where);
// An input fed from a stream of `width` columns per sample must be declared [N, width]
// (or [N] when width is 1); otherwise an InputError "{where}: input 'x' is declared ...".
void check_feed_fits(const Node& input, const std::string& stream, std::int64_t width, const std::string& where);

}  // namespace chainrule
