// `chainrule hessian`: the full Hessian of the loss over listed parameters (graph/hessian.hpp).
#include <fmt/format.h>
#include <iostream>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "core/error.hpp"
#include "graph/hessian.hpp"

namespace chainrule::cli {
namespace {

struct HessianOptions {
    std::string model, params;
    PointOptions point;
    bool json = false;
};

// --params a,b: parameter node ids in the order listed; empty: every parameter.
std::vector<int> listed_parameters(const Graph& g, const std::string& list) {
    std::vector<int> ids;
    if (list.empty()) return ids;
    std::stringstream in(list);
    for (std::string name; std::getline(in, name, ',');) {
        const int id = g.find(name);
        if (id < 0 || g.node(id).kind != NodeKind::parameter)
            throw InputError(fmt::format("--params: '{}' is not a parameter of the model", name));
        for (int seen : ids)
            if (seen == id) throw InputError(fmt::format("--params: '{}' is listed twice", name));
        ids.push_back(id);
    }
    return ids;
}

}  // namespace

void add_hessian(CLI::App& app) {
    auto o = std::make_shared<HessianOptions>();
    auto* cmd = app.add_subcommand("hessian", "The full Hessian of the loss with respect to the parameters, exact (one "
                                              "Hessian-vector product per column); refused above 10^8 entries");
    cmd->add_option("MODEL", o->model, "model JSON file")->required();
    add_point_options(*cmd, o->point);
    cmd->add_option("--params", o->params,
                    "a,b: the parameters, flattened in this order, row-major each (default: all, in model order)");
    cmd->add_flag("--json", o->json, "print {\"params\": [{\"name\", \"shape\"}], \"hessian\": [[...]]}");
    cmd->callback([o] {
        Model m = load(o->model);
        std::vector<int> wanted = listed_parameters(m.graph, o->params);
        std::int64_t n = 0;
        for (int id : wanted.empty() ? m.graph.parameters() : wanted)
            n += checked_numel(to_dims(m.graph.node(id).shape));
        if (n > 0 && n > kMaxHessianEntries / n)
            throw InputError(fmt::format("{}: the Hessian over {} parameter entries would have {} × {} = {:.4g} "
                                         "entries, above the limit of 10^8; list fewer with --params, or use `hvp`",
                                         o->model, n, n, n, double(n) * double(n)));
        set_point(m, o->point);
        HessianGraph h(m.graph, wanted);
        h.set_point(m.graph);
        const Tensor hessian = h.hessian();
        const double loss = h.loss_and_gradient();
        if (o->json) {
            Json params = Json::array();
            for (int id : h.wrt())
                params.push_back({{"name", m.graph.node(id).name}, {"shape", to_dims(m.graph.node(id).shape)}});
            Json rows = Json::array();
            for (std::int64_t i = 0; i < h.size(); ++i) {
                Json row = Json::array();
                for (std::int64_t j = 0; j < h.size(); ++j) row.push_back(number_json(hessian.at(i * h.size() + j)));
                rows.push_back(row);
            }
            std::cout << Json{{"loss", number_json(loss)}, {"params", params}, {"hessian", rows}}.dump(2) << "\n";
            return;
        }
        fmt::print("loss {} = {:.10g}\nHessian {} × {}, rows and columns:", m.graph.node(m.graph.loss()).name, loss,
                   h.size(), h.size());
        for (int id : h.wrt())
            fmt::print(" {} {}", m.graph.node(id).name, format_dims(to_dims(m.graph.node(id).shape)));
        fmt::print("\n");
        for (std::int64_t i = 0; i < h.size(); ++i) {
            std::string line;
            for (std::int64_t j = 0; j < h.size(); ++j) line += fmt::format(" {:>12.6g}", hessian.at(i * h.size() + j));
            fmt::print("{}\n", line);
        }
    });
}

}  // namespace chainrule::cli
