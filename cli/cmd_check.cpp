#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "train/model_file.hpp"

namespace chainrule::cli {

void add_check(CLI::App& app) {
    auto* cmd = app.add_subcommand("check", "Validate a model and print its nodes with their shapes");
    auto path = std::make_shared<std::string>();
    cmd->add_option("MODEL", *path, "model JSON file")->required();
    cmd->callback([path] {
        // The training block too: check refuses what train would, without reading data.
        ModelFile f = load_model_file(*path);
        for (const auto& w : f.model.warnings) fmt::print(stderr, "warning: {}\n", w);
        const Model& m = f.model;
        const Graph& g = m.graph;
        fmt::print("{}: model '{}' ({}), {} nodes, {} parameter{} with {} entries\n", m.path, g.name,
                   dtype_name(g.dtype()), g.size(), g.parameters().size(), g.parameters().size() == 1 ? "" : "s",
                   g.parameter_count());
        if (!g.doc.empty()) fmt::print("  {}\n", g.doc);
        std::size_t width = 4;
        for (const Node& n : g.nodes()) width = std::max(width, n.name.size());
        for (const Node& n : g.nodes()) {
            std::string what = n.kind == NodeKind::op ? n.op->name : kind_name(n.kind);
            std::string ins;
            for (int i : n.inputs) ins += (ins.empty() ? "" : ", ") + g.node(i).name;
            fmt::print("  {:<{}}  {:<10} {:<12} {}\n", n.name, width, what, format_shape(n.shape),
                       ins.empty() ? "" : "(" + ins + ")");
        }
        for (const auto& [role, id] : g.outputs()) fmt::print("  output {}: {}\n", role, g.node(id).name);
        if (f.training)
            fmt::print("  training: {} data, {} epochs, {}{}, {}\n", f.training->data.kind, f.training->epochs,
                       describe(f.training->optimizer),
                       f.training->lr_schedule.kind == ScheduleSpec::Kind::constant
                           ? std::string()
                           : ", lr schedule " + describe(f.training->lr_schedule),
                       f.training->batch_size ? fmt::format("batches of {} ({})", f.training->batch_size,
                                                            f.training->sampling.name())
                                              : std::string("full batch"));
        fmt::print("ok\n");
    });
}

}  // namespace chainrule::cli
