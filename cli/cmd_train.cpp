// `chainrule train` and `chainrule eval`.
#include <filesystem>
#include <optional>
#include <fmt/format.h>
#include <unistd.h>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "cli/eval_view.hpp"
#include "cli/progress.hpp"
#include "cli/stop_signal.hpp"
#include "train/checkpoint.hpp"
#include "train/distributed.hpp"
#include "core/error.hpp"
#include "core/print.hpp"
#include "cpu/blas_kernel.hpp"
#include "train/model_file.hpp"
#include "train/trainer.hpp"

namespace chainrule::cli {
namespace {

// The model file with its training block, its warnings on stderr.
ModelFile load_for_training(const std::string& path, bool warn = true) {
    ModelFile f = load_model_file(path);
    if (warn)
        for (const auto& w : f.model.warnings) fmt::print(stderr, "warning: {}\n", w);
    f.training_spec();  // train and eval need the block
    return f;
}

void print_parameters(const Graph& g) {
    for (int id : g.parameters()) fmt::print("  {} = {}\n", g.node(id).name, format_tensor(g.node(id).value, 24, 8));
}

// The run's first lines: the data, the epochs, the optimizer and its schedule, the batches,
// the BLAS kernels, the model's doc and the number of processes.
void print_run_header(const Model& m, const TrainingSpec& spec, const data::Dataset& ds, int processes,
                      const std::string& out_dir) {
    fmt::print("{}: {} training and {} test samples; {} epochs, {}{}{}, {}; {}\n", m.path, ds.train.count,
               ds.test.count, spec.epochs, describe(spec.optimizer),
               spec.lr_schedule.kind == ScheduleSpec::Kind::constant
                   ? std::string()
                   : ", lr schedule " + describe(spec.lr_schedule) + " per epoch",
               spec.clip_grad_norm > 0 ? fmt::format(", gradients clipped to norm {}", spec.clip_grad_norm)
                                       : "",
               spec.batch_size == 0 || spec.batch_size >= ds.train.count
                   ? std::string("full batch")
                   : fmt::format("batches of {} ({})", spec.batch_size, spec.sampling.name()),
               blas_kernel_description());
    // The model's own words first: a run that looks broken (a plateau) often says why there.
    if (!m.graph.doc.empty()) fmt::print("  {}\n", m.graph.doc);
    if (processes > 1) fmt::print("  {} processes (mpirun)\n", processes);
    // Said before the first epoch, while a run meant to be kept can still be stopped.
    if (out_dir.empty()) fmt::print("  no --out: nothing of this run will be saved (add --out DIR to keep it)\n");
}

// The run's last lines: small models' parameters, the final test figures, the run directory.
void print_run_end(const Graph& g, const std::vector<EpochMetrics>& history, const std::string& out_dir) {
    if (g.parameter_count() <= 64) {
        fmt::print("parameters after epoch {}:\n", history.empty() ? 0 : history.back().epoch);
        print_parameters(g);
    }
    if (!history.empty() && history.back().test_accuracy >= 0)
        fmt::print("final test accuracy {:.4f}  test loss {:.6f}\n", history.back().test_accuracy,
                   history.back().test_loss);
    fmt::print("{}\n", out_dir.empty() ? std::string("nothing saved (no --out)") : "run directory: " + out_dir);
}

}  // namespace

void add_train(CLI::App& app) {
    struct Options {
        std::string model;
        TrainOptions t;
        bool no_progress = false;
        std::string sparse_inputs;  // --sparse-inputs: "" keeps the model's setting
    };
    auto o = std::make_shared<Options>();
    auto* cmd = app.add_subcommand("train", "Train a model with its JSON training block (flags override it)");
    cmd->add_option("MODEL", o->model, "model JSON file with a \"training\" block")->required();
    cmd->add_option("--epochs", o->t.epochs, "number of epochs (the total when resuming)")
        ->check(whole_in(1, kMaxEpochs));
    cmd->add_option("--lr", o->t.lr,
                    "the optimizer's learning rate (replaces its lr; with an lr_schedule it is the base the "
                    "schedule scales, which advances once per epoch)")
        ->check(finite_at_least(0, true));
    cmd->add_option("--batch", o->t.batch_size, "rows per step (default: the model's; none = full batch)")
        ->check(whole_in(1, kMaxElements));
    cmd->add_option("--batches-per-epoch", o->t.batches_per_epoch, "steps per epoch")->check(whole_in(1, kMaxElements));
    cmd->add_option("--seed", o->t.seed, "seed for initialisation and sampling")->check(unsigned_integer());
    auto* out = cmd->add_option("--out", o->t.out_dir,
                                "run directory: checkpoint.ckpt, metrics.csv, curves.svg and model.json, saved after "
                                "an epoch when --save-every seconds have passed, after the last epoch and on Ctrl-C or "
                                "SIGTERM (without --out nothing is saved)");
    cmd->add_flag("--overwrite", o->t.overwrite,
                  "let --out replace the run a folder already holds (without it that is refused, unless resuming "
                  "that run with --resume)");
    cmd->add_option("--save-every", o->t.save_every_seconds,
                    "seconds between saves of the run directory (default 5; 0: after every epoch)")
        ->check(finite_at_least(0, false));
    cmd->add_option("--resume", o->t.resume, "continue a run from its directory (or a checkpoint file)");
    cmd->add_option("--print-every", o->t.print_every, "print a line every N epochs (default: about 20 lines)")
        ->check(whole_in(1, kMaxEpochs));
    cmd->add_option("--threads", o->t.threads,
                    "threads for the GEMMs, convolutions and the batch's conversion; the same results for any "
                    "count (default: OpenBLAS's, the cores or OPENBLAS_NUM_THREADS)")
        ->check(whole_in(1, 256));
    cmd->add_option("--shards", o->t.shards,
                    "cut each batch into S parts, each with its own forward and backward, summed in a fixed order, so "
                    "that `mpirun -np K` gives the same weights bit for bit for every K dividing S (default: the "
                    "model's shards, else the number of processes; on --resume the checkpoint's; docs/distributed.md)")
        ->check(whole_in(1, 4096));
    cmd->add_flag("--detect-anomaly", o->t.detect_anomaly,
                  "check every node's value and gradient each step and name the first that is NaN/Inf");
    cmd->add_flag("--no-progress", o->no_progress, "no live progress line even on a terminal");
    cmd->add_option("--sparse-inputs", o->sparse_inputs,
                    "auto: an image batch with under 30% of its pixels nonzero feeds the first matmul as its "
                    "nonzeros; off: always the dense GEMM (default: the model's training.sparse_inputs, else auto)")
        ->check(CLI::IsMember({"auto", "off"}));
    cmd->add_flag("--fresh-optimizer", o->t.fresh_optimizer,
                  "with --resume: keep the trained parameters but start the optimizer state (moments, step "
                  "count) and the schedule afresh, so the optimizer, lr or schedule may differ from the checkpoint's");
    cmd->callback([o, out] {
        if (out->count() > 0 && o->t.out_dir.empty())
            throw InputError("--out: an empty path; give the run directory, or leave --out out to save nothing");
        // Under mpirun: one of K processes; rank 0 alone prints and writes (docs/distributed.md).
        Communicator comm{Communicator::FromLauncher{}};
        const bool root = comm.root();
        o->t.comm = &comm;
        StopOnSignal stop;  // from the start: Ctrl-C while the data loads stops cleanly too
        o->t.stop = &stop.requested();
        o->t.stop_signal = [&stop] { return stop.signal(); };
        std::optional<ModelFile> f;
        TrainingSpec spec;
        data::Dataset ds;
        run_together(comm, [&] {
            f.emplace(load_for_training(o->model, root));
            spec = with_overrides(f->training_spec(), o->t);
            if (!o->sparse_inputs.empty()) spec.sparse_inputs = o->sparse_inputs == "auto";
            ds = data::load_dataset(spec.data);
        });
        Model& m = f->model;
        // Resuming without --out continues in the checkpoint's own folder ("." for a bare file name).
        if (o->t.out_dir.empty() && !o->t.resume.empty()) {
            namespace fs = std::filesystem;
            fs::path parent = fs::path(o->t.resume).parent_path();
            o->t.out_dir = fs::is_directory(o->t.resume) ? o->t.resume : parent.empty() ? "." : parent.string();
        }
        ProgressLine line;
        if (root && !o->no_progress && isatty(STDERR_FILENO))
            o->t.progress = [&line](const TrainProgress& p) { line.show(p); };
        o->t.print = [&line](const std::string& text) {
            line.clear();
            fmt::print("{}\n", text);
        };
        if (root) print_run_header(m, spec, ds, comm.size(), o->t.out_dir);
        std::fflush(stdout);
        std::vector<EpochMetrics> history;
        try {
            history = train(m, spec, ds, o->t);
        } catch (const Interrupted& e) {
            line.clear();
            fmt::print(stderr, "{}\n", e.what());
            throw SignalExit(stop.signal() ? stop.signal() : e.signal);
        }
        line.clear();
        if (root) print_run_end(m.graph, history, o->t.out_dir);
    });
}

void add_eval(CLI::App& app) {
    struct Options {
        std::string model, weights;
        bool predictions = false, wrong = false, json = false, train_split = false, detect_anomaly = false;
    };
    auto o = std::make_shared<Options>();
    auto* cmd = app.add_subcommand("eval", "Evaluate trained weights on the model's test split");
    cmd->add_option("MODEL", o->model, "model JSON file with a \"training\" block (for its data)")->required();
    cmd->add_option("--weights", o->weights, "checkpoint file or run directory")->required();
    cmd->add_flag("--predictions", o->predictions,
                  "print every row: its label, the predicted class, right or wrong, the outputs");
    cmd->add_flag("--wrong", o->wrong, "like --predictions, but only the rows predicted wrong");
    cmd->add_flag("--json", o->json, "print one JSON document: loss, accuracy, confusion matrix (and the rows)");
    cmd->add_flag("--train-split", o->train_split, "evaluate the training split instead of the test split");
    cmd->add_flag("--detect-anomaly", o->detect_anomaly,
                  "check every node's value and name the first that is NaN or Inf (exit 1)");
    cmd->callback([o] {
        ModelFile f = load_for_training(o->model);
        Model& m = f.model;
        std::string file = checkpoint_path(o->weights);
        Checkpoint c = load_checkpoint(file);
        restore_parameters(m.graph, c, file);
        TrainingSpec spec = f.training_spec();
        spec.data = data_for_run(spec.data, c, file);
        data::Dataset ds = data::load_dataset(spec.data);
        const data::Split& split = o->train_split ? ds.train : ds.test;
        const bool rows = o->predictions || o->wrong;
        EvalResult r = evaluate(m, spec, ds, split, rows,
                                o->detect_anomaly ? std::optional(fmt::format("in the epoch {} weights", c.epoch))
                                                  : std::nullopt);
        const Confusion confusion = confusion_matrix(r, ds, split);
        const char* split_name = o->train_split ? "training" : "test";
        if (o->json) {
            Json j = {{"weights", file}, {"epoch", c.epoch}, {"split", split_name}};
            j.update(eval_json(r, confusion, split, rows, o->wrong));
            fmt::print("{}\n", j.dump(1));
            return;
        }
        fmt::print("{}: epoch {} weights on the {} split ({} samples)\n", file, c.epoch, split_name, r.count);
        if (rows && !r.predictions.empty()) {
            std::int64_t shown = 0;
            for (std::int64_t i = 0; i < r.count; ++i) {
                if (o->wrong && !r.predicted.empty() && r.predicted[std::size_t(i)] == split.labels[std::size_t(i)])
                    continue;
                fmt::print("  {}\n", prediction_line(r, confusion, split, i));
                ++shown;
            }
            if (o->wrong) fmt::print("{} of {} rows predicted wrong\n", shown, r.count);
        }
        fmt::print("{} loss {:.6f}\n", split_name, r.loss);
        if (r.accuracy >= 0) fmt::print("{} accuracy {:.4f}\n", split_name, r.accuracy);
        if (!confusion.names.empty() && confusion.names.size() <= kMaxPrintedClasses)
            fmt::print("{}", format_confusion(confusion));
    });
}

}  // namespace chainrule::cli
