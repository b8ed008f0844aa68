#include <fmt/format.h>

#include "cli/commands.hpp"
#include "ops/op.hpp"

namespace chainrule::cli {

void add_ops(CLI::App& app) {
    auto* cmd = app.add_subcommand("ops", "List the registered ops with their inputs, attrs and formulas");
    cmd->callback([] {
        for (const Op* op : all_ops()) {
            fmt::print("{}({}{}){}\n", op->name, fmt::join(op->inputs, ", "),
                       op->attrs.empty() ? "" : ", " + op->attrs.dump(), op->summary.empty() ? "" : "  — " + op->summary);
            fmt::print("    {}\n", op->formula);
        }
    });
}

}  // namespace chainrule::cli
