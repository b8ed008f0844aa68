#include "train/training.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <optional>

#include "core/error.hpp"
#include "core/print.hpp"
#include "data/idx.hpp"
#include "graph/labels.hpp"
#include "train/distributed.hpp"

namespace chainrule {
namespace {

// True for an input the loss is computed from but the prediction is not: its target.
bool is_target(const Graph& g, int id) {
    const int prediction = g.prediction(), loss = g.loss();
    if (prediction < 0 || loss < 0) return false;
    auto ancestors = [&](int of) {
        std::vector<bool> in(g.size(), false);
        in[std::size_t(of)] = true;
        for (std::size_t i = g.size(); i-- > 0;)
            if (in[i])
                for (int j : g.node(int(i)).inputs) in[std::size_t(j)] = true;
        return in;
    };
    return ancestors(loss)[std::size_t(id)] && !ancestors(prediction)[std::size_t(id)];
}

// The stream whose width fits the input's shape, for "did you forget ...?": [N] and [N,1]
// take class indices, [N,k] the stream with k columns (data::likely_stream).
std::string fitting_stream(const data::DataSpec& d, const Graph& g, int id) {
    const Node& n = g.node(id);
    if (n.shape.size() == 1 || (n.shape.size() == 2 && n.shape[1].is_one())) return data::kLabels;
    // What the loss compares the prediction with (an input the prediction is not computed
    // from) holds labels: [N,C] is one-hot rows. The width alone would name the features
    // when they have C columns too, or when the classes are not listed.
    if (is_target(g, id)) {
        const std::vector<std::string> names = data::stream_names(d.kind);
        if (std::find(names.begin(), names.end(), data::kLabelsOneHot) != names.end()) return data::kLabelsOneHot;
    }
    const bool fixed = n.shape.size() == 2 && !n.shape[1].symbolic();
    return data::likely_stream(d, fixed ? std::optional(n.shape[1].size) : std::nullopt);
}

}  // namespace

TrainingSpec feed_from_idx_dir(const Graph& g, const std::string& dir) {
    TrainingSpec s;
    s.data = data::idx_folder_spec(dir, "--data");
    for (const Node& n : g.nodes())
        if (n.kind == NodeKind::input && n.default_value.empty())
            s.feed.emplace_back(n.name, fitting_stream(s.data, g, g.find(n.name)));
    return s;
}

void check_batch_dim(const Node& n, const std::string& where) {
    // Batches have as many rows as the sampler picks, so the batch dim must be free to take them.
    if (!n.shape.empty() && !n.shape[0].symbolic())
        throw InputError(fmt::format("{}: input '{}' is declared {}, but its first dim is the batch, which training "
                                     "feeds batch_size rows at a time; declare it as a symbol such as \"N\"",
                                     where, n.name, format_shape(n.shape)));
}

void check_feed_fits(const Node& n, const std::string& stream, std::int64_t width, const std::string& where) {
    check_batch_dim(n, where);
    if (n.shape.size() == 2 ? !n.shape[1].symbolic() && n.shape[1].size != width : n.shape.size() != 1 || width != 1)
        throw InputError(fmt::format("{}: input '{}' is declared {} but stream '{}' has {} column{} per sample", where,
                                     n.name, format_shape(n.shape), stream, width, width == 1 ? "" : "s"));
}

namespace {

// A prediction has a row per sample: its first dim is the batch symbol of a fed input.
void check_prediction_rows(const Graph& g, const TrainingSpec& s, const std::string& file) {
    if (g.prediction() < 0) return;
    const Node& p = g.node(g.prediction());
    std::string batch;
    for (const auto& [name, stream] : s.feed)
        if (const Shape& in = g.node(g.id(name)).shape; !in.empty() && in[0].symbolic()) batch = in[0].symbol;
    if (batch.empty() || (!p.shape.empty() && p.shape[0].symbolic() && p.shape[0].symbol == batch)) return;
    throw InputError(fmt::format("{}: outputs.prediction: '{}' is {}, without the batch dim {}: a prediction has one "
                                 "row per sample (accuracy and `eval --predictions` read it row by row); name a node "
                                 "computed from the fed inputs, such as the last layer's output",
                                 file, p.name, format_shape(p.shape), batch));
}

// Class indices fed from the data must select a column of every op that reads them: a
// `classes` list longer than the logits is refused here, before any data is read.
void check_listed_classes(const Graph& g, const TrainingSpec& s, const std::string& at) {
    if (s.data.classes.empty()) return;
    for (const auto& [name, stream] : s.feed) {
        if (stream != data::kLabels) continue;
        for (const ClassIndexUse& use : class_index_uses(g, g.id(name)))
            if (use.classes > 0 && std::int64_t(s.data.classes.size()) > use.classes)
                throw InputError(fmt::format("{}.data.classes: {} classes, but input '{}' (fed \"{}\") holds class "
                                             "indices for {}: list at most {} classes, or widen the logits",
                                             at, s.data.classes.size(), name, stream, describe_use(g, use),
                                             use.classes));
    }
}

// What the block's own numbers must agree on, said in its words: a rate of 0 trains
// nothing, steps per epoch need a batch size, shards cut a batch.
void check_block_numbers(const Graph& g, const TrainingSpec& s, const std::string& at,
                         const std::string& file) {
    if (!(s.optimizer.lr > 0))
        throw InputError(fmt::format("{}.optimizer.{}.lr: must be > 0, got {} (a run at rate 0 changes nothing)", at,
                                     s.optimizer.name, s.optimizer.lr));
    if (s.batches_per_epoch > 0 && s.batch_size == 0)
        throw InputError(fmt::format("{}.batches_per_epoch: needs a batch_size: without one every step is the whole "
                                     "training split (full batch), one step per epoch",
                                     at));
    if (s.shards > kMaxShards)
        throw InputError(fmt::format("{}.shards: {} is more than the {} shards a batch may be cut into", at, s.shards,
                                     kMaxShards));
    if (s.shards > 0 && s.batch_size > 0 && s.shards > s.batch_size)
        throw InputError(fmt::format("{}.shards: {} shards are more than the {} rows of a batch (batch_size)", at,
                                     s.shards, s.batch_size));
    if (s.shards > 1) check_shardable(g, file);
}

}  // namespace

TrainingSpec parse_training(const Json& j, const Graph& g, const std::string& file, const std::string& dir) {
    const std::string at = file + ": training";
    if (j.is_null()) throw InputError(fmt::format("{}: the model has no \"training\" block; add one to train it "
                                                  "(docs/model-format.md)",
                                                  file));
    get_object(j, at);
    if (g.loss() < 0) throw InputError(fmt::format("{}: outputs: the model has no \"loss\" output to train", file));
    check_keys(j,
               {"data", "feed", "epochs", "batch_size", "batches_per_epoch", "sampling", "optimizer", "lr_schedule", "clip_grad_norm", "seed",
                "metrics", "print_every", "shards", "sparse_inputs"},
               at);
    TrainingSpec s;
    s.data = data::parse_data_spec(require(j, "data", at), at + ".data", dir);

    const Json& feed = get_object(require(j, "feed", at), at + ".feed");
    for (auto& [name, stream] : feed.items()) {
        std::string fat = at + ".feed." + name;
        int id = g.find(name);
        if (id < 0) throw InputError(fmt::format("{}: '{}' names no input of the model", fat, name));
        if (g.node(id).kind != NodeKind::input)
            throw InputError(fmt::format("{}: '{}' is {} node; only inputs can be fed from data", fat, name,
                                         g.node(id).kind == NodeKind::op ? "an op" : kind_name(g.node(id).kind)));
        std::string st = get_string(stream, fat);
        if (std::vector<std::string> names = data::stream_names(s.data.kind);
            std::find(names.begin(), names.end(), st) == names.end())
            throw InputError(fmt::format("{}: unknown stream '{}' for {} data (expected {})", fat, st, s.data.kind,
                                         data::stream_list(s.data.kind)));
        check_batch_dim(g.node(id), fat);
        if (auto width = data::stream_width_from_spec(s.data, st)) check_feed_fits(g.node(id), st, *width, fat);
        s.feed.emplace_back(name, st);
    }
    for (const Node& n : g.nodes()) {
        if (n.kind != NodeKind::input || !n.default_value.empty()) continue;
        bool fed = false;
        for (auto& [name, st] : s.feed) fed = fed || name == n.name;
        if (!fed)
            throw InputError(fmt::format("{}.feed: input '{}' {} is not fed and has no default value (did you forget "
                                         "\"{}\": \"{}\"?)",
                                         at, n.name, format_shape(n.shape), n.name, fitting_stream(s.data, g, g.find(n.name))));
    }
    auto positive = [&](const char* key, std::int64_t& out) {
        if (!j.contains(key)) return;
        out = get_int(j[key], at + "." + key);
        if (out < 1) throw InputError(fmt::format("{}.{}: must be at least 1, got {}", at, key, out));
    };
    positive("epochs", s.epochs);
    positive("batch_size", s.batch_size);
    positive("batches_per_epoch", s.batches_per_epoch);
    positive("print_every", s.print_every);
    positive("shards", s.shards);
    if (s.epochs > kMaxEpochs)
        throw InputError(fmt::format("{}.epochs: {} is more than the {} epochs a run may have (docs/limits.md)", at,
                                     s.epochs, kMaxEpochs));
    if (j.contains("sampling")) {
        std::string name = get_string(j["sampling"], at + ".sampling");
        if (!Sampling::is_name(name))
            throw InputError(fmt::format("{}.sampling: expected \"shuffle\" or \"with_replacement\", got \"{}\"", at,
                                         name));
        s.sampling = name.c_str();
    }
    if (j.contains("optimizer")) s.optimizer = parse_optimizer(j["optimizer"], at + ".optimizer");
    if (j.contains("lr_schedule")) s.lr_schedule = parse_schedule(j["lr_schedule"], at + ".lr_schedule");
    if (j.contains("clip_grad_norm")) {
        s.clip_grad_norm = get_number(j["clip_grad_norm"], at + ".clip_grad_norm");
        if (!(s.clip_grad_norm > 0))
            throw InputError(fmt::format("{}.clip_grad_norm: must be > 0 (the largest global L2 norm), got {}", at,
                                         s.clip_grad_norm));
    }
    if (j.contains("seed")) {
        std::int64_t seed = get_int(j["seed"], at + ".seed");
        if (seed < 0) throw InputError(fmt::format("{}.seed: must be >= 0, got {}", at, seed));
        s.seed = std::uint64_t(seed);
    }
    if (j.contains("metrics")) {
        s.metrics.clear();
        const Json& m = get_array(j["metrics"], at + ".metrics");
        for (std::size_t i = 0; i < m.size(); ++i) {
            std::string name = get_string(m[i], json_path(at + ".metrics", i));
            if (name != "loss" && name != "accuracy")
                throw InputError(fmt::format("{}: unknown metric '{}' (expected \"loss\" or \"accuracy\")",
                                             json_path(at + ".metrics", i), name));
            s.metrics.push_back(name);
        }
    }
    if (j.contains("sparse_inputs")) {
        const std::string v = get_string(j["sparse_inputs"], at + ".sparse_inputs");
        if (v != "auto" && v != "off")
            throw InputError(fmt::format("{}.sparse_inputs: expected \"auto\" or \"off\", got \"{}\"", at, v));
        s.sparse_inputs = v == "auto";
    }
    check_block_numbers(g, s, at, file);
    check_listed_classes(g, s, at);
    check_prediction_rows(g, s, file);
    return s;
}

}  // namespace chainrule
