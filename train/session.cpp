#include "train/session.hpp"

#include <algorithm>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fmt/format.h>

#include "core/error.hpp"
#include "cpu/threads.hpp"
#include "data/kind.hpp"
#include "train/checkpoint.hpp"

namespace chainrule {
namespace {

namespace fs = std::filesystem;

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

}  // namespace

Session::Session(Model& m, const TrainingSpec& spec, const data::Dataset& ds, const TrainOptions& opt,
                 Communicator& comm)
    : m_(m), g_(m.graph), spec_(spec), ds_(ds), opt_(opt), comm_(comm), params_(m.graph.parameters()) {
    print_ = !comm.root() ? [](const std::string&) {}
             : opt.print  ? opt.print
                          : [](const std::string& s) { fmt::print("{}\n", s); };
    run_together(comm_, [&] { prepare(); });
    if (comm_.size() > 1) agree();
    run_together(comm_, [&] { prepare_state(); });
    // Older checkpoints and plain runs have no "shards": they resume as before.
    if (shards_ > 1) settings_["shards"] = shards_;
    if (comm_.size() > 1) share_state();
    // A fresh schedule counts epochs from the resume point.
    schedule_origin_ = resumed_ && opt_.fresh_optimizer ? start_epoch_ : 0;
    saver_.emplace(*run_dir_, opt_.save_every_seconds, spec_.epochs);
    if (resumed_checkpoint_) saver_->resumed_from(resumed_file_, start_epoch_);
    every_ = spec_.print_every > 0 ? spec_.print_every : std::max<std::int64_t>(1, spec_.epochs / 20);
    make_parts();
}

void Session::prepare() {
    if (g_.loss() < 0) throw InputError(fmt::format("{}: outputs: the model has no \"loss\" output to train", m_.path));
    if (ds_.train.count == 0) throw InputError(fmt::format("{}: the training split is empty", spec_.data.where));
    set_threads(opt_.threads);
    batches_ = plan_batches(ds_.train.count, spec_.batch_size, spec_.batches_per_epoch);
    if (spec_.batches_per_epoch > 0 && batches_.full_batch)
        throw InputError(fmt::format("{}: {} steps per epoch, but the batch size {} is at least the {} training rows, so "
                                     "every step would be the whole split in file order (full batch), one per epoch; "
                                     "leave it out or take a smaller batch",
                                     opt_.batches_per_epoch ? std::string("--batches-per-epoch")
                                                            : m_.path + ": training.batches_per_epoch",
                                     spec_.batches_per_epoch, spec_.batch_size, ds_.train.count));
    sampler_.emplace(spec_.sampling, batches_, spec_.seed);
    settings_ = run_settings(spec_, batches_, *sampler_);
    // Token ids mean nothing without their characters: the run keeps them, and a resume
    // on data that makes other ones is refused with the other settings.
    if (data::data_kind(ds_.kind, spec_.data.where).vocabulary) settings_["vocabulary"] = ds_.class_names;
    asked_shards_ = opt_.shards ? *opt_.shards : spec_.shards;  // 0: not asked
    shards_ = asked_shards_ ? asked_shards_ : comm_.size();
}

void Session::prepare_state() {
    if (!comm_.root()) {
        run_dir_.emplace("");
        return;
    }
    if (!opt_.resume.empty())
        resume();
    else
        g_.init_parameters(spec_.seed);
    // Sized by the parameters, so made once they have their values.
    optimizer_.emplace(spec_.optimizer, g_, params_);  // buffers allocated here, once
    if (resumed_ && !opt_.fresh_optimizer) optimizer_->restore_state(*resumed_checkpoint_, resumed_file_);
    check_shards();
    if (resumed_)
        print_(fmt::format("resuming from {} after epoch {}{}", resumed_file_, start_epoch_,
                           opt_.fresh_optimizer ? " (optimizer and schedule start afresh)" : ""));
    // A run resumed in its own folder continues it; any other run there is replaced only when asked.
    std::error_code ec;
    const fs::path resumed_dir = fs::path(resumed_file_).parent_path();
    const bool continues = resumed_ && fs::equivalent(resumed_dir.empty() ? "." : resumed_dir, opt_.out_dir, ec);
    run_dir_.emplace(opt_.out_dir, opt_.overwrite || continues);
}

void Session::resume() {
    Json must_match = settings_;
    if (opt_.fresh_optimizer)
        for (const char* k : {"lr", "optimizer", "lr_schedule", "clip_grad_norm"}) must_match.erase(k);
    Resumed r = resume_run(opt_.resume, g_, must_match);
    // A checkpoint without "shards" was trained in one piece.
    const std::int64_t trained =
        r.checkpoint.info.contains("shards") ? get_int(r.checkpoint.info["shards"], r.file + ": info.shards") : 1;
    if (asked_shards_ && asked_shards_ != trained)
        throw InputError(fmt::format("{}: the checkpoint was trained with {} shard{} but this run asks for {}; "
                                     "resume without --shards, which takes the checkpoint's",
                                     r.file, trained, trained == 1 ? "" : "s", asked_shards_));
    shards_ = trained;
    sampler_->set_state(r.checkpoint.rng);
    history_ = std::move(r.history);
    start_epoch_ = r.checkpoint.epoch;
    resumed_file_ = r.file;
    resumed_checkpoint_ = std::move(r.checkpoint);
    resumed_ = true;
}

void Session::check_shards() const {
    if (shards_ % comm_.size() != 0) {
        std::string possible;
        for (std::int64_t k = 1; k <= shards_; ++k)
            if (shards_ % k == 0) possible += (possible.empty() ? "" : ", ") + std::to_string(k);
        throw InputError(fmt::format("{} shards cannot be shared by {} processes: the number of processes must "
                                     "divide the number of shards{} (possible: {})",
                                     shards_, comm_.size(), resumed_ ? " the checkpoint was trained with" : "",
                                     possible));
    }
    if (shards_ > batches_.batch)
        throw InputError(fmt::format("{} shards are more than the {} rows of a batch: use fewer shards{}", shards_,
                                     batches_.batch, comm_.size() > 1 ? " and processes" : ""));
    if (shards_ > 1) check_shardable(g_, m_.path);
}

namespace {

std::uint64_t fnv1a(const void* p, std::size_t n, std::uint64_t h = 14695981039346656037ull) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

template <class T>
std::uint64_t hash_of(const std::vector<T>& v, std::uint64_t h = 14695981039346656037ull) {
    return fnv1a(v.data(), v.size() * sizeof(T), h);
}

std::string hex(std::uint64_t h) { return fmt::format("{:016x}", h); }

// A split as the processes must share it: its size and a hash of every value and label.
Json split_print(const data::Split& s) {
    std::uint64_t h = hash_of(s.values, hash_of(s.tokens, hash_of(s.labels, hash_of(s.pixels))));
    return {{"rows", s.count}, {"values per row", s.features}, {"contents", hex(h)}};
}

}  // namespace

// Everything that must be the same on every process for K processes to train one model:
// the model (each part of its JSON, hashed), the training spec after the flags, the data.
Json Session::agreement() const {
    Json a;
    const Json model = model_to_json(m_, false);
    for (const auto& [key, value] : model.items()) {
        const std::string text = value.dump();
        a["the model's " + key] = key == "name" || key == "dtype" ? value : Json(hex(fnv1a(text.data(), text.size())));
    }
    a["the training settings"] = settings_;
    a["epochs"] = spec_.epochs;
    a["shards asked for"] = asked_shards_;
    a["sparse_inputs"] = spec_.sparse_inputs;
    a["resuming"] = !opt_.resume.empty();
    a["--fresh-optimizer"] = opt_.fresh_optimizer;
    a["the training split"] = split_print(ds_.train);
    a["the test split"] = split_print(ds_.test);
    a["the data's classes"] = ds_.classes;
    return a;
}

// Rank 0's agreement against each process's own: a process whose model, flags or data differ
// would wait for ever at a collective the others never reach, or train another run.
void Session::agree() {
    const Json mine = agreement();
    std::string root = mine.dump();
    comm_.broadcast(root);
    run_together(comm_, [&] {
        const Json theirs = Json::parse(root);
        for (const auto& [key, value] : mine.items()) {
            if (theirs.contains(key) && theirs[key] == value) continue;
            throw InputError(fmt::format("process {} of {} differs from process 0 in {}: {} here ({}), {} on process 0; "
                                         "every process of a run must be given the same model, flags and data "
                                         "(docs/distributed.md)",
                                         comm_.rank(), comm_.size(), key, value.dump(), m_.path,
                                         theirs.contains(key) ? theirs[key].dump() : "nothing"));
        }
    });
}

void Session::share_state() {
    std::string state;
    if (comm_.root()) {
        Checkpoint c = make_checkpoint(g_, start_epoch_, sampler_->state(), {{"shards", shards_}, {"resumed", resumed_}});
        optimizer_->save_state(c);
        state = encode_checkpoint(c);
    }
    comm_.broadcast(state);
    // A process that cannot take the state says so with the others, rather than leaving
    // them at the first step's collective.
    run_together(comm_, [&] { adopt_state(state); });
    if (shards_ > 1) settings_["shards"] = shards_;
}

void Session::adopt_state(const std::string& state) {
    if (comm_.root()) return;
    const std::string from = "the state broadcast by rank 0";
    Checkpoint c = decode_checkpoint(state, from);
    restore_parameters(g_, c, from);
    optimizer_.emplace(spec_.optimizer, g_, params_);
    optimizer_->restore_state(c, from);
    sampler_->set_state(c.rng);
    start_epoch_ = c.epoch;
    shards_ = c.info["shards"].get<std::int64_t>();
    resumed_ = c.info["resumed"].get<bool>();
}

void Session::make_parts() {
    // chainrule's own helpers: as many threads as OpenBLAS uses, the caller included.
    if (int threads = thread_count(opt_.threads); threads > 1) workers_.emplace(threads);
    Workers* workers = workers_ ? &*workers_ : nullptr;
    feeder_.emplace(g_, spec_, ds_, workers);
    // Training reads only outputs and parameters' gradients: fused chains may skip writing
    // their intermediates, except when --detect-anomaly inspects every node.
    Pass pass = opt_.detect_anomaly ? Pass::exact() : Pass::training();
    pass.workers = workers;
    pass.sparse_inputs = feeder_->sparse_inputs();
    plan_ = g_.plan(pass);
    const GradientParts parts{g_, plan_, *feeder_, ds_.train, opt_.detect_anomaly, opt_.stop};
    if (shards_ > 1) {
        auto sharded = std::make_unique<ShardedGradient>(comm_, parts, params_, shards_, opt_.stop_signal);
        sharded_ = sharded.get();
        gradient_ = std::move(sharded);
    } else {
        gradient_ = std::make_unique<LocalGradient>(parts);
    }
    if (find_optimizer(spec_.optimizer.name)->second_order) {
        // Its trial points and Hessian-vector products are of the whole batch in one process.
        if (shards_ > 1)
            throw InputError(fmt::format("{}: training.optimizer: {} is not sharded: train it in one piece "
                                         "(without --shards and with one process)",
                                         m_.path, spec_.optimizer.name));
        curvature_.emplace(g_, plan_);
    }
    progress_.emplace(opt_.progress, start_epoch_, spec_.epochs, batches_.steps);
}

double Session::learning_rate(std::int64_t epoch) const {
    return scheduled_lr(spec_.lr_schedule, spec_.optimizer.lr, epoch - 1 - schedule_origin_);
}

std::uint64_t Session::step_seed(std::int64_t epoch, std::int64_t step) const {
    return noise_seed(noise_seed(spec_.seed, std::uint64_t(epoch)), std::uint64_t(step));
}

void Session::check(double loss, const StepPlace& at) {
    if (std::isfinite(loss)) return;
    saver_->flush(m_);
    throw RunError(fmt::format("the loss became {} {}; {}. Try a smaller --lr, or --detect-anomaly to find the "
                               "first node that went wrong",
                               std::isnan(loss) ? "NaN" : "Inf", at.text(), saver_->last_good()));
}

void Session::update(double lr) {
    if (spec_.clip_grad_norm > 0) optimizer_->clip_gradients(g_, params_, spec_.clip_grad_norm);
    if (!curvature_) return optimizer_->step(g_, params_, lr);
    curvature_->new_batch();
    optimizer_->step(g_, params_, lr, &*curvature_);
}

void Session::report(const StepPlace& at, double loss, std::size_t rows) {
    progress_->step_done(at.epoch, at.step, loss, rows);
    if (gradient_->stop_requested())
        throw interrupted(fmt::format("during epoch {}, after step {} of {}", at.epoch, at.step + 1, at.steps));
}

void Session::end_epoch(std::int64_t epoch, double lr, double loss_sum, double seconds) {
    EpochMetrics em{epoch, loss_sum / double(batches_.steps), 0, -1, seconds, lr};
    EvalResult ev = evaluate(m_, spec_, ds_, ds_.test.count ? ds_.test : ds_.train, false,
                             opt_.detect_anomaly ? std::optional(fmt::format("at epoch {}", epoch)) : std::nullopt,
                             workers_ ? &*workers_ : nullptr);
    em.test_loss = ev.loss;
    em.test_accuracy = ev.accuracy;
    history_.push_back(em);
    progress_->epoch_done(print_, em, every_);
    check_parameters_finite(g_, params_, epoch, *saver_);
    if (run_dir_->enabled()) {
        Checkpoint c = make_checkpoint(g_, epoch, sampler_->state(), settings_);
        optimizer_->save_state(c);
        save([&] { saver_->epoch_done(m_, std::move(c), history_); });
    }
    if (gradient_->stop_requested()) throw interrupted(fmt::format("after epoch {}", epoch));
}

Interrupted Session::interrupted(const std::string& when) {
    saver_->flush(m_);
    Interrupted e(fmt::format("stopped {}; {}{}", when, saver_->last_good(),
                              run_dir_->enabled() ? fmt::format("; continue with --resume {}", run_dir_->dir())
                                                  : std::string(comm_.root() ? " (no --out)" : "")));
    e.signal = sharded_ ? sharded_->agreed_stop() : 0;
    return e;
}

// Rank 0 alone writes: when that fails, the others are already waiting for the next step.
void Session::save(const std::function<void()>& write) {
    if (comm_.size() == 1) return write();
    try {
        write();
    } catch (...) {
        const std::exception_ptr e = std::current_exception();
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            fmt::print(stderr, "error: {}\n", x.what());
        }
        comm_.abort(exit_code(e));
    }
}

void Session::finish() {
    if (sharded_ && !sharded_->cost().empty()) print_(sharded_->cost());
    // A resumed run with nothing left to train still leaves its folder whole: a kill
    // between the checkpoint and the other files is repaired here.
    if (resumed_checkpoint_ && start_epoch_ >= spec_.epochs && run_dir_->enabled()) {
        save([&] {
            saver_->epoch_done(m_, std::move(*resumed_checkpoint_), history_);
            saver_->flush(m_);
        });
    }
}

void Session::fail(std::exception_ptr e) {
    // A failure the sharded gradient's collective already agreed on: the failing process
    // rethrows its error, the others their PeerFailed, each after saving the last whole epoch.
    const bool agreed = sharded_ && sharded_->failure_agreed();
    if (agreed) saver_->flush(m_);
    if (comm_.size() == 1 || agreed) std::rethrow_exception(e);
    int code = exit_code(e);
    try {
        std::rethrow_exception(e);
    } catch (const Interrupted& i) {
        code = 128 + (i.signal > 0 ? i.signal : SIGINT);
    } catch (...) {
    }
    auto [rank, agreed_code] = comm_.agree_failure(code);
    if (rank == comm_.rank()) std::rethrow_exception(e);
    throw PeerFailed{agreed_code};
}

}  // namespace chainrule
