// hvp_cost: the time of one Hessian-vector product (graph/hessian.hpp) next to one gradient
// of the same model at the same point, and their ratio (issue 30 asks for at most 5).
//
// The gradient is a forward and backward pass through the training plan (Pass::training(),
// fused chains, as the trainer runs a step); the product is HessianGraph::hvp: a forward pass
// of the model with its backward pass written as nodes, then the numeric backward of
// (∇L·v) through all of it. Inputs without a value get `--rows` rows drawn uniform(0, 1)
// (seeded; class indices where an op reads them so), parameters their initializers; each
// time is the median of `--repeats` timings of `--inner` calls. The first line names the
// CPU and the OpenBLAS kernels.
//
//     build/bench/hvp_cost                       # the default models, 100 rows, one thread
//     build/bench/hvp_cost --rows 1000 models/slides_mnist.json
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <fmt/format.h>

#include "core/error.hpp"
#include "core/random.hpp"
#include "cpu/blas_kernel.hpp"
#include "cpu/threads.hpp"
#include "format/model_json.hpp"
#include "graph/hessian.hpp"
#include "graph/labels.hpp"

#ifndef CHAINRULE_SOURCE_DIR
#define CHAINRULE_SOURCE_DIR "."
#endif

namespace {

using namespace chainrule;
using Clock = std::chrono::steady_clock;

struct Options {
    std::vector<std::string> models;
    std::int64_t rows = 100;
    int repeats = 7, inner = 0, threads = 1;
};

// Seconds per call of `f`: the median over `repeats` timings of `inner` calls (0: enough
// calls for about 20 ms).
double seconds_per_call(const std::function<void()>& f, const Options& o) {
    f();  // warm: buffers sized, caches filled
    int inner = o.inner;
    if (inner == 0) {
        const auto start = Clock::now();
        f();
        const double once = std::chrono::duration<double>(Clock::now() - start).count();
        inner = std::max(1, int(0.02 / std::max(once, 1e-9)));
    }
    std::vector<double> times;
    for (int r = 0; r < o.repeats; ++r) {
        const auto start = Clock::now();
        for (int i = 0; i < inner; ++i) f();
        times.push_back(std::chrono::duration<double>(Clock::now() - start).count() / inner);
    }
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

void measure(const std::string& path, const Options& o) {
    Model m = load_model(path);
    Graph& g = m.graph;
    g.init_parameters(1);
    Rng rng(7);
    for (std::size_t id = 0; id < g.size(); ++id) {
        const Node& n = g.node(int(id));
        if (n.kind != NodeKind::input || !n.value.empty()) continue;
        Dims dims;
        for (const Dim& d : n.shape) dims.push_back(d.symbolic() ? o.rows : d.size);
        // Class indices where an op reads them so (cross_entropy's labels), else uniform(0, 1).
        std::int64_t classes = 0;
        for (const ClassIndexUse& use : class_index_uses(g, int(id))) classes = std::max(classes, use.classes);
        Tensor t(g.dtype(), dims);
        for (std::int64_t e = 0; e < t.numel(); ++e)
            t.set(e, classes > 0 ? double(std::int64_t(rng.uniform() * double(classes)) % classes) : rng.uniform());
        g.set_value(n.name, t);
    }
    Plan training = g.plan(Pass::training());
    const double gradient = seconds_per_call([&] { g.forward(training), g.backward(training); }, o);
    HessianGraph h(g);
    h.set_point(g);
    std::vector<Tensor> v, hv;
    std::vector<const Tensor*> in;
    std::vector<Tensor*> out;
    for (int id : h.wrt()) {
        v.emplace_back(g.dtype(), to_dims(g.node(id).shape)), hv.emplace_back(g.dtype(), to_dims(g.node(id).shape));
        for (std::int64_t e = 0; e < v.back().numel(); ++e) v.back().set(e, rng.uniform() - 0.5);
    }
    for (std::size_t k = 0; k < v.size(); ++k) in.push_back(&v[k]), out.push_back(&hv[k]);
    const double product = seconds_per_call([&] { h.hvp(in, out); }, o);
    fmt::print("{:<28} {:>9} params  {:>10.1f} µs gradient  {:>10.1f} µs hvp  {:>5.2f}×\n", g.name,
               g.parameter_count(), gradient * 1e6, product * 1e6, product / gradient);
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    std::string kernel;
    try {
        kernel = ensure_blas_kernel(argv);
    } catch (const std::exception& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return 2;
    }
    CLI::App app{"One Hessian-vector product against one gradient, per model"};
    app.add_option("MODELS", o.models, "model JSON files (default: the worked example, the Iris neuron, "
                                       "slides_mnist and a tanh MLP with cross-entropy)");
    app.add_option("--rows", o.rows, "rows of inputs without a value")->check(CLI::Range(1, 1000000));
    app.add_option("--repeats", o.repeats, "timings per measure (the median is kept)")->check(CLI::Range(1, 1000));
    app.add_option("--inner", o.inner, "calls per timing (0: about 20 ms)")->check(CLI::Range(0, 1000000));
    app.add_option("--threads", o.threads, "OpenBLAS threads")->check(CLI::Range(1, 256));
    CLI11_PARSE(app, argc, argv);
    if (o.models.empty())
        for (const char* m : {"models/worked_example.json", "models/iris_neuron.json", "models/slides_mnist.json",
                              "tests/fixtures/hessian_tanh_mlp.json"})
            o.models.push_back(std::string(CHAINRULE_SOURCE_DIR) + "/" + m);
    set_threads(o.threads);
    fmt::print("{}; {}; {} thread{}; {} rows where an input has none\n", cpu_model_name(), kernel, o.threads,
               o.threads == 1 ? "" : "s", o.rows);
    try {
        for (const std::string& m : o.models) measure(m, o);
    } catch (const InputError& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return 1;
    }
    return 0;
}
