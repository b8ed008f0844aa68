// What the op table cannot see: extreme inputs (logits of ±1000), hand-computed values,
// label errors, reshape's handling of symbolic dims, and the gap between the lecture's
// update (lecture_sigmoid_normalize) and the true gradient.
#define BOOST_TEST_MODULE ops_special
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <limits>
#include <variant>

#include "core/error.hpp"
#include "core/random.hpp"
#include "graph/graph.hpp"
#include "ops/finite_difference.hpp"
#include "testing.hpp"

using namespace chainrule;

namespace {

Tensor tensor(const Dims& dims, std::vector<double> values, Dtype dtype = Dtype::f64) {
    Tensor t(dtype, dims);
    BOOST_REQUIRE(std::int64_t(values.size()) == t.numel());
    for (std::size_t i = 0; i < values.size(); ++i) t.set(std::int64_t(i), values[i]);
    return t;
}

std::vector<double> values(const Tensor& t) {
    std::vector<double> v;
    for (std::int64_t i = 0; i < t.numel(); ++i) v.push_back(t.at(i));
    return v;
}

const Op& op(const std::string& name) {
    const Op* o = find_op(name);
    BOOST_REQUIRE_MESSAGE(o, "op '" << name << "' is not registered");
    return *o;
}

Attrs with_defaults(const Op& o, const Attrs& attrs) {
    Attrs a = o.attrs;
    for (auto& [k, v] : attrs.items()) a[k] = v;
    return a;
}

Tensor forward(const std::string& name, const std::vector<Tensor>& in, const Attrs& attrs = Attrs::object()) {
    const Op& o = op(name);
    Attrs a = with_defaults(o, attrs);
    std::vector<Shape> shapes;
    std::vector<const Tensor*> ptrs;
    for (auto& t : in) {
        shapes.push_back(fixed_shape(t.dims()));
        ptrs.push_back(&t);
    }
    Tensor out(in[0].dtype(), to_dims(o.shape(shapes, a)));
    o.forward(ForwardCall{ptrs, out, a});
    return out;
}

// dL/dinput for every input, given dL/dout = g; `wanted[i]` false passes nullptr.
std::vector<Tensor> backward(const std::string& name, const std::vector<Tensor>& in, const Tensor& g,
                             const Attrs& attrs = Attrs::object(), std::vector<bool> wanted = {}) {
    const Op& o = op(name);
    Attrs a = with_defaults(o, attrs);
    Tensor out = forward(name, in, attrs);
    std::vector<const Tensor*> ptrs;
    std::vector<Tensor> grads;
    std::vector<Tensor*> gptrs;
    for (auto& t : in) {
        ptrs.push_back(&t);
        grads.emplace_back(t.dtype(), t.dims());
        grads.back().fill(777.0);  // must be overwritten
    }
    for (std::size_t i = 0; i < in.size(); ++i) gptrs.push_back(i < wanted.size() && !wanted[i] ? nullptr : &grads[i]);
    o.backward(BackwardCall{ptrs, out, g, gptrs, a});
    return grads;
}

// d(Σ r ⊙ op(in))/d in[i] by central differences.
std::vector<double> numeric_grad(const std::string& name, std::vector<Tensor> in, std::size_t i, const Tensor& r,
                                 const Attrs& attrs = Attrs::object()) {
    auto loss = [&] {
        Tensor y = forward(name, in, attrs);
        double s = 0;
        for (std::int64_t e = 0; e < y.numel(); ++e) s += y.at(e) * r.at(e);
        return s;
    };
    std::vector<double> out;
    for (std::int64_t e = 0; e < in[i].numel(); ++e) out.push_back(central_difference(in[i], e, loss));
    return out;
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol = 1e-12) {
    BOOST_REQUIRE_EQUAL(got.size(), want.size());
    for (std::size_t i = 0; i < got.size(); ++i)
        BOOST_TEST(std::abs(got[i] - want[i]) <= tol * (1 + std::abs(want[i])),
                   "element " << i << ": got " << got[i] << ", want " << want[i]);
}

template <class E>
void check_throws_with(auto&& f, const std::string& needle) {
    try {
        f();
        BOOST_ERROR("no exception; expected one mentioning '" << needle << "'");
    } catch (const E& e) {
        BOOST_TEST(std::string(e.what()).find(needle) != std::string::npos,
                   "message '" << e.what() << "' lacks '" << needle << "'");
    }
}

Shape sym(std::vector<std::variant<std::int64_t, std::string>> dims) {
    Shape s;
    for (auto& d : dims) {
        if (auto* n = std::get_if<std::int64_t>(&d)) s.push_back(Dim{*n, {}});
        else s.push_back(Dim{1, std::get<std::string>(d)});
    }
    return s;
}

}  // namespace

// ---------------------------------------------------------------- cross_entropy

BOOST_AUTO_TEST_CASE(cross_entropy_at_logits_of_plus_minus_1000) {
    Tensor z = tensor({2, 3}, {1000, -1000, 0, -1000, 1000, -1000});
    Tensor idx = tensor({2}, {1, 0});
    Tensor onehot = tensor({2, 3}, {0, 1, 0, 1, 0, 0});
    // Each row: log-sum-exp = 1000, the labelled logit is −1000, so −ln p = 2000.
    BOOST_TEST(forward("cross_entropy", {z, idx}).at(0) == 2000.0);
    BOOST_TEST(forward("cross_entropy", {z, onehot}).at(0) == 2000.0);
    // p is exactly one-hot on the max; dL/dz = (p − label) / N.
    std::vector<double> want = {0.5, -0.5, 0, -0.5, 0.5, 0};
    Tensor g = tensor({}, {1});
    auto gi = backward("cross_entropy", {z, idx}, g);
    auto go = backward("cross_entropy", {z, onehot}, g);
    check_close(values(gi[0]), want);
    check_close(values(go[0]), want);
    check_close(values(gi[1]), {0, 0});  // class indices: a step function, derivative 0
    check_close(numeric_grad("cross_entropy", {z, idx}, 0, g), want, 1e-6);
    // float32 stays finite too.
    Tensor l32 = forward("cross_entropy", {z.to(Dtype::f32), idx.to(Dtype::f32)});
    BOOST_TEST(l32.at(0) == 2000.0);
}

BOOST_AUTO_TEST_CASE(cross_entropy_labels_agree_and_gradient_matches_differences) {
    Tensor z = tensor({3, 4}, {0.3, -1.2, 2.0, 0.1, 5.0, 4.0, -3.0, 0.0, -0.5, -0.5, 0.25, 1.5});
    Tensor idx = tensor({3}, {2, 0, 3});
    Tensor onehot = tensor({3, 4}, {0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1});
    Tensor g = tensor({}, {0.7});
    double li = forward("cross_entropy", {z, idx}).at(0), lo = forward("cross_entropy", {z, onehot}).at(0);
    BOOST_TEST(li == lo, boost::test_tools::tolerance(1e-14));
    // Row 0 by hand: −ln softmax(z0)[2].
    double s0 = std::exp(0.3) + std::exp(-1.2) + std::exp(2.0) + std::exp(0.1);
    double s1 = std::exp(5.0) + std::exp(4.0) + std::exp(-3.0) + std::exp(0.0);
    double s2 = 2 * std::exp(-0.5) + std::exp(0.25) + std::exp(1.5);
    double want = ((std::log(s0) - 2.0) + (std::log(s1) - 5.0) + (std::log(s2) - 1.5)) / 3;
    BOOST_TEST(li == want, boost::test_tools::tolerance(1e-13));
    auto gi = backward("cross_entropy", {z, idx}, g), go = backward("cross_entropy", {z, onehot}, g);
    check_close(values(gi[0]), values(go[0]), 1e-14);
    check_close(values(gi[0]), numeric_grad("cross_entropy", {z, idx}, 0, g), 1e-7);
    // One-hot targets: the loss is linear in t, dL/dt = −ln p · g / N, checked numerically.
    check_close(values(go[1]), numeric_grad("cross_entropy", {z, onehot}, 1, g), 1e-7);
}

BOOST_AUTO_TEST_CASE(cross_entropy_rejects_bad_class_indices_naming_the_row) {
    Tensor z = tensor({3, 4}, std::vector<double>(12, 0.0));
    check_throws_with<RunError>([&] { forward("cross_entropy", {z, tensor({3}, {0, 4, 1})}); }, "row 1");
    check_throws_with<RunError>([&] { forward("cross_entropy", {z, tensor({3}, {0, 1, 2.5})}); }, "row 2");
    check_throws_with<RunError>([&] { forward("cross_entropy", {z, tensor({3}, {-1, 1, 2})}); }, "row 0");
    check_throws_with<RunError>([&] { forward("cross_entropy", {z, tensor({3}, {0, NAN, 2})}); }, "[0, 4)");
}

// ---------------------------------------------------------------- softmax family

BOOST_AUTO_TEST_CASE(softmax_rows_sum_to_one_at_plus_minus_1000) {
    for (Dtype d : {Dtype::f64, Dtype::f32}) {
        Tensor x = tensor({3, 3}, {1000, -1000, 999, -1000, -1000, -1000, 0, 1000, -1000}, d);
        Tensor y = forward("softmax", {x});
        for (int r = 0; r < 3; ++r) {
            double sum = 0;
            for (int j = 0; j < 3; ++j) {
                BOOST_TEST(std::isfinite(y.at(r * 3 + j)));
                sum += y.at(r * 3 + j);
            }
            BOOST_TEST(sum == 1.0, boost::test_tools::tolerance(1e-6));
        }
        double e = std::exp(-1.0);
        BOOST_TEST(y.at(0) == 1 / (1 + e), boost::test_tools::tolerance(1e-6));
        BOOST_TEST(y.at(2) == e / (1 + e), boost::test_tools::tolerance(1e-6));
        BOOST_TEST(y.at(3) == 1.0 / 3, boost::test_tools::tolerance(1e-6));
        BOOST_TEST(y.at(7) == 1.0);
    }
}

BOOST_AUTO_TEST_CASE(log_softmax_is_finite_where_log_of_softmax_is_not) {
    Tensor x = tensor({1, 2}, {1000, -1000});
    check_close(values(forward("log_softmax", {x})), {0, -2000});
    BOOST_TEST(std::isinf(forward("log", {forward("softmax", {x})}).at(1)));  // the naive way
    // Along axis 0 by hand: [ln(1/(1+e)), ln(e/(1+e))] for the column [0, 1].
    Tensor c = tensor({2, 1}, {0, 1});
    check_close(values(forward("log_softmax", {c}, {{"axis", 0}})),
                {-std::log1p(std::exp(1.0)), 1 - std::log1p(std::exp(1.0))});
}

BOOST_AUTO_TEST_CASE(log_softmax_and_cross_entropy_keep_their_digits_at_large_logits) {
    // Logits 1e5 + [0, 1, -2, 0.5]: the shifted values x − m are exact, so (x − m) − ln S is the
    // answer to the last bit or two. x − (m + ln S) rounds m + ln S to the ulp of 1e5 (1.5e-11)
    // first and is off by up to that much, 0.25 % of the smallest entry's distance from it.
    const double shift[4] = {0, 1, -2, 0.5};
    Tensor x(Dtype::f64, {1, 4});
    for (int j = 0; j < 4; ++j) x.set(j, 1e5 + shift[j]);
    double sum = 0;
    for (double d : shift) sum += std::exp(d - 1);
    const double log_sum = std::log(sum);
    const Tensor y = forward("log_softmax", {x});
    for (int j = 0; j < 4; ++j) {
        const double want = (shift[j] - 1) - log_sum;
        BOOST_TEST(std::abs(y.at(j) - want) <= 4e-16 * std::abs(want), "entry " << j << ": " << y.at(j) << " vs " << want);
    }
    // cross_entropy of class 2 at the same logits: −ln p[2], and its gradient p − onehot(2).
    const Tensor label = tensor({1}, {2});
    const double want = -((shift[2] - 1) - log_sum);
    const double loss = forward("cross_entropy", {x, label}).at(0);
    BOOST_TEST(std::abs(loss - want) <= 4e-16 * want, loss << " vs " << want);
    const std::vector<Tensor> g = backward("cross_entropy", {x, label}, tensor({}, {1.0}), {}, {true, false});
    for (int j = 0; j < 4; ++j) {
        const double p = std::exp((shift[j] - 1) - log_sum);
        BOOST_TEST(std::abs(g[0].at(j) - (p - (j == 2))) <= 1e-15, "gradient entry " << j);
    }
}

// ---------------------------------------------------------------- math-library behaviour

BOOST_AUTO_TEST_CASE(exp_log_tanh_at_the_edges_behave_like_the_math_library) {
    // log(0) = −inf and log(−1) = NaN are IEEE results, passed on (a loss then turns
    // non-finite and training stops); log_softmax / cross_entropy avoid them.
    Tensor y = forward("log", {tensor({3}, {0, -1, 1})});
    BOOST_TEST((std::isinf(y.at(0)) && y.at(0) < 0));
    BOOST_TEST(std::isnan(y.at(1)));
    BOOST_TEST(y.at(2) == 0.0);
    Tensor e = forward("exp", {tensor({3}, {1000, -1000, 1})});
    BOOST_TEST(std::isinf(e.at(0)));
    BOOST_TEST(e.at(1) == 0.0);
    BOOST_TEST(e.at(2) == std::exp(1.0));
    Tensor x = tensor({2}, {1000, -1000});
    check_close(values(forward("tanh", {x})), {1, -1});
    check_close(values(backward("tanh", {x}, tensor({2}, {1, 1}))[0]), {0, 0});
}

BOOST_AUTO_TEST_CASE(relu_passes_nan_on_and_has_zero_slope_at_zero) {
    Tensor x = tensor({4}, {-2, 0, 3, NAN});
    Tensor y = forward("relu", {x});
    check_close({y.at(0), y.at(1), y.at(2)}, {0, 0, 3});
    BOOST_TEST(std::isnan(y.at(3)));
    check_close(values(backward("relu", {x}, tensor({4}, {5, 5, 5, 5}))[0]), {0, 0, 5, 0});
}

// ---------------------------------------------------------------- hand-computed values

BOOST_AUTO_TEST_CASE(broadcast_binary_ops_by_hand) {
    Tensor a = tensor({2, 2}, {1, 2, 3, 4}), b = tensor({2}, {10, 20});
    Tensor g = tensor({2, 2}, {1, 1, 1, 1});
    check_close(values(forward("mul", {a, b})), {10, 40, 30, 80});
    auto gm = backward("mul", {a, b}, g);
    check_close(values(gm[0]), {10, 20, 10, 20});
    check_close(values(gm[1]), {4, 6});  // column sums of a
    auto gs = backward("sub", {a, b}, g);
    check_close(values(gs[1]), {-2, -2});
    check_close(values(forward("div", {a, b})), {0.1, 0.1, 0.3, 0.2});
    auto gd = backward("div", {a, b}, g);
    check_close(values(gd[0]), {0.1, 0.05, 0.1, 0.05});
    check_close(values(gd[1]), {-(1 + 3) / 100.0, -(2 + 4) / 400.0});  // −Σ a / b²
    // [2,1] with [1,3] -> [2,3]; a scalar divisor.
    auto gc = backward("mul", {tensor({2, 1}, {1, 2}), tensor({1, 3}, {1, 2, 3})}, tensor({2, 3}, {1, 1, 1, 1, 1, 1}));
    check_close(values(gc[0]), {6, 6});
    check_close(values(gc[1]), {3, 3, 3});
    check_close(values(backward("div", {a, tensor({}, {2})}, g)[1]), {-10.0 / 4});
    // Only the wanted input is written.
    auto only_b = backward("mul", {a, b}, g, {}, {false, true});
    check_close(values(only_b[0]), {777, 777, 777, 777});
}

BOOST_AUTO_TEST_CASE(sum_and_mean_by_hand) {
    Tensor x = tensor({2, 3}, {1, 2, 3, 4, 5, 6});
    BOOST_TEST(forward("sum", {x}).dims().empty());
    BOOST_TEST(forward("sum", {x}).at(0) == 21.0);
    check_close(values(forward("sum", {x}, {{"axis", 0}})), {5, 7, 9});
    Tensor kept = forward("mean", {x}, {{"axis", -1}, {"keepdims", true}});
    BOOST_TEST((kept.dims() == Dims{2, 1}));
    check_close(values(kept), {2, 5});
    BOOST_TEST((forward("sum", {x}, {{"keepdims", true}}).dims() == Dims{1, 1}));
    check_close(values(forward("mean", {x}, {{"axis", {0, 1}}})), {3.5});
    check_close(values(backward("mean", {x}, tensor({2}, {3, 6}), {{"axis", 1}})[0]), {1, 1, 1, 2, 2, 2});
    check_close(values(backward("sum", {x}, tensor({3}, {1, 2, 3}), {{"axis", 0}})[0]), {1, 2, 3, 1, 2, 3});
}

// A sum over the axes around a block of kept ones (NCHW's per-channel sum over 0, 2, 3; the
// rows of [N, M]; the last axis; axis 1 of [A, B, C] with keepdims) adds each output's terms
// in row-major order of x, as a plain loop does: the same bits in float32, where order
// shows. A pattern with a kept axis between summed ones ([0, 2] of [A, B, C, D] keeps 1
// and 3) takes the general walk and gives the same bits too.
BOOST_AUTO_TEST_CASE(sum_over_axes_adds_in_row_major_order) {
    Rng rng(11);
    struct Case {
        Dims dims;
        Attrs axis;
    };
    const Case cases[] = {{{5, 8, 7, 9}, {0, 2, 3}}, {{37, 19}, 0}, {{6, 33}, -1}, {{4, 1, 6, 5}, {0, 2}},
                          {{3, 7, 5}, 1}, {{3, 4, 5, 6}, {0, 2}}, {{2, 1, 3}, {1}}};
    for (const Case& k : cases) {
        Tensor x(Dtype::f32, k.dims);
        for (std::int64_t i = 0; i < x.numel(); ++i) x.set(i, rng.normal() * std::pow(10.0, double(rng.below(7)) - 3));
        const Tensor y = forward("sum", {x}, {{"axis", k.axis}, {"keepdims", true}});
        std::vector<bool> summed(k.dims.size());
        for (const auto& a : k.axis.is_array() ? k.axis : Attrs::array({k.axis}))
            summed[std::size_t((a.get<int>() + int(k.dims.size())) % int(k.dims.size()))] = true;
        std::vector<float> want(std::size_t(y.numel()), 0.0f);
        for (std::int64_t i = 0; i < x.numel(); ++i) {
            std::int64_t rest = i, o = 0, ostride = 1;
            for (std::size_t d = k.dims.size(); d-- > 0;) {
                const std::int64_t at = rest % k.dims[d];
                rest /= k.dims[d];
                if (!summed[d]) o += at * ostride, ostride *= k.dims[d];
            }
            want[std::size_t(o)] += x.data<float>()[i];
        }
        std::int64_t differ = 0;
        for (std::int64_t o = 0; o < y.numel(); ++o) differ += y.data<float>()[o] != want[std::size_t(o)];
        BOOST_TEST(differ == 0, format_dims(k.dims) << " over " << k.axis.dump());
    }
}

BOOST_AUTO_TEST_CASE(linear_equals_matmul_plus_bias_by_hand) {
    Tensor x = tensor({2, 2}, {1, 2, 3, 4}), w = tensor({2, 3}, {1, 0, 1, 0, 1, 1}), b = tensor({3}, {0.5, -1, 0});
    check_close(values(forward("linear", {x, w, b})), {1.5, 1, 3, 3.5, 3, 7});
    auto g = backward("linear", {x, w, b}, tensor({2, 3}, {1, 0, 0, 0, 0, 1}));
    check_close(values(g[0]), {1, 0, 1, 1});         // G·Wᵀ
    check_close(values(g[1]), {1, 0, 3, 2, 0, 4});   // xᵀ·G
    check_close(values(g[2]), {1, 0, 1});            // column sums of G
}

BOOST_AUTO_TEST_CASE(transpose_by_hand) {
    Tensor x = tensor({2, 3}, {1, 2, 3, 4, 5, 6});
    Tensor t = forward("transpose", {x});
    BOOST_TEST((t.dims() == Dims{3, 2}));
    check_close(values(t), {1, 4, 2, 5, 3, 6});
    Tensor x3 = tensor({2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7});
    Tensor p = forward("transpose", {x3}, {{"perm", {1, 2, 0}}});  // p[i,j,k] = x[k,i,j]
    check_close(values(p), {0, 4, 1, 5, 2, 6, 3, 7});
    check_close(values(backward("transpose", {x3}, p, {{"perm", {1, 2, 0}}})[0]), values(x3));
}

// ---------------------------------------------------------------- reshape and symbols

BOOST_AUTO_TEST_CASE(reshape_keeps_the_batch_symbol) {
    Graph g(Dtype::f64);
    g.input("x", sym({"N", 28, 28}));
    g.op("flat", "reshape", {"x"}, {{"shape", {-1, 784}}});
    BOOST_TEST(format_shape(g.node(g.id("flat")).shape) == "[N,784]");
    g.op("back", "reshape", {"flat"}, {{"shape", {-1, 28, 28}}});
    BOOST_TEST(format_shape(g.node(g.id("back")).shape) == "[N,28,28]");
    g.op("mid", "reshape", {"x"}, {{"shape", {14, -1, 56}}});
    BOOST_TEST(format_shape(g.node(g.id("mid")).shape) == "[14,N,56]");
    Tensor x(Dtype::f64, {3, 28, 28});
    for (std::int64_t i = 0; i < x.numel(); ++i) x.set(i, double(i));
    g.set_value("x", x);
    forward_once(g);
    BOOST_TEST((g.value("flat").dims() == Dims{3, 784}));
    BOOST_TEST((g.value("mid").dims() == Dims{14, 3, 56}));
    BOOST_TEST(g.value("flat").at(1000) == 1000.0);
}

BOOST_AUTO_TEST_CASE(reshape_rejects_what_a_symbolic_dim_cannot_express) {
    const Op& r = op("reshape");
    auto shape_of = [&](const Shape& in, const Attrs& spec) {
        std::vector<Shape> v{in};
        return r.shape(v, with_defaults(r, {{"shape", spec}}));
    };
    // −1 would be 2·N: not one size, not one symbol.
    check_throws_with<ShapeError>([&] { shape_of(sym({"N", 4}), {-1, 2}); }, "symbolic dim N");
    check_throws_with<ShapeError>([&] { shape_of(sym({"N", 4}), {-1, 8}); }, "multiply to 4");
    check_throws_with<ShapeError>([&] { shape_of(sym({"N", 4}), {2, 2}); }, "write −1 where it goes");
    check_throws_with<ShapeError>([&] { shape_of(sym({"N", "M", 3}), {-1, 3}); }, "symbolic dims N, M");
    // Through a graph the message names the node.
    Graph g(Dtype::f64);
    g.input("x", sym({"N", 4}));
    check_throws_with<InputError>([&] { g.op("y", "reshape", {"x"}, {{"shape", {-1, 2}}}, "nodes[0]"); },
                                  "nodes[0]");
    BOOST_TEST(format_shape(shape_of(sym({"N", 4}), {4, -1})) == "[4,N]");
}

// ---------------------------------------------------------------- the lecture's op

// a = [0, ln 3]: s = sigmoid(a) = [1/2, 3/4], Σ s = 5/4, y2 = [2/5, 3/5]; upstream g = [1, 0].
//   lecture:  g·y2·(1−y2)                             = [0.24, 0]
//   exact:    dL/ds = (g − Σ g·y2) / Σ s = [0.48, −0.32];  · s(1−s) = [0.25, 0.1875]
//             dL/da = [0.12, −0.06]
BOOST_AUTO_TEST_CASE(lecture_update_is_the_lectures_formula_by_hand) {
    Tensor a = tensor({1, 2}, {0, std::log(3.0)}), g = tensor({1, 2}, {1, 0});
    check_close(values(forward("lecture_sigmoid_normalize", {a})), {0.4, 0.6});
    check_close(values(backward("lecture_sigmoid_normalize", {a}, g)[0]), {0.24, 0});
    // The exact gradient of the same forward: sigmoid → normalize, and finite differences.
    std::vector<double> exact = {0.12, -0.06};
    Tensor s = forward("sigmoid", {a});
    Tensor ds = backward("normalize", {s}, g)[0];
    check_close(values(backward("sigmoid", {a}, ds)[0]), exact);
    check_close(numeric_grad("lecture_sigmoid_normalize", {a}, 0, g), exact, 1e-8);
    BOOST_TEST(!op("lecture_sigmoid_normalize").exact_gradient);
    BOOST_TEST(op("lecture_sigmoid_normalize").formula.find("NOT the true gradient") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(lecture_update_differs_from_the_true_gradient) {
    Rng rng(3);
    Tensor a = testing::random_tensor({4, 10}, Domain::real, rng);
    Tensor g = testing::random_tensor({4, 10}, Domain::real, rng);
    Tensor y2 = forward("lecture_sigmoid_normalize", {a});
    auto lecture = values(backward("lecture_sigmoid_normalize", {a}, g)[0]);
    auto exact = numeric_grad("lecture_sigmoid_normalize", {a}, 0, g);
    double gap = 0, size = 0;
    for (std::size_t i = 0; i < lecture.size(); ++i) {
        BOOST_TEST(lecture[i] == g.at(std::int64_t(i)) * y2.at(std::int64_t(i)) * (1 - y2.at(std::int64_t(i))),
                   boost::test_tools::tolerance(1e-14));
        gap += (lecture[i] - exact[i]) * (lecture[i] - exact[i]);
        size += exact[i] * exact[i];
    }
    // Not a rounding difference: the two directions are far apart.
    BOOST_TEST(std::sqrt(gap / size) > 0.5, "relative gap " << std::sqrt(gap / size));
}
