// The VJP rules of conv2d, the poolings, embedding, layer_norm, gelu, cross_entropy's
// ignore_index and lecture_sigmoid_normalize inside whole graphs (graph/backward_graph), where
// the batch is a symbol when the rules are built: the appended dL/d<parameter> nodes hold the
// numeric backward's gradients to rtol 1e-12 in float64. Then second order: a gradient penalty
// L + mean((dL/dθ)²) on the same graphs passes gradcheck, and its own backward graph (the VJPs
// of the VJPs' ops) equals its numeric backward. (tests/test_vjp checks each op alone.)
#define BOOST_TEST_MODULE vjp_models
#include <boost/test/unit_test.hpp>
#include <cmath>

#include "format/model_json.hpp"
#include "graph/gradcheck.hpp"
#include "graph/backward_graph.hpp"
#include "testing.hpp"

using namespace chainrule;

namespace {

// The numeric backward's parameter gradients against the appended graph's; how many
// parameters were compared.
std::size_t agrees(Graph numeric) {
    Graph graph = numeric;
    testing::prepare_graph(numeric, testing::Draw::normal);
    Plan p = numeric.plan();
    numeric.forward(p);
    numeric.backward(p);
    const std::vector<int> params = graph.parameters();
    const std::vector<int> grads = append_backward(graph, graph.loss(), params);
    testing::prepare_graph(graph, testing::Draw::normal);
    Plan q = graph.plan();
    graph.forward(q);
    for (std::size_t k = 0; k < params.size(); ++k) {
        const std::string& name = graph.node(params[k]).name;
        const Tensor& expected = numeric.grad(name);
        const Tensor& got = graph.node(grads[k]).value;
        BOOST_REQUIRE(got.dims() == expected.dims());
        double largest = 0;
        for (std::int64_t e = 0; e < expected.numel(); ++e) largest = std::max(largest, std::abs(expected.at(e)));
        BOOST_TEST(largest > 1e-6, name << ": a gradient of zeros would compare nothing");
        BOOST_TEST(testing::relative_error(got, expected) <= 1e-12, name << ": " << testing::relative_error(got, expected));
    }
    return params.size();
}

// L + mean((dL/d`wrt`)²) as the graph's loss, dL/d`wrt` appended as nodes.
Graph penalized(Graph g, const std::string& wrt) {
    const int loss = g.loss();
    const int grad = append_backward(g, loss, {g.id(wrt)})[0];
    g.op("squares", "mul", {g.node(grad).name, g.node(grad).name});
    g.op("penalty", "mean", {"squares"});
    g.op("total", "add", {g.node(loss).name, "penalty"});
    g.set_output("loss", "total");
    return g;
}

// The penalty's gradients by the numeric backward (through the VJP nodes) against central
// differences, and against its own backward graph.
void second_order_agrees(const Graph& g, const std::string& wrt, std::size_t params) {
    Graph p = penalized(g, wrt);
    testing::prepare_graph(p, testing::Draw::normal);
    forward_once(p);
    const GradcheckReport report = gradcheck(p, {.max_entries = 0});
    BOOST_TEST(report.ok);
    BOOST_TEST(!report.vacuous);
    for (const GradcheckTensor& t : report.tensors) BOOST_TEST(t.ok, t.name << ": " << t.max_abs_error);
    BOOST_TEST(agrees(penalized(g, wrt)) == params);
}

Graph conv_net() {
    Graph g(Dtype::f64);
    g.input("x", {"N", 1, 6, 6});
    g.input("labels", {"N"}, Tensor::of({0, 2, 1}));
    g.parameter("w1", fixed_shape({2, 1, 3, 3}), Init::normal(0, 1));
    g.parameter("b1", fixed_shape({2}), Init::normal(0, 1));
    g.parameter("w2", fixed_shape({3, 2, 2, 2}), Init::normal(0, 1));
    g.op("c1", "conv2d", {"x", "w1", "b1"}, {{"padding", 1}});
    g.op("r1", "relu", {"c1"});
    g.op("p1", "max_pool2d", {"r1"}, {{"kernel_size", 3}, {"stride", 2}, {"padding", 1}});  // overlapping windows
    g.op("c2", "conv2d", {"p1", "w2"}, {{"dilation", {2, 1}}});  // [N,3,1,2]
    g.op("a2", "gelu", {"c2"});
    g.op("p2", "avg_pool2d", {"a2"}, {{"kernel_size", {1, 2}}});
    g.op("z", "reshape", {"p2"}, {{"shape", {-1, 3}}});
    g.op("L", "cross_entropy", {"z", "labels"});
    g.set_output("loss", "L");
    return g;
}

Graph token_model() {
    Graph g(Dtype::f64);
    g.input("ids", {"N", 4}, Tensor::of({{0, 3, 4, 1}, {2, 2, 0, 4}, {1, 0, 3, 3}}));
    g.input("targets", {"N", 4}, Tensor::of({{3, 4, 1, -1}, {2, 0, -1, -1}, {0, 3, 3, 2}}));  // -1: padding
    g.parameter("table", fixed_shape({5, 6}), Init::normal(0, 1));
    g.parameter("ln_w", fixed_shape({6}), Init::normal(1, 0.5));
    g.parameter("ln_b", fixed_shape({6}), Init::normal(0, 0.5));
    g.parameter("head", fixed_shape({6, 5}), Init::normal(0, 1));
    g.op("e", "embedding", {"ids", "table"});
    g.op("n", "layer_norm", {"e", "ln_w", "ln_b"});
    g.op("h", "gelu", {"n"}, {{"approximate", "tanh"}});
    g.op("logits", "matmul", {"h", "head"});
    g.op("L", "cross_entropy", {"logits", "targets"}, {{"ignore_index", -1}});
    g.set_output("loss", "L");
    return g;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_conv_net_with_both_poolings_and_gelu) { BOOST_TEST(agrees(conv_net()) == 3u); }

BOOST_AUTO_TEST_CASE(a_token_model_with_embedding_layer_norm_and_a_padded_loss) {
    BOOST_TEST(agrees(token_model()) == 4u);
}

BOOST_AUTO_TEST_CASE(input_and_parameter_gradient_penalties_through_them_are_differentiated_again) {
    BOOST_TEST_CONTEXT("conv net, dL/dx") { second_order_agrees(conv_net(), "x", 3); }
    BOOST_TEST_CONTEXT("conv net, dL/dw2") { second_order_agrees(conv_net(), "w2", 3); }
    BOOST_TEST_CONTEXT("token model, dL/dtable") { second_order_agrees(token_model(), "table", 4); }
    BOOST_TEST_CONTEXT("token model, dL/dln_w") { second_order_agrees(token_model(), "ln_w", 4); }
}

BOOST_AUTO_TEST_CASE(the_lectures_mnist_model_with_its_own_update) {
    // The backward graph reproduces the lecture's inexact update, as `chainrule grad` does.
    BOOST_TEST(agrees(load_model(testing::source_root() + "/models/mnist_lecture.json").graph) == 4u);
}
