#include "cli/common.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.hpp"

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

void set_point(Model& m, const std::string& feed_path, std::optional<std::uint64_t> seed) {
    std::uint64_t s = seed ? *seed : model_seed(m);
    Graph& g = m.graph;
    g.init_parameters(s);
    if (!feed_path.empty()) apply_feed_file(g, feed_path);
    Rng rng(s + 1);
    std::vector<std::string> drawn;
    for (std::size_t id = 0; id < g.size(); ++id) {
        Node& n = g.node(static_cast<int>(id));
        if (n.kind != NodeKind::input || !n.value.empty()) continue;
        drawn.push_back(fmt::format("{} {}", n.name, format_shape(n.shape)));
        Dims dims;
        for (const auto& d : n.shape) dims.push_back(d.symbolic() ? 3 : d.size);
        Tensor t(Dtype::f64, dims);
        // An input that an op reads as class labels gets valid labels: class indices for
        // [N], one-hot rows for [N,C]; C comes from the op's first input (the logits).
        std::int64_t classes = 0;
        for (const Node& user : g.nodes())
            for (std::size_t k = 0; k < user.inputs.size(); ++k)
                if (user.inputs[k] == int(id) && user.op->inputs[k] == "labels" && !user.inputs.empty()) {
                    const Shape& logits = g.node(user.inputs[0]).shape;
                    if (!logits.empty() && !logits.back().symbolic()) classes = logits.back().size;
                }
        if (classes > 0 && dims.size() == 1) {
            for (std::int64_t i = 0; i < t.numel(); ++i) t.set(i, double(rng.below(std::uint64_t(classes))));
        } else if (classes > 0 && dims.size() == 2 && dims[1] == classes) {
            for (std::int64_t r = 0; r < dims[0]; ++r) t.set(r * classes + std::int64_t(rng.below(std::uint64_t(classes))), 1.0);
        } else {
            for (std::int64_t i = 0; i < t.numel(); ++i) t.set(i, rng.uniform());
        }
        g.set_value(n.name, t);
    }
    // Numbers of random inputs must never pass for the model's own: say so, once, on stderr.
    if (!drawn.empty())
        fmt::print(stderr,
                   "note: {} drawn at random (uniform(0,1), class labels where an op reads labels, every symbol = "
                   "3); give real values with --feed FILE\n",
                   fmt::join(drawn, ", "));
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

void add_point_options(CLI::App& cmd, PointOptions& o) {
    cmd.add_option("--feed", o.feed,
                   "JSON object mapping input and parameter names to nested arrays: it fixes the point, so "
                   "every input without a default value must be in it. Without --feed such inputs are drawn "
                   "uniform(0,1) with symbolic dims set to 3, and a note on stderr says so");
    cmd.add_option("--seed", o.seed, "seed for parameter initialisation and random inputs (default: the "
                                     "model's training seed, else 0)")
        ->check(unsigned_integer());
}

}  // namespace chainrule::cli
