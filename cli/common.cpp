#include "cli/common.hpp"

#include <charconv>
#include <filesystem>
#include <cmath>
#include <cstdio>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/random.hpp"
#include "graph/labels.hpp"
#include "train/checkpoint.hpp"
#include "train/feeder.hpp"
#include "train/run_dir.hpp"
#include "train/training.hpp"

namespace chainrule::cli {

Model load(const std::string& path, bool force_f64) {
    Model m;
    if (force_f64) {
        std::string text = read_text_file(path);
        Json j = parse_json_text(text, path);
        if (j.is_object() && j.contains("dtype") && j["dtype"] == "float32") {
            j["dtype"] = "float64";
            text = j.dump();
        }
        m = parse_model(text, path);
    } else {
        m = load_model(path);
    }
    for (const auto& w : m.warnings) fmt::print(stderr, "warning: {}\n", w);
    return m;
}

std::uint64_t model_seed(const Model& m) {
    if (m.training.is_object() && m.training.contains("seed") && m.training["seed"].is_number_unsigned())
        return m.training["seed"].get<std::uint64_t>();
    return 0;
}

namespace {

// An input that no feed or row gave a value: uniform(0,1), or valid class labels where an
// op reads it as labels (class indices for [N], one-hot rows for [N,C], C from the logits).
Tensor random_input(const Graph& g, int id, Rng& rng, const std::string& file) {
    const Node& n = g.node(id);
    Dims dims;
    for (const auto& d : n.shape) dims.push_back(d.symbolic() ? 3 : d.size);
    Tensor t;
    try {
        t = Tensor(Dtype::f64, dims);
    } catch (const InputError& e) {
        throw InputError(fmt::format("{}: input '{}' drawn at random with every symbol = 3: {}; give it with "
                                     "--feed FILE",
                                     n.place.empty() ? file : n.place, n.name, e.what()));
    }
    for (const ClassIndexUse& use : class_index_uses(g, id))
        if (use.ids && use.classes > 0) {  // ids of any shape: rows of the table
            for (std::int64_t i = 0; i < t.numel(); ++i) t.set(i, double(rng.below(std::uint64_t(use.classes))));
            return t;
        }
    std::int64_t classes = 0;
    std::size_t logits_rank = 0;
    for (const Node& user : g.nodes())
        for (std::size_t k = 0; k < user.inputs.size(); ++k)
            if (user.inputs[k] == id && user.op->labels_input == int(k)) {
                const Shape& logits = g.node(user.inputs[0]).shape;
                if (!logits.empty() && !logits.back().symbolic()) classes = logits.back().size;
                logits_rank = logits.size();
            }
    if (classes > 0 && dims.size() + 1 == logits_rank) {  // class indices, one per position
        for (std::int64_t i = 0; i < t.numel(); ++i) t.set(i, double(rng.below(std::uint64_t(classes))));
    } else if (classes > 0 && dims.size() == logits_rank && dims.back() == classes) {  // one-hot rows
        for (std::int64_t r = 0; r < t.numel() / classes; ++r)
            t.set(r * classes + std::int64_t(rng.below(std::uint64_t(classes))), 1.0);
    } else {
        for (std::int64_t i = 0; i < t.numel(); ++i) t.set(i, rng.uniform());
    }
    return t;
}

struct RowRange {
    std::string split;
    std::int64_t start = 0, count = 0;
};

// "test:0:3" -> {test, 0, 3}; the validator of --rows has checked the form.
RowRange parse_rows(const std::string& text) {
    RowRange r;
    auto a = text.find(':'), b = text.find(':', a + 1);
    r.split = text.substr(0, a);
    std::from_chars(text.data() + a + 1, text.data() + b, r.start);
    std::from_chars(text.data() + b + 1, text.data() + text.size(), r.count);
    return r;
}

// Feeds the inputs the training block feeds with rows of the model's own data.
void feed_rows(Model& m, const std::string& rows_text, const std::string& data_dir, Point& point) {
    if (!m.training.is_object() && data_dir.empty())
        throw InputError(fmt::format("{}: --rows {} takes rows of the model's training data, but the model has no "
                                     "\"training\" block; name a folder of IDX files with --data (e.g. --data "
                                     "data/mnist) or use --feed FILE",
                                     m.path, rows_text));
    TrainingSpec spec = data_dir.empty() ? parse_training(m.training, m.graph, m.path, m.dir)
                                         : feed_from_idx_dir(m.graph, data_dir);
    data::Dataset ds = data::load_dataset(spec.data);
    RowRange r = parse_rows(rows_text);
    const data::Split& split = r.split == "train" ? ds.train : ds.test;
    if (r.start >= split.count || r.count > split.count - r.start)
        throw InputError(fmt::format("--rows {}: the {} split of {} has {} rows (0 to {})", rows_text, r.split, m.path,
                                     split.count, split.count - 1));
    std::vector<std::int64_t> rows(std::size_t(r.count));
    for (std::int64_t i = 0; i < r.count; ++i) rows[std::size_t(i)] = r.start + i;
    Feeder(m.graph, spec, ds).feed(split, rows);
    std::vector<std::string> fed;
    for (const auto& [name, stream] : spec.feed) {
        fed.push_back(fmt::format("{} ({})", name, stream));
        if (stream == data::kImages) point.image_input = name, point.image_dims = split.sample_dims;
    }
    // The data's path from here (a block's path is relative to the model's folder).
    const std::string& named = spec.data.dir.empty() ? spec.data.path : spec.data.dir;
    point.data = fmt::format("{}: rows {} to {} of the {} split of {}", fmt::join(fed, ", "), r.start,
                             r.start + r.count - 1, r.split, named);
    const bool one_label = ds.labels_per_sample == 1 && split.labels.size() == std::size_t(split.count);
    for (std::int64_t row : rows) {
        point.row_names.push_back(fmt::format("{} {}", r.split, row));
        point.labels.push_back(one_label ? split.labels[std::size_t(row)] : -1);
    }
    point.class_names = ds.class_names;
    if (!split.tokens.empty() && !ds.class_names.empty())
        for (std::int64_t row : rows) {
            std::vector<std::string> chars;
            for (std::int64_t p = 0; p < split.features; ++p) {
                const std::int32_t id = split.tokens[std::size_t(row * split.features + p)];
                chars.push_back(id >= 0 && std::size_t(id) < ds.class_names.size() ? ds.class_names[std::size_t(id)] : "?");
            }
            point.row_tokens.push_back(std::move(chars));
        }
    fmt::print(stderr, "note: {} from rows {} to {} of the {} split\n", fmt::join(fed, ", "), r.start,
               r.start + r.count - 1, r.split);
}

}  // namespace

LoadedWeights load_weights(Graph& g, const std::string& run) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::exists(run, ec))
        throw InputError(fmt::format("--weights {}: nothing is there; give a run directory (`chainrule train MODEL "
                                     "--out DIR`) or a checkpoint file",
                                     run));
    const std::string file = checkpoint_path(run);
    if (fs::is_directory(run, ec) && !fs::exists(file, ec))
        throw InputError(fmt::format("--weights {}: the folder holds no checkpoint.ckpt, so it is no run directory "
                                     "(`chainrule train MODEL --out DIR` writes one)",
                                     run));
    Checkpoint c = load_checkpoint(file);
    const bool widened = c.dtype == Dtype::f32 && g.dtype() == Dtype::f64;
    if (widened) {
        for (auto& [name, t] : c.tensors) t = t.to(Dtype::f64);
        c.dtype = Dtype::f64;
    }
    restore_parameters(g, c, file, ModelName::may_differ);
    std::string from = c.model == g.name ? "" : fmt::format(", trained as model '{}'", c.model);
    return {file, c.epoch,
            fmt::format("{} (epoch {}{}{})", file, c.epoch, from, widened ? ", float32 widened to float64" : "")};
}

Point set_point(Model& m, const PointOptions& o) {
    Point point;
    point.seed = o.seed ? *o.seed : model_seed(m);
    Graph& g = m.graph;
    g.init_parameters(point.seed);
    if (!o.weights.empty()) {
        point.weights = load_weights(g, o.weights).text;
        fmt::print(stderr, "note: parameters from {}\n", point.weights);
    }
    if (!o.feed.empty()) apply_feed_file(g, o.feed);
    if (!o.rows.empty()) feed_rows(m, o.rows, o.data, point);
    Rng rng(point.seed + 1);
    for (std::size_t id = 0; id < g.size(); ++id) {
        const Node& n = g.node(static_cast<int>(id));
        if (n.kind != NodeKind::input || !n.value.empty()) continue;
        point.random_inputs.push_back(fmt::format("{} {}", n.name, format_shape(n.shape)));
        g.set_value(n.name, random_input(g, int(id), rng, m.path));
    }
    // Numbers of random inputs must never pass for the model's own: say so, once, on stderr.
    if (!point.random_inputs.empty())
        fmt::print(stderr,
                   "note: {} drawn at random (uniform(0,1), class labels where an op reads labels, every symbol = "
                   "3); give real values with --feed FILE{}\n",
                   fmt::join(point.random_inputs, ", "), m.training.is_object() ? " or --rows test:0:3" : "");
    if (point.data.empty() && !o.feed.empty()) point.data = "inputs from " + o.feed;
    return point;
}

Json node_json(const Graph& g, int id, bool with_grad) {
    const Node& n = g.node(id);
    Json j;
    j["kind"] = kind_name(n.kind);
    j["op"] = n.kind == NodeKind::op ? n.op->name : kind_name(n.kind);
    Json shape = Json::array();
    for (auto d : n.value.dims()) shape.push_back(d);
    j["shape"] = shape;
    j["value"] = tensor_to_json(n.value);
    if (with_grad && !n.grad.empty()) j["grad"] = tensor_to_json(n.grad);
    return j;
}

CLI::Validator unsigned_integer() {
    return CLI::Validator(
        [](const std::string& text) -> std::string {
            std::uint64_t v = 0;
            auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
            if (text.empty() || ec != std::errc() || end != text.data() + text.size())
                return fmt::format("'{}' is not a whole number from 0 to 18446744073709551615", text);
            return {};
        },
        "UINT64");
}

CLI::Validator finite_at_least(double low, bool strictly) {
    return CLI::Validator(
        [low, strictly](const std::string& text) -> std::string {
            double v = 0;
            auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
            bool ok = !text.empty() && ec == std::errc() && end == text.data() + text.size() && std::isfinite(v) &&
                      (strictly ? v > low : v >= low);
            return ok ? std::string() : fmt::format("'{}' is not a finite number {} {}", text, strictly ? ">" : ">=", low);
        },
        fmt::format("NUMBER{}{}", strictly ? ">" : ">=", low));
}

CLI::Validator whole_in(std::int64_t low, std::int64_t high) {
    return CLI::Validator(
        [low, high](const std::string& text) -> std::string {
            std::int64_t v = 0;
            auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
            bool ok = !text.empty() && ec == std::errc() && end == text.data() + text.size() && v >= low && v <= high;
            return ok ? std::string() : fmt::format("'{}' is not a whole number from {} to {}", text, low, high);
        },
        fmt::format("INT in [{} - {}]", low, high));
}

CLI::Validator row_range() {
    return CLI::Validator(
        [](const std::string& text) -> std::string {
            auto a = text.find(':'), b = a == std::string::npos ? a : text.find(':', a + 1);
            auto whole = [&](std::size_t from, std::size_t to, std::int64_t low) {
                std::int64_t v = -1;
                auto [end, ec] = std::from_chars(text.data() + from, text.data() + to, v);
                return from < to && ec == std::errc() && end == text.data() + to && v >= low;
            };
            bool ok = b != std::string::npos && (text.substr(0, a) == "train" || text.substr(0, a) == "test") &&
                      whole(a + 1, b, 0) && whole(b + 1, text.size(), 1);
            return ok ? std::string()
                      : fmt::format("'{}' is not SPLIT:START:COUNT with SPLIT train or test, START >= 0 and "
                                    "COUNT >= 1 (e.g. test:0:3)",
                                    text);
        },
        "SPLIT:START:COUNT");
}

void add_point_options(CLI::App& cmd, PointOptions& o) {
    auto* feed = cmd.add_option("--feed", o.feed,
                   "JSON object mapping input and parameter names to nested arrays: it fixes the point, so "
                   "every input without a default value must be in it. Without --feed such inputs are drawn "
                   "uniform(0,1) with symbolic dims set to 3, and a note on stderr says so");
    auto* rows = cmd.add_option("--rows", o.rows,
                   "SPLIT:START:COUNT, e.g. test:0:3: feed the inputs of the training block's feed with COUNT rows "
                   "of the model's own data (train or test split) from row START")
        ->check(row_range())
        ->excludes(feed);
    cmd.add_option("--data", o.data,
                   "with --rows: a folder of MNIST-named IDX files to take the rows from instead of the training "
                   "block's data (for a model without one, e.g. models/slides_mnist.json); each input gets the "
                   "stream whose width fits it")
        ->needs(rows);
    cmd.add_option("--weights", o.weights,
                   "trained parameters: a run directory (`train --out RUN`) or a checkpoint file, as `eval --weights` "
                   "takes them; a --feed that names a parameter still wins")
        ->option_text("RUN");
    cmd.add_option("--seed", o.seed, "seed for parameter initialisation and random inputs (default: the "
                                     "model's training seed, else 0)")
        ->check(unsigned_integer());
}

}  // namespace chainrule::cli
