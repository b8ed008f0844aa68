// conv2d, max_pool2d and avg_pool2d against PyTorch (tests/golden/conv.json, made by
// tests/golden/make_conv_goldens.py): values and every input's gradient in float64.
// The finite-difference checks and the bad samples run in the op table (test_ops_table).
#define BOOST_TEST_MODULE conv
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <fmt/format.h>

#include "core/error.hpp"
#include "core/json.hpp"
#include "core/random.hpp"
#include "cpu/workers.hpp"
#include "graph/graph.hpp"
#include "ops/op.hpp"
#include "testing.hpp"

using namespace chainrule;
using namespace chainrule::testing;

namespace {

double max_gap(const Tensor& got, const Json& want) {
    Tensor w = tensor_from_json(want, "golden");
    BOOST_REQUIRE(got.dims() == w.dims());
    double worst = 0;
    for (std::int64_t i = 0; i < got.numel(); ++i)
        worst = std::max(worst, std::abs(got.at(i) - w.at(i)) / std::max(1.0, std::abs(w.at(i))));
    return worst;
}

}  // namespace

BOOST_AUTO_TEST_CASE(values_and_gradients_match_pytorch) {
    Json golden = read_json_file(source_root() + "/tests/golden/conv.json");
    BOOST_REQUIRE(golden["cases"].size() >= 11u);
    int k = 0;
    for (const Json& c : golden["cases"]) {
        const Op* op = find_op(c["op"].get<std::string>());
        BOOST_REQUIRE(op);
        Attrs attrs = op->attrs;
        for (auto& [key, v] : c["attrs"].items()) attrs[key] = v;
        std::vector<Tensor> in;
        for (const auto& name : c["order"]) in.push_back(tensor_from_json(c["inputs"][name.get<std::string>()], "golden"));
        std::vector<const Tensor*> ptrs;
        std::vector<Shape> shapes;
        for (auto& t : in) ptrs.push_back(&t), shapes.push_back(fixed_shape(t.dims()));
        // Alone (as the op table calls it) and with a node's workspace (as the engine does:
        // max_pool2d's backward then reads the forward's argmax instead of searching again).
        // And on two helper threads, as the trainer runs conv2d.
        Workers two(2);
        for (int mode : {0, 1, 2}) {
        Workspace ws;
        Workspace* node_scratch = mode > 0 ? &ws : nullptr;
        Workers* workers = mode == 2 ? &two : nullptr;
        Tensor y(Dtype::f64, to_dims(op->shape(shapes, attrs)));
        op->forward(ForwardCall{ptrs, y, attrs, node_scratch, {}, workers});
        std::string what = fmt::format("case {} ({} {}{})", k, op->name, c["attrs"].dump(),
                                       mode == 0 ? "" : mode == 1 ? ", workspace" : ", workspace, 2 threads");
        BOOST_TEST(max_gap(y, c["y"]) < 1e-12, what << ": value");
        Tensor r = tensor_from_json(c["r"], "golden");
        std::vector<Tensor> grads;
        for (auto& t : in) grads.emplace_back(Dtype::f64, t.dims());
        std::vector<Tensor*> gptrs;
        for (auto& g : grads) gptrs.push_back(&g);
        op->backward(BackwardCall{ptrs, y, r, gptrs, attrs, node_scratch, {}, workers});
        for (std::size_t i = 0; i < in.size(); ++i) {
            std::string name = c["order"][i].get<std::string>();
            BOOST_TEST(max_gap(grads[i], c["grads"][name]) < 1e-12, what << ": dL/d" << name);
        }
        }
        ++k;
    }
}

// The batch is cut into fixed chunks whatever the thread count, so the trainer's --threads
// changes no bit of a conv net's values or gradients (float32: the order matters most).
BOOST_AUTO_TEST_CASE(conv2d_gives_the_same_bits_on_any_number_of_threads) {
    const Op* op = find_op("conv2d");
    Rng rng(7);
    auto random = [&](Dims d) {
        Tensor t(Dtype::f32, d);
        for (std::int64_t i = 0; i < t.numel(); ++i) t.set(i, rng.normal());
        return t;
    };
    Tensor x = random({37, 3, 9, 8}), w = random({5, 3, 3, 3}), b = random({5});
    Attrs attrs = op->attrs;
    attrs["padding"] = 1;
    std::vector<const Tensor*> in{&x, &w, &b};
    Tensor r = random({37, 5, 9, 8});
    auto run = [&](Workers* workers) {
        Workspace ws;
        std::vector<Tensor> out;
        out.emplace_back(Dtype::f32, Dims{37, 5, 9, 8});
        op->forward(ForwardCall{in, out[0], attrs, &ws, {}, workers});
        for (const Tensor* t : in) out.emplace_back(Dtype::f32, t->dims());
        std::vector<Tensor*> grads{&out[1], &out[2], &out[3]};
        op->backward(BackwardCall{in, out[0], r, grads, attrs, &ws, {}, workers});
        return out;
    };
    std::vector<Tensor> alone = run(nullptr);
    for (int threads : {2, 3}) {
        Workers workers(threads);
        std::vector<Tensor> split = run(&workers);
        for (std::size_t t = 0; t < alone.size(); ++t) {
            std::int64_t differ = 0;
            for (std::int64_t i = 0; i < alone[t].numel(); ++i) differ += alone[t].at(i) != split[t].at(i);
            BOOST_TEST(differ == 0, threads << " threads, output " << t << ": " << differ << " entries differ");
        }
    }
}

// Ties go to the first maximum of the window, as PyTorch documents.
BOOST_AUTO_TEST_CASE(max_pool_sends_a_tie_to_the_first_maximum) {
    const Op* op = find_op("max_pool2d");
    Attrs attrs = op->attrs;
    attrs["kernel_size"] = 2;
    Tensor x(Dtype::f64, {1, 1, 2, 2});
    x.fill(3.0);
    Tensor y(Dtype::f64, {1, 1, 1, 1}), g(Dtype::f64, {1, 1, 1, 1}), gx(Dtype::f64, {1, 1, 2, 2});
    g.fill(1.0);
    gx.fill(7.0);  // overwritten, not added to
    const Tensor* in[] = {&x};
    Tensor* gin[] = {&gx};
    op->forward(ForwardCall{in, y, attrs});
    op->backward(BackwardCall{in, y, g, gin, attrs});
    BOOST_TEST(y.at(0) == 3.0);
    BOOST_TEST(gx.at(0) == 1.0);
    for (int i = 1; i < 4; ++i) BOOST_TEST(gx.at(i) == 0.0);
}

BOOST_AUTO_TEST_CASE(shape_errors_name_the_sizes) {
    auto message = [](const char* op, std::vector<Shape> in, Attrs extra) {
        const Op* o = find_op(op);
        Attrs attrs = o->attrs;
        for (auto& [k, v] : extra.items()) attrs[k] = v;
        try {
            o->shape(in, attrs);
        } catch (const ShapeError& e) {
            return std::string(e.what());
        }
        return std::string("(no error)");
    };
    Shape x{Dim{1, "N"}, Dim{1, {}}, Dim{4, {}}, Dim{4, {}}};
    BOOST_TEST(message("conv2d", {x, fixed_shape({1, 1, 5, 5})}, Attrs::object()) ==
               "kernel 5×5 is larger than the padded input 4×4 (input [N,1,4,4], padding [0, 0])");
    BOOST_TEST(message("conv2d", {x, fixed_shape({2, 3, 3, 3})}, Attrs::object()) ==
               "weight [2,3,3,3] expects 3 input channels, but x [N,1,4,4] has 1");
    BOOST_TEST(message("conv2d", {x, fixed_shape({2, 1, 3, 3}), fixed_shape({3})}, Attrs::object()) ==
               "bias must be [2] (one per output channel of weight [2,1,3,3]), got [3]");
    BOOST_TEST(message("conv2d", {x, fixed_shape({2, 1, 3, 3})}, {{"stride", 0}}) ==
               "attr stride must be an integer >= 1 or a pair [h, w] of them, got 0");
    BOOST_TEST(message("max_pool2d", {x}, Attrs::object()) == "needs the attr kernel_size (an integer or [h, w])");
    BOOST_TEST(message("max_pool2d", {x}, {{"kernel_size", 2}, {"padding", 2}}) ==
               "padding [2, 2] must be at most half of kernel_size [2, 2]");
    BOOST_TEST(message("avg_pool2d", {fixed_shape({4, 4})}, {{"kernel_size", 2}}) ==
               "needs a 4-D input [N,C,H,W], got [4,4]");
    // N stays symbolic through the shape rule.
    Shape out = find_op("conv2d")->shape(std::vector<Shape>{x, fixed_shape({2, 1, 3, 3})}, find_op("conv2d")->attrs);
    BOOST_TEST(format_shape(out) == "[N,2,2,2]");
}

// The bias is the optional last input: two or three inputs, and a clear message otherwise.
BOOST_AUTO_TEST_CASE(conv2d_takes_two_or_three_inputs) {
    Graph g(Dtype::f64);
    g.input("x", {Dim{1, "N"}, Dim{1, {}}, Dim{6, {}}, Dim{6, {}}});
    g.parameter("w", fixed_shape({2, 1, 3, 3}), Init::constant(0.1));
    g.parameter("b", fixed_shape({2}), Init::constant(0.1));
    g.op("with_bias", "conv2d", {"x", "w", "b"});
    g.op("without_bias", "conv2d", {"x", "w"});
    BOOST_TEST(format_shape(g.node(g.id("without_bias")).shape) == "[N,2,4,4]");
    try {
        g.op("alone", "conv2d", {"x"});
        BOOST_FAIL("one input was accepted");
    } catch (const InputError& e) {
        BOOST_TEST(std::string(e.what()) == "node 'alone': conv2d takes 2 or 3 inputs (x, w, b; the last 1 optional), got 1");
    }
}

// He initialisation of a kernel [O,C,kh,kw] uses fan_in = C·kh·kw, as PyTorch.
BOOST_AUTO_TEST_CASE(he_normal_of_a_kernel_uses_its_input_channels) {
    Graph g(Dtype::f64);
    g.parameter("w", fixed_shape({16, 8, 5, 5}), Init::he_normal());
    g.init_parameters(3);
    const Tensor& w = g.value("w");
    double s = 0;
    for (std::int64_t i = 0; i < w.numel(); ++i) s += w.at(i) * w.at(i);
    double std = std::sqrt(s / double(w.numel()));
    BOOST_TEST(std::abs(std / std::sqrt(2.0 / 200) - 1) < 0.05, "std " << std);
}

// `chainrule step` and `dot` on the LeNet model: every op node is stepped, the conv2d steps
// show their formula, and tensors of thousands of entries are summarised, not printed.
BOOST_AUTO_TEST_CASE(step_and_dot_work_on_mnist_cnn_and_summarise_large_tensors) {
    const std::string model = source_root() + "/models/mnist_cnn.json";
    CommandResult step = run_command(chainrule_binary() + " step " + model + " </dev/null");
    BOOST_TEST(step.code == 0, step.err);
    CHECK_HAS(step.out, "11 backward steps in reverse topological order: L, logits, z, flat, p2, r2, h2, p1, r1, h1, img");
    CHECK_HAS(step.out, "step 7/11: h2 = conv2d(p1, K2, c2)   shape [3,16,10,10]");
    CHECK_HAS(step.out, "step 10/11: h1 = conv2d(img, K1, c1)   shape [3,8,28,28]");
    CHECK_HAS(step.out, "dL/dp1 = K2ᵀ ⋆ dL/dh2 (col2im)");  // the formula in the model's names
    CHECK_HAS(step.out, "dL/dK2       shape [16,8,5,5]  min ");
    CHECK_HAS(step.out, "backward done after 11 steps");
    // [3,8,28,28] alone is 18,816 numbers: summarised, the whole trace stays small.
    BOOST_TEST(step.out.size() < 30000u, step.out.size() << " bytes");

    CommandResult dot = run_command(chainrule_binary() + " dot " + model + " --grads");
    BOOST_TEST(dot.code == 0, dot.err);
    CHECK_HAS(dot.out, "digraph chainrule {");
    CHECK_HAS(dot.out, "K2\\nparameter  [16,8,5,5]\"");  // 3,200 entries: no values in the label
    CHECK_HAS(dot.out, "c1\\nparameter  [8]\\n= [0, 0, 0, 0, 0, 0, 0, 0]");  // small ones shown
    BOOST_TEST(dot.out.size() < 6000u, dot.out.size() << " bytes");
}
