// mnist_epoch: seconds per training epoch of a model, next to what its GEMMs alone cost.
//
// Trains the model with chainrule's own trainer (train/trainer.cpp) in float32 and/or
// float64, and reports the median training time per epoch after warm-up (evaluation is not
// timed), samples/s and peak RSS. After each training epoch, in the same process and with
// the same threads, it times an epoch of the step's GEMMs alone through cblas (same shapes
// and transposes, same steps per epoch, random data): the bound that chainrule's epoch is
// compared with. Peak RSS includes the bound's buffers (a few MB).
//
//     build/bench/mnist_epoch --dtype float32 --threads 2
//     build/bench/mnist_epoch --model models/mnist_lecture.json --dtype float64 --json
//     build/bench/mnist_epoch --model models/mnist_cnn.json --dtype float32 --threads 2 --epochs 2 --warmup 1
//
// --json prints one JSON object per line: a header, one per timed epoch ("epoch",
// "seconds", "cpu_seconds", "peak_rss_mib", as bench/peers/compare.py reads them) and a
// summary. With --time-eval the timed "epochs" are evaluations of the whole test split
// (batches of 1000, as `chainrule train` evaluates), run after training.
//
// The first line (and the JSON header) names the CPU, the OpenBLAS kernels and oneDNN's.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cblas.h>
#include <chrono>
#include <cmath>
#include <fmt/format.h>
#include <sys/resource.h>

#include "core/error.hpp"
#include "cpu/blas_kernel.hpp"
#include "cpu/convolution.hpp"
#include "cpu/threads.hpp"
#include "cpu/workers.hpp"
#include "train/feeder.hpp"
#include "train/trainer.hpp"

#ifndef CHAINRULE_SOURCE_DIR
#define CHAINRULE_SOURCE_DIR "."
#endif

namespace {

using namespace chainrule;
using Clock = std::chrono::steady_clock;

struct Options {
    std::string model = std::string(CHAINRULE_SOURCE_DIR) + "/models/mnist_mlp.json";
    std::string dtype = "both";
    std::string data;
    std::int64_t epochs = 10, warmup = 2, batch = 0, steps = 0, synthetic = 0;
    int threads = 0;
    bool json = false, no_eval = false, no_bound = false, print_kernel = false, time_eval = false;
    std::string kernel;  // the OpenBLAS kernels in words, after chainrule's choice
    std::string sparse_inputs;    // "auto" or "off"; empty: the model's setting
    double pixel_density = -1;    // --synthetic only: fraction of nonzero pixels; < 0: uniform bytes
};

double peak_rss_mib() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return double(u.ru_maxrss) / 1024.0;  // KiB on Linux
}

// CPU time of the whole process (all threads), as Python's time.process_time() in the peers.
double cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    std::size_t n = v.size();
    return n == 0 ? NAN : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Random images and labels shaped like MNIST, for runs without the data files (CI).
data::Dataset synthetic_mnist(std::int64_t rows, std::int64_t features, double pixel_density) {
    data::Dataset ds;
    ds.kind = "idx";
    ds.classes = 10;
    for (int c = 0; c < 10; ++c) ds.class_names.push_back(std::to_string(c));
    Rng rng(7);
    auto fill = [&](data::Split& s, std::int64_t n) {
        s.count = n;
        s.features = features;
        s.sample_dims = {features};
        s.pixels.resize(std::size_t(n * features));
        for (auto& p : s.pixels)
            p = pixel_density < 0 ? std::uint8_t(rng.below(256))
                : rng.uniform(0, 1) < pixel_density ? std::uint8_t(1 + rng.below(255)) : 0;
        for (std::int64_t i = 0; i < n; ++i) s.labels.push_back(std::int32_t(rng.below(10)));
    };
    fill(ds.train, rows);
    fill(ds.test, std::max<std::int64_t>(1, rows / 6));
    return ds;
}

// One cblas call of a training step: C[n,m] = op(A)·op(B), inner dim k, made `times` times
// (conv2d makes one per sample).
struct Gemm {
    bool ta = false, tb = false;
    std::int64_t n = 0, m = 0, k = 0;
    std::string what;
    std::int64_t times = 1;
    bool sparse_input = false;  // x·W or xᵀ·δ with x a fed input: skips x's zeros on the sparse path
};

// The GEMMs of one step: each matmul (or linear) forward, and backward for each input
// that needs a gradient in training (parameters and what depends on them; never inputs).
std::vector<Gemm> step_gemms(const Graph& g, std::int64_t batch) {
    std::vector<bool> wants(g.size());
    std::vector<Gemm> out;
    auto dims = [&](int id) {
        std::vector<std::int64_t> d;
        for (const auto& dim : g.node(id).shape) d.push_back(dim.symbolic() ? batch : dim.size);
        return d;
    };
    for (std::size_t id = 0; id < g.size(); ++id) {
        const Node& n = g.node(int(id));
        wants[id] = n.kind == NodeKind::parameter;
        for (int j : n.inputs) wants[id] = wants[id] || wants[j];
        if (n.kind == NodeKind::op && n.op->name == "conv2d") {
            // Per sample (ops/conv2d.cpp): y [O,plane] = W [O,k]·X̃ [k,plane], dW += dy·X̃ᵀ,
            // dX̃ = Wᵀ·dy when x needs a gradient.
            auto x = dims(n.inputs[0]), w = dims(n.inputs[1]), y = dims(int(id));
            std::int64_t o = w[0], k = w[1] * w[2] * w[3], plane = y[2] * y[3];
            const std::string& xn = g.node(n.inputs[0]).name;
            out.push_back({false, false, o, plane, k, fmt::format("{}⋆{}", g.node(n.inputs[1]).name, xn), x[0]});
            if (wants[n.inputs[1]]) out.push_back({false, true, o, k, plane, fmt::format("d{}·x̃ᵀ", n.name), x[0]});
            if (wants[n.inputs[0]]) out.push_back({true, false, k, plane, o, fmt::format("Wᵀ·d{}", n.name), x[0]});
            continue;
        }
        if (n.kind != NodeKind::op || (n.op->name != "matmul" && n.op->name != "linear")) continue;
        auto a = dims(n.inputs[0]), b = dims(n.inputs[1]);
        const std::string &an = g.node(n.inputs[0]).name, &bn = g.node(n.inputs[1]).name;
        std::int64_t rows = a[0], inner = a[1], cols = b[1];
        const bool fed = g.node(n.inputs[0]).kind == NodeKind::input;
        out.push_back({false, false, rows, cols, inner, fmt::format("{}·{}", an, bn), 1, fed});
        if (wants[n.inputs[0]]) out.push_back({false, true, rows, inner, cols, fmt::format("d{}·{}ᵀ", n.name, bn)});
        if (wants[n.inputs[1]]) out.push_back({true, false, inner, cols, rows, fmt::format("{}ᵀ·d{}", an, n.name), 1, fed});
    }
    return out;
}

template <class T>
void run_gemm(const Gemm& gm, const T* a, const T* b, T* c) {
    auto ta = gm.ta ? CblasTrans : CblasNoTrans, tb = gm.tb ? CblasTrans : CblasNoTrans;
    blasint lda = blasint(gm.ta ? gm.n : gm.k), ldb = blasint(gm.tb ? gm.k : gm.m);
    if constexpr (std::is_same_v<T, float>)
        cblas_sgemm(CblasRowMajor, ta, tb, blasint(gm.n), blasint(gm.m), blasint(gm.k), 1.0f, a, lda, b, ldb, 0.0f,
                    c, blasint(gm.m));
    else
        cblas_dgemm(CblasRowMajor, ta, tb, blasint(gm.n), blasint(gm.m), blasint(gm.k), 1.0, a, lda, b, ldb, 0.0, c,
                    blasint(gm.m));
}

// The step's GEMMs alone on random data of the same shapes: one epoch is `steps` steps.
template <class T>
struct GemmBound {
    std::vector<Gemm> gemms;
    std::int64_t steps = 0;
    std::vector<std::vector<T>> a, b, c;

    GemmBound(std::vector<Gemm> g, std::int64_t s) : gemms(std::move(g)), steps(s) {
        Rng rng(3);
        auto random = [&](std::int64_t count) {
            std::vector<T> v(static_cast<std::size_t>(count));
            for (auto& x : v) x = T(rng.uniform(-1, 1));
            return v;
        };
        for (const Gemm& gm : gemms) {
            a.push_back(random(gm.n * gm.k));
            b.push_back(random(gm.k * gm.m));
            c.push_back(std::vector<T>(static_cast<std::size_t>(gm.n * gm.m)));
        }
    }
    double epoch_seconds() {
        auto t0 = Clock::now();
        for (std::int64_t s = 0; s < steps; ++s)
            for (std::size_t i = 0; i < gemms.size(); ++i)
                for (std::int64_t r = 0; r < gemms[i].times; ++r) run_gemm<T>(gemms[i], a[i].data(), b[i].data(), c[i].data());
        return std::chrono::duration<double>(Clock::now() - t0).count();
    }
};

Json header_json(const Options& o, const std::string& dtype, const Model& m, std::int64_t batch, std::int64_t steps,
                 const std::vector<Gemm>& gemms) {
    Json gj = Json::array();
    // Not empty when chainrule replaced OpenBLAS's own pick (cpu/blas_kernel.hpp).
    const std::string picked =
        decide_blas_kernel(cpu_features(), openblas_get_corename(), BlasEnvironment::of_process()).picked_by_openblas;
    double flop = 0;
    for (const Gemm& gm : gemms) {
        gj.push_back(fmt::format("{} [{}x{}x{}]{}{}{}", gm.what, gm.n, gm.m, gm.k, gm.ta ? " Aᵀ" : "", gm.tb ? " Bᵀ" : "",
                                 gm.times > 1 ? fmt::format(" ×{}", gm.times) : ""));
        flop += 2.0 * double(gm.n * gm.m * gm.k) * double(gm.times);
    }
    return {{"bench", "mnist_epoch"},
            {"cpu", cpu_model_name()},
            {"onednn", {{"version", onednn_version()}, {"isa", onednn_isa()}}},
            {"timed", o.time_eval ? "evaluation of the test split" : "training"},
            {"model", m.graph.name},
            {"dtype", dtype},
            {"threads", openblas_get_num_threads()},
            {"openblas",
             {{"corename", openblas_get_corename()},
              {"config", openblas_get_config()},
              {"kernel", o.kernel},
              {"picked_by_openblas", picked.empty() ? Json(nullptr) : Json(picked)}}},
            {"batch", batch},
            {"steps_per_epoch", steps},
            {"warmup_epochs", o.warmup},
            {"gemms", gj},
            {"gemm_mflop_per_step", flop / 1e6},
            {"fusions", m.graph.plan(Pass::training()).fusions()}};
}

// --time-eval: each epoch's seconds (and CPU seconds) replaced by those of one evaluation of
// the test split, with the trainer's thread count.
void time_evaluations(Model& m, const TrainingSpec& spec, const data::Dataset& ds,
                      std::vector<EpochMetrics>& history, std::vector<double>& cpu_times) {
    Workers workers(thread_count());
    for (std::size_t e = 0; e < history.size(); ++e) {
        const double cpu0 = cpu_seconds();
        const auto t0 = Clock::now();
        const EvalResult r = evaluate(m, spec, ds, ds.test, false, {}, &workers);
        history[e].seconds = std::chrono::duration<double>(Clock::now() - t0).count();
        cpu_times[e] = cpu_seconds() - cpu0;
        history[e].train_loss = r.loss;  // the test loss, for the summary's finite check
    }
}

int run(const Options& o, const std::string& dtype) {
    Json j = read_json_file(o.model);
    j["dtype"] = dtype;
    Model m = parse_model(j.dump(), o.model);
    TrainOptions t;
    t.epochs = o.warmup + o.epochs;
    if (o.batch > 0) t.batch_size = o.batch;
    if (o.steps > 0) t.batches_per_epoch = o.steps;
    t.threads = o.threads;
    t.print_every = 1;
    TrainingSpec spec = with_overrides(parse_training(m.training, m.graph, m.path, m.dir), t);
    if (!o.data.empty()) spec.data.dir = o.data;
    if (!o.sparse_inputs.empty()) spec.sparse_inputs = o.sparse_inputs == "auto";
    data::Dataset ds = o.synthetic > 0 ? synthetic_mnist(o.synthetic, 784, o.pixel_density) : data::load_dataset(spec.data);
    // Evaluation is never timed; --no-eval also skips running it, on a one-row test split.
    if (o.no_eval && !o.time_eval) {
        ds.test.count = 1;
        ds.test.pixels.resize(std::size_t(ds.test.features));
        ds.test.values.resize(std::min<std::size_t>(ds.test.values.size(), std::size_t(ds.test.features)));
        ds.test.labels.resize(1);
    }
    const std::int64_t batch = spec.batch_size > 0 ? std::min(spec.batch_size, ds.train.count) : ds.train.count;
    const std::int64_t steps = batch == ds.train.count ? 1
                               : spec.batches_per_epoch > 0 ? spec.batches_per_epoch
                                                            : (ds.train.count + batch - 1) / batch;

    // Training epochs and GEMM-only epochs alternate (the trainer calls `print` after each
    // epoch), so that a machine that is busier at one moment affects both alike.
    std::vector<Gemm> gemms = step_gemms(m.graph, batch);
    std::vector<double> gemm_times, cpu_times;
    auto history = dispatch(m.graph.dtype(), [&]<class T>() {
        GemmBound<T> bound(gemms, steps);
        double cpu_mark = cpu_seconds();
        t.print = [&](const std::string&) {
            // the epoch's CPU time: training plus the (untimed, --no-eval: one-row) evaluation
            cpu_times.push_back(cpu_seconds() - cpu_mark);
            gemm_times.push_back(o.no_bound ? NAN : bound.epoch_seconds());
            cpu_mark = cpu_seconds();
        };
        return train(m, spec, ds, t);
    });
    if (o.time_eval) time_evaluations(m, spec, ds, history, cpu_times);
    const double rss = peak_rss_mib();
    std::vector<double> seconds, bound_seconds;
    for (std::size_t e = std::size_t(o.warmup); e < history.size(); ++e) seconds.push_back(history[e].seconds);
    for (std::size_t e = std::size_t(o.warmup); e < gemm_times.size(); ++e) bound_seconds.push_back(gemm_times[e]);
    const double med = median(seconds), gemm_s = median(bound_seconds);
    const double final_loss = history.back().train_loss;
    if (!std::isfinite(final_loss)) throw RunError(fmt::format("the training loss is {}", final_loss));
    if (gemm_times.size() != history.size())
        throw RunError(fmt::format("{} training epochs but {} GEMM-only epochs", history.size(), gemm_times.size()));

    const double samples = double(batch * steps) / med;
    Json head = header_json(o, dtype, m, batch, steps, gemms);
    // The sparse first layer (docs/performance.md): the training pixels' density (a batch's
    // is within a percent of it), the path the feeder takes, and the bound of that path: the
    // FLOPs that remain when the products with x skip its zeros, at the GEMMs' measured rate.
    const double density = data::pixel_density(ds.train);
    bool sparse_path = false;
    for (const auto& [name, stream] : spec.feed)
        sparse_path = sparse_path || (spec.sparse_inputs && stream == data::kImages &&
                                      feeds_sparse_product(m.graph, m.graph.id(name)) && density < kSparseDensityThreshold);
    double flop = 0, sparse_flop = 0;
    for (const Gemm& gm : gemms) {
        const double f = 2.0 * double(gm.n * gm.m * gm.k) * double(gm.times);
        flop += f;
        sparse_flop += gm.sparse_input && sparse_path ? f * density : f;
    }
    const double sparse_bound_s = gemm_s * sparse_flop / flop;
    head["pixel_density"] = density;
    head["path"] = sparse_path ? "sparse" : "dense";
    if (o.json) {
        fmt::print("{}\n", head.dump());
        for (std::size_t e = std::size_t(o.warmup); e < history.size(); ++e) {
            Json row{{"epoch", history[e].epoch - o.warmup},
                     {"seconds", history[e].seconds},
                     {"cpu_seconds", cpu_times[e]},
                     {"train_loss", history[e].train_loss},
                     {"test_accuracy", nullptr},
                     {"test_loss", nullptr},
                     {"peak_rss_mib", rss}};
            // An evaluation has no steps: compare.py then shows no ms/step.
            if (!o.time_eval) row["seconds_per_step"] = history[e].seconds / double(steps);
            fmt::print("{}\n", row.dump());
        }
        fmt::print("{}\n", Json{{"summary", dtype},
                                {"seconds_per_epoch_median", med},
                                {"seconds_per_step_median", med / double(steps)},
                                {"samples_per_second", samples},
                                {"peak_rss_mib", rss},
                                {"gemm_seconds_per_epoch_median", gemm_s},
                                {"ratio_to_gemm_bound", med / gemm_s},
                                {"path", sparse_path ? "sparse" : "dense"},
                                {"bound_seconds_per_epoch", sparse_bound_s},
                                {"ratio_to_bound", med / sparse_bound_s},
                                {"final_train_loss", final_loss}}
                               .dump());
    } else {
        fmt::print("{} {} on {} with {} and {} ({} kernels), {} thread{}; {}, batch {} x {} steps per epoch\n",
                   m.graph.name, dtype, cpu_model_name(), o.kernel, onednn_version(), onednn_isa(),
                   openblas_get_num_threads(), openblas_get_num_threads() == 1 ? "" : "s",
                   o.synthetic > 0 ? "synthetic data" : "its data", batch, steps);
        const Plan training = m.graph.plan(Pass::training());
        for (const auto& f : training.fusions()) fmt::print("  fused: {}\n", f);
        fmt::print("  GEMMs per step: {} ({:.1f} MFLOP)\n", fmt::join(head["gemms"], ", "),
                   head["gemm_mflop_per_step"].get<double>());
        fmt::print("  {}: {:.4f} s/epoch, {:.3f} ms/step (median of {}; min {:.4f}, max {:.4f}), {:.0f} samples/s, "
                   "peak RSS {:.1f} MiB, last train loss {:.6f}\n",
                   o.time_eval ? "evaluating the test split" : "training", med, 1e3 * med / double(steps), seconds.size(), *std::min_element(seconds.begin(), seconds.end()),
                   *std::max_element(seconds.begin(), seconds.end()), samples, rss, final_loss);
        if (o.no_bound) {
            fmt::print("  GEMMs alone: not measured (--no-bound)\n");
            fmt::print("  pixel density {:.3f}, {} path (threshold {}); its bound needs the GEMMs' rate: not measured "
                       "(--no-bound)\n",
                       density, sparse_path ? "sparse" : "dense", kSparseDensityThreshold);
        } else {
            fmt::print("  GEMMs alone: {:.4f} s/epoch (median)  ->  chainrule / GEMM bound = {:.3f}\n", gemm_s,
                       med / gemm_s);
            fmt::print("  pixel density {:.3f}, {} path (threshold {}): bound {:.4f} s/epoch (the nonzeros' FLOPs at "
                       "the GEMMs' rate)  ->  chainrule / bound = {:.3f}\n",
                       density, sparse_path ? "sparse" : "dense", kSparseDensityThreshold, sparse_bound_s,
                       med / sparse_bound_s);
        }
    }
    std::fflush(stdout);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    // As `chainrule` does: the kernels of the CPU's level, chosen before OpenBLAS runs any
    // (CHAINRULE_BLAS_KERNEL=Prescott measures the generic ones).
    try {
        o.kernel = ensure_blas_kernel(argv);
    } catch (const InputError& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return 2;
    } catch (const RunError& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return 1;
    }
    CLI::App app{"Seconds per training epoch of a chainrule model, and of its GEMMs alone"};
    app.add_option("--model", o.model, "model JSON with a training block (default: models/mnist_mlp.json)");
    app.add_option("--dtype", o.dtype, "float32, float64 or both")
        ->check(CLI::IsMember({"float32", "float64", "both"}));
    app.add_option("--epochs", o.epochs, "timed epochs (the median is over these)")->check(CLI::Range(1, 100000));
    app.add_option("--warmup", o.warmup, "epochs run first and not timed")->check(CLI::Range(0, 1000));
    app.add_option("--threads", o.threads, "OpenBLAS threads (chainrule's GEMMs and the bound alike)")
        ->check(CLI::Range(1, 256));
    app.add_option("--batch", o.batch, "rows per step (default: the model's)")->check(CLI::Range(1, 1000000));
    app.add_option("--steps", o.steps, "steps per epoch (default: the model's)")->check(CLI::Range(1, 1000000));
    app.add_option("--data", o.data, "folder with the four IDX files (default: the model's)");
    app.add_option("--synthetic", o.synthetic, "use this many random MNIST-shaped training rows instead of files")
        ->check(CLI::Range(1, 10000000));
    app.add_option("--sparse-inputs", o.sparse_inputs, "auto or off: the sparse first layer (default: the model's)")
        ->check(CLI::IsMember({"auto", "off"}));
    app.add_option("--pixel-density", o.pixel_density,
                   "with --synthetic: this fraction of the pixels nonzero (default: uniform random bytes)")
        ->check(CLI::Range(0.0, 1.0));
    app.add_flag("--json", o.json, "JSON lines: header, one object per timed epoch, summary");
    app.add_flag("--no-eval", o.no_eval, "skip the (untimed) evaluation after each epoch");
    app.add_flag("--time-eval", o.time_eval,
                 "time evaluations of the whole test split instead of training: one after training per epoch "
                 "(--no-eval then only skips the per-epoch ones)");
    app.add_flag("--no-bound", o.no_bound, "skip the GEMM-only epochs (e.g. to profile training alone)");
    app.add_flag("--print-blas-kernel", o.print_kernel,
                 "print the name of the OpenBLAS kernels the benchmark runs with and exit (bench/peers/compare.py "
                 "runs the peers with the same)");
    CLI11_PARSE(app, argc, argv);
    if (o.print_kernel) {
        fmt::print("{}\n", openblas_get_corename());
        return 0;
    }
    try {
        if (o.threads > 0) set_threads(o.threads);
        for (const char* dt : {"float32", "float64"})
            if (o.dtype == "both" || o.dtype == dt) run(o, dt);
    } catch (const InputError& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return 1;
    }
    return 0;
}
