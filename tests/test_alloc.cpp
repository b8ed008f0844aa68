// A training step allocates nothing after the first: every heap allocation of the process
// (operator new goes through malloc; OpenBLAS and std::aligned_alloc too) is counted while
// steps run, through the engine directly and through the trainer. Allocations made inside
// OpenBLAS and oneDNN are counted apart and reported.
//
// The count comes from replacing malloc and its relatives in this binary (they forward to
// glibc's own entry points); under AddressSanitizer, which owns malloc, from its hooks.
#define BOOST_TEST_MODULE alloc
#include <boost/test/unit_test.hpp>
#include <atomic>
#include <functional>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <link.h>
#include <execinfo.h>
#include <unistd.h>

#include "cpu/threads.hpp"
#include "cpu/workers.hpp"
#include "train/feeder.hpp"
#include "train/optimizer.hpp"
#include "train/trainer.hpp"
#include "testing.hpp"

using namespace chainrule;

namespace {

// The counters have to be global: malloc has no other place to find them.
std::atomic<bool> counting{false};
std::atomic<long> ours{0}, blas{0};
// The code of the libraries chainrule calls, [begin, end): OpenBLAS and oneDNN (conv2d's
// float32 kernels). An allocation with one of them on the call stack is that library's own.
struct CodeRange {
    const char* name;
    std::uintptr_t begin = 0, end = 0;
};
CodeRange libraries[] = {{"libopenblas"}, {"libdnnl"}};
std::uintptr_t& blas_begin = libraries[0].begin;
std::uintptr_t& blas_end = libraries[0].end;
// CHAINRULE_ALLOC_TRACE=1 prints a backtrace of every counted allocation (to find it).
const bool tracing = std::getenv("CHAINRULE_ALLOC_TRACE") != nullptr;
thread_local bool in_note = false;

void note() {
    if (!counting.load(std::memory_order_relaxed) || in_note) return;
    in_note = true;
    void* frames[12];
    int n = backtrace(frames, 12);
    bool in_blas = false;
    for (int i = 0; i < n; ++i) {
        auto a = reinterpret_cast<std::uintptr_t>(frames[i]);
        for (const CodeRange& r : libraries) in_blas = in_blas || (a >= r.begin && a < r.end);
    }
    (in_blas ? blas : ours).fetch_add(1, std::memory_order_relaxed);
    if (tracing) {
        backtrace_symbols_fd(frames, n, 2);
        const char line[] = "----\n";
        [[maybe_unused]] auto w = write(2, line, sizeof line - 1);
    }
    in_note = false;
}

void find_libraries() {
    dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t, void*) {
            for (CodeRange& r : libraries) {
                if (!info->dlpi_name || !std::strstr(info->dlpi_name, r.name)) continue;
                for (int i = 0; i < info->dlpi_phnum; ++i) {
                    const auto& ph = info->dlpi_phdr[i];
                    if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X)) continue;
                    r.begin = info->dlpi_addr + ph.p_vaddr;
                    r.end = r.begin + ph.p_memsz;
                }
            }
            return 0;
        },
        nullptr);
}

struct Count {
    long ours = 0;  // everything but the libraries' internals: chainrule, the C++ and C libraries
    long blas = 0;  // made inside OpenBLAS (its threaded driver and small-matrix kernels) or oneDNN
};

// Allocations made by f().
template <class F>
Count count_allocations(F&& f) {
    if (blas_end == 0) {
        find_libraries();
        void* warm[2];
        backtrace(warm, 2);  // its first call loads libgcc and allocates
    }
    ours = 0;
    blas = 0;
    counting = true;
    f();
    counting = false;
    return {ours.load(), blas.load()};
}

}  // namespace

#ifdef CHAINRULE_TESTS_SANITIZED
// From the sanitizer runtime (GCC does not install its header).
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*)(const volatile void*, std::size_t),
                                                         void (*)(const volatile void*));
namespace {
void on_malloc(const volatile void*, std::size_t) { note(); }
void on_free(const volatile void*) {}
const int hooks_installed = __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
}  // namespace
#else
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);

void* malloc(std::size_t n) noexcept {
    note();
    return __libc_malloc(n);
}
void* calloc(std::size_t count, std::size_t n) noexcept {
    note();
    return __libc_calloc(count, n);
}
void* realloc(void* p, std::size_t n) noexcept {
    note();
    return __libc_realloc(p, n);
}
void* aligned_alloc(std::size_t alignment, std::size_t n) noexcept {
    note();
    return __libc_memalign(alignment, n);
}
void* memalign(std::size_t alignment, std::size_t n) noexcept {
    note();
    return __libc_memalign(alignment, n);
}
int posix_memalign(void** out, std::size_t alignment, std::size_t n) noexcept {
    note();
    void* p = __libc_memalign(alignment, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
}
#endif

namespace {

// Random MNIST-shaped data, so that the test needs no downloaded files.
data::Dataset synthetic(std::int64_t rows) {
    data::Dataset ds;
    ds.kind = "idx";
    ds.classes = 10;
    for (int c = 0; c < 10; ++c) ds.class_names.push_back(std::to_string(c));
    Rng rng(11);
    for (data::Split* s : {&ds.train, &ds.test}) {
        s->count = s == &ds.train ? rows : 300;
        s->features = 784;
        s->sample_dims = {28, 28};
        for (std::int64_t i = 0; i < s->count * 784; ++i) s->pixels.push_back(std::uint8_t(rng.below(256)));
        for (std::int64_t i = 0; i < s->count; ++i) s->labels.push_back(std::int32_t(rng.below(10)));
    }
    return ds;
}

struct Setup {
    Model model;
    TrainingSpec spec;
    data::Dataset ds;
};

Setup setup(const std::string& name, const std::string& dtype) {
    std::string path = testing::source_root() + "/models/" + name + ".json";
    Json j = read_json_file(path);
    j["dtype"] = dtype;
    Setup s{parse_model(j.dump(), path), {}, {}};
    s.spec = parse_training(s.model.training, s.model.graph, s.model.path, s.model.dir);
    s.ds = s.spec.data.kind == "idx" ? synthetic(2000) : data::load_dataset(s.spec.data);
    return s;
}

// One training step through the engine: gather, forward, backward, SGD.
void engine_step(Setup& s, Plan& plan, const std::vector<int>& params, std::vector<std::int64_t>& rows,
                 Rng& rng) {
    Graph& g = s.model.graph;
    for (auto& r : rows) r = std::int64_t(rng.below(std::uint64_t(s.ds.train.count)));
    for (const auto& [name, stream] : s.spec.feed) {
        int id = g.id(name);
        Tensor& in = g.node(id).value;  // sized by the first step
        data::gather(s.ds, s.ds.train, stream, rows, in);
    }
    g.forward(plan);
    g.backward(plan);
    for (int id : params) {
        Node& n = g.node(id);
        for (std::int64_t i = 0; i < n.value.numel(); ++i) n.value.set(i, n.value.at(i) - 0.1 * n.grad.at(i));
    }
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_counter_sees_allocations) {
    BOOST_TEST(count_allocations([] { std::vector<int> v(1000); }).ours >= 1);
    BOOST_TEST(count_allocations([] {
                   auto* p = new double[100];
                   asm volatile("" : : "g"(p) : "memory");  // keeps the compiler from eliding the pair
                   delete[] p;
               }).ours >= 1);
    BOOST_TEST(count_allocations([] { Tensor t(Dtype::f32, {64, 64}); }).ours >= 1);
    Count none = count_allocations([] {});
    BOOST_TEST(none.ours == 0);
    BOOST_TEST(none.blas == 0);
    BOOST_TEST(blas_end > blas_begin);  // OpenBLAS was found, so its allocations are told apart
    BOOST_TEST(libraries[1].end > libraries[1].begin);  // and oneDNN
}

// A sequence model's batched matmuls and slices allocate nothing once their tensors exist
// (a training step gives them preallocated values, gradients and attrs).
BOOST_AUTO_TEST_CASE(batched_matmul_and_slice_allocate_nothing) {
    struct Case {
        const char* op;
        std::vector<Dims> in;
        Attrs attrs;
    };
    for (const Case& c : {Case{"matmul", {{2, 2, 3, 4}, {2, 2, 4, 3}}, Attrs::object()},
                          Case{"matmul", {{2, 5, 3}, {3, 4}}, Attrs::object()},
                          Case{"matmul", {{2, 1, 3, 4}, {3, 4, 2}}, Attrs::object()},
                          Case{"slice", {{2, 6, 3}}, {{"axis", 1}, {"start", 2}, {"end", 5}}},
                          Case{"slice", {{2, 3, 4, 5}}, {{"axis", -2}, {"start", 1}}}}) {
        const Op& op = *find_op(c.op);
        Attrs attrs = op.attrs;
        for (auto& [key, v] : c.attrs.items()) attrs[key] = v;
        std::vector<Shape> shapes;
        std::vector<Tensor> in, grads;
        Rng rng(3);
        for (const Dims& d : c.in) {
            shapes.push_back(fixed_shape(d));
            in.push_back(testing::random_tensor(d, Domain::real, rng));
            grads.emplace_back(Dtype::f64, d);
        }
        std::vector<const Tensor*> ptrs;
        std::vector<Tensor*> gptrs;
        for (std::size_t i = 0; i < in.size(); ++i) ptrs.push_back(&in[i]), gptrs.push_back(&grads[i]);
        Tensor y(Dtype::f64, to_dims(op.shape(shapes, attrs)));
        Tensor r = testing::random_tensor(y.dims(), Domain::real, rng);
        Count n = count_allocations([&] {
            op.forward(ForwardCall{ptrs, y, attrs});
            op.backward(BackwardCall{ptrs, y, r, gptrs, attrs});
        });
        BOOST_TEST(n.ours == 0, c.op << " " << attrs.dump());
    }
}

BOOST_AUTO_TEST_CASE(engine_steps_after_the_first_allocate_nothing) {
    struct Run {
        const char* model;
        const char* dtype;
        int threads;
        bool keep;
    };
    for (Run r : {Run{"mnist_mlp", "float32", 1, false}, Run{"mnist_mlp", "float64", 2, false},
                  Run{"mnist_mlp", "float32", 2, true}, Run{"mnist_lecture", "float64", 1, false},
                  Run{"mnist_relu_softmax", "float32", 2, false}, Run{"iris_neuron", "float64", 1, false},
                  Run{"iris_3class_softmax", "float32", 1, true}, Run{"mnist_cnn", "float32", 2, false},
                  Run{"mnist_cnn", "float64", 1, true}, Run{"words_gpt", "float32", 2, false},
                  Run{"words_gpt", "float64", 1, true}}) {
        BOOST_TEST_CONTEXT(r.model << " " << r.dtype << ", " << r.threads << " threads, keep " << r.keep) {
            set_threads(r.threads);
            Setup s = setup(r.model, r.dtype);
            Graph& g = s.model.graph;
            g.init_parameters(1);
            Plan pass = g.plan(r.keep ? Pass::exact() : Pass::training());
            std::int64_t batch = std::min<std::int64_t>(s.ds.train.count, 500);
            std::vector<std::int64_t> rows(static_cast<std::size_t>(batch));
            for (const auto& [name, stream] : s.spec.feed) {
                Dims dims = g.node(g.id(name)).shape.size() == 2
                                ? Dims{batch, data::stream_width(s.ds, stream)}
                                : Dims{batch};
                g.input_buffer(g.id(name), dims);
            }
            Rng rng(2);
            const std::vector<int> params = g.parameters();
            engine_step(s, pass, params, rows, rng);  // the first step plans and sizes everything
            Count n = count_allocations([&] {
                for (int step = 0; step < 5; ++step) engine_step(s, pass, params, rows, rng);
            });
            BOOST_TEST(n.ours == 0);
            BOOST_TEST_MESSAGE(r.model << " " << r.dtype << ", " << r.threads << " threads: OpenBLAS and oneDNN themselves made "
                                       << n.blas << " allocations in 5 steps");
            BOOST_TEST(std::isfinite(g.node(g.loss()).value.at(0)));
        }
    }
}

namespace {

// Two runs that differ only in their number of steps per epoch must allocate the same: the
// per-epoch work (evaluation, metrics) allocates, a step does not.
// `test_rows` > 0 keeps only that many test rows, for a model whose evaluation is slow.
void expect_steps_allocate_nothing(const char* dtype, const std::function<void(TrainingSpec&)>& edit,
                                   const char* model = "mnist_mlp", std::int64_t test_rows = 0) {
    auto run = [&](std::int64_t steps) {
        Setup s = setup(model, dtype);
        edit(s.spec);
        if (test_rows > 0) {
            data::Split& t = s.ds.test;
            t.count = std::min(t.count, test_rows);
            t.tokens.resize(std::size_t(t.count * t.features));
            t.labels.resize(std::size_t(t.count * s.ds.labels_per_sample));
            t.source_lines.resize(std::min(t.source_lines.size(), std::size_t(t.count)));
        }
        s.spec.batch_size = 100;
        s.spec.batches_per_epoch = steps;
        s.spec.epochs = 2;
        TrainOptions o;
        o.threads = 2;
        o.print = [](const std::string&) {};
        std::vector<EpochMetrics> h;
        Count n = count_allocations([&] { h = train(s.model, s.spec, s.ds, o); });
        BOOST_TEST(std::isfinite(h.back().train_loss));
        return n.ours;
    };
    run(2);  // OpenBLAS and the library set themselves up once
    // Under the sanitizers every counted allocation takes a backtrace: 6 steps an epoch instead
    // of 17 still adds 8 steps to the run of 2.
    long few = run(2), many = run(testing::sanitized ? 6 : 17);
    BOOST_TEST(few > 0);  // the runs do allocate (plan, evaluation): the counter is on
    BOOST_TEST(many == few);
}

}  // namespace

BOOST_AUTO_TEST_CASE(trainer_steps_allocate_nothing) {
    for (const char* sampling : {"with_replacement", "shuffle"})
        for (const char* dtype : {"float32", "float64"})
            BOOST_TEST_CONTEXT(sampling << " " << dtype) {
                expect_steps_allocate_nothing(dtype, [&](TrainingSpec& spec) { spec.sampling = sampling; });
            }
}

BOOST_AUTO_TEST_CASE(convolutional_trainer_steps_allocate_nothing) {
    // conv2d's im2col columns (float64) and its oneDNN scratch (float32) live in the graph's
    // workspace, sized by the first step; oneDNN's own small objects per call are its own.
    for (const char* dtype : {"float32", "float64"})
        BOOST_TEST_CONTEXT("mnist_cnn " << dtype) {
            expect_steps_allocate_nothing(dtype, [](TrainingSpec&) {}, "mnist_cnn");
        }
}

BOOST_AUTO_TEST_CASE(gpt_trainer_steps_allocate_nothing) {
    // models/words_gpt.json: embedding, layer_norm, gelu, batched matmuls over heads,
    // causal_mask, softmax, reshape and transpose at rank 4, cross_entropy over positions with
    // ignore_index, and Adam, on the words of the text kind's "sequence" rows (float64 is
    // the engine test's; 200 test words keep the evaluations short).
    expect_steps_allocate_nothing("float32", [](TrainingSpec&) {}, "words_gpt", 200);
}

BOOST_AUTO_TEST_CASE(sparse_first_layer_steps_allocate_nothing) {
    // The feeder's compressed form of a sparse batch (docs/performance.md, "Sparse first
    // layer") grows only when a batch needs more room than any before.
    for (const char* dtype : {"float32", "float64"})
        for (int threads : {1, 2})
            BOOST_TEST_CONTEXT("mnist_lecture " << dtype << ", " << threads << " threads") {
                Setup s = setup("mnist_lecture", dtype);
                s.spec.sparse_inputs = true;
                Rng zeros(5);
                for (data::Split* split : {&s.ds.train, &s.ds.test})
                    for (auto& p : split->pixels)
                        if (zeros.below(5) != 0) p = 0;  // 80 % zeros, as MNIST's background
                Graph& g = s.model.graph;
                g.init_parameters(1);
                Workers workers(threads);
                Feeder feeder(g, s.spec, s.ds, &workers);
                Pass training = Pass::training();
                training.workers = &workers;
                training.sparse_inputs = feeder.sparse_inputs();
                Plan pass = g.plan(training);
                BOOST_REQUIRE(training.sparse_inputs.size() == 1u);
                const SparseRows& form = *training.sparse_inputs[0].second;
                std::vector<std::int64_t> rows(500);
                Rng rng(2);
                auto step = [&] {
                    for (auto& r : rows) r = std::int64_t(rng.below(std::uint64_t(s.ds.train.count)));
                    feeder.feed(s.ds.train, rows);
                    g.forward(pass);
                    feeder.prefetch(s.ds.train, rows);  // as the trainer does for the next batch
                    g.backward(pass);
                };
                step();
                BOOST_TEST(form.current);
                Count n = count_allocations([&] {
                    for (int k = 0; k < 5; ++k) step();
                });
                BOOST_TEST(n.ours == 0);
                BOOST_TEST(form.current);
                BOOST_TEST(std::isfinite(g.node(g.loss()).value.at(0)));
            }
}

BOOST_AUTO_TEST_CASE(optimizer_steps_allocate_nothing) {
    // Moment buffers are allocated once, when the optimizer is made; clipping and the
    // schedule add nothing per step either.
    for (const char* optimizer : {R"({"adam": {"lr": 0.001, "amsgrad": true}})",
                                  R"({"rmsprop": {"lr": 0.001, "momentum": 0.9, "centered": true}})",
                                  R"({"sgd": {"lr": 0.1, "momentum": 0.9}})",
                                  R"({"lion": {"lr": 0.001, "weight_decay": 0.1}})"})
        BOOST_TEST_CONTEXT(optimizer) {
            expect_steps_allocate_nothing("float32", [&](TrainingSpec& spec) {
                spec.optimizer = parse_optimizer(Json::parse(optimizer), "test");
                spec.lr_schedule = parse_schedule(Json::parse(R"({"cosine": {"t_max": 2}})"), "test");
                spec.clip_grad_norm = 1.0;
            });
        }
}
