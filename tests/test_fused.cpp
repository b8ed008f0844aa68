// The engine's fused passes (graph/fusion.cpp) against the ops run one by one: forward
// values, every gradient, and parameters after several SGD steps, in float32 and float64,
// bit for bit; the chains that must not fuse; the vectorized sigmoid against std::exp; the
// batch conversion of pixels against v / 255; the helper threads that share that pass.
#define BOOST_TEST_MODULE fused
#include <boost/test/unit_test.hpp>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>

#include "data/dataset.hpp"
#include "graph/graph.hpp"
#include "cpu/workers.hpp"
#include "ops/kernels.hpp"
#include "testing.hpp"

using namespace chainrule;

namespace {

// A graph builder: fills in a fresh graph of the given dtype.
using Build = std::function<void(Graph&)>;

void mlp(Graph& g) {
    g.input("x", {{0, "N"}, {6, {}}});
    g.input("t", {{0, "N"}, {4, {}}});
    g.parameter("W1", fixed_shape({6, 5}), Init::normal(0, 1));
    g.parameter("b1", fixed_shape({5}), Init::normal(0, 0.5));
    g.parameter("W2", fixed_shape({5, 4}), Init::normal(0, 1));
    g.parameter("b2", fixed_shape({4}), Init::normal(0, 0.5));
    g.op("xW1", "matmul", {"x", "W1"});
    g.op("a1", "add", {"xW1", "b1"});
    g.op("y1", "sigmoid", {"a1"});
    g.op("y1W2", "matmul", {"y1", "W2"});
    g.op("a2", "add", {"y1W2", "b2"});
    g.op("y2", "sigmoid", {"a2"});
    g.op("S", "normalize", {"y2"});
    g.op("L", "mse", {"S", "t"});
    g.set_output("prediction", "S");
    g.set_output("loss", "L");
}

// The lecture's update: add → lecture_sigmoid_normalize, so the second add fuses without a sigmoid.
void lecture(Graph& g) {
    g.input("x", {{0, "N"}, {6, {}}});
    g.input("t", {{0, "N"}, {4, {}}});
    g.parameter("W1", fixed_shape({6, 5}), Init::normal(0, 1));
    g.parameter("b1", fixed_shape({5}), Init::constant(0.1));
    g.parameter("W2", fixed_shape({5, 4}), Init::normal(0, 1));
    g.parameter("b2", fixed_shape({4}), Init::constant(0.1));
    g.op("xW1", "matmul", {"x", "W1"});
    g.op("a1", "add", {"xW1", "b1"});
    g.op("y1", "sigmoid", {"a1"});
    g.op("y1W2", "matmul", {"y1", "W2"});
    g.op("a2", "add", {"y1W2", "b2"});
    g.op("S", "lecture_sigmoid_normalize", {"a2"});
    g.op("L", "mse", {"S", "t"});
    g.set_output("prediction", "S");
    g.set_output("loss", "L");
}

// The Iris neuron's shape: one output column, bias [1] written first, bias [1,m] elsewhere.
void neuron(Graph& g) {
    g.input("x", {{0, "N"}, {6, {}}});
    g.input("t", {{0, "N"}, {1, {}}});
    g.parameter("w", fixed_shape({6, 3}), Init::normal(0, 1));
    g.parameter("c", fixed_shape({1, 3}), Init::normal(0, 1));
    g.parameter("v", fixed_shape({3, 1}), Init::normal(0, 1));
    g.parameter("b", fixed_shape({1}), Init::constant(0.1));
    g.op("z", "matmul", {"x", "w"});
    g.op("h", "add", {"z", "c"});
    g.op("y", "sigmoid", {"h"});
    g.op("u", "matmul", {"y", "v"});
    g.op("a", "add", {"b", "u"});
    g.op("yhat", "sigmoid", {"a"});
    g.op("L", "mse", {"yhat", "t"});
    g.set_output("prediction", "yhat");
    g.set_output("loss", "L");
}

// Chains that must not fuse, or only partly: a matmul read twice (its add still gets the
// bias backward), an add that is an output and read twice (no sigmoid in its chain),
// normalize along the first axis, mse with the target first.
void partly(Graph& g) {
    g.input("x", {{0, "N"}, {6, {}}});
    g.input("t", {{0, "N"}, {4, {}}});
    g.parameter("W1", fixed_shape({6, 4}), Init::normal(0, 1));
    g.parameter("b1", fixed_shape({4}), Init::normal(0, 0.5));
    g.parameter("W2", fixed_shape({4, 4}), Init::normal(0, 1));
    g.parameter("b2", fixed_shape({4}), Init::normal(0, 0.5));
    g.op("z", "matmul", {"x", "W1"});
    g.op("a", "add", {"z", "b1"});
    g.op("zz", "mul", {"z", "a"});         // z read twice
    g.op("y", "sigmoid", {"zz"});
    g.op("q", "matmul", {"y", "W2"});
    g.op("p", "add", {"q", "b2"});        // an output
    g.op("s", "sigmoid", {"p"});
    g.op("twice", "add", {"s", "p"});      // p read twice
    g.op("n", "normalize", {"twice"}, {{"axis", 0}});
    g.op("L", "mse", {"t", "n"});          // target first
    g.set_output("prediction", "p");
    g.set_output("loss", "L");
}

// A sequence's shapes: x [N,3,6] times W [6,5] is a batched matmul, its output rows of 5;
// biases [1,5] and [4] fuse, a position table [3,4] added to every sequence does not.
void sequence(Graph& g) {
    g.input("x", {{0, "N"}, {3, {}}, {6, {}}});
    g.input("t", {{0, "N"}, {3, {}}, {4, {}}});
    g.parameter("W1", fixed_shape({6, 5}), Init::normal(0, 1));
    g.parameter("b1", fixed_shape({1, 5}), Init::normal(0, 0.5));
    g.parameter("W2", fixed_shape({5, 4}), Init::normal(0, 1));
    g.parameter("b2", fixed_shape({4}), Init::normal(0, 0.5));
    g.parameter("pos", fixed_shape({3, 4}), Init::normal(0, 0.5));
    g.op("xW1", "matmul", {"x", "W1"});
    g.op("a1", "add", {"xW1", "b1"});
    g.op("y1", "sigmoid", {"a1"});
    g.op("y1W2", "matmul", {"y1", "W2"});
    g.op("a2", "add", {"y1W2", "b2"});
    g.op("p", "add", {"a2", "pos"});
    g.op("L", "mse", {"p", "t"});
    g.set_output("prediction", "p");
    g.set_output("loss", "L");
}

struct Case {
    const char* name;
    Build build;
    std::vector<std::string> fusions;  // expected, forward then backward
};

std::vector<Case> cases() {
    return {
        {"mlp", mlp,
         {"forward dense: xW1 → a1 → y1", "forward dense: y1W2 → a2 → y2", "backward mse_normalize: S ← L",
          "backward sigmoid_bias: a2 ← y2", "backward sigmoid_bias: a1 ← y1"}},
        {"lecture", lecture,
         {"forward dense: xW1 → a1 → y1", "forward dense: y1W2 → a2", "backward bias: a2",
          "backward sigmoid_bias: a1 ← y1"}},
        {"neuron", neuron,
         {"forward dense: z → h → y", "forward dense: u → a → yhat", "backward sigmoid_bias: a ← yhat",
          "backward sigmoid_bias: h ← y"}},
        {"partly", partly, {"forward dense: q → p", "backward bias: p", "backward bias: a"}},
        {"sequence", sequence,
         {"forward dense: xW1 → a1 → y1", "forward dense: y1W2 → a2", "backward bias: a2",
          "backward sigmoid_bias: a1 ← y1"}},
    };
}

Graph make(const Case& c, Dtype dtype, std::uint64_t seed = 5) {
    Graph g(dtype);
    c.build(g);
    g.init_parameters(seed);
    return g;
}

// A batch: x normal, t one-hot rows (or 0/1 labels for one column).
void feed(Graph& g, std::int64_t rows, Rng& rng) {
    auto dims = [&](const char* name) {  // the input's dims with `rows` for the batch
        Dims d{rows};
        for (std::size_t k = 1; k < g.node(g.id(name)).shape.size(); ++k) d.push_back(g.node(g.id(name)).shape[k].size);
        return d;
    };
    Tensor xv = testing::random_tensor(dims("x"), Domain::real, rng);
    Tensor tv = testing::random_tensor(dims("t"), Domain::one_hot, rng);
    if (tv.dims().back() == 1)
        for (std::int64_t i = 0; i < rows; ++i) tv.set(i, double(rng.below(2)));
    g.set_value("x", xv);
    g.set_value("t", tv);
}

bool same_bits(const Tensor& a, const Tensor& b) {
    return a.dtype() == b.dtype() && a.dims() == b.dims() &&
           std::memcmp(a.dtype() == Dtype::f32 ? (const void*)a.data<float>() : (const void*)a.data<double>(),
                       b.dtype() == Dtype::f32 ? (const void*)b.data<float>() : (const void*)b.data<double>(),
                       std::size_t(a.numel()) * dtype_size(a.dtype())) == 0;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
    double d = 0;
    for (std::int64_t i = 0; i < a.numel(); ++i) d = std::max(d, std::abs(a.at(i) - b.at(i)));
    return d;
}

// Every op node's value computed by its op alone, in node order, from the graph's inputs
// and parameters.
std::map<std::string, Tensor> values_one_by_one(const Graph& g) {
    std::map<std::string, Tensor> v;
    for (const Node& n : g.nodes()) {
        if (n.kind != NodeKind::op) {
            v[n.name] = n.value;
            continue;
        }
        std::vector<const Tensor*> in;
        for (int j : n.inputs) in.push_back(&v.at(g.node(j).name));
        Tensor out(g.dtype(), n.value.dims());
        n.op->forward(ForwardCall{in, out, n.attrs});
        v[n.name] = std::move(out);
    }
    return v;
}

// Gradients from the node-by-node walk (the stepper's path, never fused).
// (A plan that keeps contributions apart fuses no backward step.)
std::map<std::string, Tensor> grads_one_by_one(Graph& g, Pass pass = {}) {
    pass.keep_contributions = true;
    Plan plan = g.plan(pass);
    g.forward(plan);
    g.backward_begin(plan);
    for (int id : plan.backward_order()) g.backward_node(plan, id);
    g.backward_end(plan);
    std::map<std::string, Tensor> out;
    for (std::size_t id = 0; id < g.size(); ++id)
        if (plan.wants_grad(int(id))) out[g.node(int(id)).name] = g.node(int(id)).grad;
    return out;
}

void sgd(Graph& g, double lr) {
    for (int id : g.parameters()) {
        Node& n = g.node(id);
        for (std::int64_t i = 0; i < n.value.numel(); ++i) n.value.set(i, n.value.at(i) - lr * n.grad.at(i));
    }
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_expected_chains_fuse_and_the_others_do_not) {
    for (const Case& c : cases()) {
        Graph g = make(c, Dtype::f64);
        Rng rng(1);
        feed(g, 7, rng);
        BOOST_TEST(g.plan().fusions() == c.fusions, c.name);
    }
}

BOOST_AUTO_TEST_CASE(fused_forward_and_backward_equal_the_ops_one_by_one) {
    for (const Case& c : cases())
        for (Dtype dt : {Dtype::f32, Dtype::f64})
            for (bool input_grads : {false, true}) {
                BOOST_TEST_CONTEXT(c.name << " " << dtype_name(dt) << (input_grads ? " with input gradients" : "")) {
                    Graph g = make(c, dt);
                    const Pass pass{.input_grads = input_grads};
                    Plan plan = g.plan(pass);
                    Rng rng(2);
                    feed(g, 9, rng);
                    g.forward(plan);
                    auto want = values_one_by_one(g);
                    for (const Node& n : g.nodes())
                        BOOST_TEST(same_bits(n.value, want.at(n.name)), "value of " << n.name);
                    g.backward(plan);
                    std::map<std::string, Tensor> fused;
                    for (std::size_t id = 0; id < g.size(); ++id)
                        if (plan.wants_grad(int(id))) fused[g.node(int(id)).name] = g.node(int(id)).grad;
                    // The stepper's walk keeps contributions apart and must agree.
                    auto walked = grads_one_by_one(g, pass);
                    BOOST_TEST(fused.size() == walked.size());
                    for (const auto& [name, grad] : walked) {
                        BOOST_TEST(same_bits(fused.at(name), grad), "gradient of " << name);
                        BOOST_TEST(max_abs_diff(fused.at(name), grad) == 0.0);
                    }
                }
            }
}

BOOST_AUTO_TEST_CASE(training_without_intermediates_ends_with_the_same_parameters) {
    for (const Case& c : cases())
        for (Dtype dt : {Dtype::f32, Dtype::f64}) {
            BOOST_TEST_CONTEXT(c.name << " " << dtype_name(dt)) {
                Graph fast = make(c, dt), slow = make(c, dt);
                Rng ra(3), rb(3);
                for (int step = 0; step < 6; ++step) {
                    std::int64_t rows = 5 + step % 3;  // the plan is rebuilt when the batch changes
                    feed(fast, rows, ra);
                    feed(slow, rows, rb);
                    forward_backward_once(fast, Pass::training());
                    forward_once(slow);
                    auto want = values_one_by_one(slow);
                    grads_one_by_one(slow);
                    BOOST_TEST(same_bits(fast.node(fast.loss()).value, want.at("L")), "loss at step " << step);
                    int pred = fast.prediction();
                    BOOST_TEST(same_bits(fast.node(pred).value, want.at(fast.node(pred).name)), "prediction");
                    for (int id : fast.parameters())
                        BOOST_TEST(same_bits(fast.node(id).grad, slow.node(id).grad),
                                   "gradient of " << fast.node(id).name << " at step " << step);
                    sgd(fast, 0.5);
                    sgd(slow, 0.5);
                }
                for (int id : fast.parameters())
                    BOOST_TEST(same_bits(fast.node(id).value, slow.node(id).value), fast.node(id).name);
                // Intermediates come back when asked for again.
                forward_once(fast);
                auto want = values_one_by_one(fast);
                for (const Node& n : fast.nodes()) BOOST_TEST(same_bits(n.value, want.at(n.name)), n.name);
            }
        }
}

BOOST_AUTO_TEST_CASE(two_plans_of_one_graph_do_not_disturb_each_other) {
    // The stepper's plan fuses no backward step and gives inputs gradients; the default plan,
    // run in between with other rows, is the default still, and each keeps its own state.
    const Case c = cases()[0];
    Graph g = make(c, Dtype::f64);
    Plan stepping = g.plan(Pass::stepping()), plain = g.plan();
    std::vector<std::string> forward_only(c.fusions.begin(), c.fusions.begin() + 2);
    BOOST_TEST(stepping.fusions() == forward_only, boost::test_tools::per_element());
    BOOST_TEST(plain.fusions() == c.fusions, boost::test_tools::per_element());
    BOOST_TEST(stepping.wants_grad(g.id("x")));
    BOOST_TEST(!plain.wants_grad(g.id("x")));
    Rng rng(5);
    feed(g, 4, rng);
    g.forward(stepping);
    g.backward(stepping);
    const Tensor w1 = g.grad("W1");
    feed(g, 7, rng);
    g.forward(plain);
    g.backward(plain);
    BOOST_TEST(g.value("x").dim(0) == 7);
    BOOST_TEST(!same_bits(g.grad("W1"), w1));
}

BOOST_AUTO_TEST_CASE(without_intermediates_the_chain_inside_is_not_written) {
    // Not keeping intermediates is a real saving, not a flag that does nothing: the values
    // and gradients inside a fused chain keep what an earlier pass left there.
    Graph g = make(cases()[0], Dtype::f64);
    Rng rng(4);
    feed(g, 6, rng);
    forward_backward_once(g);
    Tensor a1 = g.value("a1"), ga1 = g.grad("a1"), gS = g.grad("S");
    feed(g, 6, rng);
    forward_backward_once(g, Pass::training());
    BOOST_TEST(same_bits(g.value("a1"), a1));
    BOOST_TEST(same_bits(g.grad("a1"), ga1));
    BOOST_TEST(same_bits(g.grad("S"), gS));
    BOOST_TEST(!same_bits(g.value("y1"), a1));
}

namespace {

// sigmoid through std::exp, the way sigmoid.cpp computed it before its loop was vectorized.
template <class T>
T reference_sigmoid(T x) {
    if (x >= 0) return T(1) / (T(1) + std::exp(-x));
    T e = std::exp(x);
    return e / (T(1) + e);
}

template <class T>
Tensor sigmoid_of(const std::vector<double>& xs) {
    Tensor in(dtype_of<T>(), {std::int64_t(xs.size())}), out(dtype_of<T>(), {std::int64_t(xs.size())});
    for (std::size_t i = 0; i < xs.size(); ++i) in.set(std::int64_t(i), xs[i]);
    const Tensor* ins[] = {&in};
    find_op("sigmoid")->forward(ForwardCall{ins, out, Attrs::object()});
    return out;
}

template <class T>
void check_sigmoid() {
    std::vector<double> xs;
    for (double x = -760; x <= 760; x += 0.0173) xs.push_back(x);
    for (double x = -20; x <= 20; x += 0.000731) xs.push_back(x);
    Tensor y = sigmoid_of<T>(xs);
    double worst = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) {
        T want = reference_sigmoid(T(xs[i]));
        T got = y.data<T>()[i];
        // relative error in units of the type's epsilon; tiny results are denormal
        double scale = std::max<double>(std::abs(double(want)), double(std::numeric_limits<T>::min()));
        worst = std::max(worst, std::abs(double(got) - double(want)) / scale / double(std::numeric_limits<T>::epsilon()));
    }
    BOOST_TEST(worst <= 2.0, "worst error " << worst << " epsilon");
    const double inf = std::numeric_limits<double>::infinity();
    Tensor e = sigmoid_of<T>({-1000, 1000, -inf, inf, 0, -0.0, -90, std::nan("")});
    BOOST_TEST(e.at(0) == 0.0);
    BOOST_TEST(e.at(1) == 1.0);
    BOOST_TEST(e.at(2) == 0.0);
    BOOST_TEST(e.at(3) == 1.0);
    BOOST_TEST(e.at(4) == 0.5);
    BOOST_TEST(e.at(5) == 0.5);
    BOOST_TEST(e.at(6) > 0.0);  // 8e-40: denormal in float32, still not flushed
    BOOST_TEST(e.at(6) == double(reference_sigmoid(T(-90))), boost::test_tools::tolerance(1e-5));
    BOOST_TEST(std::isnan(e.at(7)));
}

}  // namespace

BOOST_AUTO_TEST_CASE(vectorized_sigmoid_is_within_two_epsilon_of_std_exp) {
    check_sigmoid<float>();
    check_sigmoid<double>();
}

BOOST_AUTO_TEST_CASE(pixels_become_exactly_v_over_255) {
    data::Dataset ds;
    ds.kind = "idx";
    ds.classes = 10;
    ds.train.count = 3;
    ds.train.features = 256;
    ds.train.sample_dims = {256};
    for (int r = 0; r < 3; ++r)
        for (int v = 0; v < 256; ++v) ds.train.pixels.push_back(std::uint8_t(r == 1 ? 255 - v : v));
    ds.train.labels = {0, 1, 2};
    std::vector<std::int64_t> rows = {1, 0, 2, 1, 1, 0, 2, 0};  // more rows than the prefetch distance
    for (Dtype dt : {Dtype::f32, Dtype::f64}) {
        Tensor x(dt, {std::int64_t(rows.size()), 256});
        data::gather(ds, ds.train, "images", rows, x);
        bool exact = true;
        for (std::size_t i = 0; i < rows.size(); ++i)
            for (int k = 0; k < 256; ++k) {
                int v = rows[i] == 1 ? 255 - k : k;
                double got = x.at(std::int64_t(i) * 256 + k);
                double want = dt == Dtype::f32 ? double(float(v) / 255.0f) : double(v) / 255.0;
                exact = exact && got == want;
            }
        BOOST_TEST(exact, dtype_name(dt));
    }
}

BOOST_AUTO_TEST_CASE(workers_cover_every_index_once) {
    for (int threads : {1, 2, 3}) {
        Workers w(threads);
        BOOST_TEST(w.threads() == threads);
        for (std::int64_t n : {0, 1, 2, 5, 1000}) {
            std::vector<int> hits(static_cast<std::size_t>(n));
            auto f = [&](std::int64_t b, std::int64_t e) {
                for (std::int64_t i = b; i < e; ++i) ++hits[std::size_t(i)];
            };
            for (int rep = 0; rep < 50; ++rep) w.run(n, f);  // reused many times, as per step
            BOOST_TEST(std::all_of(hits.begin(), hits.end(), [](int h) { return h == 50; }),
                       threads << " threads, n = " << n);
        }
    }
}

BOOST_AUTO_TEST_CASE(images_gathered_in_parts_equal_one_pass) {
    // The trainer converts a batch of images on all workers; any split gives the same bits.
    data::Dataset ds;
    ds.kind = "idx";
    ds.classes = 10;
    ds.train.count = 300;
    ds.train.features = 784;
    ds.train.sample_dims = {28, 28};
    Rng rng(9);
    for (std::int64_t i = 0; i < 300 * 784; ++i) ds.train.pixels.push_back(std::uint8_t(rng.below(256)));
    ds.train.labels.assign(300, 0);
    std::vector<std::int64_t> rows(257);
    for (auto& r : rows) r = std::int64_t(rng.below(300));
    Workers w(2);
    // As the trainer splits: on the workers.
    data::RowSplitter on_workers = [&w](std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& part) {
        auto run_part = [&part](std::int64_t b, std::int64_t e) { part(b, e); };
        w.run(n, run_part);
    };
    // Uneven pieces, in reverse order.
    data::RowSplitter uneven = [](std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& part) {
        part(n / 3 + 5, n);
        part(1, n / 3 + 5);
        part(0, 1);
    };
    auto check = [&]<class T>() {
        Tensor want(dtype_of<T>(), {257, 784}), got(dtype_of<T>(), {257, 784});
        data::gather(ds, ds.train, "images", rows, want);
        for (const auto& splitter : {on_workers, uneven}) {
            std::fill(got.data<T>(), got.data<T>() + got.numel(), T(-1));
            data::gather(ds, ds.train, "images", rows, got, splitter);
            BOOST_TEST(same_bits(got, want), dtype_name(dtype_of<T>()));
        }
    };
    check.operator()<float>();
    check.operator()<double>();
}
