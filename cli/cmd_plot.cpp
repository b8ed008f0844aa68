// `chainrule plot RUN`: redraws a run's curves.svg from its checkpoint's history, with the
// plot options training does not take (a log-scale loss, a zoomed accuracy axis).
#include <filesystem>
#include <fmt/format.h>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "train/run_dir.hpp"

namespace chainrule::cli {
namespace {

namespace fs = std::filesystem;

struct PlotCommand {
    std::string run, out;
    PlotOptions options;
};

}  // namespace

void add_plot(CLI::App& app) {
    auto o = std::make_shared<PlotCommand>();
    auto* cmd = app.add_subcommand("plot", "Redraw a run's curves.svg (loss and test accuracy per epoch) from the "
                                           "history in its checkpoint");
    cmd->add_option("RUN", o->run, "run directory (chainrule train --out) or a checkpoint file")->required();
    cmd->add_flag("--log-loss", o->options.log_loss, "loss on a log scale (ticks at powers of ten)");
    cmd->add_flag("--zoom-accuracy", o->options.zoom_accuracy,
                  "accuracy axis spans the measured range rounded out, instead of 0 to 1");
    cmd->add_option("--out", o->out, "SVG file to write (default: curves.svg next to the checkpoint)");
    cmd->callback([o] {
        std::error_code ec;
        if (!fs::exists(o->run, ec))
            throw InputError(fmt::format("{}: no such run directory or checkpoint file", o->run));
        const std::string ckpt = checkpoint_path(o->run);
        if (!fs::exists(ckpt, ec))
            throw InputError(fmt::format("{}: no checkpoint here; is {} a run directory written by chainrule train "
                                         "--out?",
                                         ckpt, o->run));
        const RunHistory run = load_run_history(o->run);
        const std::string out = o->out.empty() ? (fs::path(ckpt).parent_path() / "curves.svg").string() : o->out;
        write_file_atomic(out, curves_svg(run.history, run.model, o->options));
        fmt::print("wrote {} ({} epochs of {})\n", out, run.history.size(), run.file);
    });
}

}  // namespace chainrule::cli
