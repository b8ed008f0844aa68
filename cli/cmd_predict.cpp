// `chainrule predict`: a trained model on new rows, a line (or a JSON entry) per row.
#include <algorithm>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "cli/row_predictions.hpp"
#include "core/error.hpp"
#include "data/csv.hpp"
#include "data/idx.hpp"
#include "data/kind.hpp"
#include "train/checkpoint.hpp"
#include "train/model_file.hpp"

namespace chainrule::cli {
namespace {

namespace fs = std::filesystem;

struct PredictOptions {
    std::string model, weights, input, feed;
    std::int64_t first = 0;  // 0: every row
    bool json = false;
};

// The new rows, as the model's sample input takes them.
struct NewRows {
    std::string source;                // the file the rows come from
    std::vector<std::string> names;    // "line 3", "image 0"
    std::vector<std::int32_t> labels;  // -1: not known
    std::vector<double> values;        // rows × width, as fed (pixels already / 255)
    std::int64_t count() const { return std::int64_t(names.size()); }
};

// The nodes the prediction is computed from (its ancestors, itself included).
std::vector<bool> prediction_needs(const Graph& g) {
    std::vector<bool> need(g.size(), false);
    need[std::size_t(g.prediction())] = true;
    for (std::size_t i = g.size(); i-- > 0;)
        if (need[i])
            for (int j : g.node(int(i)).inputs) need[std::size_t(j)] = true;
    return need;
}

// The one input the new rows go to: the input without a default value the prediction is
// computed from. Labels the loss reads (t, y) are not among them.
int sample_input(const Graph& g, const std::string& file) {
    const std::vector<bool> need = prediction_needs(g);
    std::vector<int> ids;
    for (std::size_t i = 0; i < g.size(); ++i)
        if (need[i] && g.node(int(i)).kind == NodeKind::input && g.node(int(i)).default_value.empty()) ids.push_back(int(i));
    if (ids.size() == 1) return ids[0];
    std::vector<std::string> names;
    for (int id : ids) names.push_back(g.node(id).name);
    throw InputError(fmt::format("{}: the prediction {} is computed from {}; predict feeds new rows to one input, so "
                                 "give {} with --feed FILE",
                                 file, g.node(g.prediction()).name,
                                 names.empty() ? std::string("no fed input") : fmt::format("{}", fmt::join(names, ", ")),
                                 names.empty() ? "the point" : "each"));
}

// Values per row of the sample input: its shape after the batch dim, which must be fixed.
std::int64_t row_width(const Node& n) {
    std::int64_t w = 1;
    for (std::size_t d = 1; d < n.shape.size(); ++d) {
        if (n.shape[d].symbolic())
            throw InputError(fmt::format("input '{}' is declared {}: predict needs every dim after the batch fixed",
                                         n.name, format_shape(n.shape)));
        w *= n.shape[d].size;
    }
    return w;
}

std::int32_t class_of(const std::string& name, const std::vector<std::string>& classes) {
    auto it = std::find(classes.begin(), classes.end(), name);
    return it == classes.end() ? -1 : std::int32_t(it - classes.begin());
}

// A CSV of new rows: each line the input's `width` numbers, or a row laid out as the
// training file's (features at their columns, the label, when it names a class, kept).
// A first line without a number is a header.
NewRows csv_rows(const std::string& path, const Node& input, std::int64_t width, const TrainingSpec* spec,
                 const std::vector<std::string>& classes) {
    data::CsvTable t = data::read_csv(path);
    const bool laid_out = spec && !spec->data.features.empty() && std::int64_t(spec->data.features.size()) == width &&
                          t.columns != width;
    std::int64_t needed = width;
    if (laid_out)
        for (int c : spec->data.features) needed = std::max<std::int64_t>(needed, c + 1);
    if (t.columns != width && !laid_out)
        throw InputError(fmt::format("{}:{}: {} fields, but input '{}' {} takes {} numbers a row", path, t.lines[0],
                                     t.columns, input.name, format_shape(input.shape), width));
    if (laid_out && t.columns < needed)
        throw InputError(fmt::format("{}:{}: {} fields: predict takes {} numbers a row (input '{}'), or a row of the "
                                     "training data with the features at columns {}",
                                     path, t.lines[0], t.columns, width, input.name, fmt::join(spec->data.features, ", ")));
    NewRows r;
    r.source = path;
    std::vector<std::int64_t> columns(static_cast<std::size_t>(width));
    for (std::int64_t k = 0; k < width; ++k) columns[std::size_t(k)] = laid_out ? spec->data.features[std::size_t(k)] : k;
    for (std::int64_t row = 0; row < t.rows(); ++row) {
        bool any = false;
        for (std::int64_t c = 0; c < t.columns && !any; ++c) any = data::parse_number(t.at(row, c)).has_value();
        if (row == 0 && !any) continue;  // a header
        for (std::int64_t k = 0; k < width; ++k) {
            const std::int64_t c = columns[std::size_t(k)];
            std::optional<double> v = data::parse_number(t.at(row, c));
            if (!v)
                throw InputError(fmt::format("{}:{}: field {} is '{}', not a finite number", path, t.lines[std::size_t(row)],
                                             c + 1, t.at(row, c)));
            r.values.push_back(*v);
        }
        r.names.push_back(fmt::format("line {}", t.lines[std::size_t(row)]));
        const bool has_label = laid_out && spec->data.label >= 0 && spec->data.label < t.columns;
        r.labels.push_back(has_label ? class_of(std::string(t.at(row, spec->data.label)), classes) : -1);
    }
    if (r.names.empty()) throw InputError(fmt::format("{}: only a header, no rows", path));
    return r;
}

// IDX images: a file, or a folder's test images (t10k-images) with their labels when there.
NewRows idx_rows(const std::string& path, const Node& input, std::int64_t width) {
    std::string images = path, labels;
    if (fs::is_directory(path)) {
        images = data::find_idx_file(path, data::kTestImages);
        if (images.empty())
            throw InputError(fmt::format("{}: the folder holds no {} (or .gz): predict reads a folder's test images",
                                         path, data::kTestImages));
        labels = data::find_idx_file(path, data::kTestLabels);
    }
    data::IdxFile f = data::read_idx(images, data::IdxRole::images);
    const std::int64_t count = f.dims[0], pixels = f.dims[1] * f.dims[2];
    if (pixels != width)
        throw InputError(fmt::format("{}: images of {}×{} = {} pixels, but input '{}' {} takes {} values a row", images,
                                     f.dims[1], f.dims[2], pixels, input.name, format_shape(input.shape), width));
    NewRows r;
    r.source = images;
    r.values.reserve(std::size_t(count * pixels));
    for (std::uint8_t p : f.data) r.values.push_back(double(p) / 255);  // as training feeds them
    std::vector<std::uint8_t> ids;
    if (!labels.empty()) {
        data::IdxFile l = data::read_idx(labels, data::IdxRole::labels);
        if (l.dims[0] != count)
            throw InputError(fmt::format("{}: {} labels for {} images in {}", labels, l.dims[0], count, images));
        ids = std::move(l.data);
    }
    for (std::int64_t i = 0; i < count; ++i) {
        r.names.push_back(fmt::format("image {}", i));
        r.labels.push_back(ids.empty() ? -1 : std::int32_t(ids[std::size_t(i)]));
    }
    return r;
}

bool looks_like_idx(const std::string& path) {
    if (fs::is_directory(path)) return true;
    std::ifstream f(path, std::ios::binary);
    unsigned char head[3] = {1, 1, 1};
    f.read(reinterpret_cast<char*>(head), 3);
    return (head[0] == 0x1f && head[1] == 0x8b) || (head[0] == 0 && head[1] == 0 && head[2] == 8);
}

// Every input other than the sample one gets zeros for `rows` rows: labels the loss reads,
// which forward computes too but no prediction uses.
void fill_unused_inputs(Graph& g, int sample, std::int64_t rows) {
    const std::vector<bool> need = prediction_needs(g);
    for (std::size_t i = 0; i < g.size(); ++i) {
        const Node& n = g.node(int(i));
        if (n.kind != NodeKind::input || int(i) == sample || !n.default_value.empty() || need[i]) continue;
        Dims dims;
        for (const Dim& d : n.shape) dims.push_back(d.symbolic() ? rows : d.size);
        g.set_value(n.name, Tensor(g.dtype(), dims));
    }
}

// The class names: the training block's list; a CSV's own, in order of first appearance in
// its file; for images, their class ids (an IDX folder's labels are 0 to 9).
std::vector<std::string> class_names(const ModelFile& f) {
    if (!f.training) return {};
    const data::DataSpec& d = f.training->data;
    if (!d.classes.empty() || data::data_kind(d.kind, d.where).images) return d.classes;
    try {
        return data::load_dataset(d).class_names;
    } catch (const InputError&) {
        return {};  // the training data is not here: classes by number
    }
}

std::vector<RowPrediction> predict_rows(Graph& g, int sample, const NewRows& r, std::int64_t width,
                                        const std::vector<std::string>& classes) {
    Plan plan = g.plan(Pass::training());  // outputs exact, insides of fused chains skipped
    std::vector<RowPrediction> out;
    constexpr std::int64_t kChunk = 1000;
    const Node& in = g.node(sample);
    for (std::int64_t start = 0; start < r.count(); start += kChunk) {
        const std::int64_t n = std::min(kChunk, r.count() - start);
        Dims dims{n};
        for (std::size_t d = 1; d < in.shape.size(); ++d) dims.push_back(in.shape[d].size);
        Tensor& x = g.input_buffer(sample, dims);
        for (std::int64_t i = 0; i < n * width; ++i) x.set(i, r.values[std::size_t(start * width + i)]);
        fill_unused_inputs(g, sample, n);
        g.forward(plan);
        auto at = [&]<class T>(const std::vector<T>& v) { return std::vector<T>(v.begin() + start, v.begin() + start + n); };
        std::vector<RowPrediction> part = row_predictions(g, at(r.names), at(r.labels), classes);
        for (RowPrediction& p : part) out.push_back(std::move(p));
    }
    return out;
}

// A feed file: the rows as the model's inputs, by name; inputs the prediction does not use
// (the loss's labels) may be left out.
std::vector<RowPrediction> predict_feed(Graph& g, const std::string& feed_path, const std::vector<std::string>& classes) {
    Json feed = read_json_file(feed_path);
    if (!feed.is_object())
        throw InputError(fmt::format("{}: a feed must be a JSON object mapping input names to arrays", feed_path));
    const std::vector<bool> need = prediction_needs(g);
    std::int64_t rows = -1;
    bool filled = false;
    for (const Node& n : g.nodes())
        if (n.kind == NodeKind::input && feed.contains(n.name) && !n.shape.empty() && n.shape[0].symbolic() &&
            feed[n.name].is_array())
            rows = std::int64_t(feed[n.name].size());
    for (std::size_t i = 0; i < g.size(); ++i) {
        const Node& n = g.node(int(i));
        if (n.kind != NodeKind::input || feed.contains(n.name) || !n.default_value.empty() || need[i] || rows < 0)
            continue;
        Dims dims;
        for (const Dim& d : n.shape) dims.push_back(d.symbolic() ? rows : d.size);
        feed[n.name] = tensor_to_json(Tensor(Dtype::f64, dims));
        filled = true;
    }
    apply_feed(g, feed, feed_path);
    Plan plan = g.plan(Pass::training());
    g.forward(plan);
    // Labels only from a target the feed gives: the zeros put in its place are none.
    return row_predictions(g, {}, {}, classes, !filled);
}

// Without --data: the training block's own data, its file (every row) or its folder (the
// test images), as the block names it relative to the model file.
std::string own_data(const ModelFile& f, const std::string& model) {
    if (!f.training)
        throw InputError(fmt::format("{}: the model has no \"training\" block naming its data; give the new rows "
                                     "with --data FILE or --feed FILE",
                                     model));
    const data::DataSpec& d = f.training->data;
    const std::string& own = d.path.empty() ? d.dir : d.path;
    if (own.empty())
        throw InputError(fmt::format("{}: training.data names no file or folder; give the new rows with --data FILE",
                                     model));
    return own;
}

void run(const PredictOptions& o) {
    ModelFile f = load_model_file(o.model);
    for (const auto& w : f.model.warnings) fmt::print(stderr, "warning: {}\n", w);
    Graph& g = f.model.graph;
    if (g.prediction() < 0)
        throw InputError(fmt::format("{}: outputs: the model has no \"prediction\" output to predict with", o.model));
    // Text is windows of characters, not rows of numbers: its rows come as a feed of ids, and
    // the classes are the run's characters.
    const bool text = f.training && data::data_kind(f.training->data.kind, f.training->data.where).vocabulary;
    if (text && o.feed.empty())
        throw InputError(fmt::format("{}: the model was trained on text; predict takes its windows as --feed FILE "
                                     "(ids), `chainrule eval` scores a file of words and `chainrule sample` draws "
                                     "words",
                                     o.model));
    const std::string input = !o.feed.empty() || !o.input.empty() ? o.input : own_data(f, o.model);
    g.init_parameters(0);
    const LoadedWeights weights = load_weights(g, o.weights);
    const std::vector<std::string> classes =
        text ? run_vocabulary(load_checkpoint(weights.file), weights.file) : class_names(f);
    std::vector<RowPrediction> rows;
    std::string source = o.feed;
    if (!o.feed.empty()) {
        rows = predict_feed(g, o.feed, classes);
    } else {
        if (!fs::exists(input)) throw InputError(fmt::format("--data {}: nothing is there (a CSV file, an IDX file or "
                                                             "folder of images, or --feed FILE)",
                                                             input));
        const int sample = sample_input(g, o.model);
        const Node& in = g.node(sample);
        const std::int64_t width = row_width(in);
        NewRows r = looks_like_idx(input) ? idx_rows(input, in, width)
                                          : csv_rows(input, in, width, f.training ? &*f.training : nullptr, classes);
        if (o.first > 0 && o.first < r.count()) {
            r.names.resize(std::size_t(o.first));
            r.labels.resize(std::size_t(o.first));
            r.values.resize(std::size_t(o.first * width));
        }
        source = r.source;
        rows = predict_rows(g, sample, r, width, classes);
    }
    std::int64_t labelled = 0, right = 0;
    for (const RowPrediction& r : rows) labelled += !r.label.empty(), right += !r.label.empty() && r.right;
    if (o.json) {
        Json j = {{"model", o.model}, {"weights", weights.file}, {"epoch", weights.epoch}, {"input", source},
                  {"prediction", g.node(g.prediction()).name}, {"count", rows.size()}};
        j["classes"] = classes;
        if (labelled) j["right"] = right, j["labelled"] = labelled;
        j["rows"] = row_predictions_json(rows);
        std::cout << j.dump(1) << "\n";
        return;
    }
    fmt::print("{} with {} on {}: {} row{}\n", o.model, weights.text, source, rows.size(), rows.size() == 1 ? "" : "s");
    fmt::print("{}", format_row_predictions(g, rows, rows.size(), true));
    if (labelled) fmt::print("{} of {} labelled rows right ({:.4f})\n", right, labelled, double(right) / double(labelled));
}

}  // namespace

void add_predict(CLI::App& app) {
    auto o = std::make_shared<PredictOptions>();
    auto* cmd = app.add_subcommand("predict", "Predict new rows with trained weights: one line per row with its "
                                              "predicted class and the model's outputs");
    cmd->add_option("MODEL", o->model, "model JSON file")->required();
    auto* input = cmd->add_option("--data", o->input,
                                  "the new rows: a CSV file (a row's numbers, or a row laid out as the training "
                                  "data's), an IDX file of images, or a folder of IDX files (its test images, and "
                                  "their labels when there); without it, the training block's data")
                      ->option_text("FILE");
    cmd->add_option("--weights", o->weights, "a run directory or a checkpoint file (required)")
        ->required()
        ->option_text("RUN");
    cmd->add_option("--feed", o->feed, "the rows as a JSON object mapping the model's inputs to arrays, instead of "
                                       "--data (labels the prediction does not use may be left out)")
        ->excludes(input)
        ->option_text("FILE");
    cmd->add_option("--first", o->first, "predict only the first N rows")
        ->check(whole_in(1, kMaxElements))
        ->option_text("N");
    cmd->add_flag("--json", o->json, "print one JSON document (docs/cli.md)");
    cmd->callback([o] { run(*o); });
}

}  // namespace chainrule::cli
