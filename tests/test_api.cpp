// The embedding API's one-liners: Tensor::of, Dim from a size or a symbol, and the
// umbrella header; a graph built with them agrees with the same model loaded from JSON.
#define BOOST_TEST_MODULE api
#include <boost/test/unit_test.hpp>

#include "chainrule.hpp"
#include "testing.hpp"

using namespace chainrule;

namespace {

std::vector<double> values(const Tensor& t) {
    std::vector<double> v;
    for (std::int64_t i = 0; i < t.numel(); ++i) v.push_back(t.at(i));
    return v;
}

// The message of the InputError `f` throws ("" when it throws none).
template <class F>
std::string input_error(F&& f) {
    try {
        f();
    } catch (const InputError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

BOOST_AUTO_TEST_CASE(tensor_of_one_and_two_dims) {
    Tensor v = Tensor::of({1, 2, 3});
    BOOST_TEST(v.dims() == (Dims{3}), boost::test_tools::per_element());
    BOOST_TEST(dtype_name(v.dtype()) == std::string("float64"));
    BOOST_TEST(values(v) == (std::vector<double>{1, 2, 3}), boost::test_tools::per_element());

    Tensor m = Tensor::of({{1, 2, 3}, {4, 5, 6}});
    BOOST_TEST(m.dims() == (Dims{2, 3}), boost::test_tools::per_element());
    BOOST_TEST(values(m) == (std::vector<double>{1, 2, 3, 4, 5, 6}), boost::test_tools::per_element());

    // A column is rows of one value, not a flat list: the case two plain overloads
    // (list of numbers, list of lists) cannot tell apart.
    Tensor col = Tensor::of({{0.5}, {1}, {0}});
    BOOST_TEST(col.dims() == (Dims{3, 1}), boost::test_tools::per_element());
    BOOST_TEST(values(col) == (std::vector<double>{0.5, 1, 0}), boost::test_tools::per_element());
    BOOST_TEST(Tensor::of({{7}}).dims() == (Dims{1, 1}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(tensor_of_scalar_deeper_and_float32) {
    Tensor s = Tensor::of(2.5);
    BOOST_TEST(s.rank() == 0u);
    BOOST_TEST(s.numel() == 1);
    BOOST_TEST(s.at(0) == 2.5);

    Tensor c = Tensor::of({{{1, 2}}, {{3, 4}}});
    BOOST_TEST(c.dims() == (Dims{2, 1, 2}), boost::test_tools::per_element());
    BOOST_TEST(c.at(3) == 4.0);

    Tensor f = Tensor::of({0.1, 0.2}, Dtype::f32);
    BOOST_TEST(dtype_name(f.dtype()) == std::string("float32"));
    BOOST_TEST(f.data<float>()[0] == 0.1f);
}

BOOST_AUTO_TEST_CASE(tensor_of_refuses_ragged_and_empty) {
    BOOST_TEST(input_error([] { Tensor::of({{1, 2}, {3}}); }).find("list [1] has 1 values, but the first list "
                                                                   "of its level has 2 (shape [2,2])") !=
               std::string::npos);
    BOOST_TEST(input_error([] { Tensor::of({{1, 2}, 3}); }).find("element [1] is a number") != std::string::npos);
    BOOST_TEST(input_error([] { Tensor::of({{1}, {{2}}}); }).find("element [1][0] is a list") != std::string::npos);
    BOOST_TEST(input_error([] { Tensor::of({}); }).find("an empty list has no values") != std::string::npos);
    BOOST_TEST(input_error([] { Tensor::of({{}, {}}); }).find("an empty list has no values") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(shapes_in_one_line) {
    Shape s{"N", 4};
    BOOST_TEST(format_shape(s) == "[N,4]");
    BOOST_TEST(s[0].symbolic());
    BOOST_TEST(!s[1].symbolic());
    BOOST_TEST(s[1].size == 4);
    BOOST_TEST((s == Shape{Dim{1, "N"}, Dim{4, {}}}));  // the spelling that existed before

    // The aggregate-style spelling keeps compiling and meaning the same.
    Shape old = {{3, {}}, {4, {}}};
    BOOST_TEST((old == fixed_shape({3, 4})));
    BOOST_TEST(format_shape(Shape{3, 4}) == "[3,4]");

    // Braces list the dims; parentheses still give a count of default dims.
    BOOST_TEST(format_shape(Shape{3}) == "[3]");
    BOOST_TEST(format_shape(Shape(3)) == "[1,1,1]");

    BOOST_TEST((Shape{std::string("N"), 4} == s));
    BOOST_TEST(input_error([] { Dim(""); }).find("needs a name") != std::string::npos);
    BOOST_TEST(input_error([] { Dim(std::string()); }).find("needs a name") != std::string::npos);
}

// The worked example built with the one-liners gives exactly what the JSON model gives:
// same values and gradients at every node.
BOOST_AUTO_TEST_CASE(graph_from_cpp_matches_json) {
    Graph g(Dtype::f64);
    g.input("x", {"N", 4});
    g.input("y", {"N", 1});
    g.parameter("w", {4, 1}, Init::constant(0.1));
    g.parameter("b", {1}, Init::constant(0.1));
    g.op("z", "matmul", {"x", "w"});
    g.op("a", "add", {"z", "b"});
    g.op("yhat", "sigmoid", {"a"});
    g.op("L", "mse", {"yhat", "y"});
    g.set_output("prediction", "yhat");
    g.set_output("loss", "L");
    g.init_parameters(0);
    g.set_value("x", Tensor::of({{5.1, 3.5, 1.4, 0.2}, {4.9, 3.0, 1.4, 0.2}, {4.7, 3.2, 1.3, 0.2}}));
    g.set_value("y", Tensor::of({{0}, {1}, {0}}));
    forward_backward_once(g);
    BOOST_TEST(g.value("L").at(0) == 0.1969326615, boost::test_tools::tolerance(1e-9));
    BOOST_TEST(g.grad("w").at(0) == 0.379799, boost::test_tools::tolerance(1e-5));

    Model m = load_model(testing::source_root() + "/models/worked_example.json");
    m.graph.init_parameters(0);
    forward_backward_once(m.graph);
    BOOST_TEST(m.graph.size() == g.size());
    for (const Node& n : m.graph.nodes()) {
        BOOST_TEST_CONTEXT("node " << n.name) {
            BOOST_TEST(format_shape(g.node(g.id(n.name)).shape) == format_shape(n.shape));
            BOOST_TEST(values(g.value(n.name)) == values(n.value), boost::test_tools::per_element());
            if (n.kind == NodeKind::parameter)
                BOOST_TEST(values(g.grad(n.name)) == values(n.grad), boost::test_tools::per_element());
        }
    }
}
