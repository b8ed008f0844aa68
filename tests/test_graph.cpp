// The engine: the lecture's worked example by hand, gradient accumulation, the shape
// assert, broadcasting reductions, normalize's exact Jacobian vs the lecture's shortcut,
// sigmoid at ±1000, float32 vs float64.
#define BOOST_TEST_MODULE graph
#include <boost/test/unit_test.hpp>
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>

#include "core/error.hpp"
#include "core/random.hpp"
#include "core/files.hpp"
#include "core/text.hpp"
#include "format/model_json.hpp"
#include "graph/gradcheck.hpp"
#include "graph/graph.hpp"
#include "testing.hpp"

using namespace chainrule;
namespace tt = boost::test_tools;

namespace {

Model worked_example(Dtype dtype = Dtype::f64) {
    std::string path = testing::source_root() + "/models/worked_example.json";
    std::string text = read_text_file(path);
    if (dtype == Dtype::f32) {
        Json j = parse_json_text(text, path);
        j["dtype"] = "float32";
        text = j.dump();
    }
    Model m = parse_model(text, path);
    m.graph.init_parameters(0);
    return m;
}

Tensor vec(std::initializer_list<double> v, Dims dims) {
    Tensor t(Dtype::f64, dims);
    std::int64_t i = 0;
    for (double x : v) t.set(i++, x);
    return t;
}

}  // namespace

BOOST_AUTO_TEST_CASE(worked_example_matches_the_lecture) {
    Model m = worked_example();
    Graph& g = m.graph;
    forward_backward_once(g);
    const Tensor& y = g.value("yhat");
    // y' = sigmoid(0.1·(sum of features) + 0.1), computed by hand.
    BOOST_TEST(y.at(0) == 0.753989, tt::tolerance(1e-6));
    BOOST_TEST(y.at(1) == 0.740775, tt::tolerance(1e-6));
    BOOST_TEST(y.at(2) == 0.738850, tt::tolerance(1e-6));
    BOOST_TEST(g.value("L").at(0) == 0.196933, tt::tolerance(1e-5));
    BOOST_TEST(g.grad("w").at(0) == 0.379799, tt::tolerance(1e-5));
    // One SGD step with eta = 0.5.
    double w0 = g.value("w").at(0) - 0.5 * g.grad("w").at(0);
    BOOST_TEST(w0 == -0.0899, tt::tolerance(1e-3));
    BOOST_TEST(std::abs(w0 - -0.0898995) < 1e-6);
}

BOOST_AUTO_TEST_CASE(backward_twice_gives_the_same_gradients_not_double) {
    Model m = worked_example();
    Plan plan = m.graph.plan();
    m.graph.forward(plan);
    m.graph.backward(plan);
    double first = m.graph.grad("w").at(0);
    m.graph.backward(plan);
    BOOST_TEST(m.graph.grad("w").at(0) == first);
}

BOOST_AUTO_TEST_CASE(a_node_used_twice_gets_both_contributions) {
    // b = (p + q) + p: dL/dp gets a contribution from each use.
    Graph g;
    g.parameter("p", fixed_shape({2, 3}), Init::constant(0.3));
    g.parameter("q", fixed_shape({2, 3}), Init::constant(-0.2));
    g.input("t", fixed_shape({2, 3}));
    g.op("a", "add", {"p", "q"});
    g.op("b", "add", {"a", "p"});
    g.op("L", "mse", {"b", "t"});
    g.set_output("loss", "L");
    g.init_parameters(0);
    Tensor t(Dtype::f64, {2, 3});
    for (std::int64_t i = 0; i < 6; ++i) t.set(i, 0.1 * double(i));
    g.set_value("t", t);
    forward_backward_once(g);
    // b = 2p + q = 0.4 everywhere; dL/db = (b - t)/N with N = 2 rows; dL/dp = 2·dL/db.
    for (std::int64_t i = 0; i < 6; ++i) {
        double db = (0.4 - 0.1 * double(i)) / 2.0;
        BOOST_TEST(g.grad("p").at(i) == 2 * db, tt::tolerance(1e-12));
        BOOST_TEST(g.grad("q").at(i) == db, tt::tolerance(1e-12));
    }
    GradcheckReport r = gradcheck(g, {.max_entries = 0});
    BOOST_TEST(r.ok);
    BOOST_TEST(!r.vacuous);
}

BOOST_AUTO_TEST_CASE(a_parameter_reaching_the_loss_through_two_paths) {
    // W is used by two matmuls whose results meet again: L = mse(σ(xW) + xW·1..., t).
    Graph g;
    g.input("x", fixed_shape({3, 2}));
    g.input("t", fixed_shape({3, 2}));
    g.parameter("W", fixed_shape({2, 2}), Init::normal(0, 1));
    g.op("xW", "matmul", {"x", "W"});
    g.op("s", "sigmoid", {"xW"});
    g.op("sW", "matmul", {"s", "W"});
    g.op("sum", "add", {"sW", "xW"});
    g.op("L", "mse", {"sum", "t"});
    g.set_output("loss", "L");
    g.init_parameters(3);
    Rng rng(5);
    g.set_value("x", testing::random_tensor({3, 2}, Domain::real, rng));
    g.set_value("t", testing::random_tensor({3, 2}, Domain::real, rng));
    GradcheckReport r = gradcheck(g, {.max_entries = 0, .inputs = true});
    BOOST_TEST(r.ok);
    BOOST_TEST(!r.vacuous);
    for (const auto& t : r.tensors) BOOST_TEST(t.max_abs_numeric > 1e-3, t.name);
}

BOOST_AUTO_TEST_CASE(bias_gradient_is_the_column_sum) {
    Graph g;
    g.input("x", {{1, "N"}, {3, {}}});
    g.parameter("b", fixed_shape({3}), Init::constant(0));
    g.input("t", {{1, "N"}, {3, {}}});
    g.op("y", "add", {"x", "b"});
    g.op("L", "mse", {"y", "t"});
    g.set_output("loss", "L");
    g.init_parameters(0);
    g.set_value("x", vec({1, 2, 3, 4, 5, 6}, {2, 3}));
    g.set_value("t", Tensor(Dtype::f64, {2, 3}));
    forward_backward_once(g);
    // dL/dy = y/N with N = 2; the bias gets the sum over both rows.
    BOOST_TEST(g.grad("b").dims() == (Dims{3}));
    BOOST_TEST(g.grad("b").at(0) == (1 + 4) / 2.0, tt::tolerance(1e-12));
    BOOST_TEST(g.grad("b").at(2) == (3 + 6) / 2.0, tt::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(an_op_that_breaks_its_gradient_shape_is_caught) {
    register_op({
        .name = "test_bad_grad_shape",
        .formula = "y = x (but the backward resizes dL/dx)",
        .inputs = {"x"},
        .shape = [](std::span<const Shape> in, const Attrs&) { return in[0]; },
        .forward = [](const ForwardCall& c) { c.out.assign(*c.in[0]); },
        .backward = [](const BackwardCall& c) { c.grad_in[0]->resize(c.grad_out.dtype(), {1}); },
        .samples = {{.shapes = {{2}}}},
    });
    Graph g;
    g.parameter("p", fixed_shape({2}), Init::constant(1));
    g.input("t", fixed_shape({2}));
    g.op("y", "test_bad_grad_shape", {"p"});
    g.op("L", "mse", {"y", "t"});
    g.set_output("loss", "L");
    g.init_parameters(0);
    g.set_value("t", Tensor(Dtype::f64, {2}));
    Plan plan = g.plan();
    g.forward(plan);
    BOOST_CHECK_EXCEPTION(g.backward(plan), std::logic_error, [](const std::logic_error& e) {
        return std::string(e.what()).find("left a gradient of shape [1] for input 'p' of shape [2]") !=
               std::string::npos;
    });
}

BOOST_AUTO_TEST_CASE(normalize_exact_gradient_differs_from_the_lectures_shortcut) {
    // S = normalize(y); L = mse(S, t). The lecture passes dL/dS straight through as if
    // dS/dy were the identity; the exact VJP subtracts Σ g·S and divides by Σ y.
    Graph g;
    g.parameter("y", fixed_shape({1, 3}), Init::values(vec({0.2, 0.5, 0.9}, {1, 3})));
    g.input("t", fixed_shape({1, 3}));
    g.op("S", "normalize", {"y"});
    g.op("L", "mse", {"S", "t"});
    g.set_output("loss", "L");
    g.init_parameters(0);
    g.set_value("t", vec({0, 1, 0}, {1, 3}));
    forward_backward_once(g, Pass::inspect());
    const Tensor& gS = g.grad("S");
    const Tensor& gy = g.grad("y");
    double s = 1.6, dot = 0;
    for (int i = 0; i < 3; ++i) dot += gS.at(i) * g.value("S").at(i);
    double gap = 0;
    for (int i = 0; i < 3; ++i) {
        BOOST_TEST(gy.at(i) == (gS.at(i) - dot) / s, tt::tolerance(1e-12));
        gap = std::max(gap, std::abs(gy.at(i) - gS.at(i)));
    }
    BOOST_TEST(gap > 0.1);  // the shortcut is far off, not a rounding difference
    GradcheckReport r = gradcheck(g, {.max_entries = 0});
    BOOST_TEST(r.ok);
    BOOST_TEST(r.tensors[0].max_abs_numeric > 0.1);
}

BOOST_AUTO_TEST_CASE(sigmoid_is_finite_and_exact_at_plus_minus_1000) {
    for (Dtype dt : {Dtype::f64, Dtype::f32}) {
        Graph g(dt);
        g.parameter("x", fixed_shape({4}), Init::values(vec({-1000, -40, 40, 1000}, {4})));
        g.input("t", fixed_shape({4}));
        g.op("y", "sigmoid", {"x"});
        g.op("L", "mse", {"y", "t"});
        g.set_output("loss", "L");
        g.init_parameters(0);
        g.set_value("t", vec({0, 0, 1, 1}, {4}));
        forward_backward_once(g);
        const Tensor& y = g.value("y");
        BOOST_TEST(y.at(0) == 0.0);
        BOOST_TEST(y.at(3) == 1.0);
        BOOST_TEST(y.at(1) > 0.0);  // exp(-40) ≈ 4e-18 is representable, not flushed
        BOOST_TEST(y.at(1) < 1e-17);
        for (std::int64_t i = 0; i < 4; ++i) BOOST_TEST(std::isfinite(g.grad("x").at(i)));
        BOOST_TEST(g.grad("x").at(0) == 0.0);
    }
}

BOOST_AUTO_TEST_CASE(float32_agrees_with_float64_on_the_worked_example) {
    Model m64 = worked_example(Dtype::f64), m32 = worked_example(Dtype::f32);
    for (Model* m : {&m64, &m32}) {
        forward_backward_once(m->graph);
    }
    BOOST_TEST((m32.graph.value("L").dtype() == Dtype::f32));
    BOOST_TEST(m32.graph.value("L").at(0) == m64.graph.value("L").at(0), tt::tolerance(1e-6));
    for (std::int64_t i = 0; i < 4; ++i)
        BOOST_TEST(m32.graph.grad("w").at(i) == m64.graph.grad("w").at(i), tt::tolerance(1e-5));
}

BOOST_AUTO_TEST_CASE(symbols_bind_at_feed_time_and_must_agree) {
    Model m = worked_example();
    Graph& g = m.graph;
    Tensor x5(Dtype::f64, {5, 4}), y4(Dtype::f64, {4, 1});
    g.set_value("x", x5);
    g.set_value("y", y4);
    BOOST_CHECK_EXCEPTION(forward_once(g), InputError, [](const InputError& e) {
        std::string w = e.what();
        return w.find("symbol N is") != std::string::npos && w.find("'x'") != std::string::npos &&
               w.find("'y'") != std::string::npos;
    });
    BOOST_CHECK_EXCEPTION(g.set_value("x", Tensor(Dtype::f64, {5, 3})), InputError, [](const InputError& e) {
        return std::string(e.what()).find("'x' was given shape [5,3] but the model declares [N,4]") !=
               std::string::npos;
    });
}

BOOST_AUTO_TEST_CASE(stepping_node_by_node_equals_the_full_backward) {
    Model a = worked_example(), b = worked_example();
    forward_backward_once(a.graph);
    Plan kept = b.graph.plan(Pass{.keep_contributions = true});
    b.graph.forward(kept);
    b.graph.backward_begin(kept);
    for (int id : kept.backward_order()) b.graph.backward_node(kept, id);
    b.graph.backward_end(kept);
    for (const char* n : {"w", "b", "z", "a", "yhat"}) {
        const Tensor &ga = a.graph.grad(n), &gb = b.graph.grad(n);
        for (std::int64_t i = 0; i < ga.numel(); ++i) BOOST_TEST(ga.at(i) == gb.at(i));
    }
    // The order is reverse topological: the loss's op first, the first matmul last.
    auto order = kept.backward_order();
    BOOST_TEST(b.graph.node(order.front()).name == "L");
    BOOST_TEST(b.graph.node(order.back()).name == "z");
}

BOOST_AUTO_TEST_CASE(gradcheck_catches_a_backward_that_accumulates) {
    // Correct on zeroed buffers, wrong in a graph where the buffer holds last step's values.
    register_op({
        .name = "test_accumulating_square",
        .formula = "y = x²  (backward adds instead of overwriting: a contract violation)",
        .inputs = {"x"},
        .shape = [](std::span<const Shape> in, const Attrs&) { return in[0]; },
        .forward =
            [](const ForwardCall& c) {
                for (std::int64_t i = 0; i < c.out.numel(); ++i) c.out.set(i, c.in[0]->at(i) * c.in[0]->at(i));
            },
        .backward =
            [](const BackwardCall& c) {
                for (std::int64_t i = 0; i < c.out.numel(); ++i)
                    c.grad_in[0]->set(i, c.grad_in[0]->at(i) + 2 * c.in[0]->at(i) * c.grad_out.at(i));
            },
        .samples = {{.shapes = {{2}}}},
    });
    Graph g;
    g.parameter("p", fixed_shape({2}), Init::constant(0.7));
    g.input("t", fixed_shape({2}));
    g.op("y", "test_accumulating_square", {"p"});
    g.op("L", "mse", {"y", "t"});
    g.set_output("loss", "L");
    g.init_parameters(0);
    g.set_value("t", Tensor(Dtype::f64, {2}));
    GradcheckReport r = gradcheck(g, {.max_entries = 0});
    BOOST_TEST(!r.ok);
}

// One suggestion rule for ops, nodes and keys (core/text.hpp).
BOOST_AUTO_TEST_CASE(suggestions_rank_a_transposition_closest) {
    BOOST_TEST(chainrule::edit_distance("reul", "relu") == 1u);
    BOOST_TEST(chainrule::edit_distance("reul", "mul") == 2u);
    BOOST_TEST(chainrule::edit_distance("Y1w2", "y1W2") == 0u);
    BOOST_TEST(chainrule::edit_distance("", "abc") == 3u);
    BOOST_TEST(chainrule::closest_name("reul", {"mul", "relu"}) == "relu");
    BOOST_TEST(chainrule::closest_name("sigmiod", {"sigmoid", "softmax"}) == "sigmoid");
    BOOST_TEST(chainrule::closest_name("zzzzzz", {"relu", "mul"}).empty());
}

namespace {
// The textbook optimal-string-alignment table, whole: what the banded search must agree with.
std::size_t reference_distance(const std::string& a, const std::string& b) {
    auto low = [](char c) { return std::tolower(static_cast<unsigned char>(c)); };
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i)
        for (std::size_t j = 1; j <= b.size(); ++j) {
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (low(a[i - 1]) != low(b[j - 1]))});
            if (i > 1 && j > 1 && low(a[i - 1]) == low(b[j - 2]) && low(a[i - 2]) == low(b[j - 1]))
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    return d[a.size()][b.size()];
}
}  // namespace

// The band is exact inside its limit and says "over" outside it, on random short words
// over a small alphabet (so that matches, transpositions and long edits all happen).
BOOST_AUTO_TEST_CASE(the_banded_distance_agrees_with_the_whole_table) {
    chainrule::Rng rng(11);
    auto word = [&] {
        std::string w(std::size_t(rng.uniform(0, 9)), 'a');
        for (char& c : w) c = "abcAB"[int(rng.uniform(0, 5))];
        return w;
    };
    for (int trial = 0; trial < 3000; ++trial) {
        const std::string a = word(), b = word();
        const std::size_t want = reference_distance(a, b), limit = std::size_t(rng.uniform(0, 6));
        BOOST_TEST(chainrule::edit_distance(a, b) == want, a << " / " << b);
        BOOST_TEST(chainrule::edit_distance_within(a, b, limit) == std::min(want, limit + 1),
                   a << " / " << b << " within " << limit);
    }
}

// A name of 20,000 characters against 40 candidates as long and 2,000 short ones: the whole
// table took over a minute for such a search; the band (at most 10 edits) takes milliseconds,
// and a long name with two typos is still recognised.
BOOST_AUTO_TEST_CASE(a_suggestion_for_a_huge_name_is_quick) {
    chainrule::Rng rng(5);
    auto random_name = [&](std::size_t n) {
        std::string w(n, 'a');
        for (char& c : w) c = char('a' + int(rng.uniform(0, 26)));
        return w;
    };
    const std::string target = random_name(20000);
    std::vector<std::string> candidates;
    for (int k = 0; k < 2000; ++k) candidates.push_back(random_name(8));
    for (int k = 0; k < 40; ++k) candidates.push_back(random_name(20000 + std::size_t(k % 3)));
    candidates.push_back(target);
    std::string typo = target;
    std::swap(typo[100], typo[101]);
    typo[15000] = typo[15000] == 'z' ? 'y' : 'z';
    const auto start = std::chrono::steady_clock::now();
    const std::string guess = chainrule::closest_name(typo, candidates);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    BOOST_TEST_MESSAGE("did-you-mean for a 20,000-character name: " << seconds << " s");
    BOOST_TEST((guess == target));
    BOOST_TEST(seconds < 2.0);
    BOOST_TEST(chainrule::suggestion_edits("ab") == 2u);
    BOOST_TEST(chainrule::suggestion_edits("abcdefghijkl") == 4u);
    BOOST_TEST(chainrule::suggestion_edits(target) == chainrule::kMaxSuggestionEdits);
    BOOST_TEST(chainrule::closest_name(random_name(60), {random_name(60)}).empty());
}
