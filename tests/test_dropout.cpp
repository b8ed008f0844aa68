// dropout: an inverted-dropout mask in training steps only. The mask keeps about 1 − p of
// the entries and scales them by 1/(1 − p); every other pass is the identity, bit for bit;
// the training gradient is mask·scale (finite differences with the step's fixed mask); the
// masks are the same for a seed and again on resume; a bad p is refused where it is written.
#define BOOST_TEST_MODULE dropout
#include <boost/test/unit_test.hpp>
#include <cstring>
#include <filesystem>
#include <unistd.h>

#include "core/error.hpp"
#include "graph/gradcheck.hpp"
#include "graph/graph.hpp"
#include "format/model_json.hpp"
#include "train/model_file.hpp"
#include "train/trainer.hpp"
#include "testing.hpp"

using namespace chainrule;
using namespace chainrule::testing;
namespace fs = std::filesystem;

namespace {

// L = Σ r ⊙ dropout(x, p), x a parameter so that it gets a gradient.
Graph weighted_dropout(const Dims& dims, double p, std::uint64_t seed = 5) {
    Graph g(Dtype::f64);
    Rng rng(seed);
    g.parameter("x", fixed_shape(dims), Init::values(random_tensor(dims, Domain::away_from_0, rng)));
    g.constant("r", random_tensor(dims, Domain::real, rng));
    g.op("y", "dropout", {"x"}, {{"p", p}});
    g.op("ry", "mul", {"y", "r"});
    g.op("L", "sum", {"ry"});
    g.set_output("loss", "L");
    g.init_parameters(0);
    return g;
}

bool same_bits(const Tensor& a, const Tensor& b) {
    return a.dims() == b.dims() && a.dtype() == b.dtype() &&
           std::memcmp(a.data<double>(), b.data<double>(), std::size_t(a.numel()) * sizeof(double)) == 0;
}

}  // namespace

using chainrule::testing::RemoveScratch;
BOOST_TEST_GLOBAL_FIXTURE(RemoveScratch);

BOOST_AUTO_TEST_CASE(the_mask_keeps_one_minus_p_and_scales_by_its_inverse) {
    for (double p : {0.1, 0.5, 0.8}) {
        Graph g = weighted_dropout({400, 250}, p);
        forward_once(g, Pass::training_step(42));
        const Tensor &x = g.value("x"), &y = g.value("y");
        std::int64_t kept = 0;
        bool scaled = true;
        for (std::int64_t i = 0; i < y.numel(); ++i) {
            if (y.at(i) == 0) continue;
            ++kept;
            scaled = scaled && y.at(i) == x.at(i) * (1 / (1 - p));
        }
        // 100,000 Bernoulli(1 − p) draws: the standard error is at most 0.0016.
        const double mean = double(kept) / double(y.numel());
        BOOST_TEST(std::abs(mean - (1 - p)) < 0.006, "p " << p << ": kept " << mean);
        BOOST_TEST(scaled);
        // The expectation: the mean of y over x's entries is about 1 (each is x·scale or 0).
        double ratio = 0;
        for (std::int64_t i = 0; i < y.numel(); ++i) ratio += y.at(i) / x.at(i);
        BOOST_TEST(std::abs(ratio / double(y.numel()) - 1) < 0.006 / (1 - p));
    }
}

BOOST_AUTO_TEST_CASE(masks_depend_on_the_step_seed_and_the_node_only) {
    Graph a = weighted_dropout({50, 40}, 0.5), b = weighted_dropout({50, 40}, 0.5);
    forward_once(a, Pass::training_step(7));
    forward_once(b, Pass::training_step(7));
    BOOST_TEST(same_bits(a.value("y"), b.value("y")));
    Tensor first = a.value("y");
    forward_once(a, Pass::training_step(8));
    BOOST_TEST(!same_bits(a.value("y"), first));
    // Two dropout nodes on the same input in one step draw different masks.
    Graph g(Dtype::f64);
    Tensor ones(Dtype::f64, {1000});
    ones.fill(1);
    g.input("x", fixed_shape({1000}), ones);
    g.op("d1", "dropout", {"x"});
    g.op("d2", "dropout", {"x"});
    forward_once(g, Pass::training_step(7));
    BOOST_TEST(!same_bits(g.value("d1"), g.value("d2")));
}

BOOST_AUTO_TEST_CASE(every_pass_but_a_training_step_is_the_identity) {
    for (Pass pass : {Pass::exact(), Pass::inspect(), Pass::training(), Pass::stepping()}) {
        Graph g = weighted_dropout({6, 7}, 0.9);
        Plan plan = g.plan(pass);
        g.forward(plan);
        BOOST_TEST(same_bits(g.value("y"), g.value("x")));
        g.backward(plan);
        BOOST_TEST(same_bits(g.grad("x"), g.value("r")));  // dL/dx = r exactly
    }
    // gradcheck (no noise) agrees with the identity's gradient.
    Graph g = weighted_dropout({6, 7}, 0.9);
    GradcheckOptions o;
    o.max_entries = 0;
    GradcheckReport r = gradcheck(g, o);
    BOOST_TEST(r.ok);
    BOOST_TEST(r.tensors.at(0).entries.size() == 42u);
}

BOOST_AUTO_TEST_CASE(the_training_gradient_is_mask_times_scale_by_finite_differences) {
    const double p = 0.4;
    Graph g = weighted_dropout({5, 6}, p);
    const Pass step = Pass::training_step(1234);
    forward_backward_once(g, step);
    const Tensor x0 = g.value("x"), y = g.value("y"), r = g.value("r"), grad = g.grad("x");
    std::int64_t dropped = 0;
    for (std::int64_t i = 0; i < x0.numel(); ++i) {
        const bool kept = y.at(i) != 0;  // x is away from 0, so a zero is a dropped entry
        dropped += !kept;
        BOOST_TEST(grad.at(i) == (kept ? r.at(i) / (1 - p) : 0.0));
        // Central differences with the same step seed, so the same mask.
        const double h = 1e-6;
        Tensor x = x0;
        x.set(i, x0.at(i) + h);
        g.set_value("x", x);
        forward_once(g, step);
        const double up = g.value("L").at(0);
        x.set(i, x0.at(i) - h);
        g.set_value("x", x);
        forward_once(g, step);
        const double down = g.value("L").at(0);
        BOOST_TEST(std::abs((up - down) / (2 * h) - grad.at(i)) < 1e-7, "entry " << i);
    }
    BOOST_TEST(dropped > 0);
    BOOST_TEST(dropped < x0.numel());
}

namespace {

struct Run {
    Model model;
    TrainingSpec spec;
    data::Dataset ds;
};

// iris_3class with dropout(p) on its hidden layer.
Run iris_with_dropout(double p) {
    std::string path = source_root() + "/models/iris_3class.json";
    Json j = read_json_file(path);
    Json nodes = Json::array();
    for (Json n : j["nodes"]) {
        if (n["name"] == "y1W2") {
            nodes.push_back({{"name", "d1"}, {"op", "dropout"}, {"inputs", {"y1"}}, {"attrs", {{"p", p}}}});
            n["inputs"][0] = "d1";
        }
        nodes.push_back(n);
    }
    j["nodes"] = nodes;
    j["training"]["batches_per_epoch"] = 6;
    Run r{parse_model(j.dump(), path), {}, {}};
    r.spec = parse_training(r.model.training, r.model.graph, r.model.path, r.model.dir);
    r.ds = data::load_dataset(r.spec.data);
    return r;
}

TrainOptions quiet(std::int64_t epochs, const std::string& out = "") {
    TrainOptions o;
    o.epochs = epochs;
    o.out_dir = out;
    o.threads = 1;
    o.print = [](const std::string&) {};
    return o;
}

std::vector<Tensor> trained(Run& r, const TrainOptions& o) {
    train(r.model, with_overrides(r.spec, o), r.ds, o);
    std::vector<Tensor> out;
    for (int id : r.model.graph.parameters()) out.push_back(r.model.graph.node(id).value);
    return out;
}

bool same_parameters(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
    bool same = a.size() == b.size();
    for (std::size_t i = 0; same && i < a.size(); ++i) same = same_bits(a[i], b[i]);
    return same;
}

}  // namespace

BOOST_AUTO_TEST_CASE(training_is_deterministic_and_resumes_bit_for_bit) {
    Run whole = iris_with_dropout(0.3), again = iris_with_dropout(0.3), none = iris_with_dropout(0);
    const auto two_epochs = trained(whole, quiet(2));
    BOOST_TEST(same_parameters(two_epochs, trained(again, quiet(2))));
    // The masks change the training at all (so this test can fail).
    BOOST_TEST(!same_parameters(two_epochs, trained(none, quiet(2))));

    fs::path dir = testing::scratch() / "run";
    fs::remove_all(dir);
    Run first = iris_with_dropout(0.3), second = iris_with_dropout(0.3);
    trained(first, quiet(1, dir.string()));
    TrainOptions o = quiet(2, dir.string());
    o.resume = dir.string();
    BOOST_TEST(same_parameters(two_epochs, trained(second, o)));
    fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(a_bad_p_is_refused_where_the_model_says_it) {
    auto message = [](const std::string& p) {
        std::string model = R"({"format": "chainrule-model", "version": 1,
            "inputs": {"x": {"shape": ["N", 3]}},
            "nodes": [{"name": "d", "op": "dropout", "inputs": ["x"], "attrs": {"p": )" +
                            p + R"(}}, {"name": "L", "op": "sum", "inputs": ["d"]}],
            "outputs": {"loss": "L"}})";
        return message_of<InputError>([&] { parse_model(model, "m.json"); });
    };
    CHECK_HAS(message("1"), "nodes[0]: dropout attr p must be a number with 0 <= p < 1");
    CHECK_HAS(message("1"), "got 1");
    CHECK_HAS(message("-0.25"), "got -0.25");
    CHECK_HAS(message("\"half\""), "nodes[0].attrs.p: expected number");
    BOOST_TEST(message("0.999") == "(no " + std::string(typeid(InputError).name()) + " was thrown)");
}
