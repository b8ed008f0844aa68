// The sparse first layer (docs/performance.md, "Sparse first layer"): the sparse-times-dense
// products against the dense GEMM, the feeder's compressed form and its threshold, and whole
// training runs with it on and off.
#define BOOST_TEST_MODULE sparse
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <limits>

#include "core/random.hpp"
#include "core/sparse_rows.hpp"
#include "data/pixels.hpp"
#include "cpu/workers.hpp"
#include "cpu/gemm.hpp"
#include "ops/sparse_matmul.hpp"
#include "train/feeder.hpp"
#include "train/trainer.hpp"
#include "testing.hpp"

using namespace chainrule;

namespace {

// A [rows, cols] matrix in T with about `density` of its entries nonzero (uniform in
// [-1, 1]), and every third row empty when `empty_rows`.
template <class T>
std::vector<T> random_sparse(std::int64_t rows, std::int64_t cols, double density, bool empty_rows, Rng& rng) {
    std::vector<T> x(std::size_t(rows * cols));
    for (std::int64_t i = 0; i < rows; ++i)
        for (std::int64_t j = 0; j < cols; ++j)
            if (!(empty_rows && i % 3 == 1) && rng.uniform(0, 1) < density)
                x[std::size_t(i * cols + j)] = T(rng.uniform(-1, 1));
    return x;
}

template <class T>
std::vector<T> random_dense(std::int64_t count, Rng& rng) {
    std::vector<T> v(static_cast<std::size_t>(count));
    for (auto& e : v) e = T(rng.uniform(-1, 1));
    return v;
}

// The row form of a dense matrix, filled as data::gather fills it, indexed and finished.
template <class T>
SparseRows compress(const std::vector<T>& x, std::int64_t rows, std::int64_t cols) {
    SparseRows s;
    s.reshape(std::is_same_v<T, float> ? Dtype::f32 : Dtype::f64, rows, cols);
    for (std::int64_t i = 0; i < rows; ++i) {
        std::int64_t k = s.row_begin[std::size_t(i)];
        for (std::int64_t j = 0; j < cols; ++j)
            if (T v = x[std::size_t(i * cols + j)]; v != 0) {
                s.row_index[std::size_t(k)] = std::int32_t(j);
                s.row_values<T>()[std::size_t(k++)] = v;
            }
        s.row_end[std::size_t(i)] = k;
        s.index_row(i);
    }
    BOOST_REQUIRE(s.finish(std::numeric_limits<double>::infinity()));
    return s;
}

// Both sums (sparse and GEMM) of n products are within n·u·Σ|products| of the exact one
// (any order), so they differ by at most twice that; float64 is held to 1e-12 of Σ|products|.
template <class T>
void expect_close(const std::vector<T>& got, const std::vector<T>& want, const std::vector<double>& magnitude,
                  std::int64_t terms) {
    const double u = std::numeric_limits<T>::epsilon() / 2;
    const double allowed = std::is_same_v<T, double> ? 1e-12 : 2.0 * double(terms) * u;
    double worst = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        const double gap = std::abs(double(got[i]) - double(want[i]));
        BOOST_TEST_REQUIRE(gap <= allowed * magnitude[i] + std::numeric_limits<double>::min(),
                           "entry " << i << ": " << got[i] << " vs " << want[i]);
        if (magnitude[i] > 0) worst = std::max(worst, gap / magnitude[i]);
    }
    BOOST_TEST_MESSAGE("worst gap / Σ|products| = " << worst << " (allowed " << allowed << ")");
}

// Σ_j |x[i,j]|·|w[j,c]| for each output entry: the scale of its rounding errors.
template <class T>
std::vector<double> magnitudes(const std::vector<T>& x, const std::vector<T>& w, std::int64_t n, std::int64_t k,
                               std::int64_t m) {
    std::vector<double> out(std::size_t(n * m));
    for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = 0; j < k; ++j)
            for (std::int64_t c = 0; c < m; ++c)
                out[std::size_t(i * m + c)] += std::abs(double(x[std::size_t(i * k + j)]) * double(w[std::size_t(j * m + c)]));
    return out;
}

template <class T>
std::vector<T> transposed(const std::vector<T>& x, std::int64_t rows, std::int64_t cols) {
    std::vector<T> t(x.size());
    for (std::int64_t i = 0; i < rows; ++i)
        for (std::int64_t j = 0; j < cols; ++j) t[std::size_t(j * rows + i)] = x[std::size_t(i * cols + j)];
    return t;
}

struct Case {
    std::int64_t n, k, m;
    double density;
    bool empty_rows;
};
const Case kCases[] = {{7, 13, 5, 0.3, true},     {1, 1, 1, 1.0, false},     {64, 784, 100, 0.19, true},
                       {50, 784, 100, 0.5, false}, {33, 20, 70, 0.05, true}, {10, 30, 129, 1.0, false},
                       {12, 40, 8, 0.0, false},    {3, 5, 64, 0.6, true},
                       // several chunks of rows in the weight gradient (ops/sparse_matmul.cpp)
                       {600, 90, 37, 0.2, true},   {1000, 300, 16, 0.1, false}};

template <class T>
void products_match_gemm() {
    Rng rng(5);
    for (const Case& c : kCases)
        BOOST_TEST_CONTEXT("n " << c.n << " k " << c.k << " m " << c.m << " density " << c.density) {
            const auto x = random_sparse<T>(c.n, c.k, c.density, c.empty_rows, rng);
            const auto w = random_dense<T>(c.k * c.m, rng);
            const auto g = random_dense<T>(c.n * c.m, rng);
            const SparseRows s = compress(x, c.n, c.k);
            // x·W
            std::vector<T> dense(std::size_t(c.n * c.m)), sparse(dense.size(), T(7));
            gemm<T>(false, false, c.n, c.m, c.k, x.data(), w.data(), dense.data(), T(0));
            sparse_rows_times<T>(s, w.data(), c.m, sparse.data(), false, nullptr);
            expect_close(sparse, dense, magnitudes(x, w, c.n, c.k, c.m), c.k);
            // bias + x·W (linear: accumulate onto the prefilled output)
            std::vector<T> with_bias(dense.size(), T(0.25)), gemm_bias(dense.size(), T(0.25));
            gemm<T>(false, false, c.n, c.m, c.k, x.data(), w.data(), gemm_bias.data(), T(1));
            sparse_rows_times<T>(s, w.data(), c.m, with_bias.data(), true, nullptr);
            auto mag = magnitudes(x, w, c.n, c.k, c.m);
            for (auto& v : mag) v += 0.25;
            expect_close(with_bias, gemm_bias, mag, c.k + 1);
            // xᵀ·G
            std::vector<T> dw(std::size_t(c.k * c.m)), sdw(dw.size(), T(7));
            gemm<T>(true, false, c.k, c.m, c.n, x.data(), g.data(), dw.data(), T(0));
            sparse_transposed_times(s, g.data(), c.m, sdw.data(), nullptr);
            expect_close(sdw, dw, magnitudes(transposed(x, c.n, c.k), g, c.k, c.n, c.m), c.n);
            if (c.density == 0.0) {
                BOOST_TEST(s.nonzeros == 0);
                for (T v : sparse) BOOST_TEST_REQUIRE(v == T(0));
                for (T v : sdw) BOOST_TEST_REQUIRE(v == T(0));
            }
        }
}

}  // namespace

BOOST_AUTO_TEST_CASE(sparse_products_match_the_dense_gemm_in_float64) { products_match_gemm<double>(); }
BOOST_AUTO_TEST_CASE(sparse_products_match_the_dense_gemm_in_float32) { products_match_gemm<float>(); }

// Widths around the block size, rows without entries, blocks without entries.
BOOST_AUTO_TEST_CASE(the_block_index_splits_every_row_at_each_block_of_columns) {
    Rng rng(9);
    for (std::int64_t k : {1, 6, 31, 32, 33, 100})
        BOOST_TEST_CONTEXT("width " << k) {
            const std::int64_t n = 9, block = SparseRows::kBlock;
            const auto x = random_sparse<double>(n, k, 0.4, true, rng);
            const SparseRows s = compress(x, n, k);
            BOOST_TEST(s.blocks == (k + block - 1) / block);
            std::int64_t want = 0;
            for (std::int64_t i = 0; i < n; ++i)
                for (std::int64_t b = 0; b < s.blocks; ++b) {
                    // Entries before the end are in columns below the block's end, the rest at or after it.
                    const std::int64_t end = s.block_end[std::size_t(i * s.blocks + b)];
                    BOOST_TEST_REQUIRE(end >= s.row_begin[std::size_t(i)]);
                    BOOST_TEST_REQUIRE(end <= s.row_end[std::size_t(i)]);
                    std::int64_t below = 0;
                    for (std::int64_t j = 0; j < std::min(k, (b + 1) * block); ++j) below += x[std::size_t(i * k + j)] != 0;
                    BOOST_TEST_REQUIRE(end - s.row_begin[std::size_t(i)] == below);
                    if (b == s.blocks - 1) BOOST_TEST_REQUIRE(end == s.row_end[std::size_t(i)]);
                }
            for (double v : x) want += v != 0;
            BOOST_TEST(s.nonzeros == want);
            BOOST_TEST(s.density() == double(want) / double(n * k));
        }
}

BOOST_AUTO_TEST_CASE(the_products_give_the_same_bits_on_1_2_and_3_threads) {
    Rng rng(4);
    // 1000 rows: the weight gradient sums them in 4 chunks, which 3 threads split unevenly
    const std::int64_t n = 1000, k = 784, m = 100;
    const auto x = random_sparse<float>(n, k, 0.2, true, rng);
    const auto w = random_dense<float>(k * m, rng), g = random_dense<float>(n * m, rng);
    const SparseRows s = compress(x, n, k);
    std::vector<float> y1(std::size_t(n * m)), dw1(std::size_t(k * m));
    sparse_rows_times<float>(s, w.data(), m, y1.data(), false, nullptr);
    sparse_transposed_times(s, g.data(), m, dw1.data(), nullptr);
    for (int threads : {2, 3}) {
        Workers workers(threads);
        std::vector<float> y(y1.size()), dw(dw1.size());
        sparse_rows_times<float>(s, w.data(), m, y.data(), false, &workers);
        sparse_transposed_times(s, g.data(), m, dw.data(), &workers);
        BOOST_TEST(y == y1);
        BOOST_TEST(dw == dw1);
    }
}

namespace {

// MNIST-shaped pixels, each nonzero with probability `density` (the rest 0, as MNIST's background).
data::Dataset synthetic(std::int64_t rows, double density, std::uint64_t seed = 11) {
    data::Dataset ds;
    ds.kind = "idx";
    ds.classes = 10;
    for (int c = 0; c < 10; ++c) ds.class_names.push_back(std::to_string(c));
    Rng rng(seed);
    for (data::Split* s : {&ds.train, &ds.test}) {
        s->count = s == &ds.train ? rows : 200;
        s->features = 784;
        s->sample_dims = {28, 28};
        for (std::int64_t i = 0; i < s->count * 784; ++i)
            s->pixels.push_back(rng.uniform(0, 1) < density ? std::uint8_t(1 + rng.below(255)) : 0);
        for (std::int64_t i = 0; i < s->count; ++i) s->labels.push_back(std::int32_t(rng.below(10)));
    }
    return ds;
}

struct Setup {
    Model model;
    TrainingSpec spec;
    data::Dataset ds;
};

Setup setup(const std::string& name, const std::string& dtype, double density) {
    const std::string path = testing::source_root() + "/models/" + name + ".json";
    Json j = read_json_file(path);
    j["dtype"] = dtype;
    Setup s{parse_model(j.dump(), path), {}, synthetic(1000, density)};
    s.spec = parse_training(s.model.training, s.model.graph, s.model.path, s.model.dir);
    s.spec.sparse_inputs = true;
    return s;
}

std::vector<std::int64_t> first_rows(std::int64_t n) {
    std::vector<std::int64_t> rows(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) rows[std::size_t(i)] = (i * 37) % 1000;
    return rows;
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_feeder_builds_the_form_only_below_the_threshold) {
    for (const char* dtype : {"float32", "float64"})
        for (double density : {0.2, 0.45, 0.55, 0.9})
            BOOST_TEST_CONTEXT(dtype << ", pixel density " << density) {
                Setup s = setup("mnist_lecture", dtype, density);
                Graph& g = s.model.graph;
                const int x = g.id("x");
                BOOST_TEST(feeds_sparse_product(g, x));
                BOOST_TEST(!feeds_sparse_product(g, g.id("t")));
                Feeder feeder(g, s.spec, s.ds, nullptr, 0.5);
                const auto rows = first_rows(300);
                feeder.feed(s.ds.train, rows);
                BOOST_REQUIRE(feeder.sparse_inputs().size() == 1u);
                BOOST_TEST(feeder.sparse_inputs()[0].first == x);
                const SparseRows& form = *feeder.sparse_inputs()[0].second;
                if (density >= 0.5) {
                    // a split this dense as a whole gets no form: nothing is compacted
                    BOOST_TEST(!form.current);
                    BOOST_TEST(form.nonzeros == 0);
                    continue;
                }
                std::int64_t nonzero = 0;
                for (std::int64_t r : rows)
                    for (std::int64_t k = 0; k < 784; ++k) nonzero += s.ds.train.pixels[std::size_t(r * 784 + k)] != 0;
                BOOST_TEST(form.nonzeros == nonzero);
                BOOST_TEST(form.current == (density < 0.5));
                BOOST_TEST(std::abs(form.density() - density) < 0.02);
                // the row form holds the dense buffer's nonzeros, bit for bit, in column order
                const Tensor& v = g.node(x).value;
                for (std::int64_t i = 0; i < 300; ++i) {
                    std::int64_t e = form.row_begin[std::size_t(i)];
                    for (std::int64_t k = 0; k < 784; ++k) {
                        if (v.at(i * 784 + k) == 0) continue;
                        BOOST_TEST_REQUIRE(form.row_index[std::size_t(e)] == k);
                        const double stored = v.dtype() == Dtype::f32 ? form.row_values_f32[std::size_t(e)]
                                                                      : form.row_values_f64[std::size_t(e)];
                        BOOST_TEST_REQUIRE(stored == v.at(i * 784 + k));
                        ++e;
                    }
                    BOOST_TEST_REQUIRE(e == form.row_end[std::size_t(i)]);
                }
            }
}

// The threshold holds per batch inside a split sparse enough as a whole, and a batch from a
// split too dense for forms leaves no earlier batch's form standing for it.
BOOST_AUTO_TEST_CASE(each_batch_is_measured_and_a_dense_split_clears_the_form) {
    Setup s = setup("mnist_lecture", "float64", 0.2);
    Graph& g = s.model.graph;
    const int x = g.id("x");
    // rows 0..449 of the training split dense, 450..999 empty: 0.45 in all
    for (std::int64_t i = 0; i < 1000 * 784; ++i) s.ds.train.pixels[std::size_t(i)] = i < 450 * 784 ? 200 : 0;
    // the test split: every pixel nonzero
    std::fill(s.ds.test.pixels.begin(), s.ds.test.pixels.end(), std::uint8_t(9));
    Feeder feeder(g, s.spec, s.ds, nullptr, 0.5);
    BOOST_REQUIRE(feeder.sparse_inputs().size() == 1u);
    const SparseRows& form = *feeder.sparse_inputs()[0].second;
    std::vector<std::int64_t> dense_rows, empty_rows;
    for (std::int64_t i = 0; i < 100; ++i) dense_rows.push_back(i), empty_rows.push_back(500 + i);
    feeder.feed(s.ds.train, dense_rows);
    BOOST_TEST(!form.current);
    BOOST_TEST(form.density() == 1.0);
    feeder.feed(s.ds.train, empty_rows);
    BOOST_TEST(form.current);
    BOOST_TEST(form.nonzeros == 0);
    feeder.feed(s.ds.test, dense_rows);
    BOOST_TEST(!form.current);
    BOOST_TEST(g.node(x).value.at(0) == 9.0 / 255.0);
}

BOOST_AUTO_TEST_CASE(sparse_inputs_off_builds_no_form) {
    Setup s = setup("mnist_lecture", "float32", 0.2);
    s.spec.sparse_inputs = false;
    Feeder feeder(s.model.graph, s.spec, s.ds);
    feeder.feed(s.ds.train, first_rows(100));
    BOOST_TEST(feeder.sparse_inputs().empty());
}

namespace {

struct StepResult {
    double loss;
    std::vector<Tensor> grads;
};

// One forward and backward of a fed batch; `sparse_form` decides whether the feeder builds
// the nonzeros, `pass` whether they are used.
StepResult one_step(const std::string& model, const std::string& dtype, bool sparse_form, const Pass& pass,
                    Workers* workers = nullptr) {
    Setup s = setup(model, dtype, 0.19);
    s.spec.sparse_inputs = sparse_form;
    Graph& g = s.model.graph;
    g.init_parameters(3);
    Feeder feeder(g, s.spec, s.ds, workers);
    feeder.feed(s.ds.train, first_rows(500));
    Pass p = pass;
    p.workers = workers;
    if (!p.keep_intermediates) p.sparse_inputs = feeder.sparse_inputs();  // as the trainer lends them
    forward_backward_once(g, p);
    StepResult r{g.node(g.loss()).value.at(0), {}};
    for (int id : g.parameters()) r.grads.push_back(g.node(id).grad);
    return r;
}

bool same_bits(const Tensor& a, const Tensor& b) {
    if (a.dims() != b.dims() || a.dtype() != b.dtype()) return false;
    for (std::int64_t i = 0; i < a.numel(); ++i)
        if (a.at(i) != b.at(i)) return false;
    return true;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_training_step_matches_the_dense_path_and_only_training_passes_use_it) {
    for (const char* model : {"mnist_lecture", "mnist_mlp", "mnist_relu_softmax"})
        for (const char* dtype : {"float32", "float64"})
            BOOST_TEST_CONTEXT(model << " " << dtype) {
                const StepResult dense = one_step(model, dtype, false, Pass::training());
                const StepResult sparse = one_step(model, dtype, true, Pass::training());
                const double tol = std::string(dtype) == "float64" ? 1e-12 : 2e-5;
                BOOST_TEST(std::abs(sparse.loss - dense.loss) <= tol * std::abs(dense.loss));
                bool some_bit_differs = false;
                for (std::size_t p = 0; p < dense.grads.size(); ++p) {
                    double scale = 0, gap = 0;
                    for (std::int64_t i = 0; i < dense.grads[p].numel(); ++i) {
                        scale = std::max(scale, std::abs(dense.grads[p].at(i)));
                        gap = std::max(gap, std::abs(dense.grads[p].at(i) - sparse.grads[p].at(i)));
                    }
                    BOOST_TEST(gap <= 10 * tol * scale, "parameter " << p << ": gap " << gap << ", scale " << scale);
                    some_bit_differs = some_bit_differs || !same_bits(dense.grads[p], sparse.grads[p]);
                }
                BOOST_TEST(some_bit_differs);  // the sparse path did run (its summation order differs)
                // exact passes (grad, gradcheck, step, dot) are lent no form: the dense path
                for (const Pass& pass : {Pass::exact(), Pass::inspect()}) {
                    const StepResult a = one_step(model, dtype, true, pass), b = one_step(model, dtype, false, pass);
                    BOOST_TEST(a.loss == b.loss);
                    for (std::size_t p = 0; p < a.grads.size(); ++p) BOOST_TEST(same_bits(a.grads[p], b.grads[p]));
                }
                // the same bits on 1, 2 and 3 threads
                for (int threads : {2, 3}) {
                    Workers workers(threads);
                    const StepResult t = one_step(model, dtype, true, Pass::training(), &workers);
                    BOOST_TEST(t.loss == sparse.loss);
                    for (std::size_t p = 0; p < t.grads.size(); ++p) BOOST_TEST(same_bits(t.grads[p], sparse.grads[p]));
                }
            }
}

namespace {

std::vector<EpochMetrics> short_run(const std::string& dtype, bool sparse, double density, int threads = 1) {
    Setup s = setup("mnist_lecture", dtype, density);
    s.spec.sparse_inputs = sparse;
    s.spec.epochs = 3;
    s.spec.batch_size = 200;
    s.spec.batches_per_epoch = 5;
    TrainOptions o;
    o.threads = threads;
    o.print = [](const std::string&) {};
    return train(s.model, s.spec, s.ds, o);
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_short_lecture_run_gives_the_same_losses_sparse_and_dense) {
    for (const char* dtype : {"float32", "float64"})
        BOOST_TEST_CONTEXT(dtype) {
            const auto dense = short_run(dtype, false, 0.19), sparse = short_run(dtype, true, 0.19);
            const double tol = std::string(dtype) == "float64" ? 1e-12 : 1e-5;
            BOOST_REQUIRE(dense.size() == sparse.size());
            for (std::size_t e = 0; e < dense.size(); ++e) {
                BOOST_TEST(std::abs(dense[e].train_loss - sparse[e].train_loss) <= tol * dense[e].train_loss);
                BOOST_TEST(std::abs(dense[e].test_loss - sparse[e].test_loss) <= tol * dense[e].test_loss);
            }
            // off is the dense path itself: a run whose batches are too dense for the form gives
            // the same bits as one with it off
            const auto off = short_run(dtype, false, 0.9), above = short_run(dtype, true, 0.9);
            for (std::size_t e = 0; e < off.size(); ++e) {
                BOOST_TEST(off[e].train_loss == above[e].train_loss);
                BOOST_TEST(off[e].test_accuracy == above[e].test_accuracy);
            }
            const auto two = short_run(dtype, true, 0.19, 2);
            for (std::size_t e = 0; e < two.size(); ++e) BOOST_TEST(two[e].train_loss == sparse[e].train_loss);
        }
}

BOOST_AUTO_TEST_CASE(the_setting_is_auto_or_off) {
    Setup s = setup("mnist_lecture", "float32", 0.2);
    BOOST_TEST(parse_training(s.model.training, s.model.graph, "m.json", ".").sparse_inputs);  // auto by default
    Json training = s.model.training;
    training["sparse_inputs"] = "off";
    BOOST_TEST(!parse_training(training, s.model.graph, "m.json", ".").sparse_inputs);
    training["sparse_inputs"] = "auto";
    BOOST_TEST(parse_training(training, s.model.graph, "m.json", ".").sparse_inputs);
    training["sparse_inputs"] = "on";
    const std::string msg =
        testing::message_of<InputError>([&] { parse_training(training, s.model.graph, "m.json", "."); });
    CHECK_HAS(msg, "m.json: training.sparse_inputs: expected \"auto\" or \"off\", got \"on\"");
    training["sparse_inputs"] = true;
    CHECK_HAS(testing::message_of<InputError>([&] { parse_training(training, s.model.graph, "m.json", "."); }),
              "m.json: training.sparse_inputs");
}

// Widths that are not a multiple of the compaction's 16 (or 8) lanes, on helper threads: the
// row form holds exactly the dense batch's nonzeros, its block index is the one index_row
// computes, and both are the same when the batch is converted in 2 or 3 parts.
BOOST_AUTO_TEST_CASE(the_forms_are_exact_for_any_width_and_any_number_of_parts) {
    for (Dtype dtype : {Dtype::f32, Dtype::f64})
        for (std::int64_t width : {1, 7, 21, 33, 784, 790})
            BOOST_TEST_CONTEXT(dtype_name(dtype) << ", width " << width) {
                Rng rng{std::uint64_t(width)};
                data::Dataset ds;
                ds.kind = "idx";
                ds.classes = 10;
                data::Split& split = ds.train;
                split.count = 120;
                split.features = width;
                split.sample_dims = {1, width};
                for (std::int64_t i = 0; i < split.count * width; ++i)
                    split.pixels.push_back(rng.uniform(0, 1) < 0.3 ? std::uint8_t(1 + rng.below(255)) : 0);
                for (std::int64_t i = 0; i < split.count; ++i) split.labels.push_back(0);
                std::vector<std::int64_t> rows;
                for (std::int64_t i = 0; i < 97; ++i) rows.push_back((i * 13) % split.count);
                Tensor x(dtype, {97, width});
                SparseRows one;
                data::gather(ds, split, "images", rows, x, {}, &one);
                BOOST_TEST_REQUIRE(one.finish(1.5));
                // The block index the compaction wrote is the one index_row computes.
                SparseRows reindexed = one;
                for (std::int64_t i = 0; i < 97; ++i) reindexed.index_row(i);
                BOOST_TEST(reindexed.block_end == one.block_end);
                for (std::int64_t i = 0; i < 97; ++i) {
                    std::int64_t e = one.row_begin[std::size_t(i)];
                    for (std::int64_t k = 0; k < width; ++k) {
                        if (x.at(i * width + k) == 0) continue;
                        BOOST_TEST_REQUIRE(one.row_index[std::size_t(e)] == k);
                        const double stored = dtype == Dtype::f32 ? one.row_values_f32[std::size_t(e)]
                                                                  : one.row_values_f64[std::size_t(e)];
                        BOOST_TEST_REQUIRE(stored == x.at(i * width + k));
                        ++e;
                    }
                    BOOST_TEST_REQUIRE(e == one.row_end[std::size_t(i)]);
                    // packed: in one part, a row starts where the one before ends
                    BOOST_TEST_REQUIRE(one.row_begin[std::size_t(i)] == (i == 0 ? 0 : one.row_end[std::size_t(i - 1)]));
                }
                for (int threads : {2, 3}) {
                    Workers w(threads);
                    data::RowSplitter on_workers = [&w](std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& part) {
                        auto run_part = [&part](std::int64_t b, std::int64_t e) { part(b, e); };
                        w.run(n, run_part);
                    };
                    SparseRows parts;
                    Tensor y(dtype, {97, width});
                    data::gather(ds, split, "images", rows, y, on_workers, &parts);
                    BOOST_TEST_REQUIRE(parts.finish(1.5));
                    BOOST_TEST(parts.nonzeros == one.nonzeros);
                    // each part packs its rows from its own first slot: the same entries and
                    // block index, at other places
                    for (std::int64_t i = 0; i < 97; ++i) {
                        const std::int64_t a = one.row_begin[std::size_t(i)], b = parts.row_begin[std::size_t(i)];
                        const std::int64_t count = one.row_end[std::size_t(i)] - a;
                        BOOST_TEST_REQUIRE(parts.row_end[std::size_t(i)] - b == count);
                        for (std::int64_t e = 0; e < count; ++e)
                            BOOST_TEST_REQUIRE(parts.row_index[std::size_t(b + e)] == one.row_index[std::size_t(a + e)]);
                        for (std::int64_t blk = 0; blk < one.blocks; ++blk)
                            BOOST_TEST_REQUIRE(parts.block_end[std::size_t(i * one.blocks + blk)] - b ==
                                               one.block_end[std::size_t(i * one.blocks + blk)] - a);
                    }
                }
            }
}

// The plain compaction (the one CPUs without AVX-512 run) gives the entries and block index
// that index_row computes from the same entries.
BOOST_AUTO_TEST_CASE(the_plain_compaction_writes_the_block_index) {
    Rng rng(21);
    for (std::int64_t width : {1, 31, 32, 33, 784})
        BOOST_TEST_CONTEXT("width " << width) {
            std::vector<std::uint8_t> px(static_cast<std::size_t>(width));
            std::vector<float> o(px.size());
            for (std::size_t k = 0; k < px.size(); ++k) {
                px[k] = rng.uniform(0, 1) < 0.3 ? std::uint8_t(1 + rng.below(255)) : 0;
                o[k] = data::scale_pixel<float>(px[k]);
            }
            SparseRows s;
            s.reshape(Dtype::f32, 2, width);
            const std::int64_t base = s.row_begin[1];
            s.row_end[1] = base + data::compact_pixel_row(px.data(), o.data(), width, s.row_index.data() + base,
                                                          s.row_values_f32.data() + base, base,
                                                          s.block_end.data() + s.blocks);
            const std::vector<std::int64_t> written(s.block_end.begin() + s.blocks, s.block_end.end());
            s.index_row(1);
            BOOST_TEST(std::vector<std::int64_t>(s.block_end.begin() + s.blocks, s.block_end.end()) == written);
            std::int64_t e = base;
            for (std::int64_t k = 0; k < width; ++k)
                if (px[std::size_t(k)] != 0) {
                    BOOST_TEST_REQUIRE(s.row_index[std::size_t(e)] == k);
                    BOOST_TEST_REQUIRE(s.row_values_f32[std::size_t(e++)] == o[std::size_t(k)]);
                }
            BOOST_TEST(e == s.row_end[1]);
        }
}
