#include "train/trainer.hpp"

#include <algorithm>
#include <cblas.h>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fmt/format.h>
#include <limits>
#include <numeric>
#include <optional>

#include "train/checkpoint.hpp"
#include "core/error.hpp"
#include "train/plot.hpp"
#include "core/print.hpp"
#include "train/workers.hpp"

namespace chainrule {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// A fed input resolved once per run: its node, stream and batch dims (reused, so that
// feeding a batch allocates nothing).
struct Feed {
    int id = -1;
    const std::string* stream = nullptr;
    Dims dims;
};

std::vector<Feed> plan_feeds(const Graph& g, const TrainingSpec& spec, const data::Dataset& ds) {
    std::vector<Feed> feeds;
    for (const auto& [name, stream] : spec.feed) {
        int id = g.id(name);
        const Node& n = g.node(id);
        std::int64_t width = data::stream_width(ds, stream);
        Dims dims;
        if (n.shape.size() == 2)
            dims = {0, width};
        else if (n.shape.size() == 1 && width == 1)
            dims = {0};
        else
            throw InputError(fmt::format("{}: input '{}' is declared {} but stream '{}' has {} column{} per sample",
                                         spec.data.where, name, format_shape(n.shape), stream, width,
                                         width == 1 ? "" : "s"));
        if (n.shape.size() == 2 && !n.shape[1].symbolic() && n.shape[1].size != width)
            throw InputError(fmt::format("{}: input '{}' is declared {} but stream '{}' has {} columns per sample",
                                         spec.data.where, name, format_shape(n.shape), stream, width));
        feeds.push_back({id, &stream, std::move(dims)});
    }
    return feeds;
}

// Fills every fed input with the given rows of a split, each in one pass from the data set.
// The images, by far the most bytes of a batch, are converted on all workers at once:
// that pass is bound by memory, and two cores fetch and write more than one.
void feed_planned(Graph& g, std::vector<Feed>& feeds, const data::Dataset& ds, const data::Split& split,
                  std::span<const std::int64_t> rows, Workers* workers) {
    data::RowSplitter on_workers;  // data::gather uses it for images only
    if (workers && workers->threads() >= 2)
        on_workers = [workers](std::int64_t count, const std::function<void(std::int64_t, std::int64_t)>& part) {
            auto run_part = [&part](std::int64_t b, std::int64_t e) { part(b, e); };
            workers->run(count, run_part);
        };
    for (Feed& f : feeds) {
        f.dims[0] = std::int64_t(rows.size());
        data::gather(ds, split, *f.stream, rows, g.input_buffer(f.id, f.dims), on_workers);
    }
}

void feed_rows(Graph& g, const TrainingSpec& spec, const data::Dataset& ds, const data::Split& split,
               std::span<const std::int64_t> rows) {
    std::vector<Feed> feeds = plan_feeds(g, spec, ds);
    feed_planned(g, feeds, ds, split, rows, nullptr);
}

// "input a [80,1]: min … max … mean …", saying how many values are NaN or Inf.
std::string describe_tensor(const std::string& label, const Tensor& t) {
    TensorStats s = tensor_stats(t);
    std::string head = fmt::format("\n    {} {}: ", label, format_dims(t.dims()));
    if (s.nonfinite == t.numel()) return head + fmt::format("all {} values NaN/Inf", t.numel());
    return head + fmt::format("min {:.6g} max {:.6g} mean {:.6g}{}", s.min, s.max, s.mean,
                              s.nonfinite ? fmt::format(" ({} of {} NaN/Inf)", s.nonfinite, t.numel()) : "");
}

bool all_finite(const Tensor& t) {
    for (std::int64_t i = 0; i < t.numel(); ++i)
        if (!std::isfinite(t.at(i))) return false;
    return true;
}

// After forward: names the first node (in graph order) whose value is not finite, with the
// values of its inputs, which are all finite. After backward: walks from the loss towards
// the parameters and names the first node whose gradient is not finite; its consumers'
// gradients are all finite, so one of their backward passes made it, and those are named
// with their inputs and gradient.
void check_anomaly(const Graph& g, bool grads, const std::string& when) {
    if (!grads) {
        for (const Node& n : g.nodes()) {
            if (n.kind != NodeKind::op || all_finite(n.value)) continue;
            std::string inputs;
            for (int i : n.inputs) inputs += describe_tensor("input " + g.node(i).name, g.node(i).value);
            throw RunError(fmt::format("anomaly {}: the value of node '{}' ({}) is NaN or Inf in {} of its {} "
                                       "elements; its inputs:{}",
                                       when, n.name, n.op->name, tensor_stats(n.value).nonfinite, n.value.numel(),
                                       inputs));
        }
        return;
    }
    for (std::size_t k = g.size(); k-- > 0;) {
        const Node& n = g.node(int(k));
        if (!n.wants_grad || n.grad.empty() || all_finite(n.grad)) continue;
        std::string msg = fmt::format("anomaly {}: the gradient of node '{}' ({}) is NaN or Inf in {} of its {} "
                                      "elements",
                                      when, n.name, n.op ? n.op->name : kind_name(n.kind),
                                      tensor_stats(n.grad).nonfinite, n.grad.numel());
        for (std::size_t c = k + 1; c < g.size(); ++c) {
            const Node& user = g.node(int(c));
            if (std::find(user.inputs.begin(), user.inputs.end(), int(k)) == user.inputs.end()) continue;
            msg += fmt::format("; it came from the backward of '{}' ({}), whose own gradient is finite:", user.name,
                               user.op->name);
            for (int i : user.inputs) msg += describe_tensor("input " + g.node(i).name, g.node(i).value);
            msg += describe_tensor("gradient of " + user.name, user.grad);
        }
        throw RunError(msg);
    }
}

void sgd_step(Graph& g, const std::vector<int>& params, double lr) {
    for (int id : params) {
        Node& n = g.node(id);
        dispatch(n.value.dtype(), [&]<class T>() {
            T* p = n.value.template data<T>();
            const T* d = n.grad.template data<T>();
            const T step = static_cast<T>(lr);
            const std::int64_t count = n.value.numel();
            for (std::int64_t i = 0; i < count; ++i) p[i] -= step * d[i];
        });
    }
}

std::string metrics_csv(const std::vector<EpochMetrics>& h) {
    std::string out = "epoch,train_loss,test_loss,test_accuracy,seconds\n";
    for (const auto& e : h)
        out += fmt::format("{},{:.17g},{:.17g},{},{:.6f}\n", e.epoch, e.train_loss, e.test_loss,
                           e.test_accuracy < 0 ? std::string() : fmt::format("{:.17g}", e.test_accuracy), e.seconds);
    return out;
}

// JSON has no NaN or Inf, and a test loss can be either while training goes on (a few test
// rows outside log's domain): those are kept as the strings "nan", "inf" and "-inf".
Json loss_json(double v) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    return v;
}

double loss_from_json(const Json& j, const std::string& at) {
    if (j.is_string()) {
        const std::string& w = j.get_ref<const std::string&>();
        if (w == "nan") return std::numeric_limits<double>::quiet_NaN();
        if (w == "inf") return std::numeric_limits<double>::infinity();
        if (w == "-inf") return -std::numeric_limits<double>::infinity();
        throw InputError(fmt::format("{}: expected a number, \"nan\", \"inf\" or \"-inf\", got {}", at, json_brief(j)));
    }
    return get_number(j, at);
}

Json history_json(const std::vector<EpochMetrics>& h) {
    Json arr = Json::array();
    for (const auto& e : h)
        arr.push_back({{"epoch", e.epoch},
                       {"train_loss", e.train_loss},
                       {"test_loss", loss_json(e.test_loss)},
                       {"test_accuracy", e.test_accuracy},
                       {"seconds", e.seconds}});
    return arr;
}

std::vector<EpochMetrics> history_from_json(const Json& j, const std::string& file) {
    std::vector<EpochMetrics> h;
    if (!j.is_array()) throw InputError(fmt::format("{}: checkpoint has no metrics history", file));
    for (std::size_t i = 0; i < j.size(); ++i) {
        const Json& e = j[i];
        std::string at = json_path(file + ": info.history", i);
        auto field = [&](const char* key) { return json_path(at, key); };
        h.push_back({get_int(require(e, "epoch", at), field("epoch")),
                     get_number(require(e, "train_loss", at), field("train_loss")),
                     loss_from_json(require(e, "test_loss", at), field("test_loss")),
                     get_number(require(e, "test_accuracy", at), field("test_accuracy")),
                     get_number(require(e, "seconds", at), field("seconds"))});
    }
    return h;
}

std::string fmt_duration(double s) {
    if (!std::isfinite(s) || s < 0) return "?";
    if (s < 60) return fmt::format("{:.0f}s", s);
    if (s < 3600) return fmt::format("{}m{:02d}s", int(s) / 60, int(s) % 60);
    return fmt::format("{}h{:02d}m", int(s) / 3600, (int(s) % 3600) / 60);
}

}  // namespace

void set_threads(int n) {
    if (n > 0) openblas_set_num_threads(n);
}

std::string checkpoint_path(const std::string& p) {
    return fs::is_directory(p) ? (fs::path(p) / "checkpoint.ckpt").string() : p;
}

TrainingSpec with_overrides(TrainingSpec s, const TrainOptions& o) {
    if (o.epochs) s.epochs = *o.epochs;
    if (o.batch_size) s.batch_size = *o.batch_size;
    if (o.batches_per_epoch) s.batches_per_epoch = *o.batches_per_epoch;
    if (o.lr) s.lr = *o.lr;
    if (o.seed) s.seed = *o.seed;
    if (o.print_every > 0) s.print_every = o.print_every;
    if (s.epochs < 1) throw InputError("--epochs must be at least 1");
    if (s.batch_size < 0) throw InputError("--batch must be at least 1");
    if (!(s.lr > 0) || !std::isfinite(s.lr)) throw InputError("--lr must be a positive number");
    return s;
}

EvalResult evaluate(Model& m, const TrainingSpec& spec, const data::Dataset& ds, const data::Split& split,
                    bool keep_predictions, const std::optional<std::string>& anomaly_at) {
    Graph& g = m.graph;
    const Pass pass = anomaly_at ? Pass::exact() : Pass::training();  // exact: every node's value, to be checked
    EvalResult r;
    r.count = split.count;
    int pred = g.prediction(), loss = g.loss();
    constexpr std::int64_t kChunk = 1000;
    std::vector<std::int64_t> rows;
    double loss_sum = 0;
    std::int64_t correct = 0;
    for (std::int64_t start = 0; start < split.count; start += kChunk) {
        std::int64_t n = std::min(kChunk, split.count - start);
        rows.resize(std::size_t(n));
        std::iota(rows.begin(), rows.end(), start);
        feed_rows(g, spec, ds, split, rows);
        g.forward(pass);
        if (anomaly_at)
            check_anomaly(g, false, fmt::format("{}, evaluating rows {} to {}", *anomaly_at, start, start + n - 1));
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
            std::int64_t guess;
            if (width == 1) {
                guess = p.at(i) >= 0.5 ? 1 : 0;
            } else {
                guess = 0;
                for (std::int64_t c = 1; c < width; ++c)
                    if (p.at(i * width + c) > p.at(i * width + guess)) guess = c;
            }
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
    auto print = opt.print ? opt.print : [](const std::string& s) { fmt::print("{}\n", s); };
    bool warned_test_loss = false;
    if (g.loss() < 0) throw InputError(fmt::format("{}: outputs: the model has no \"loss\" output to train", m.path));
    if (ds.train.count == 0) throw InputError(fmt::format("{}: the training split is empty", spec.data.where));
    set_threads(opt.threads);

    const std::int64_t n = ds.train.count;
    const bool full_batch = spec.batch_size == 0 || spec.batch_size >= n;
    const std::int64_t batch = full_batch ? n : spec.batch_size;
    const std::int64_t steps = full_batch ? 1 : spec.batches_per_epoch > 0 ? spec.batches_per_epoch : (n + batch - 1) / batch;
    const std::vector<int> params = g.parameters();

    Json settings = {{"seed", spec.seed},
                     {"lr", spec.lr},
                     {"batch", batch},
                     {"steps_per_epoch", steps},
                     {"sampling", full_batch ? "full_batch" : spec.sampling}};
    Rng rng(spec.seed);
    std::vector<EpochMetrics> history;
    std::int64_t start_epoch = 0;
    if (!opt.resume.empty()) {
        std::string file = checkpoint_path(opt.resume);
        Checkpoint c = load_checkpoint(file);
        restore_parameters(g, c, file);
        for (const char* key : {"seed", "lr", "batch", "steps_per_epoch", "sampling"}) {
            if (!c.info.contains(key) || c.info[key] != settings[key])
                throw InputError(fmt::format("{}: the checkpoint was trained with {} = {} but this run has {}; resume "
                                             "with the same settings",
                                             file, key, c.info.contains(key) ? c.info[key].dump() : "?",
                                             settings[key].dump()));
        }
        rng.set_state(c.rng);
        history = history_from_json(c.info.contains("history") ? c.info["history"] : Json(), file);
        start_epoch = c.epoch;
        print(fmt::format("resuming from {} after epoch {}", file, c.epoch));
    } else {
        g.init_parameters(spec.seed);
    }
    if (!opt.out_dir.empty()) {
        std::error_code ec;
        fs::create_directories(opt.out_dir, ec);
        if (ec) throw RunError(fmt::format("{}: cannot create the run directory: {}", opt.out_dir, ec.message()));
    }
    const std::int64_t every = spec.print_every > 0 ? spec.print_every : std::max<std::int64_t>(1, spec.epochs / 20);
    const std::string last_ckpt = opt.out_dir.empty() ? "" : (fs::path(opt.out_dir) / "checkpoint.ckpt").string();

    std::vector<std::int64_t> rows(static_cast<std::size_t>(batch)), order(static_cast<std::size_t>(n));
    std::iota(rows.begin(), rows.end(), 0);
    // Training reads only outputs and parameters' gradients: fused chains may skip writing
    // their intermediates, except when --detect-anomaly inspects every node.
    const Pass pass = opt.detect_anomaly ? Pass::exact() : Pass::training();
    std::optional<std::vector<Feed>> feeds;
    // chainrule's own helpers: as many threads as OpenBLAS uses, the caller included.
    std::optional<Workers> workers;
    if (int threads = opt.threads > 0 ? opt.threads : openblas_get_num_threads(); threads > 1) workers.emplace(threads);
    auto run_start = Clock::now();
    std::int64_t samples_done = 0;
    for (std::int64_t epoch = start_epoch + 1; epoch <= spec.epochs; ++epoch) {
        auto t0 = Clock::now();
        if (!full_batch && spec.sampling == "shuffle") {
            std::iota(order.begin(), order.end(), 0);
            for (std::int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng.below(std::uint64_t(i + 1))]);
        }
        double loss_sum = 0;
        auto last_progress = Clock::now();
        for (std::int64_t step = 0; step < steps; ++step) {
            if (!full_batch) {
                std::int64_t b = spec.sampling == "shuffle" ? std::min(batch, n - (step * batch) % n) : batch;
                rows.resize(std::size_t(b));
                for (std::int64_t i = 0; i < b; ++i)
                    rows[i] = spec.sampling == "shuffle" ? order[(step * batch) % n + i] : std::int64_t(rng.below(n));
            }
            if (!feeds) feeds = plan_feeds(g, spec, ds);
            feed_planned(g, *feeds, ds, ds.train, rows, workers ? &*workers : nullptr);
            g.forward(pass);
            // Formatted only when needed: a step allocates nothing.
            auto when = [&] { return fmt::format("at epoch {}, step {} of {}", epoch, step + 1, steps); };
            if (opt.detect_anomaly) check_anomaly(g, false, when());
            double loss = g.node(g.loss()).value.at(0);
            if (!std::isfinite(loss))
                throw RunError(fmt::format("the loss became {} {}; {}. Try a smaller --lr, or --detect-anomaly to "
                                           "find the first node that went wrong",
                                           std::isnan(loss) ? "NaN" : "Inf", when(),
                                           last_ckpt.empty() || epoch == 1 ? "no checkpoint was written"
                                               : fmt::format("the last good checkpoint is {} (epoch {})", last_ckpt, epoch - 1)));
            g.backward(pass);
            if (opt.detect_anomaly) check_anomaly(g, true, when());
            sgd_step(g, params, spec.lr);
            loss_sum += loss;
            samples_done += std::int64_t(rows.size());
            if (opt.progress && seconds_since(last_progress) > 0.1) {
                last_progress = Clock::now();
                double elapsed = seconds_since(run_start);
                double done = double(epoch - 1 - start_epoch) + double(step + 1) / double(steps);
                double eta = elapsed / done * (double(spec.epochs - start_epoch) - done);
                int filled = int(20.0 * double(step + 1) / double(steps));
                fmt::print(stderr, "\r\033[Kepoch {}/{} [{}{}] step {}/{}  loss {:.5f}  {:.0f} samples/s  ETA {}",
                           epoch, spec.epochs, std::string(filled, '='), std::string(20 - filled, ' '), step + 1,
                           steps, loss, double(samples_done) / elapsed, fmt_duration(eta));
                std::fflush(stderr);
            }
        }
        EpochMetrics em;
        em.epoch = epoch;
        em.seconds = seconds_since(t0);
        em.train_loss = loss_sum / double(steps);
        EvalResult ev = evaluate(m, spec, ds, ds.test.count ? ds.test : ds.train, false,
                                 opt.detect_anomaly ? std::optional(fmt::format("at epoch {}", epoch)) : std::nullopt);
        em.test_loss = ev.loss;
        em.test_accuracy = ev.accuracy;
        history.push_back(em);
        if (opt.progress) fmt::print(stderr, "\r\033[K");
        if (epoch % every == 0 || epoch == spec.epochs || epoch == start_epoch + 1)
            print(fmt::format("epoch {:>{}}/{}  train loss {:.6f}  test loss {:.6f}{}  ({:.3f} s)", epoch,
                              std::to_string(spec.epochs).size(), spec.epochs, em.train_loss, em.test_loss,
                              em.test_accuracy < 0 ? "" : fmt::format("  test accuracy {:.4f}", em.test_accuracy),
                              em.seconds));
        if (!std::isfinite(em.test_loss) && !warned_test_loss) {
            warned_test_loss = true;
            print(fmt::format("warning: the test loss is {} at epoch {} while the training loss is finite: the "
                              "model gives a NaN or Inf on some test rows; `--detect-anomaly` names the node",
                              em.test_loss, epoch));
        }
        if (!opt.out_dir.empty()) {
            Json info = settings;
            info["history"] = history_json(history);
            // The checkpoint first: the other files can always be rebuilt from it.
            save_checkpoint(make_checkpoint(g, epoch, rng.state(), info), last_ckpt);
            write_file_atomic((fs::path(opt.out_dir) / "metrics.csv").string(), metrics_csv(history));
            write_file_atomic((fs::path(opt.out_dir) / "curves.svg").string(), plot_svg(history, g.name));
            save_model(m, (fs::path(opt.out_dir) / "model.json").string(), true);
        }
    }
    return history;
}

}  // namespace chainrule
