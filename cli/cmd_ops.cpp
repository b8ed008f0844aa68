#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "ops/op.hpp"
#include "ops/opcheck.hpp"
#include "ops/vjp.hpp"

namespace chainrule::cli {
namespace {

struct OpsOptions {
    std::vector<std::string> names;
    bool check = false, verbose = false;
};

std::vector<const Op*> selected(const std::vector<std::string>& names) {
    if (names.empty()) return all_ops();
    std::vector<const Op*> ops;
    for (const auto& name : names) {
        const Op* op = find_op(name);
        if (!op) {
            std::string guess = closest_op_name(name);
            throw InputError(fmt::format("unknown op '{}'{}; `chainrule ops` lists the registered ops (a plugin's "
                                         "only with --plugin)",
                                         name, guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess)));
        }
        ops.push_back(op);
    }
    return ops;
}

// The op table's checks (ops/opcheck.hpp) on each op; exit code 1 when any fails.
void check_ops(const OpsOptions& o) {
    std::size_t total = 0, failed = 0;
    auto ops = selected(o.names);
    for (const Op* op : ops) {
        auto checks = check_op(*op);
        std::size_t bad = 0;
        for (const auto& c : checks) bad += !c.passed;
        total += checks.size();
        failed += bad;
        fmt::print("{}: {}\n", op->name,
                   bad ? fmt::format("{} of {} checks FAILED", bad, checks.size())
                       : fmt::format("{} checks passed", checks.size()));
        for (const auto& c : checks)
            if (!c.passed || o.verbose) fmt::print("  {}  {}\n        {}\n", c.passed ? "ok  " : "FAIL", c.what, c.detail);
        std::fflush(stdout);
    }
    if (failed)
        throw RunError(fmt::format("{} of {} checks failed on {} op{} (docs/writing-ops.md, section 3)", failed, total,
                                   ops.size(), ops.size() == 1 ? "" : "s"));
    fmt::print("all {} checks passed on {} op{}\n", total, ops.size(), ops.size() == 1 ? "" : "s");
}

// Whether the op's backward exists as a graph of ops (ops/vjp.hpp), and whether that graph
// can be differentiated again.
std::string second_order(const Op& op) {
    if (!op.vjp) return "vjp: none (first order only: a `grad` node cannot pass through it)";
    const auto missing = vjp_ops_without_vjp(op);
    if (missing.empty()) return "vjp: as ops; twice differentiable";
    return fmt::format("vjp: as ops, using {} (no vjp): not twice differentiable", fmt::join(missing, ", "));
}

}  // namespace

void add_ops(CLI::App& app) {
    auto o = std::make_shared<OpsOptions>();
    auto* cmd = app.add_subcommand("ops", "List the registered ops with their inputs, attrs and formulas, or check them");
    cmd->add_option("NAME", o->names, "only these ops (default: all)");
    cmd->add_flag("--check", o->check,
                  "run the op table's checks on each op's samples: shape rule, float64 gradient against central "
                  "differences, backward overwrites, float32 against float64, bad samples rejected");
    cmd->add_flag("--verbose", o->verbose, "with --check: list every check, not only the failed ones");
    cmd->callback([o] {
        if (o->check) return check_ops(*o);
        for (const Op* op : selected(o->names)) {
            fmt::print("{}({}{}){}\n", op->name, input_list(*op),
                       op->attrs.empty() ? "" : ", " + op->attrs.dump(), op->summary.empty() ? "" : "  — " + op->summary);
            fmt::print("    {}\n", op->formula);
            fmt::print("    {}\n", second_order(*op));
        }
    });
}

}  // namespace chainrule::cli
