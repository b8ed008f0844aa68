#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "graph/memory.hpp"
#include "train/model_file.hpp"
#include "train/optimizer.hpp"

namespace chainrule::cli {
namespace {

// The bytes of the optimizer's state: each kept buffer is shaped like every parameter.
std::int64_t optimizer_state_bytes(const OptimizerSpec& spec, std::int64_t parameter_bytes) {
    const OptimizerEntry* entry = find_optimizer(spec.name);
    if (!entry) return 0;
    std::int64_t buffers = 0;
    for (const StateBuffer& b : entry->state) buffers += !b.kept || b.kept(spec);
    return buffers * parameter_bytes;
}

// What a training step (or, without a training block, a forward and backward pass) holds in
// memory, from the shapes alone: values, gradients, the ops' scratch and the optimizer's state.
void print_memory(const ModelFile& f) {
    const Graph& g = f.model.graph;
    const std::int64_t batch = f.training && f.training->batch_size > 0 ? f.training->batch_size : 1;
    const MemoryUse m = memory_use(g, f.training ? Pass::training() : Pass::exact(), batch);
    const std::int64_t state = f.training ? optimizer_state_bytes(f.training->optimizer, m.parameters) : 0;
    std::string largest;
    for (const auto& b : m.largest)
        largest += fmt::format("{}{} {} {}", largest.empty() ? "" : ", ", b.node, b.what, format_bytes(b.bytes));
    fmt::print("  memory {}: {} (values {} of which parameters {}, gradients {}, workspaces {}{}); largest: {}\n",
               f.training && f.training->batch_size > 0
                   ? fmt::format("for a training step of {} rows", batch)
                   : fmt::format("for {} with every symbol 1 (one row of the batch)",
                                 f.training ? "a training step" : "a forward and backward pass"),
               format_bytes(m.total() + state), format_bytes(m.values), format_bytes(m.parameters),
               format_bytes(m.gradients), format_bytes(m.workspaces),
               f.training ? fmt::format(", optimizer state {}", format_bytes(state)) : std::string(), largest);
}

}  // namespace

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
        if (g.loss() >= 0) print_memory(f);
        fmt::print("ok\n");
    });
}

}  // namespace chainrule::cli
