// The backward pass as nodes (graph/backward_graph): on the lecture's models, and a
// tanh MLP with softmax cross-entropy, the appended dL/d<parameter> nodes hold the numeric
// backward's gradients to rtol 1e-12 in float64; names say what each node is; a node used
// twice gets the sum of its contributions; an op without a vjp on the path is refused by name.
// A `grad` node in a model file: a gradient penalty's loss and parameter gradients against
// PyTorch's create_graph=True (tests/golden/make_gradient_penalty_goldens.py), and gradcheck.
#define BOOST_TEST_MODULE backward_graph
#include <boost/test/unit_test.hpp>
#include <cmath>

#include "core/error.hpp"
#include "core/json.hpp"
#include "graph/gradcheck.hpp"
#include "format/model_json.hpp"
#include "graph/backward_graph.hpp"
#include "testing.hpp"

using namespace chainrule;

namespace {

// The numeric backward's parameter gradients against the appended graph's, on `g`.
void agrees(Graph numeric) {
    Graph graph = numeric;
    testing::prepare_graph(numeric, testing::Draw::uniform);
    Plan p = numeric.plan();
    numeric.forward(p);
    numeric.backward(p);
    const std::vector<int> params = graph.parameters();
    const std::vector<int> grads = append_backward(graph, graph.loss(), params);
    testing::prepare_graph(graph, testing::Draw::uniform);
    Plan q = graph.plan();
    graph.forward(q);
    BOOST_TEST(graph.value(graph.node(graph.loss()).name).at(0) == numeric.value(numeric.node(numeric.loss()).name).at(0));
    for (std::size_t k = 0; k < params.size(); ++k) {
        const std::string& name = graph.node(params[k]).name;
        BOOST_TEST(graph.node(grads[k]).name == "dL/d" + name);
        const Tensor& expected = numeric.grad(name);
        const Tensor& got = graph.node(grads[k]).value;
        BOOST_REQUIRE(got.dims() == expected.dims());
        BOOST_TEST(testing::relative_error(got, expected) <= 1e-12, name << ": " << testing::relative_error(got, expected));
    }
}

std::string model(const std::string& name) { return testing::source_root() + "/models/" + name + ".json"; }

}  // namespace

BOOST_AUTO_TEST_CASE(the_worked_example_iris_and_mnist_backward_graphs_equal_the_numeric_backward) {
    for (const char* name : {"worked_example", "iris_neuron", "slides_mnist"}) {
        BOOST_TEST_CONTEXT(name) { agrees(load_model(model(name)).graph); }
    }
}

BOOST_AUTO_TEST_CASE(a_tanh_mlp_with_cross_entropy_and_a_node_used_twice) {
    Graph g(Dtype::f64);
    g.input("x", {"N", 3});
    g.input("labels", {"N"}, Tensor::of({0, 2, 1}));
    g.parameter("W1", fixed_shape({3, 4}), Init::normal(0, 1));
    g.parameter("b1", fixed_shape({4}), Init::normal(0, 1));
    g.parameter("W2", fixed_shape({4, 3}), Init::normal(0, 1));
    g.op("z1", "linear", {"x", "W1", "b1"});
    g.op("h", "tanh", {"z1"});
    g.op("hh", "mul", {"h", "h"});  // h used twice by one node, and again below
    g.op("s", "add", {"hh", "h"});
    g.op("z2", "matmul", {"s", "W2"});
    g.op("L", "cross_entropy", {"z2", "labels"});
    g.set_output("loss", "L");
    agrees(g);
    Graph appended = g;
    append_backward(appended, appended.loss(), appended.parameters());
    BOOST_TEST(appended.find("dL/dh") >= 0);       // h's three contributions summed ...
    BOOST_TEST(appended.find("dL/dh.part1") >= 0); // ... by two add nodes
    BOOST_TEST(appended.node(appended.id("dL/dh")).op->name == "add");
    BOOST_TEST(appended.find("dL/dL") >= 0);
}

BOOST_AUTO_TEST_CASE(an_op_without_a_vjp_on_the_path_is_refused_by_name) {
    Graph g(Dtype::f64);
    g.input("x", {"N", 4});
    g.parameter("w", fixed_shape({4, 4}), Init::constant(0.1));
    g.op("z", "matmul", {"x", "w"});
    g.op("d", "dropout", {"z"});
    g.op("L", "mean", {"d"});
    g.set_output("loss", "L");
    try {
        append_backward(g, g.loss(), {g.id("w")});
        BOOST_FAIL("no error");
    } catch (const InputError& e) {
        CHECK_HAS(std::string(e.what()), "cannot differentiate the backward through node 'd': op 'dropout' has no vjp");
    }
    // Not on a path from w to L: nothing to differentiate there, so no refusal.
    Graph h(Dtype::f64);
    h.input("x", {"N", 4});
    h.parameter("w", fixed_shape({4, 1}), Init::constant(0.1));
    h.op("d", "dropout", {"x"});
    h.op("z", "matmul", {"d", "w"});
    h.op("L", "mean", {"z"});
    h.set_output("loss", "L");
    BOOST_TEST(append_backward(h, h.loss(), {h.id("w")}).size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_gradient_penalty_through_a_grad_node_matches_pytorch_create_graph) {
    const std::string root = testing::source_root();
    Model m = load_model(root + "/tests/fixtures/gradient_penalty.json");
    const Json golden = read_json_file(root + "/tests/golden/gradient_penalty.json");
    Graph& g = m.graph;
    g.init_parameters(0);
    Plan p = g.plan();
    g.forward(p);
    g.backward(p);
    const double loss = g.value("L").at(0), want = golden["loss"].get<double>();
    BOOST_TEST(std::abs(loss - want) <= 1e-12 * std::abs(want), loss << " vs " << want);
    const Tensor& gx = g.value("gx");
    for (std::int64_t e = 0; e < gx.numel(); ++e) {
        const double w = golden["gx"][std::size_t(e / 3)][std::size_t(e % 3)].get<double>();
        BOOST_TEST(std::abs(gx.at(e) - w) <= 1e-12 * std::max(1.0, std::abs(w)), "gx " << e);
    }
    for (auto& [name, value] : golden["grads"].items()) {
        const Tensor& grad = g.grad(name);
        std::vector<double> flat;
        const std::function<void(const Json&)> walk = [&](const Json& j) {
            if (j.is_array())
                for (const Json& v : j) walk(v);
            else
                flat.push_back(j.get<double>());
        };
        walk(value);
        BOOST_REQUIRE(std::int64_t(flat.size()) == grad.numel());
        double scale = 0;
        for (double v : flat) scale = std::max(scale, std::abs(v));
        for (std::int64_t e = 0; e < grad.numel(); ++e)
            BOOST_TEST(std::abs(grad.at(e) - flat[std::size_t(e)]) <= 1e-12 * scale,
                       name << "[" << e << "]: " << grad.at(e) << " vs " << flat[std::size_t(e)]);
    }
    // The penalty's gradient is second order; finite differences of the loss agree too.
    const GradcheckReport report = gradcheck(g, {.max_entries = 0});
    BOOST_TEST(report.ok);
    BOOST_TEST(!report.vacuous);
}

BOOST_AUTO_TEST_CASE(a_grad_node_through_an_op_without_a_vjp_is_refused_with_the_place) {
    const std::string text = R"({"format": "chainrule-model", "version": 1, "name": "m",
        "inputs": {"x": {"shape": ["N", 4]}},
        "parameters": {"w": {"shape": [4, 4], "init": {"constant": 0.1}}},
        "nodes": [{"name": "z", "op": "matmul", "inputs": ["x", "w"]},
                  {"name": "d", "op": "dropout", "inputs": ["z"]},
                  {"name": "L0", "op": "mean", "inputs": ["d"]},
                  {"name": "gw", "op": "grad", "inputs": ["L0", "w"]},
                  {"name": "L", "op": "mean", "inputs": ["gw"]}],
        "outputs": {"loss": "L"}})";
    try {
        parse_model(text, "penalty.json");
        BOOST_FAIL("no error");
    } catch (const InputError& e) {
        CHECK_HAS(std::string(e.what()), "nodes[3]: grad of L0 with respect to w:");
        CHECK_HAS(std::string(e.what()), "node 'd': op 'dropout' has no vjp");
    }
}
