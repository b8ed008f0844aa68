#include "train/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <fmt/format.h>
#include <limits>
#include <memory>
#include <numeric>
#include <optional>

#include "core/error.hpp"
#include "train/anomaly.hpp"
#include "train/checkpoint.hpp"
#include "train/feeder.hpp"
#include "train/optimizer.hpp"
#include "train/sampler.hpp"
#include "cpu/threads.hpp"
#include "cpu/workers.hpp"

namespace chainrule {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// What a checkpoint must share with the run that resumes it: the same numbers come out
// only with the same seed, learning rate, batches and sampling.
Json run_settings(const TrainingSpec& spec, const BatchPlan& plan, const Sampler& sampler) {
    Json s = {{"seed", spec.seed},
              {"lr", spec.optimizer.lr},
              {"batch", plan.batch},
              {"steps_per_epoch", plan.steps},
              {"sampling", sampler.name()}};
    // Optimizers other than plain SGD and schedules leave their trace; plain SGD writes
    // nothing new, so checkpoints from before optimizers resume as they did.
    OptimizerSpec plain;
    plain.lr = spec.optimizer.lr;
    if (describe(spec.optimizer) != describe(plain)) s["optimizer"] = describe(spec.optimizer);
    if (spec.lr_schedule.kind != ScheduleSpec::Kind::constant) s["lr_schedule"] = describe(spec.lr_schedule);
    if (spec.clip_grad_norm > 0) s["clip_grad_norm"] = spec.clip_grad_norm;
    return s;
}

// Reports to the progress callback at most every 0.1 s. Reading the clock is all a step
// pays when nobody listens.
class ProgressReporter {
public:
    ProgressReporter(const TrainOptions& opt, std::int64_t start_epoch, std::int64_t epochs, std::int64_t steps)
        : report_(opt.progress), start_epoch_(start_epoch), epochs_(epochs), steps_(steps) {}
    void step_done(std::int64_t epoch, std::int64_t step, double loss, std::size_t rows) {
        samples_ += std::int64_t(rows);
        if (!report_ || seconds_since(last_) <= 0.1) return;
        last_ = Clock::now();
        double elapsed = seconds_since(start_);
        double done = double(epoch - 1 - start_epoch_) + double(step + 1) / double(steps_);
        report_({epoch, epochs_, step + 1, steps_, loss, double(samples_) / elapsed,
                 elapsed / done * (double(epochs_ - start_epoch_) - done)});
    }

private:
    const std::function<void(const TrainProgress&)>& report_;
    std::int64_t start_epoch_, epochs_, steps_, samples_ = 0;
    Clock::time_point start_ = Clock::now(), last_ = Clock::now();
};

// The run directory's saves: due by time or at the last epoch; in between, the last whole
// epoch's state is kept in memory, so that a stop (a signal, a NaN) can still save it.
class Saver {
public:
    Saver(const RunDir& dir, double every_seconds, std::int64_t last_epoch)
        : dir_(dir), every_(every_seconds), last_epoch_(last_epoch) {}
    // The checkpoint that a run resumed from: the last good one until this run saves.
    void resumed_from(const std::string& file, std::int64_t epoch) { good_ = {file, epoch}; }
    void epoch_done(const Model& m, Checkpoint c, const std::vector<EpochMetrics>& history) {
        if (!dir_.enabled()) return;
        const bool due = every_ <= 0 || c.epoch == last_epoch_ || seconds_since(last_save_) >= every_;
        pending_.emplace(std::move(c));
        pending_history_ = history;
        if (due) flush(m);
    }
    // Writes the kept epoch, if any. The graph's parameters are set back to it first: a stop
    // mid-epoch (or a NaN) has moved them on.
    void flush(Model& m) {
        if (!pending_) return;
        restore_parameters(m.graph, *pending_, dir_.checkpoint_file());
        flush(static_cast<const Model&>(m));
    }
    // "the last good checkpoint is DIR/checkpoint.ckpt (epoch 7)", or that there is none.
    std::string last_good() const {
        return good_ ? fmt::format("the last good checkpoint is {} (epoch {})", good_->first, good_->second)
                     : "no checkpoint was written";
    }

private:
    void flush(const Model& m) {
        std::int64_t epoch = pending_->epoch;
        dir_.write_epoch(m, std::move(*pending_), pending_history_);
        pending_.reset();
        good_ = {dir_.checkpoint_file(), epoch};
        last_save_ = Clock::now();
    }
    const RunDir& dir_;
    double every_;
    std::int64_t last_epoch_;
    std::optional<Checkpoint> pending_;
    std::vector<EpochMetrics> pending_history_;
    std::optional<std::pair<std::string, std::int64_t>> good_;
    Clock::time_point last_save_ = Clock::now();
};

// A NaN or Inf loss ends the run, naming the checkpoint that is still good.
RunError loss_error(double loss, const std::string& when, const Saver& saver) {
    return RunError(fmt::format("the loss became {} {}; {}. Try a smaller --lr, or --detect-anomaly to find the "
                                "first node that went wrong",
                                std::isnan(loss) ? "NaN" : "Inf", when, saver.last_good()));
}

// The loss is computed before the step, so a step that sends the weights to Inf shows only
// in the parameters: they are checked before an epoch is kept.
void check_parameters_finite(const Graph& g, const std::vector<int>& params, std::int64_t epoch, const Saver& saver) {
    for (int id : params) {
        const Tensor& v = g.node(id).value;
        std::int64_t bad = 0;
        for (std::int64_t i = 0; i < v.numel(); ++i) bad += !std::isfinite(v.at(i));
        if (bad)
            throw RunError(fmt::format("parameter '{}' became NaN or Inf in {} of its {} entries during epoch {}, "
                                       "though the loss was finite; {}. Try a smaller --lr, or clip_grad_norm",
                                       g.node(id).name, bad, v.numel(), epoch, saver.last_good()));
    }
}

// An epoch's time in a unit that shows it: fast epochs are not "(0.000 s)".
std::string format_seconds(double s) {
    if (s >= 1) return fmt::format("{:.2f} s", s);
    if (s >= 1e-3) return fmt::format("{:.1f} ms", s * 1e3);
    return fmt::format("{:.0f} µs", s * 1e6);
}

// The epoch's line (every `every` epochs, the first and the last) and, once per run, a
// warning when the test loss is not finite while training goes on.
void report_epoch(const std::function<void(const std::string&)>& print, const EpochMetrics& em,
                  std::int64_t epochs, bool print_line, bool& warned_test_loss) {
    if (print_line)
        print(fmt::format("epoch {:>{}}/{}  train loss {:.6f}  test loss {:.6f}{}  ({})", em.epoch,
                          std::to_string(epochs).size(), epochs, em.train_loss, em.test_loss,
                          em.test_accuracy < 0 ? "" : fmt::format("  test accuracy {:.4f}", em.test_accuracy),
                          format_seconds(em.seconds)));
    if (!std::isfinite(em.test_loss) && !warned_test_loss) {
        warned_test_loss = true;
        print(fmt::format("warning: the test loss is {} at epoch {} while the training loss is finite: the "
                          "model gives a NaN or Inf on some test rows; `--detect-anomaly` names the node",
                          em.test_loss, em.epoch));
    }
}

}  // namespace

TrainingSpec with_overrides(TrainingSpec s, const TrainOptions& o) {
    if (o.epochs) s.epochs = *o.epochs;
    if (o.batch_size) s.batch_size = *o.batch_size;
    if (o.batches_per_epoch) s.batches_per_epoch = *o.batches_per_epoch;
    if (o.lr) s.optimizer.lr = *o.lr;
    if (o.seed) s.seed = *o.seed;
    if (o.print_every > 0) s.print_every = o.print_every;
    if (s.epochs < 1 || s.epochs > kMaxEpochs)
        throw InputError(fmt::format("--epochs must be from 1 to {}", kMaxEpochs));
    if (s.batch_size < 0) throw InputError("--batch must be at least 1");
    if (!(s.optimizer.lr > 0) || !std::isfinite(s.optimizer.lr)) throw InputError("--lr must be a positive number");
    // The base rate the schedule scales: a step schedule with --lr 0.2 starts at 0.2.
    return s;
}

std::int64_t predicted_class(const Tensor& p, std::int64_t row, std::int64_t width) {
    if (width == 1) return p.at(row) >= 0.5 ? 1 : 0;
    std::int64_t guess = 0;
    for (std::int64_t c = 1; c < width; ++c)
        if (p.at(row * width + c) > p.at(row * width + guess)) guess = c;
    return guess;
}

EvalResult evaluate(Model& m, const TrainingSpec& spec, const data::Dataset& ds, const data::Split& split,
                    bool keep_predictions, const std::optional<std::string>& anomaly_at, Workers* workers) {
    Graph& g = m.graph;
    Pass pass = anomaly_at ? Pass::exact() : Pass::training();  // exact: every node's value, to be checked
    pass.workers = workers;
    EvalResult r;
    r.count = split.count;
    int pred = g.prediction(), loss = g.loss();
    if (pred >= 0) r.predicted.reserve(std::size_t(split.count));
    constexpr std::int64_t kChunk = 1000;
    std::vector<std::int64_t> rows;
    double loss_sum = 0;
    std::int64_t correct = 0;
    for (std::int64_t start = 0; start < split.count; start += kChunk) {
        std::int64_t n = std::min(kChunk, split.count - start);
        rows.resize(std::size_t(n));
        std::iota(rows.begin(), rows.end(), start);
        Feeder(g, spec, ds).feed(split, rows);
        g.forward(pass);
        if (anomaly_at)
            check_values_finite(g, fmt::format("{}, evaluating rows {} to {}", *anomaly_at, start, start + n - 1));
        // mse and cross-entropy are means over rows: weight each chunk by its rows.
        if (loss >= 0) loss_sum += g.node(loss).value.at(0) * double(n);
        if (pred < 0) continue;
        const Tensor& p = g.node(pred).value;
        std::int64_t width = p.numel() / n;
        if (keep_predictions) {
            if (r.predictions.empty()) r.predictions = Tensor(Dtype::f64, {split.count, width});
            for (std::int64_t i = 0; i < n * width; ++i) r.predictions.set(start * width + i, p.at(i));
        }
        for (std::int64_t i = 0; i < n; ++i) {
            std::int64_t guess = predicted_class(p, i, width);
            r.predicted.push_back(std::int32_t(guess));
            correct += guess == split.labels[std::size_t(start + i)];
        }
    }
    r.loss = split.count ? loss_sum / double(split.count) : NAN;
    // NaN's sign bit is noise from the arithmetic; "-nan" in a log or metrics.csv is not.
    if (std::isnan(r.loss)) r.loss = std::numeric_limits<double>::quiet_NaN();
    if (pred >= 0 && split.count) r.accuracy = double(correct) / double(split.count);
    return r;
}

std::vector<EpochMetrics> train(Model& m, const TrainingSpec& spec, const data::Dataset& ds, const TrainOptions& opt) {
    Graph& g = m.graph;
    Communicator one_process;
    Communicator& comm = opt.comm ? *opt.comm : one_process;
    auto print = !comm.root() ? [](const std::string&) {}
                 : opt.print  ? opt.print
                              : [](const std::string& s) { fmt::print("{}\n", s); };

    // Set up on every process; the state (parameters, optimizer, sampler) is rank 0's, read
    // or initialised there alone. A failure anywhere ends every process, reported once.
    BatchPlan plan;
    std::optional<Sampler> sampler;
    Json settings;
    const std::vector<int> params = g.parameters();
    std::vector<EpochMetrics> history;
    std::int64_t start_epoch = 0, shards = 1;
    bool resumed = false;
    std::optional<Checkpoint> resumed_checkpoint;  // rank 0's
    std::string resumed_file;
    std::optional<RunDir> run_dir;
    std::optional<Optimizer> optimizer;
    run_together(comm, [&] {
        if (g.loss() < 0) throw InputError(fmt::format("{}: outputs: the model has no \"loss\" output to train", m.path));
        if (ds.train.count == 0) throw InputError(fmt::format("{}: the training split is empty", spec.data.where));
        set_threads(opt.threads);
        plan = plan_batches(ds.train.count, spec.batch_size, spec.batches_per_epoch);
        sampler.emplace(spec.sampling, plan, spec.seed);
        settings = run_settings(spec, plan, *sampler);
        const std::int64_t asked_shards = opt.shards ? *opt.shards : spec.shards;  // 0: not asked
        shards = asked_shards ? asked_shards : comm.size();
        if (!comm.root()) {
            run_dir.emplace("");
            return;
        }
        if (!opt.resume.empty()) {
            Json must_match = settings;
            if (opt.fresh_optimizer)
                for (const char* k : {"lr", "optimizer", "lr_schedule", "clip_grad_norm"}) must_match.erase(k);
            Resumed r = resume_run(opt.resume, g, must_match);
            // A checkpoint without "shards" was trained in one piece.
            const std::int64_t trained =
                r.checkpoint.info.contains("shards") ? get_int(r.checkpoint.info["shards"], r.file + ": info.shards") : 1;
            if (asked_shards && asked_shards != trained)
                throw InputError(fmt::format("{}: the checkpoint was trained with {} shard{} but this run asks for {}; "
                                             "resume without --shards, which takes the checkpoint's",
                                             r.file, trained, trained == 1 ? "" : "s", asked_shards));
            shards = trained;
            sampler->set_state(r.checkpoint.rng);
            history = std::move(r.history);
            start_epoch = r.checkpoint.epoch;
            resumed_file = r.file;
            resumed_checkpoint = std::move(r.checkpoint);
            resumed = true;
        } else {
            g.init_parameters(spec.seed);
        }
        // Sized by the parameters, so made once they have their values.
        optimizer.emplace(spec.optimizer, g, params);  // buffers allocated here, once
        if (resumed && !opt.fresh_optimizer) optimizer->restore_state(*resumed_checkpoint, resumed_file);
        if (shards % comm.size() != 0) {
            std::string possible;
            for (std::int64_t k = 1; k <= shards; ++k)
                if (shards % k == 0) possible += (possible.empty() ? "" : ", ") + std::to_string(k);
            throw InputError(fmt::format("{} shards cannot be shared by {} processes: the number of processes must "
                                         "divide the number of shards{} (possible: {})",
                                         shards, comm.size(), resumed ? " the checkpoint was trained with" : "",
                                         possible));
        }
        if (shards > plan.batch)
            throw InputError(fmt::format("{} shards are more than the {} rows of a batch: use fewer shards{}", shards,
                                         plan.batch, comm.size() > 1 ? " and processes" : ""));
        if (shards > 1) check_shardable(g, m.path);
        if (resumed)
            print(fmt::format("resuming from {} after epoch {}{}", resumed_file, start_epoch,
                              opt.fresh_optimizer ? " (optimizer and schedule start afresh)" : ""));
        run_dir.emplace(opt.out_dir);
    });
    // Older checkpoints and plain runs have no "shards": they resume as before.
    if (shards > 1) settings["shards"] = shards;
    if (comm.size() > 1) {
        std::string state;
        if (comm.root()) {
            Checkpoint c = make_checkpoint(g, start_epoch, sampler->state(), {{"shards", shards}, {"resumed", resumed}});
            optimizer->save_state(c);
            state = encode_checkpoint(c);
        }
        comm.broadcast(state);
        if (!comm.root()) {
            const std::string from = "the state broadcast by rank 0";
            Checkpoint c = decode_checkpoint(state, from);
            restore_parameters(g, c, from);
            optimizer.emplace(spec.optimizer, g, params);
            optimizer->restore_state(c, from);
            sampler->set_state(c.rng);
            start_epoch = c.epoch;
            shards = c.info["shards"].get<std::int64_t>();
            resumed = c.info["resumed"].get<bool>();
            if (shards > 1) settings["shards"] = shards;
        }
    }
    // A fresh schedule counts epochs from the resume point.
    const std::int64_t schedule_origin = resumed && opt.fresh_optimizer ? start_epoch : 0;
    Saver saver(*run_dir, opt.save_every_seconds, spec.epochs);
    if (resumed_checkpoint) saver.resumed_from(resumed_file, start_epoch);
    // Rank 0 alone writes: when that fails, the others are already waiting for the next step.
    auto saving = [&](const std::function<void()>& save) {
        if (comm.size() == 1) return save();
        try {
            save();
        } catch (...) {
            const std::exception_ptr e = std::current_exception();
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& x) {
                fmt::print(stderr, "error: {}\n", x.what());
            }
            comm.abort(exit_code(e));
        }
    };
    std::optional<ShardedGradient> sharded;
    if (shards > 1) sharded.emplace(comm, g, params, shards);
    int agreed_stop = 0;  // with shards: the stop every process agreed on at the last step
    auto stop_requested = [&] { return sharded ? agreed_stop > 0 : opt.stop && opt.stop->load(); };
    auto interrupted = [&](const std::string& when) {
        saver.flush(m);
        Interrupted e(fmt::format("stopped {}; {}{}", when, saver.last_good(),
                                  run_dir->enabled() ? fmt::format("; continue with --resume {}", run_dir->dir())
                                                     : std::string(comm.root() ? " (no --out)" : "")));
        e.signal = agreed_stop;
        return e;
    };
    const std::int64_t every = spec.print_every > 0 ? spec.print_every : std::max<std::int64_t>(1, spec.epochs / 20);

    // Training reads only outputs and parameters' gradients: fused chains may skip writing
    // their intermediates, except when --detect-anomaly inspects every node.
    Pass pass = opt.detect_anomaly ? Pass::exact() : Pass::training();
    // chainrule's own helpers: as many threads as OpenBLAS uses, the caller included.
    std::optional<Workers> workers;
    if (int threads = thread_count(opt.threads); threads > 1) workers.emplace(threads);
    pass.workers = workers ? &*workers : nullptr;
    Feeder feeder(g, spec, ds, workers ? &*workers : nullptr);
    ProgressReporter progress(opt, start_epoch, spec.epochs, plan.steps);
    bool warned_test_loss = false;
    bool agreed = false;  // a failure already agreed on by every process

    try {
    for (std::int64_t epoch = start_epoch + 1; epoch <= spec.epochs; ++epoch) {
        auto t0 = Clock::now();
        const double lr = scheduled_lr(spec.lr_schedule, spec.optimizer.lr, epoch - 1 - schedule_origin);
        sampler->start_epoch();
        double loss_sum = 0;
        for (std::int64_t step = 0; step < plan.steps; ++step) {
            // Formatted only when needed: a step allocates nothing.
            auto when = [&] { return fmt::format("at epoch {}, step {} of {}", epoch, step + 1, plan.steps); };
            std::span<const std::int64_t> rows = sampler->batch(step);
            // Dropout's masks: a pure function of (seed, epoch, step), so a resumed run draws
            // the same ones without any state in the checkpoint.
            Pass step_pass = pass;
            step_pass.noise = noise_seed(noise_seed(spec.seed, std::uint64_t(epoch)), std::uint64_t(step));
            double loss = 0;
            if (sharded) {
                // This process's shards, each its own forward and backward; shard s's masks
                // come from noise_seed(step seed, s), whichever process computes it.
                std::exception_ptr failure;
                try {
                    for (std::int64_t s = sharded->first(); s < sharded->last(); ++s) {
                        std::span<const std::int64_t> part = sharded->rows(rows, s);
                        if (part.empty()) continue;
                        feeder.feed(ds.train, part);
                        Pass shard_pass = step_pass;
                        shard_pass.noise = noise_seed(*step_pass.noise, std::uint64_t(s));
                        g.forward(shard_pass);
                        if (opt.detect_anomaly) check_values_finite(g, fmt::format("{}, shard {}", when(), s));
                        g.backward(shard_pass);
                        if (opt.detect_anomaly) check_gradients_finite(g, fmt::format("{}, shard {}", when(), s));
                        sharded->keep(s, g.node(g.loss()).value.at(0));
                    }
                } catch (...) {
                    failure = std::current_exception();
                }
                const int signal = opt.stop_signal ? opt.stop_signal() : 0;
                const int status = failure ? 1000 + exit_code(failure)
                                   : opt.stop && opt.stop->load() ? std::clamp(signal, 1, 999)
                                                                  : 0;
                const ShardedGradient::Combined c = sharded->combine(std::int64_t(rows.size()), status);
                if (c.failed_rank >= 0) {
                    agreed = true;
                    saver.flush(m);
                    if (c.failed_rank == comm.rank()) std::rethrow_exception(failure);
                    throw PeerFailed{c.failed_code};
                }
                loss = c.loss;
                agreed_stop = c.stop_signal;
            } else {
                feeder.feed(ds.train, rows);
                g.forward(step_pass);
                // The next batch's pixels come into cache while backward starts on one thread.
                if (step + 1 < plan.steps) feeder.prefetch(ds.train, sampler->ahead(step + 1));
                if (opt.detect_anomaly) check_values_finite(g, when());
                loss = g.node(g.loss()).value.at(0);
            }
            if (!std::isfinite(loss)) {
                saver.flush(m);
                throw loss_error(loss, when(), saver);
            }
            if (!sharded) {
                g.backward(step_pass);
                if (opt.detect_anomaly) check_gradients_finite(g, when());
            }
            if (spec.clip_grad_norm > 0) optimizer->clip_gradients(g, params, spec.clip_grad_norm);
            optimizer->step(g, params, lr);
            loss_sum += loss;
            progress.step_done(epoch, step, loss, rows.size());
            if (stop_requested()) throw interrupted(fmt::format("during epoch {}, after step {} of {}", epoch, step + 1, plan.steps));
        }
        EpochMetrics em{epoch, loss_sum / double(plan.steps), 0, -1, seconds_since(t0), lr};
        EvalResult ev = evaluate(m, spec, ds, ds.test.count ? ds.test : ds.train, false,
                                 opt.detect_anomaly ? std::optional(fmt::format("at epoch {}", epoch)) : std::nullopt,
                                 pass.workers);
        em.test_loss = ev.loss;
        em.test_accuracy = ev.accuracy;
        history.push_back(em);
        report_epoch(print, em, spec.epochs, epoch % every == 0 || epoch == spec.epochs || epoch == start_epoch + 1,
                     warned_test_loss);
        check_parameters_finite(g, params, epoch, saver);
        if (run_dir->enabled()) {
            Checkpoint c = make_checkpoint(g, epoch, sampler->state(), settings);
            optimizer->save_state(c);
            saving([&] { saver.epoch_done(m, std::move(c), history); });
        }
        if (stop_requested()) throw interrupted(fmt::format("after epoch {}", epoch));
    }
    } catch (const PeerFailed&) {
        throw;
    } catch (...) {
        if (comm.size() == 1 || agreed) throw;
        // Every process meets the same numbers, so every one has come here with this error
        // (a NaN loss, the agreed stop): rank 0 reports it.
        const std::exception_ptr e = std::current_exception();
        int code = exit_code(e);
        try {
            std::rethrow_exception(e);
        } catch (const Interrupted& i) {
            code = 128 + (i.signal > 0 ? i.signal : SIGINT);
        } catch (...) {
        }
        auto [rank, agreed_code] = comm.agree_failure(code);
        if (rank == comm.rank()) throw;
        throw PeerFailed{agreed_code};
    }
    if (sharded && sharded->combines() > 0)
        print(fmt::format("combining {} shards over {} process{}, per step: {} gathering them (waiting for the slowest "
                          "included), {} summing them",
                          shards, comm.size(), comm.size() == 1 ? "" : "es",
                          format_seconds(sharded->gather_seconds() / double(sharded->combines())),
                          format_seconds(sharded->sum_seconds() / double(sharded->combines()))));
    // A resumed run with nothing left to train still leaves its folder whole: a kill
    // between the checkpoint and the other files is repaired here.
    if (resumed_checkpoint && start_epoch >= spec.epochs && run_dir->enabled()) {
        saving([&] {
            saver.epoch_done(m, std::move(*resumed_checkpoint), history);
            saver.flush(m);
        });
    }
    return history;
}

}  // namespace chainrule
