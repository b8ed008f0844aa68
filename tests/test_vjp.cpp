// The op table's checks of the VJPs written with ops (ops/vjp.hpp), driven by every op's
// samples in float64:
//  - first order: evaluating the VJP graph gives the numeric backward's numbers (rtol 1e-12);
//  - second order, for every twice-differentiable op: the gradient of S = v·∇L through the VJP
//    graph (each of its nodes differentiated by its own VJP) equals central differences of ∇L
//    along v, (∇L(x + hv) − ∇L(x − hv)) / 2h, compared by ops/finite_difference's rule (for an
//    op whose backward is no gradient, lecture_sigmoid_normalize, central differences of S
//    along each coordinate);
//  - the twice-differentiable fact is computed from the ops a VJP uses.
#define BOOST_TEST_MODULE vjp
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <fmt/format.h>

#include "ops/finite_difference.hpp"
#include "ops/opcheck.hpp"
#include "ops/vjp.hpp"
#include "testing.hpp"

using namespace chainrule;

namespace {

struct Case {
    std::vector<Tensor> in;
    std::vector<bool> wants;  // per input: differentiable in this sample
    Attrs attrs;
    Tensor out, upstream;
};

Case prepare(const Op& op, const OpSample& s, Rng& rng) {
    Case c;
    c.attrs = op.attrs;
    for (auto& [k, v] : s.attrs.items()) c.attrs[k] = v;
    const std::int64_t classes = s.shapes.empty() || s.shapes[0].empty() ? 2 : s.shapes[0].back();
    for (std::size_t i = 0; i < s.shapes.size(); ++i) {
        const Domain d = i < s.domains.size() ? s.domains[i] : Domain::real;
        const bool ids = int(i) == op.ids_input;
        c.in.push_back(sample_tensor(s.shapes[i], d, rng, ids ? s.shapes[std::size_t(op.ids_rows_of)][0] : classes));
        c.wants.push_back(differentiable(d));
    }
    return c;
}

Tensor forward(const Op& op, const std::vector<Tensor>& in, const Attrs& attrs) {
    std::vector<const Tensor*> ptrs;
    std::vector<Shape> shapes;
    for (auto& t : in) ptrs.push_back(&t), shapes.push_back(fixed_shape(t.dims()));
    Tensor out(Dtype::f64, to_dims(op.shape(shapes, attrs)));
    op.forward(ForwardCall{ptrs, out, attrs});
    return out;
}

// The numeric backward: dL/dinput for every input (zeros where none is wanted).
std::vector<Tensor> numeric_backward(const Op& op, const std::vector<Tensor>& in, const Tensor& out,
                                     const Tensor& upstream, const Attrs& attrs, const std::vector<bool>& wants) {
    std::vector<const Tensor*> ptrs;
    std::vector<Tensor> grads;
    std::vector<Tensor*> gptrs;
    for (auto& t : in) ptrs.push_back(&t), grads.emplace_back(Dtype::f64, t.dims());
    for (std::size_t i = 0; i < in.size(); ++i) gptrs.push_back(wants[i] ? &grads[i] : nullptr);
    op.backward(BackwardCall{ptrs, out, upstream, gptrs, attrs});
    return grads;
}

Case drawn(const Op& op, const OpSample& s, Rng& rng) {
    Case c = prepare(op, s, rng);
    c.out = forward(op, c.in, c.attrs);
    c.upstream = sample_tensor(c.out.dims(), Domain::real, rng);
    for (std::int64_t e = 0; e < c.out.numel(); ++e)  // causal_mask's −inf entries carry nothing
        if (std::isinf(c.out.at(e))) c.upstream.set(e, 0.0);
    return c;
}

std::vector<Shape> shapes_of(const std::vector<Tensor>& in) {
    std::vector<Shape> s;
    for (const Tensor& t : in) s.push_back(fixed_shape(t.dims()));
    return s;
}

double max_relative_error(const Tensor& a, const Tensor& b) {
    double worst = 0;
    for (std::int64_t e = 0; e < a.numel(); ++e) {
        const double scale = std::max({std::abs(a.at(e)), std::abs(b.at(e)), 1e-300});
        const double err = a.at(e) == b.at(e) ? 0 : std::abs(a.at(e) - b.at(e)) / scale;
        worst = std::max(worst, std::isnan(err) ? INFINITY : err);
    }
    return worst;
}

void accumulate(std::optional<Tensor>& into, const Tensor& add) {
    if (!into) {
        into = add;
        return;
    }
    for (std::int64_t e = 0; e < add.numel(); ++e) into->set(e, into->at(e) + add.at(e));
}

// The gradient of S = Σ_i v_i·(VJP graph's dL/dinput_i) with respect to the op's inputs,
// by reverse mode over the VJP graph: each node's adjoint goes to its inputs through that
// node's own VJP, the output's adjoint through the op's backward; dL/dy is a constant here.
std::vector<Tensor> second_order(const Op& op, const Case& c, const std::vector<Tensor>& v) {
    const BuiltVjp vjp = build_vjp(op, shapes_of(c.in), c.attrs);
    const VjpBuilder& b = vjp.builder;
    // Every value of the VJP graph, by ref.
    std::vector<Tensor> value(c.in);
    value.push_back(c.out);
    value.push_back(c.upstream);
    for (const VjpNode& n : b.nodes()) {
        std::vector<Tensor> args;
        for (VjpRef r : n.inputs) args.push_back(value[std::size_t(r.id)]);
        value.push_back(forward(*n.op, args, n.attrs));
    }
    std::vector<std::optional<Tensor>> adjoint(value.size());
    for (std::size_t i = 0; i < c.in.size(); ++i)
        if (c.wants[i] && vjp.grads[i]) accumulate(adjoint[std::size_t(vjp.grads[i].id)], v[i]);
    for (std::size_t k = b.nodes().size(); k-- > 0;) {
        const VjpNode& n = b.nodes()[k];
        const std::optional<Tensor>& a = adjoint[b.first_node() + k];
        if (!a) continue;
        std::vector<Tensor> args;
        for (VjpRef r : n.inputs) args.push_back(value[std::size_t(r.id)]);
        const BuiltVjp inner = build_vjp(*n.op, shapes_of(args), n.attrs);
        auto grads = evaluate_vjp(inner, args, value[b.first_node() + k], *a);
        for (std::size_t j = 0; j < n.inputs.size(); ++j)
            if (grads[j]) accumulate(adjoint[std::size_t(n.inputs[j].id)], *grads[j]);
    }
    std::vector<Tensor> result;
    for (std::size_t i = 0; i < c.in.size(); ++i)
        result.push_back(adjoint[i] ? *adjoint[i] : Tensor(Dtype::f64, c.in[i].dims()));
    if (const auto& a = adjoint[c.in.size()]) {  // through y = f(x) itself
        auto through = numeric_backward(op, c.in, c.out, *a, c.attrs, c.wants);
        for (std::size_t i = 0; i < c.in.size(); ++i)
            if (c.wants[i]) accumulate(adjoint[i], through[i]), result[i] = *adjoint[i];
    }
    return result;
}

std::vector<const Op*> ops_with_vjp() {
    std::vector<const Op*> out;
    for (const Op* op : all_ops())
        if (op->vjp) out.push_back(op);
    return out;
}

// The VJP graph against the numeric backward on one case, every differentiable input; the
// number of gradients compared. `what` names the case in messages.
std::size_t check_first_order(const Op& op, const Case& c, const std::string& what) {
    const auto expected = numeric_backward(op, c.in, c.out, c.upstream, c.attrs, c.wants);
    const auto got = evaluate_vjp(build_vjp(op, shapes_of(c.in), c.attrs), c.in, c.out, c.upstream);
    std::size_t compared = 0;
    for (std::size_t i = 0; i < c.in.size(); ++i) {
        if (!c.wants[i]) continue;
        const Tensor g = got[i] ? *got[i] : Tensor(Dtype::f64, c.in[i].dims());
        BOOST_TEST(g.dims() == c.in[i].dims(), what << " input " << i);
        if (g.dims() != c.in[i].dims()) continue;
        const double err = max_relative_error(g, expected[i]);
        BOOST_TEST(err <= 1e-12, what << " dL/d" << input_name(op, i) << ": relative error " << err);
        ++compared;
    }
    return compared;
}

// The second-order check on one case along v; the number of gradients checked.
std::size_t check_second_order(const Op& op, const Case& c, const std::vector<Tensor>& v, const std::string& what) {
    const auto hv = second_order(op, c, v);
    // ∇L at moved inputs, by the numeric backward (the fast path), along the same upstream.
    const double h = 1e-5;
    auto gradient_at = [&](const std::vector<Tensor>& at) {
        return numeric_backward(op, at, forward(op, at, c.attrs), c.upstream, c.attrs, c.wants);
    };
    auto along_v = [&](double step) {
        std::vector<Tensor> at = c.in;
        for (std::size_t i = 0; i < at.size(); ++i)
            for (std::int64_t e = 0; e < at[i].numel(); ++e) at[i].set(e, at[i].at(e) + step * v[i].at(e));
        return at;
    };
    auto along_coordinate = [&](std::size_t i, std::int64_t e, double step) {
        std::vector<Tensor> at = c.in;
        at[i].set(e, at[i].at(e) + step);
        return at;
    };
    auto v_dot = [&](const std::vector<Tensor>& grads) {
        double s = 0;
        for (std::size_t i = 0; i < grads.size(); ++i)
            for (std::int64_t e = 0; c.wants[i] && e < grads[i].numel(); ++e) s += v[i].at(e) * grads[i].at(e);
        return s;
    };
    // The directional difference of ∇L along v equals ∇(v·∇L) because a Hessian is symmetric.
    // An op whose backward is not a gradient (exact_gradient false) has no such symmetry:
    // there v·backward(x) is differenced along each coordinate.
    const bool symmetric = op.exact_gradient;
    std::vector<Tensor> plus, minus;
    if (symmetric) plus = gradient_at(along_v(h)), minus = gradient_at(along_v(-h));
    std::size_t checked = 0;
    for (std::size_t i = 0; i < c.in.size(); ++i) {
        if (!c.wants[i]) continue;
        for (std::int64_t e = 0; e < c.in[i].numel(); ++e) {
            const double numeric = symmetric ? (plus[i].at(e) - minus[i].at(e)) / (2 * h)
                                             : (v_dot(gradient_at(along_coordinate(i, e, h))) -
                                                v_dot(gradient_at(along_coordinate(i, e, -h)))) / (2 * h);
            const FdComparison cmp = compare_to_numeric(hv[i].at(e), numeric, {.rtol = 1e-5, .atol = 1e-7});
            BOOST_TEST(cmp.ok, what << " input " << input_name(op, i) << " element " << e << ": through the VJP graph "
                                    << hv[i].at(e) << ", central differences " << numeric);
        }
        ++checked;
    }
    return checked;
}

std::vector<Tensor> direction(const Case& c, Rng& rng) {
    std::vector<Tensor> v;
    for (std::size_t i = 0; i < c.in.size(); ++i)
        v.push_back(c.wants[i] ? sample_tensor(c.in[i].dims(), Domain::real, rng) : Tensor(Dtype::f64, c.in[i].dims()));
    return v;
}

std::string sample_name(const Op& op, std::size_t k) { return fmt::format("{} sample {}", op.name, k); }

}  // namespace

BOOST_AUTO_TEST_CASE(every_vjp_graph_equals_the_numeric_backward_on_every_sample) {
    Rng rng(11);
    std::size_t compared = 0;
    for (const Op* op : ops_with_vjp())
        for (std::size_t k = 0; k < op->samples.size(); ++k)
            compared += check_first_order(*op, drawn(*op, op->samples[k], rng), sample_name(*op, k));
    BOOST_TEST_MESSAGE("first order: " << compared << " gradients compared on " << ops_with_vjp().size() << " ops");
    BOOST_TEST(compared >= 250u);
}

BOOST_AUTO_TEST_CASE(every_twice_differentiable_op_passes_a_second_order_finite_difference_check) {
    Rng rng(13);
    std::size_t checked = 0;
    for (const Op* op : ops_with_vjp()) {
        if (!twice_differentiable(*op)) continue;
        for (std::size_t k = 0; k < op->samples.size(); ++k) {
            const Case c = drawn(*op, op->samples[k], rng);
            checked += check_second_order(*op, c, direction(c, rng), sample_name(*op, k));
        }
    }
    BOOST_TEST_MESSAGE("second order: " << checked << " gradients checked");
    BOOST_TEST(checked >= 250u);
}

// The op table's labels never hold ignore_index; here some positions (and then all) do.
BOOST_AUTO_TEST_CASE(cross_entropys_vjp_leaves_out_the_ignore_index_positions) {
    const Op& op = *find_op("cross_entropy");
    Rng rng(17);
    for (int ignored : {-1, -100}) {
        Case c = drawn(op, {.shapes = {{2, 3, 4}, {2, 3}}, .attrs = {{"ignore_index", ignored}},
                            .domains = {Domain::real, Domain::class_index}}, rng);
        const std::vector<double> labels = {2, double(ignored), 0, double(ignored), double(ignored), 3};
        for (std::int64_t p = 0; p < 6; ++p) c.in[1].set(p, labels[std::size_t(p)]);
        c.out = forward(op, c.in, c.attrs);
        const std::string what = fmt::format("ignore_index {}", ignored);
        BOOST_TEST(check_first_order(op, c, what) == 1u);
        BOOST_TEST(check_second_order(op, c, direction(c, rng), what) == 1u);
        // Left-out positions get 0; each kept row sums to 0 (p sums to 1, minus the one-hot).
        const auto g = evaluate_vjp(build_vjp(op, shapes_of(c.in), c.attrs), c.in, c.out, c.upstream)[0];
        BOOST_REQUIRE(g);
        for (std::int64_t p = 0; p < 6; ++p) {
            double row = 0;
            for (std::int64_t j = 0; j < 4; ++j) {
                row += g->at(p * 4 + j);
                if (labels[std::size_t(p)] == ignored) BOOST_TEST(g->at(p * 4 + j) == 0.0);
            }
            BOOST_TEST(std::abs(row) < 1e-15);
        }
        BOOST_TEST(std::abs(g->at(0)) > 0.0);  // a kept position's row
        // Every position left out: the loss is 0 and so is its gradient (no 0/0).
        for (std::int64_t p = 0; p < 6; ++p) c.in[1].set(p, double(ignored));
        c.out = forward(op, c.in, c.attrs);
        const auto none = evaluate_vjp(build_vjp(op, shapes_of(c.in), c.attrs), c.in, c.out, c.upstream)[0];
        BOOST_REQUIRE(none);
        for (std::int64_t e = 0; e < none->numel(); ++e) BOOST_TEST(none->at(e) == 0.0);
        BOOST_TEST(check_first_order(op, c, what + ", all left out") == 1u);
    }
}

BOOST_AUTO_TEST_CASE(twice_differentiable_is_computed_from_the_ops_a_vjp_uses) {
    const Op* tanh = find_op("tanh");
    BOOST_REQUIRE(tanh);
    BOOST_TEST(twice_differentiable(*tanh));
    BOOST_TEST(vjp_ops_without_vjp(*tanh).empty());
    // An op whose VJP uses an op without one (dropout has none) is not twice differentiable.
    Op square = *tanh;
    square.name = "square_for_test";
    square.vjp = [](VjpBuilder& b) { return refs(b.add_op("dropout", {b.grad()})); };
    BOOST_TEST((vjp_ops_without_vjp(square) == std::vector<std::string>{"dropout"}));
    BOOST_TEST(!twice_differentiable(square));
    square.vjp = {};
    BOOST_TEST(!twice_differentiable(square));
}

BOOST_AUTO_TEST_CASE(all_but_a_few_built_in_ops_have_a_vjp_and_are_twice_differentiable) {
    std::vector<std::string> without, not_twice;
    for (const Op* op : all_ops()) {
        if (!op->vjp) without.push_back(op->name);
        else if (!twice_differentiable(*op)) not_twice.push_back(op->name);
    }
    BOOST_TEST_MESSAGE("ops without a vjp: " << fmt::format("{}", fmt::join(without, ", ")));
    BOOST_TEST(not_twice.empty(), fmt::format("{}", fmt::join(not_twice, ", ")));
    // Every built-in op but dropout (docs/higher-order.md says why).
    BOOST_TEST((without == std::vector<std::string>{"dropout"}), fmt::format("{}", fmt::join(without, ", ")));
}

BOOST_AUTO_TEST_CASE(a_wrong_vjp_rule_fails_the_first_order_comparison) {
    Op tanh = *find_op("tanh");
    tanh.vjp = [](VjpBuilder& b) { return refs(b.mul(b.grad(), b.scale(b.output(), -1, 1))); };  // 1 − y, not 1 − y²
    Rng rng(3);
    const Case c = drawn(tanh, tanh.samples[0], rng);
    const auto expected = numeric_backward(tanh, c.in, c.out, c.upstream, c.attrs, c.wants);
    const auto got = evaluate_vjp(build_vjp(tanh, shapes_of(c.in), c.attrs), c.in, c.out, c.upstream);
    BOOST_TEST(max_relative_error(*got[0], expected[0]) > 1e-3);
}
