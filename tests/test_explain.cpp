// How a step's numbers arise: formulas in the model's names, local derivatives, one
// gradient entry term by term (`explain`), and the REPL's wrapping.
#define BOOST_TEST_MODULE explain
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fmt/format.h>
#include <sstream>

#include "cli/repl.hpp"
#include "cli/step_view.hpp"
#include "core/error.hpp"
#include "format/model_json.hpp"
#include "graph/stepper.hpp"
#include "ops/formula.hpp"
#include "render/dot.hpp"
#include "render/explain.hpp"
#include "testing.hpp"

using namespace chainrule;
using namespace chainrule::cli;
namespace fs = std::filesystem;

namespace {

std::string models_dir() { return testing::source_root() + "/models"; }

Model worked_example() {
    Model m = load_model(models_dir() + "/worked_example.json");
    m.graph.init_parameters(0);
    return m;
}

// The worked example by hand (docs/worked-example.md): x, y, y′ = σ(0.1·Σx + 0.1).
const double kX[3][4] = {{5.1, 3.5, 1.4, 0.2}, {4.9, 3.0, 1.4, 0.2}, {4.7, 3.2, 1.3, 0.2}};
const double kY[3] = {0, 1, 0};
double yhat_of(int r) { return 1 / (1 + std::exp(-(0.1 * (kX[r][0] + kX[r][1] + kX[r][2] + kX[r][3]) + 0.1))); }

std::string error_of(const Stepper& s, const std::string& entry) {
    try {
        explain_entry(s.graph(), s.plan(), entry);
    } catch (const InputError& e) {
        return e.what();
    }
    return "(no error)";
}

// Inputs without a value: symbolic dims 3, uniform(0.5, 2), labels one-hot or class indices.
void draw_inputs(Graph& g) {
    Rng rng(7);
    for (std::size_t id = 0; id < g.size(); ++id) {
        const Node& n = g.node(int(id));
        if (n.kind != NodeKind::input || !n.value.empty()) continue;
        Dims dims;
        for (const auto& d : n.shape) dims.push_back(d.symbolic() ? 3 : d.size);
        Domain domain = Domain::positive;
        std::int64_t classes = 2;
        for (const Node& user : g.nodes())
            for (std::size_t k = 0; k < user.inputs.size(); ++k)
                if (user.inputs[k] == int(id) && user.op->inputs[k] == "labels") {
                    domain = dims.size() == 1 ? Domain::class_index : Domain::one_hot;
                    classes = g.node(user.inputs[0]).shape.back().size;
                }
        g.set_value(n.name, testing::random_tensor(dims, domain, rng, classes));
    }
}

bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

std::size_t columns(const std::string& s) {
    std::size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}

// The numbers of a text, in order: what wrapping must keep intact.
std::vector<std::string> numbers_in(const std::string& text) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : text) {
        if (std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == 'e' || c == '+') cur += c;
        else if (!cur.empty()) out.push_back(cur), cur.clear();
    }
    if (!cur.empty()) out.push_back(cur);
    return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(formulas_are_written_with_the_model_names) {
    Model m = worked_example();
    Stepper s(m.graph);  // forward: the shapes are the values'
    const Graph& g = s.graph();
    int L = g.find("L"), z = g.find("z"), yhat = g.find("yhat"), a = g.find("a");
    BOOST_TEST(node_formula(g, L) == "L = 1/(2N)·Σ(yhat−y)²,  N = rows;  dL/dyhat = (yhat−y)/N,  dL/dy = −(yhat−y)/N");
    BOOST_TEST(node_formula(g, z) == "z = x·w;  dL/dx = dL/dz·wᵀ,  dL/dw = xᵀ·dL/dz");
    BOOST_TEST(node_formula(g, yhat) == "yhat = 1/(1+exp(-a));  dL/da = dL/dyhat · yhat(1−yhat)");
    BOOST_TEST(node_input_formula(g, z, 1) == "dL/dw = xᵀ·dL/dz");
    BOOST_TEST(node_input_formula(g, L, 0) == "dL/dyhat = (yhat−y)/N");
    BOOST_TEST(node_input_formula(g, a, 1) == "dL/db = sum_to_shape(dL/da, b)");
    // Shapes in place of names, ᵀ applied: x is [3,4], so xᵀ is [4,3].
    BOOST_TEST(node_input_shapes(g, z, 1) == "[4,1] = [4,3]·[3,1]");
    BOOST_TEST(node_input_shapes(g, z, 0) == "[3,4] = [3,1]·[1,4]");
    BOOST_TEST(local_derivative_text(g, yhat, 0) == "∂yhat/∂a = yhat(1−yhat)");
}

// A batched product transposes the last two axes of each block: with qh [3,2,4,3] and
// kt [3,2,3,4], dL/dqh = dL/ds·ktᵀ is [3,2,4,3] = [3,2,4,4]·[3,2,4,3] (not ktᵀ as [3,2,3,4]
// read as a matrix of its first two axes).
BOOST_AUTO_TEST_CASE(a_batched_product_shows_each_block_transposed) {
    Model m = load_model(testing::source_root() + "/tests/fixtures/attention_heads.json");
    m.graph.init_parameters(0);
    draw_inputs(m.graph);
    Stepper s(m.graph);
    const Graph& g = s.graph();
    const int scores = g.find("s");
    BOOST_TEST(node_input_shapes(g, scores, 0) == "[3,2,4,3] = [3,2,4,4]·[3,2,4,3]");
    BOOST_TEST(node_input_shapes(g, scores, 1) == "[3,2,3,4] = [3,2,3,4]·[3,2,4,4]");
}

// A variadic op's one formula names each edge's own input: concat(rest, first) sends rest and
// first their own parts, and the whole formula keeps the generic x0, x1.
BOOST_AUTO_TEST_CASE(each_input_of_a_concat_gets_the_formula_in_its_own_name) {
    Model m = load_model(testing::source_root() + "/tests/fixtures/concat_cross_entropy.json");
    m.graph.init_parameters(0);
    draw_inputs(m.graph);
    Stepper s(m.graph);
    const Graph& g = s.graph();
    const int z = g.find("z");
    BOOST_TEST(node_input_formula(g, z, 0) ==
               "dL/drest = the part of dL/dz along axis where rest sits (each input its own)");
    BOOST_TEST(node_input_formula(g, z, 1) ==
               "dL/dfirst = the part of dL/dz along axis where first sits (each input its own)");
    BOOST_TEST(node_input_shapes(g, z, 1) ==
               "[3,1,5] = the part of [3,4,5] along axis where [3,1,5] sits (each input its own)");
    CHECK_HAS(node_formula(g, z), "z = cat(x0, x1, …) along axis (torch.cat)");
}

BOOST_AUTO_TEST_CASE(renaming_replaces_whole_names_at_once) {
    const Op& mse = *find_op("mse");
    // y → t and t → y at the same time: a swap, not y → t → y.
    std::vector<std::string> swapped = {"t", "y"};
    BOOST_TEST(named_formula(mse, "L", swapped) == "L = 1/(2N)·Σ(t−y)²,  N = rows;  dL/dt = (t−y)/N,  dL/dy = −(t−y)/N");
    // Words that merely contain a name ("axis", "exp", "max") stay.
    std::vector<std::string> in = {"a"};
    std::string s = named_formula(*find_op("softmax"), "p", in);
    BOOST_TEST(has(s, "exp(a_i − m)"), s);
    BOOST_TEST(has(s, "along axis"), s);
    BOOST_TEST(!has(s, "along aaxis"), s);
    BOOST_TEST(formula_output(*find_op("matmul")) == "C");
    BOOST_TEST(formula_output(*find_op("mse")) == "L");
}

BOOST_AUTO_TEST_CASE(local_factors_come_from_the_formula) {
    BOOST_TEST(*local_factor(*find_op("sigmoid"), 0) == "y(1−y)");
    BOOST_TEST(*local_factor(*find_op("tanh"), 0) == "(1 − y²)");
    BOOST_TEST(*local_factor(*find_op("add"), 1) == "1");
    BOOST_TEST(*local_factor(*find_op("sub"), 1) == "−1");
    BOOST_TEST(*local_factor(*find_op("log"), 0) == "1/x");
    BOOST_TEST(*local_factor(*find_op("mul"), 0) == "b");
    BOOST_TEST(*local_factor(*find_op("relu"), 0) == "1 if x > 0, else 0");
    BOOST_TEST(!local_factor(*find_op("matmul"), 1).has_value());  // not elementwise: a product, not a factor
    BOOST_TEST(!local_factor(*find_op("normalize"), 0).has_value());
}

// Every op's formula writes dL/d<input> for each input, so each edge gets a formula.
BOOST_AUTO_TEST_CASE(every_op_has_a_formula_for_every_input) {
    for (const Op* op : all_ops())
        for (std::size_t k = 0; k < op->inputs.size(); ++k) {
            std::string part = input_formula(*op, k);
            BOOST_TEST(part.rfind("dL/d" + op->inputs[k], 0) == 0, op->name << " input " << op->inputs[k] << ": " << part);
        }
}

BOOST_AUTO_TEST_CASE(sigmoid_local_derivative_is_the_worked_example_s) {
    Model m = worked_example();
    Stepper s(m.graph);
    const Graph& g = s.graph();
    s.next();                      // L
    const Step& st = s.next();     // yhat = sigmoid(a)
    BOOST_TEST(g.node(st.id).name == "yhat");
    Tensor local = local_derivative(g, st.id, 0);
    const double hand[3] = {0.1855, 0.1920, 0.1930};  // the lecture's y′(1 − y′), four digits
    BOOST_TEST(local.dims() == (Dims{3, 1}));
    for (int r = 0; r < 3; ++r) {
        BOOST_TEST(std::abs(local.at(r) - hand[r]) < 5e-5, r << ": " << local.at(r));
        BOOST_TEST(std::abs(local.at(r) - yhat_of(r) * (1 - yhat_of(r))) < 1e-15);
        // upstream ⊙ local is what the step sends to a.
        BOOST_TEST(std::abs(g.node(st.id).grad.at(r) * local.at(r) - st.inputs[0].contribution.at(r)) < 1e-15);
    }
    // matmul is not elementwise: no local derivative, a product formula instead.
    BOOST_TEST(local_derivative(g, g.find("z"), 1).empty());
    // add's bias is broadcast ([1] against [3,1]): no elementwise local derivative either.
    BOOST_TEST(local_derivative(g, g.find("a"), 1).empty());
    BOOST_TEST(local_derivative(g, g.find("a"), 0).at(2) == 1.0);
}

BOOST_AUTO_TEST_CASE(explain_w0_writes_the_lecture_sum_with_its_terms) {
    Model m = worked_example();
    Stepper s(m.graph);
    while (!s.done()) s.next();
    Explanation x = explain_entry(s.graph(), s.plan(), "w[0]");
    BOOST_TEST(x.entry == "w[0,0]");
    BOOST_TEST(x.consumer == "z");
    BOOST_TEST(x.chain == (std::vector<std::string>{"yhat", "a", "z", "w"}), boost::test_tools::per_element());
    BOOST_REQUIRE(x.factors.size() == 4u);
    BOOST_TEST(x.factors[0].name == "dL/dyhat");
    BOOST_TEST(x.factors[0].formula == "(yhat−y)/N");
    BOOST_TEST(x.factors[1].formula == "yhat(1−yhat)");
    BOOST_TEST(x.factors[2].formula == "1");
    BOOST_TEST(x.factors[3].formula == "dL/dw = xᵀ·dL/dz");
    BOOST_REQUIRE(x.terms.size() == 3u);
    double sum = 0;
    for (int r = 0; r < 3; ++r) {
        double yh = yhat_of(r), term = (yh - kY[r]) / 3 * yh * (1 - yh) * kX[r][0];
        const ExplainTerm& t = x.terms[std::size_t(r)];
        BOOST_TEST(std::abs(t.factors[0] - (yh - kY[r]) / 3) < 1e-15);
        BOOST_TEST(std::abs(t.factors[1] - yh * (1 - yh)) < 1e-15);
        BOOST_TEST(t.factors[2] == 1.0);
        BOOST_TEST(t.factors[3] == kX[r][0]);  // ∂z_r/∂w0 = x_r0
        BOOST_TEST(std::abs(t.value - term) < 1e-15);
        sum += term;
    }
    BOOST_TEST(std::abs(x.sum - 0.379799) < 5e-7);
    BOOST_TEST(std::abs(x.sum - sum) < 1e-15);
    BOOST_TEST(std::abs(x.grad - x.sum) < 1e-15);
    // docs/worked-example.md's terms: 1/3 · (0.753989·0.185490·5.1 − 0.259225·0.192027·4.9 + 0.738850·0.192951·4.7)
    std::string text = format_explanation(x);
    for (const char* want : {"dL/dw[0,0] = Σ_j dL/dyhat[j] · ∂yhat/∂a[j] · ∂a/∂z[j] · ∂z[j]/∂w[0,0]",
                             "= Σ_j (yhat−y)/N · yhat(1−yhat) · ∂z[j]/∂w[0,0]", "= 0.379799", "0.18549", "0.192027",
                             "0.192951", "5.1", "4.9", "4.7", "0.237757", "-0.0813046", "0.223347",
                             "from the backward pass = 0.379799"})
        BOOST_TEST(has(text, want), want << " in\n" << text);
}

BOOST_AUTO_TEST_CASE(explain_leaves_out_zero_terms_and_reads_a_flat_or_full_index) {
    Model m = worked_example();
    Stepper s(m.graph);
    while (!s.done()) s.next();
    Explanation x = explain_entry(s.graph(), s.plan(), "x[1,2]");
    BOOST_TEST(x.terms.size() == 1u);  // x[1,2] reaches z[1,0] only
    BOOST_TEST(x.terms[0].at == "[1,0]");
    BOOST_TEST(x.zero_terms == 2);
    BOOST_TEST(std::abs(x.sum - s.graph().node(s.graph().find("x")).grad.at(6)) < 1e-15);
    BOOST_TEST(explain_entry(s.graph(), s.plan(), "x[6]").entry == "x[1,2]");
}

BOOST_AUTO_TEST_CASE(bad_explain_input_says_what_is_wrong) {
    Model m = worked_example();
    Stepper s(m.graph);
    while (!s.done()) s.next();
    std::string e = error_of(s, "wq[0]");
    BOOST_TEST(has(e, "no node 'wq'"), e);
    BOOST_TEST(has(e, "did you mean 'w'?"), e);
    e = error_of(s, "w[4]");
    BOOST_TEST(has(e, "index 4 is out of range: w has 4 entries (shape [4,1]), 0 to 3"), e);
    e = error_of(s, "w[0,1]");
    BOOST_TEST(has(e, "index 1 of axis 1 is out of range: w has shape [4,1]"), e);
    e = error_of(s, "w[0,0,0]");
    BOOST_TEST(has(e, "give one flat index or 2 indices"), e);
    e = error_of(s, "w");
    BOOST_TEST(has(e, "explain needs one entry of a tensor, e.g. explain w[0]"), e);
    e = error_of(s, "w[one]");
    BOOST_TEST(has(e, "'one' is not an index"), e);
    e = error_of(s, "w[-1]");
    BOOST_TEST(has(e, "'-1' is not an index"), e);
    e = error_of(s, "L[0]");
    BOOST_TEST(has(e, "L is the loss"), e);
}

BOOST_AUTO_TEST_CASE(explain_refuses_a_node_used_twice) {
    Graph g(Dtype::f64);
    g.input("x", {{3, {}}});
    g.op("sq", "mul", {"x", "x"});
    g.op("s", "sum", {"sq"});
    g.set_output("loss", "s");
    g.set_value("x", Tensor::of({1.0, 2.0, 3.0}));
    Stepper s(g);
    while (!s.done()) s.next();
    std::string e = error_of(s, "x[0]");
    BOOST_TEST(has(e, "x feeds 2 uses on the way to the loss (sq, sq)"), e);
}

// A chain of 40,000 elementwise nodes is explained in one pass over the graph: the version
// that looked up each link's consumer by scanning every node took about 13 s here (and far
// longer under the sanitizers); the linear one takes milliseconds.
BOOST_AUTO_TEST_CASE(explaining_a_long_chain_is_linear_in_its_length) {
    constexpr int kLinks = 40000;
    Graph g(Dtype::f64);
    g.parameter("w", fixed_shape({1}), Init::constant(0.5));
    std::string prev = "w";
    for (int k = 0; k < kLinks; ++k) {
        std::string name = fmt::format("t{}", k);
        g.op(name, "tanh", {prev});
        prev = name;
    }
    g.op("L", "sum", {prev});
    g.set_output("loss", "L");
    g.init_parameters(0);
    Plan plan = g.plan(Pass::stepping());
    g.forward(plan);
    g.backward(plan);
    const auto start = std::chrono::steady_clock::now();
    Explanation x = explain_entry(g, plan, "w[0]");
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    BOOST_TEST_MESSAGE("explain over " << kLinks << " links: " << seconds << " s");
    BOOST_TEST(seconds < 3.0);
    BOOST_TEST(x.chain.size() == std::size_t(kLinks) + 1);  // t39999 … t0, w
    BOOST_TEST(x.chain.front() == "t39999");
    BOOST_TEST(x.factors.size() == std::size_t(kLinks) + 1);  // dL/dt39999, 39,999 tanh links, ∂t0/∂w
    BOOST_REQUIRE(x.terms.size() == 1u);
    // The product of the chain's 40,000 tanh derivatives is the backward pass's number.
    BOOST_TEST(std::abs(x.sum - x.grad) <= 1e-12 * std::abs(x.grad));
    BOOST_TEST(x.grad > 0);
}

// On every shipped model, for the last entry of each parameter explain can follow, the terms add up to the
// backward pass's entry: the chain is the graph's, not a template.
BOOST_AUTO_TEST_CASE(explained_entries_add_up_on_every_model) {
    int explained = 0;
    for (const auto& e : fs::directory_iterator(models_dir())) {
        if (e.path().extension() != ".json" || e.path().filename() == "schema.json") continue;
        Model m = load_model(e.path().string());
        Graph& g = m.graph;
        if (g.loss() < 0) continue;
        g.init_parameters(3);
        draw_inputs(g);
        Stepper s(g);
        while (!s.done()) s.next();
        for (int p : g.parameters()) {
            const std::string entry = g.node(p).name + "[" + std::to_string(g.node(p).value.numel() - 1) + "]";
            Explanation x;
            try {
                x = explain_entry(g, s.plan(), entry);
            } catch (const InputError& err) {
                BOOST_TEST_MESSAGE(e.path().filename() << " " << entry << ": " << err.what());
                continue;
            }
            double tol = g.dtype() == Dtype::f64 ? 1e-12 : 1e-5;
            BOOST_TEST(std::abs(x.sum - x.grad) <= tol * (1 + std::abs(x.grad)), e.path().filename() << " " << entry);
            ++explained;
        }
    }
    BOOST_TEST_MESSAGE("explained " << explained << " entries");
    BOOST_TEST(explained >= 10);
}

BOOST_AUTO_TEST_CASE(rewinding_replays_the_same_bits) {
    Model m = worked_example();
    Stepper s(m.graph);
    while (!s.done()) s.next();
    Tensor w = s.graph().node(s.graph().find("w")).grad, b = s.graph().node(s.graph().find("b")).grad;
    s.rewind(2);
    BOOST_TEST(s.position() == 2u);
    BOOST_TEST(!s.reached(s.graph().find("w")));
    BOOST_TEST(s.reached(s.graph().find("a")));
    while (!s.done()) s.next();
    const Tensor& w2 = s.graph().node(s.graph().find("w")).grad;
    for (std::int64_t i = 0; i < 4; ++i) BOOST_TEST(w2.at(i) == w.at(i));
    BOOST_TEST(s.graph().node(s.graph().find("b")).grad.at(0) == b.at(0));
}

BOOST_AUTO_TEST_CASE(wrapping_breaks_between_numbers_only) {
    std::string row = "  value        [[";
    for (int i = 0; i < 60; ++i) row += (i ? ", " : "") + std::to_string(-0.123456 * (i + 1));
    row += "]]\n";
    std::string wrapped = wrap_lines(row + "short line\n", 50);
    std::istringstream lines(wrapped);
    std::string line;
    int count = 0;
    while (std::getline(lines, line)) {
        BOOST_TEST(columns(line) <= 50u, line);
        // Continued under the inner '[' of "[[", as format_tensor aligns its rows.
        if (count > 0 && line != "short line") BOOST_TEST(line.rfind(std::string(16, ' ') + "-", 0) == 0, line);
        ++count;
    }
    BOOST_TEST(count > 5);
    BOOST_TEST(numbers_in(wrapped) == numbers_in(row + "short line\n"), boost::test_tools::per_element());
    // No ", " to break at: the line stays whole rather than cut inside a number.
    std::string one = "  x  " + std::string(80, '7') + "\n";
    BOOST_TEST(wrap_lines(one, 50) == one);
}

BOOST_AUTO_TEST_CASE(dot_edges_carry_the_gradient_formula) {
    Model m = worked_example();
    std::string dot = to_dot(m.graph);
    BOOST_TEST(has(dot, "[label=\"dL/dw = xᵀ·dL/dz\"]"), dot);
    BOOST_TEST(has(dot, "[label=\"dL/dyhat = (yhat−y)/N\"]"), dot);
    BOOST_TEST(has(dot, "[label=\"dL/da = dL/dyhat · yhat(1−yhat)\"]"), dot);
}
