#include "cli/common.hpp"

#include <cstdio>
#include <fmt/format.h>

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
    for (std::size_t id = 0; id < g.size(); ++id) {
        Node& n = g.node(static_cast<int>(id));
        if (n.kind != NodeKind::input || !n.value.empty()) continue;
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

void add_point_options(CLI::App& cmd, PointOptions& o) {
    cmd.add_option("--feed", o.feed,
                   "JSON object mapping input and parameter names to nested arrays; inputs not in it and "
                   "without a default value are drawn uniform(0,1) with symbolic dims set to 3");
    cmd.add_option("--seed", o.seed, "seed for parameter initialisation and random inputs (default: the "
                                     "model's training seed, else 0)");
}

}  // namespace chainrule::cli
