// `chainrule hvp`: the Hessian of the loss times a vector, exact (graph/hessian.hpp).
#include <fmt/format.h>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "core/error.hpp"
#include "core/print.hpp"
#include "graph/hessian.hpp"

namespace chainrule::cli {
namespace {

struct HvpOptions {
    std::string model, vector;
    PointOptions point;
    bool json = false;
};

// V.json: {"param": nested array, ...}; a parameter left out is zero. Each tensor shaped
// like its parameter, in the graph's dtype; a bad key or shape names the file and the key.
std::vector<Tensor> read_vector(const Graph& g, const std::vector<int>& params, const std::string& file) {
    const Json j = read_json_file(file);
    if (!j.is_object())
        throw InputError(fmt::format("{}: expected an object {{\"parameter\": nested array, ...}}, got {}", file,
                                     json_brief(j)));
    std::string names;
    for (int id : params) names += (names.empty() ? "" : ", ") + g.node(id).name;
    for (const auto& [key, value] : j.items()) {
        const int id = g.find(key);
        if (id < 0 || g.node(id).kind != NodeKind::parameter)
            throw InputError(fmt::format("{}: {}: '{}' is not a parameter of the model (parameters: {})", file,
                                         json_path("", key), key, names));
    }
    std::vector<Tensor> v;
    for (int id : params) {
        const Node& p = g.node(id);
        const Dims dims = to_dims(p.shape);
        if (!j.contains(p.name)) {
            v.emplace_back(g.dtype(), dims);
            continue;
        }
        const std::string at = fmt::format("{}: {}", file, json_path("", p.name));
        Tensor t = tensor_from_json(j.at(p.name), at);
        if (t.dims() != dims)
            throw InputError(fmt::format("{}: has shape {}, but parameter '{}' is {}", at, format_dims(t.dims()),
                                         p.name, format_dims(dims)));
        v.push_back(t.to(g.dtype()));
    }
    return v;
}

}  // namespace

void add_hvp(CLI::App& app) {
    auto o = std::make_shared<HvpOptions>();
    auto* cmd = app.add_subcommand("hvp", "The Hessian of the loss (with respect to the parameters) times a vector V, "
                                          "exact: the gradient of (gradient · V), the gradient written as nodes");
    cmd->add_option("MODEL", o->model, "model JSON file")->required();
    add_point_options(*cmd, o->point);
    cmd->add_option("--vector", o->vector,
                    "V.json: {\"parameter\": nested array shaped like it, ...}; a parameter left out is zero")
        ->required();
    cmd->add_flag("--json", o->json, "print {\"loss\": x, \"hvp\": {\"parameter\": nested array, ...}}");
    cmd->callback([o] {
        Model m = load(o->model);
        set_point(m, o->point);
        HessianGraph h(m.graph);
        std::vector<Tensor> v = read_vector(m.graph, h.wrt(), o->vector);
        std::vector<Tensor> hv = v;
        std::vector<const Tensor*> in;
        std::vector<Tensor*> out;
        for (std::size_t k = 0; k < v.size(); ++k) {
            in.push_back(&v[k]);
            out.push_back(&hv[k]);
        }
        h.set_point(m.graph);
        const double loss = h.hvp(in, out);
        if (o->json) {
            Json products = Json::object();
            for (std::size_t k = 0; k < hv.size(); ++k) products[m.graph.node(h.wrt()[k]).name] = tensor_to_json(hv[k]);
            std::cout << Json{{"loss", number_json(loss)}, {"hvp", products}}.dump(2) << "\n";
            return;
        }
        fmt::print("loss {} = {:.10g}\n", m.graph.node(m.graph.loss()).name, loss);
        for (std::size_t k = 0; k < hv.size(); ++k) {
            const Node& p = m.graph.node(h.wrt()[k]);
            fmt::print("\n(H·v)[{}] {}\n  {}\n", p.name, format_dims(hv[k].dims()), format_tensor(hv[k]));
        }
    });
}

}  // namespace chainrule::cli
