#define BOOST_TEST_MODULE stepper
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "cli/lecture_labels.hpp"
#include "cli/repl.hpp"
#include "cli/step_view.hpp"
#include "core/error.hpp"
#include "core/text.hpp"
#include "format/model_json.hpp"
#include "graph/stepper.hpp"
#include "render/dot.hpp"
#include "testing.hpp"

using namespace chainrule;
using namespace chainrule::cli;
namespace fs = std::filesystem;

namespace {

std::string models_dir() { return testing::source_root() + "/models"; }

std::vector<fs::path> all_models() {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(models_dir()))
        if (e.path().extension() == ".json" && e.path().filename() != "schema.json") out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
}

// A point like the one `chainrule step` uses: parameters from their initialisers, inputs
// without a value drawn with symbolic dims set to 3 (uniform(0, 1), or valid labels).
Model at_point(const fs::path& path, std::uint64_t seed = 5) {
    Model m = load_model(path.string());
    Graph& g = m.graph;
    g.init_parameters(seed);
    Rng rng(seed + 1);
    testing::draw_inputs(g, rng);
    return m;
}

bool same_bits(const Tensor& a, const Tensor& b) {
    return a.dtype() == b.dtype() && a.dims() == b.dims() &&
           std::memcmp(a.data<unsigned char>(), b.data<unsigned char>(),
                       std::size_t(a.numel()) * dtype_size(a.dtype())) == 0;
}

// prev + c in the tensor's own dtype: what the engine's accumulation must produce.
Tensor plus(const Tensor& prev, const Tensor& c) {
    Tensor out = prev;
    dispatch(out.dtype(), [&]<class T>() {
        for (std::int64_t i = 0; i < out.numel(); ++i) out.data<T>()[i] = prev.data<T>()[i] + c.data<T>()[i];
    });
    return out;
}

std::string run_session(Stepper& s, const std::string& script) {
    std::istringstream in(script);
    std::ostringstream out;
    interact(s, in, out, false);
    return out.str();
}

double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

}  // namespace

using chainrule::testing::RemoveScratch;
BOOST_TEST_GLOBAL_FIXTURE(RemoveScratch);

BOOST_AUTO_TEST_CASE(models_folder_is_found) { BOOST_TEST(all_models().size() >= 2u); }

// Steps a fresh graph from `make` and checks every number against Graph::backward on
// another fresh one: upstream gradients, each accumulation, the final gradients, bit for bit.
template <class Make>
void check_against_full_backward(Make make) {
    Graph full = make();
    forward_backward_once(full, Pass::inspect());

    // Training's configuration (no input gradients, contributions written in place).
    Graph training = make();
    forward_backward_once(training);

    Graph stepped = make();
    Stepper s(stepped);
    const Graph& g = s.graph();
    BOOST_TEST(s.order() == full.plan(Pass::inspect()).backward_order());
    std::vector<Tensor> last_grad(g.size());
    std::size_t steps = 0, accumulations = 0;
    while (!s.done()) {
        const Step& st = s.next();
        BOOST_TEST(st.index == steps);
        ++steps;
        BOOST_TEST(same_bits(g.node(st.id).grad, full.node(st.id).grad), "upstream gradient of " << g.node(st.id).name);
        // Contributions add in slot order; each input's snapshot is taken after the whole step.
        for (const StepInput& in : st.inputs) {
            if (in.contribution.empty()) continue;
            BOOST_TEST(in.first == last_grad[in.id].empty());
            accumulations += !in.first;
            last_grad[in.id] = in.first ? in.contribution : plus(last_grad[in.id], in.contribution);
        }
        for (const StepInput& in : st.inputs)
            if (!in.contribution.empty())
                BOOST_TEST(same_bits(in.grad, last_grad[in.id]), "accumulated gradient of " << g.node(in.id).name);
    }
    BOOST_TEST(steps == s.order().size());
    for (std::size_t id = 0; id < g.size(); ++id) {
        const Node& n = g.node(int(id));
        BOOST_TEST(same_bits(n.grad, full.node(int(id)).grad), "final gradient of " << n.name);
        if (!last_grad[id].empty()) BOOST_TEST(same_bits(last_grad[id], n.grad));
        if (n.kind == NodeKind::parameter)
            BOOST_TEST(same_bits(n.grad, training.node(int(id)).grad), "training gradient of " << n.name);
    }
    BOOST_TEST_MESSAGE(steps << " steps, " << accumulations << " accumulations");
}

// Every number the stepper shows is the full backward pass's own, on every shipped model.
BOOST_AUTO_TEST_CASE(stepper_equals_full_backward_on_every_model) {
    for (const fs::path& path : all_models()) {
        BOOST_TEST_CONTEXT(path.filename().string()) {
            check_against_full_backward([&] { return at_point(path).graph; });
        }
    }
}

// A node used three times (twice by one op) gets three contributions, added in order.
BOOST_AUTO_TEST_CASE(stepper_accumulates_like_full_backward) {
    for (Dtype dtype : {Dtype::f64, Dtype::f32}) {
        check_against_full_backward([dtype] {
            Graph g(dtype);
            g.input("x", {{3, {}}, {4, {}}});
            g.parameter("w", {{4, {}}, {2, {}}}, Init::normal(0, 1));
            g.op("z", "matmul", {"x", "w"});
            g.op("h", "sigmoid", {"z"});
            g.op("p", "mul", {"h", "h"});
            g.op("q", "add", {"p", "h"});
            g.op("L", "sum", {"q"});
            g.set_output("loss", "L");
            g.init_parameters(7);
            Rng rng(8);
            g.set_value("x", testing::random_tensor({3, 4}, Domain::real, rng));
            return g;
        });
    }
    Graph g(Dtype::f64);
    g.input("x", {{2, {}}});
    g.op("p", "mul", {"x", "x"});
    g.op("L", "sum", {"p"});
    g.set_output("loss", "L");
    Tensor x(Dtype::f64, {2});
    x.set(0, 3);
    x.set(1, -5);
    g.set_value("x", x);
    Stepper s(g);
    s.next();
    const Step& mul = s.next();
    BOOST_REQUIRE(mul.inputs.size() == 2u);
    BOOST_TEST(mul.inputs[0].first);
    BOOST_TEST(!mul.inputs[1].first);
    BOOST_TEST(mul.inputs[1].grad.at(1) == -10.0);  // d(x²)/dx = x + x
}

// The lecture's worked example by hand: z = x·w, a = z + b, y′ = σ(a), L = 1/(2N) Σ (y′ − y)².
BOOST_AUTO_TEST_CASE(worked_example_steps_match_hand_computation) {
    Model m = load_model(models_dir() + "/worked_example.json");
    m.graph.init_parameters(0);
    Stepper s(m.graph);
    const double x[3][4] = {{5.1, 3.5, 1.4, 0.2}, {4.9, 3.0, 1.4, 0.2}, {4.7, 3.2, 1.3, 0.2}};
    const double y[3] = {0, 1, 0};
    double yhat[3], dyhat[3], delta[3];
    for (int r = 0; r < 3; ++r) {
        double a = 0.1 * (x[r][0] + x[r][1] + x[r][2] + x[r][3]) + 0.1;
        yhat[r] = sigmoid(a);
        dyhat[r] = (yhat[r] - y[r]) / 3;
        delta[r] = dyhat[r] * yhat[r] * (1 - yhat[r]);
    }
    const Graph& g = s.graph();
    BOOST_TEST(g.node(s.order()[0]).name == "L");

    const Step& l = s.next();  // L: sends (y′ − y)/N to y′
    BOOST_REQUIRE(l.inputs.size() == 2u);
    BOOST_TEST(g.node(l.inputs[0].id).name == "yhat");
    for (int r = 0; r < 3; ++r) BOOST_TEST(l.inputs[0].contribution.at(r) == dyhat[r], boost::test_tools::tolerance(1e-14));
    BOOST_TEST(g.node(l.id).grad.at(0) == 1.0);

    const Step& sig = s.next();  // y′: sends δ = g · y′(1 − y′)
    BOOST_TEST(g.node(sig.id).name == "yhat");
    for (int r = 0; r < 3; ++r) {
        BOOST_TEST(g.node(sig.id).grad.at(r) == dyhat[r], boost::test_tools::tolerance(1e-14));
        BOOST_TEST(sig.inputs[0].contribution.at(r) == delta[r], boost::test_tools::tolerance(1e-13));
    }
    const Step& add = s.next();  // a: δ to z, Σ δ to b
    BOOST_TEST(add.inputs[1].contribution.at(0) == delta[0] + delta[1] + delta[2], boost::test_tools::tolerance(1e-13));
    BOOST_TEST(!s.reached(g.id("w")));
    const Step& mm = s.next();  // z: xᵀ·δ to w
    for (int k = 0; k < 4; ++k) {
        double dw = x[0][k] * delta[0] + x[1][k] * delta[1] + x[2][k] * delta[2];
        BOOST_TEST(mm.inputs[1].contribution.at(k) == dw, boost::test_tools::tolerance(1e-13));
        BOOST_TEST(mm.inputs[0].contribution.at(k) == 0.1 * delta[0], boost::test_tools::tolerance(1e-13));
    }
    BOOST_TEST(s.done());
    BOOST_TEST(s.reached(g.id("w")));
    BOOST_TEST(!has_lecture_labels(g, s.order()));
}

BOOST_AUTO_TEST_CASE(slides_mnist_carries_the_nine_labels_in_order) {
    Model m = at_point(models_dir() + "/slides_mnist.json");
    Stepper s(m.graph);
    const Graph& g = s.graph();
    BOOST_TEST(has_lecture_labels(g, s.order()));
    std::vector<std::string> where;
    std::string text;
    while (!s.done()) {
        const Step& st = s.next();
        text += format_step(s, st);
        for (const LabelledInput& l : label_step(g, st)) {
            const StepInput& in = *l.input;
            if (!l.label) {
                BOOST_TEST(!l.gap.has_value());
                continue;
            }
            where.push_back(std::to_string(l.label->number) + ":" + g.node(st.id).name + "->" + g.node(in.id).name);
            if (l.label->lecture_passes_through) {
                BOOST_REQUIRE(l.gap.has_value());
                const LectureGap& gap = *l.gap;
                // The lecture's value is the upstream gradient dL/dS passed on unchanged.
                BOOST_TEST(same_bits(gap.lecture, g.node(st.id).grad));
                BOOST_TEST(same_bits(gap.exact, in.contribution));
                double d2 = 0;
                for (std::int64_t i = 0; i < in.contribution.numel(); ++i)
                    d2 += std::pow(in.contribution.at(i) - g.node(st.id).grad.at(i), 2);
                BOOST_TEST(gap.norm_diff == std::sqrt(d2), boost::test_tools::tolerance(1e-12));
                BOOST_TEST(gap.relative_diff == gap.norm_diff / gap.norm_exact, boost::test_tools::tolerance(1e-12));
                BOOST_TEST(gap.norm_diff > 0);
            } else {
                BOOST_TEST(!l.gap.has_value());
            }
        }
    }
    std::sort(where.begin(), where.end());
    std::vector<std::string> expected = {"1:L->S",       "2:S->y2",      "3:y2->a2", "4:a2->b2", "5:y1W2->W2",
                                         "6:y1W2->y1", "7:y1->a1", "8:a1->b1", "9:xW1->W1"};
    BOOST_TEST(where == expected, boost::test_tools::per_element());

    // In the printed trace the nine appear in the lecture's order, (5) before (6).
    std::size_t at = 0;
    // Each label says what the step sends (∂L/∂W″ = y1ᵀ·δ2), then the local derivative it uses.
    for (const char* d : {"(1) ∂L/∂S = (S − t)/N", "(2) ∂L/∂y2 = normalize's Jacobian",
                          "(3) ∂L/∂a2 = δ2 = g ⊙ y2(1 − y2)   (local: ∂y2/∂a2 = y2(1 − y2))",
                          "(4) ∂L/∂b″ = δ2 summed over the rows   (local: ∂a2/∂b″ = 1)",
                          "(5) ∂L/∂W″ = y1ᵀ·δ2   (local: ∂a2/∂W″ = y1)", "(6) ∂L/∂y1 = δ2·W″ᵀ   (local: ∂a2/∂y1 = W″)",
                          "(7) ∂L/∂a1 = δ1 = (δ2·W″ᵀ) ⊙ y1(1 − y1)   (local: ∂y1/∂a1 = y1(1 − y1))",
                          "(8) ∂L/∂b′ = δ1 summed over the rows", "(9) ∂L/∂W′ = xᵀ·δ1   (local: ∂a1/∂W′ = x)"}) {
        std::size_t p = text.find(d, at);
        BOOST_TEST(p != std::string::npos, d << " in order");
        if (p != std::string::npos) at = p;
    }
    BOOST_TEST(text.find("relative difference") != std::string::npos);
    BOOST_TEST(text.find("∂a2/∂W″ = y1ᵀ") == std::string::npos);  // a product is not a local derivative
}

BOOST_AUTO_TEST_CASE(labels_need_the_lecture_op_not_just_the_name) {
    Graph g(Dtype::f64);
    g.input("a2", {{3, {}}, {4, {}}});
    g.op("y2", "relu", {"a2"});  // the lecture's y2 is a sigmoid: no (3) here, but (1) and (2)
    g.op("S", "normalize", {"y2"});
    g.input("t", {{3, {}}, {4, {}}});
    g.op("L", "mse", {"S", "t"});
    g.set_output("loss", "L");
    Rng rng(3);
    g.set_value("a2", testing::random_tensor({3, 4}, Domain::positive, rng));
    g.set_value("t", testing::random_tensor({3, 4}, Domain::real, rng));
    Stepper s(g);
    std::vector<int> numbers;
    while (!s.done())
        for (const LabelledInput& l : label_step(g, s.next()))
            if (l.label) numbers.push_back(l.label->number);
    BOOST_TEST(numbers == (std::vector<int>{1, 2}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(lecture_table_has_nine_derivatives_then_the_fused_op) {
    auto labels = lecture_labels();
    BOOST_REQUIRE(labels.size() >= 9u);
    for (int i = 0; i < 9; ++i) BOOST_TEST(labels[std::size_t(i)].number == i + 1);
    // Every row names an op that exists, so no row can silently never match.
    for (const auto& l : labels) {
        const Op* op = find_op(l.op);
        BOOST_REQUIRE_MESSAGE(op, l.op);
        BOOST_TEST(l.slot < op->inputs.size());
    }
}

BOOST_AUTO_TEST_CASE(session_runs_enter_p_b_c_q) {
    Model m = load_model(models_dir() + "/worked_example.json");
    m.graph.init_parameters(0);
    Stepper s(m.graph);
    std::string out = run_session(s, "\np yhat\nb a\nc\np w\nq\n");
    auto pos = [&](const std::string& what) { return out.find(what); };
    // Enter runs step 1 only; p shows yhat's value and its gradient so far.
    BOOST_TEST(pos("step 1/4: L = mse(yhat, y)") < pos("yhat (op sigmoid) [3,1]"));
    BOOST_TEST(pos("yhat (op sigmoid) [3,1]") < pos("step 2/4: yhat"));
    BOOST_TEST(out.find("0.753989") != std::string::npos);  // σ(1.12)
    BOOST_TEST(out.find("0.25133") != std::string::npos);   // (σ(1.12) − 0)/3
    // b a runs steps 2 and 3, then c runs step 4 and the summary.
    BOOST_TEST(pos("step 2/4: yhat") < pos("step 3/4: a = add(z, b)"));
    BOOST_TEST(pos("(step 4/4) c") > pos("step 3/4: a = add(z, b)"));
    BOOST_TEST(pos("(step 4/4) c") < pos("step 4/4: z = matmul(x, w)"));
    BOOST_TEST(pos("step 4/4: z") < pos("backward done after 4 steps"));
    BOOST_TEST(pos("(done) p w") < pos("w (parameter) [4,1]"));
    BOOST_TEST(out.find("0.379799") != std::string::npos);  // dL/dw[0]
    BOOST_TEST(s.done());
}

BOOST_AUTO_TEST_CASE(session_quits_on_q_and_reports_bad_commands) {
    Model m = load_model(models_dir() + "/worked_example.json");
    m.graph.init_parameters(0);
    Stepper s(m.graph);
    std::string out = run_session(s, "\nb zz\nb L\np\np yht\nfrobnicate\nhelp\nq\n\n\n");
    BOOST_TEST(s.position() == 1u);  // q stopped it: the Enters after q were not read
    BOOST_TEST(out.find("step 2/4:") == std::string::npos);
    BOOST_TEST(out.find("no node 'zz' (did you mean 'z'?)") != std::string::npos);
    BOOST_TEST(out.find("step 1 (L) is already done") != std::string::npos);
    BOOST_TEST(out.find("p needs a node name") != std::string::npos);
    BOOST_TEST(out.find("no node 'yht' (did you mean 'yhat'?)") != std::string::npos);
    BOOST_TEST(out.find("unknown command 'frobnicate'") != std::string::npos);
    BOOST_TEST(out.find("b NODE") != std::string::npos);
    BOOST_TEST(out.find("(not reached yet)") == std::string::npos);

    std::string more = run_session(s, "p w\n");  // the end of input ends the session too
    BOOST_TEST(more.find("(not reached yet: complete after step 4, z)") != std::string::npos, more);
    BOOST_TEST(s.position() == 1u);
}

BOOST_AUTO_TEST_CASE(index_of_names_the_problem) {
    Model m = at_point(models_dir() + "/slides_mnist.json");
    Stepper s(m.graph);
    BOOST_TEST(s.index_of("L") == 0u);
    BOOST_TEST(s.index_of("xW1") == s.order().size() - 1);
    auto message = [&](const std::string& name) {
        try {
            s.index_of(name);
        } catch (const InputError& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    BOOST_TEST(message("y1w2").find("did you mean 'y1W2'?") != std::string::npos);
    BOOST_TEST(message("W1").find("'W1' is a parameter") != std::string::npos);
    BOOST_TEST(message("nothing_like_it").find("the steps are: L, S, y2, a2, y1W2, y1, a1, xW1") != std::string::npos);
    BOOST_TEST(closest_name("qqqqqq", {"L", "S"}).empty());
}

BOOST_AUTO_TEST_CASE(step_json_has_the_documented_fields) {
    Model m = at_point(models_dir() + "/slides_mnist.json");
    Stepper s(m.graph);
    s.next();
    Json j = step_json(s, s.next());  // S = normalize(y2)
    BOOST_TEST(j["index"] == 1);
    BOOST_TEST(j["node"] == "S");
    BOOST_TEST(j["op"] == "normalize");
    BOOST_TEST(j["inputs"] == Json::array({"y2"}));
    BOOST_TEST(j["labels"].size() == 1u);
    BOOST_TEST(j["labels"][0]["number"] == 2);
    const Json& c = j["contributions"][0];
    BOOST_TEST(c["input"] == "y2");
    BOOST_TEST(c["label"] == 2);
    BOOST_TEST(c["contribution"] == c["grad"]);
    BOOST_TEST(c["lecture_gap"]["lecture"] == j["grad_out"]);
    BOOST_TEST(c["lecture_gap"]["norm_diff"].get<double>() > 0);
}

BOOST_AUTO_TEST_CASE(dot_escapes_names_and_renders) {
    Graph g(Dtype::f64);
    g.input("say \"hi\"\\", {{2, {}}});
    g.parameter("w", {{2, {}}}, Init::constant(0.5));
    g.op("p", "mul", {"say \"hi\"\\", "w"});
    g.op("L", "sum", {"p"});
    g.set_output("loss", "L");
    g.init_parameters(0);
    Tensor x(Dtype::f64, {2});
    x.set(0, 3);
    x.set(1, 4);
    g.set_value("say \"hi\"\\", x);
    forward_backward_once(g);
    std::string dot = to_dot(g, {.grads = true});
    BOOST_TEST(dot.find(R"(label="say \"hi\"\\\n)") != std::string::npos);
    BOOST_TEST(dot.find("∂L/∂w = [3, 4]") != std::string::npos);
    BOOST_TEST(dot.find("doubleoctagon") != std::string::npos);  // the loss
    BOOST_TEST(dot.find("n0 -> n2") != std::string::npos);
    BOOST_TEST(dot_escape("a\nb\"c\\") == "a\\nb\\\"c\\\\");

    if (find_program("dot").empty()) {
        BOOST_TEST_MESSAGE("graphviz is not installed: rendering not checked");
        return;
    }
    fs::path svg = testing::scratch() / "stepper.svg";
    render_svg(dot, svg.string());
    std::ifstream f(svg);
    std::string text((std::istreambuf_iterator<char>(f)), {});
    fs::remove(svg);
    BOOST_TEST(text.find("<svg") != std::string::npos);
    BOOST_TEST(text.find("say &quot;hi&quot;\\") != std::string::npos);
    BOOST_CHECK_THROW(render_svg("digraph {", svg.string()), RunError);
    fs::remove(svg);
}

BOOST_AUTO_TEST_CASE(a_failing_dot_leaves_the_svg_as_it_was) {
    // A `dot` that writes half an SVG to its -o file and then fails.
    fs::path dir = testing::scratch() / "fakedot";
    fs::create_directories(dir);
    {
        std::ofstream script(dir / "dot");
        script << "#!/bin/sh\nfor a in \"$@\"; do case $a in -o*) printf '<svg><g>' > \"${a#-o}\";; esac; done\n"
                  "echo 'dot: out of memory' >&2\nexit 3\n";
    }
    fs::permissions(dir / "dot", fs::perms::owner_all);
    fs::path svg = dir / "graph.svg";
    std::ofstream(svg) << "the previous drawing";
    std::string old_path = std::getenv("PATH") ? std::getenv("PATH") : "";
    ::setenv("PATH", dir.c_str(), 1);
    std::string msg = testing::message_of<RunError>([&] { render_svg("digraph { a -> b }", svg.string()); });
    ::setenv("PATH", old_path.c_str(), 1);
    CHECK_HAS(msg, "`dot -Tsvg` failed (exit 3) writing " + svg.string());
    std::ifstream f(svg);
    std::string text((std::istreambuf_iterator<char>(f)), {});
    BOOST_TEST(text == "the previous drawing");
    fs::remove_all(dir);
}

// `p NAME[i,j]` shows the slice of a rank-4 node with its first axes fixed (an attention's
// T×T matrix of one row and one head), value and gradient; bad slices are named.
BOOST_AUTO_TEST_CASE(session_prints_slices_of_rank_4_nodes) {
    Model m = at_point(testing::source_root() + "/tests/fixtures/attention_heads.json");
    Stepper s(m.graph);
    std::string out = run_session(s, "c\np p[2,1]\nfull p[1]\np[0,0]\np p[3,0]\np p[0,0,0,0]\np p[x]\nq\n");
    const Tensor& p = m.graph.node(m.graph.id("p")).value;  // [3,2,4,4]
    BOOST_REQUIRE(p.dims() == (Dims{3, 2, 4, 4}));
    BOOST_TEST(out.find("p (op softmax) [3,2,4,4]; the slice p[2,1] of shape [4,4]") != std::string::npos, out);
    BOOST_TEST(out.find("dL/dp[2,1]") != std::string::npos);
    // The slice's first row is entries 2·32 + 1·16 + 0..3 of the tensor, printed as {:.6g}.
    const std::size_t at = out.find("the slice p[2,1]");
    for (int j = 0; j < 4; ++j) {
        const std::string v = fmt::format("{:.6g}", p.at(2 * 32 + 16 + j));
        BOOST_TEST(out.find(v, at) != std::string::npos, v);
    }
    BOOST_TEST(out.find("the slice p[1] of shape [2,4,4]") != std::string::npos);
    BOOST_TEST(out.find(fmt::format("{:.6g}", p.at(32 + 31))) != std::string::npos);  // full: the last entry of p[1]
    BOOST_TEST(out.find("slices: p p[1,0] shows the next axis's first (axis 1 has 2)") != std::string::npos);
    BOOST_TEST(out.find("the slice p[0,0] of shape [4,4]") != std::string::npos);  // typed without p
    BOOST_TEST(out.find("p has shape [3,2,4,4]: index 3 of axis 0 is out of range [0, 3)") != std::string::npos);
    BOOST_TEST(out.find("p has shape [3,2,4,4]: give at most 3 indices to show a slice") != std::string::npos);
    BOOST_TEST(out.find("'p[x]': a slice is written NAME[i] or NAME[i,j]") != std::string::npos);
}
