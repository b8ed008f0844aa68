// Pieces shared by the subcommands: loading a model and putting it at a point.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/json.hpp"
#include "format/model_json.hpp"

namespace chainrule::cli {

// Loads MODEL, printing its warnings to stderr. `force_f64` reloads a float32 model in
// float64 (gradient checks are always done in float64).
Model load(const std::string& path, bool force_f64 = false);

// --feed FILE, --rows SPLIT:START:COUNT and --seed N: the point of set_point, as the
// commands that run a model at one point (grad, gradcheck, step, dot) take them.
struct PointOptions {
    std::string feed;
    std::string rows;  // "test:0:3": rows of the model's own data, fed as its training block feeds them
    std::string data;  // with rows: an IDX folder instead of the training block's data
    std::string weights;  // a run directory or a checkpoint file: trained parameters
    std::optional<std::uint64_t> seed;
};
void add_point_options(CLI::App& cmd, PointOptions& o);

// What set_point put the graph at, for the step page's header and the rows' predictions.
struct Point {
    std::vector<std::string> random_inputs;  // "x [N,784]": inputs drawn at random
    std::string data;     // "x (images), t (labels_one_hot): rows 0 to 2 of the test split of data/mnist"
    std::string weights;  // "runs/mnist/checkpoint.ckpt (epoch 5)"; "": parameters from their initializers
    std::uint64_t seed = 0;
    // With --rows: each row's name ("test 0") and class label (-1: none), the class names.
    std::vector<std::string> row_names;
    std::vector<std::int32_t> labels;
    std::vector<std::string> class_names;
    // With --rows of text data: each row's tokens as characters, one per position (".emma...."),
    // for labelling a sequence's axes (the page's attention maps).
    std::vector<std::vector<std::string>> row_tokens;
    // The input fed images and the images' dims ({28, 28}), for pictures of the rows.
    std::string image_input;
    Dims image_dims;
};

// Puts the graph at a point: parameters from their initializers (seed: --seed, else the
// model's training seed, else 0) or from --weights, then the feed file or the rows, then
// every input still without a value drawn uniform(0, 1) from the same seed with each
// symbolic dim set to 3 (inputs read as "labels", e.g. by cross_entropy, get valid class
// indices or one-hot rows instead) and announced on stderr.
Point set_point(Model& m, const PointOptions& o);

// --weights RUN: copies the parameters of a run directory's checkpoint (or a checkpoint
// file) into the graph. A float32 checkpoint fills a float64
// graph exactly (gradcheck's float64 copy of a float32 model, the lecture's float64 graph
// with a float32 run's weights); the other way would round, and is refused.
struct LoadedWeights {
    std::string file;      // the checkpoint file
    std::int64_t epoch = 0;
    std::string text;      // "FILE (epoch N)", and what else a reader should know
};
LoadedWeights load_weights(Graph& g, const std::string& run);

// Flag checks with the training block's ranges, so a bad flag is exit 2, never wrapped,
// clamped or ignored: "-1" is not a seed, "nan" not a step.
CLI::Validator unsigned_integer();                          // 0 … 2^64 − 1, digits only
CLI::Validator finite_at_least(double low, bool strictly);  // a finite number (>|>=) low
CLI::Validator whole_in(std::int64_t low, std::int64_t high);
CLI::Validator row_range();  // SPLIT:START:COUNT, as --rows takes it

// The model's training seed, or 0.
std::uint64_t model_seed(const Model& m);

// `grad --json` layout: {"loss": x, "nodes": {NAME: {"kind", "op", "shape", "value", "grad"}}}.
Json node_json(const Graph& g, int id, bool with_grad);

}  // namespace chainrule::cli
