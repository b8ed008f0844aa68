#include "train/trainer.hpp"

#include <chrono>
#include <cmath>
#include <fmt/format.h>
#include <limits>
#include <numeric>
#include <optional>

#include "core/error.hpp"
#include "train/anomaly.hpp"
#include "train/feeder.hpp"
#include "train/session.hpp"

namespace chainrule {
namespace {

// One epoch: the training step in five lines, then the epoch's evaluation and save.
void run_epoch(Session& run, std::int64_t epoch) {
    const auto start = std::chrono::steady_clock::now();
    const double lr = run.learning_rate(epoch);
    run.sampler().start_epoch();
    double loss_sum = 0;
    for (std::int64_t step = 0; step < run.steps(); ++step) {
        const StepPlace at{epoch, step, run.steps()};
        std::span<const std::int64_t> rows = run.sampler().batch(step);  // the batch
        std::span<const std::int64_t> next =
            step + 1 < run.steps() ? run.sampler().ahead(step + 1) : std::span<const std::int64_t>{};
        const double loss = run.gradient().compute(rows, next, run.step_seed(epoch, step), at);  // forward + backward
        run.check(loss, at);                                                               // a NaN or Inf ends the run
        run.update(lr);                                                                    // clip and step
        run.report(at, loss, rows.size());                                                 // progress, stop
        loss_sum += loss;
    }
    run.end_epoch(epoch, lr, loss_sum, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

}  // namespace

TrainingSpec with_overrides(TrainingSpec s, const TrainOptions& o) {
    // The block was checked when it was read (parse_training): what is refused here is a
    // flag, named as the flag.
    if (o.epochs && (*o.epochs < 1 || *o.epochs > kMaxEpochs))
        throw InputError(fmt::format("--epochs must be from 1 to {}, got {}", kMaxEpochs, *o.epochs));
    if (o.batch_size && (*o.batch_size < 1 || *o.batch_size > kMaxElements))
        throw InputError(fmt::format("--batch must be from 1 to {}, got {}", kMaxElements, *o.batch_size));
    if (o.batches_per_epoch && (*o.batches_per_epoch < 1 || *o.batches_per_epoch > kMaxElements))
        throw InputError(fmt::format("--batches-per-epoch must be from 1 to {}, got {}", kMaxElements,
                                     *o.batches_per_epoch));
    if (o.lr && (!(*o.lr > 0) || !std::isfinite(*o.lr)))
        throw InputError(fmt::format("--lr must be a positive number, got {}", *o.lr));
    if (o.epochs) s.epochs = *o.epochs;
    if (o.batch_size) s.batch_size = *o.batch_size;
    if (o.batches_per_epoch) s.batches_per_epoch = *o.batches_per_epoch;
    if (o.lr) s.optimizer.lr = *o.lr;  // the base rate the schedule scales: a step schedule with --lr 0.2 starts at 0.2
    if (o.seed) s.seed = *o.seed;
    if (o.print_every > 0) s.print_every = o.print_every;
    if (o.batches_per_epoch && s.batch_size == 0)
        throw InputError(fmt::format("--batches-per-epoch {} needs a batch size (--batch, or training.batch_size): "
                                     "without one every step is the whole training split, one step per epoch",
                                     *o.batches_per_epoch));
    return s;
}

std::int64_t predicted_class(const Tensor& p, std::int64_t row, std::int64_t width) {
    if (width == 1) return p.at(row) >= 0.5 ? 1 : 0;
    std::int64_t guess = 0;
    for (std::int64_t c = 1; c < width; ++c)
        if (p.at(row * width + c) > p.at(row * width + guess)) guess = c;
    return guess;
}

namespace {

// What the loss leaves out of its mean: the label its op ignores (cross_entropy's
// ignore_index) and the node holding the labels, or nothing.
struct IgnoredLabels {
    std::optional<double> label;
    int labels_node = -1;
};

IgnoredLabels ignored_labels(const Graph& g) {
    const int loss = g.loss();
    if (loss < 0) return {};
    const Node& n = g.node(loss);
    if (!n.op || !n.op->ignored_label || n.op->labels_input < 0 || std::size_t(n.op->labels_input) >= n.inputs.size())
        return {};
    return {n.op->ignored_label(n.attrs), n.inputs[std::size_t(n.op->labels_input)]};
}

// The positions the loss of the chunk just run averaged over: its labels that are not the
// ignored one (a word's own predictions, not its padding); the rows when nothing is ignored.
std::int64_t kept_positions(const Graph& g, const IgnoredLabels& ignored, std::int64_t rows) {
    if (!ignored.label) return rows;
    const Tensor& labels = g.node(ignored.labels_node).value;
    std::int64_t kept = 0;
    for (std::int64_t i = 0; i < labels.numel(); ++i) kept += labels.at(i) != *ignored.label;
    return kept;
}

// Scores one chunk's predictions against the split's labels, rows start..start+n-1. The
// prediction of a row is [C] (one class per row) or [..., C] with one class per position,
// as many positions as the data has labels per sample (a sequence's next characters); a
// position whose label is the ignored one is not counted. Per-row guesses are kept in
// `predicted` when a row has one position (eval's listing and confusion matrix read them).
void score_chunk(const Tensor& p, const data::Split& split, std::int64_t start, std::int64_t n,
                 const std::optional<double>& ignored, EvalResult& r, std::int64_t& correct, std::int64_t& counted) {
    const std::int64_t width = p.numel() / n;
    const std::int64_t positions = p.rank() >= 3 ? width / p.dims().back() : 1;
    const std::int64_t classes = width / positions;
    if (std::int64_t(split.labels.size()) != split.count * positions) {
        counted = -1;  // the data has not one label per predicted position: no accuracy
        return;
    }
    for (std::int64_t i = 0; i < n; ++i) {
        for (std::int64_t t = 0; t < positions; ++t) {
            const std::int64_t at = i * positions + t;
            const std::int64_t guess = predicted_class(p, at, classes);
            if (positions == 1) r.predicted.push_back(std::int32_t(guess));
            const std::int32_t label = split.labels[std::size_t(start * positions + at)];
            if (ignored && double(label) == *ignored) continue;
            ++counted;
            correct += guess == label;
        }
    }
}

}  // namespace

EvalResult evaluate(Model& m, const TrainingSpec& spec, const data::Dataset& ds, const data::Split& split,
                    bool keep_predictions, const std::optional<std::string>& anomaly_at, Workers* workers) {
    Graph& g = m.graph;
    Feeder feeder(g, spec, ds);
    Pass pass = anomaly_at ? Pass::exact() : Pass::training();  // exact: every node's value, to be checked
    pass.workers = workers;
    pass.sparse_inputs = feeder.sparse_inputs();
    Plan plan = g.plan(pass);
    EvalResult r;
    r.count = split.count;
    int pred = g.prediction(), loss = g.loss();
    const IgnoredLabels ignored = ignored_labels(g);
    if (pred >= 0) r.predicted.reserve(std::size_t(split.count));
    constexpr std::int64_t kChunk = 1000;
    std::vector<std::int64_t> rows;
    double loss_sum = 0;
    std::int64_t loss_weight = 0, correct = 0, counted = 0;
    for (std::int64_t start = 0; start < split.count; start += kChunk) {
        std::int64_t n = std::min(kChunk, split.count - start);
        rows.resize(std::size_t(n));
        std::iota(rows.begin(), rows.end(), start);
        feeder.feed(split, rows);
        g.forward(plan);
        if (anomaly_at)
            check_values_finite(g, fmt::format("{}, evaluating rows {} to {}", *anomaly_at, start, start + n - 1));
        // The loss is a mean over rows (mse, cross-entropy), or over the kept positions when
        // it ignores some: weight each chunk by what it averaged over.
        if (loss >= 0) {
            const std::int64_t kept = kept_positions(g, ignored, n);
            if (kept > 0) loss_sum += g.node(loss).value.at(0) * double(kept);
            loss_weight += kept;
        }
        if (pred < 0) continue;
        const Tensor& p = g.node(pred).value;
        std::int64_t width = p.numel() / n;
        if (keep_predictions) {
            if (r.predictions.empty()) r.predictions = Tensor(Dtype::f64, {split.count, width});
            for (std::int64_t i = 0; i < n * width; ++i) r.predictions.set(start * width + i, p.at(i));
        }
        if (counted >= 0) score_chunk(p, split, start, n, ignored.label, r, correct, counted);
    }
    r.loss = loss_weight ? loss_sum / double(loss_weight) : NAN;
    // NaN's sign bit is noise from the arithmetic; "-nan" in a log or metrics.csv is not.
    if (std::isnan(r.loss)) r.loss = std::numeric_limits<double>::quiet_NaN();
    if (pred >= 0 && counted > 0) r.accuracy = double(correct) / double(counted);
    return r;
}

std::vector<EpochMetrics> train(Model& m, const TrainingSpec& spec, const data::Dataset& ds, const TrainOptions& opt) {
    Communicator one_process;
    Session run(m, spec, ds, opt, opt.comm ? *opt.comm : one_process);  // setup and resume
    try {
        for (std::int64_t epoch = run.first_epoch(); epoch <= spec.epochs; ++epoch) run_epoch(run, epoch);
    } catch (...) {
        run.fail(std::current_exception());
    }
    run.finish();
    return run.history();
}

}  // namespace chainrule
