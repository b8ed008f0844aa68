// Hessians and Hessian-vector products (graph/hessian.hpp, `chainrule hessian`, `chainrule
// hvp`) against torch.autograd.functional in float64 (tests/golden/make_hessian_goldens.py)
// on the worked example, the Iris neuron, a tanh MLP with softmax cross-entropy and a gradient
// penalty built on a `grad` node (a third derivative), to rtol 1e-10, and a small conv net
// once conv2d and avg_pool2d have vjps (until then, its refusal by name); the commands' JSON,
// and their refusals of a bad vector and of a Hessian too large.
#define BOOST_TEST_MODULE hessian
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <filesystem>
#include <functional>

#include "core/error.hpp"
#include "core/json.hpp"
#include "format/model_json.hpp"
#include "graph/hessian.hpp"
#include "ops/op.hpp"
#include "testing.hpp"

using namespace chainrule;

namespace {

std::vector<double> flat(const Json& j) {
    std::vector<double> out;
    const std::function<void(const Json&)> walk = [&](const Json& v) {
        if (v.is_array())
            for (const Json& e : v) walk(e);
        else
            out.push_back(v.get<double>());
    };
    walk(j);
    return out;
}

// Every entry within rtol of PyTorch's, the tolerance of an entry near 0 taken from the
// largest (a sum of larger terms in another order differs in its last bits).
void near(const std::vector<double>& got, const std::vector<double>& want, const std::string& what) {
    BOOST_REQUIRE_EQUAL(got.size(), want.size());
    double scale = 0;
    for (double w : want) scale = std::max(scale, std::abs(w));
    BOOST_REQUIRE(scale > 0);
    for (std::size_t i = 0; i < got.size(); ++i)
        BOOST_TEST(std::abs(got[i] - want[i]) <= 1e-10 * std::max(std::abs(want[i]), 1e-3 * scale),
                   what << "[" << i << "]: " << got[i] << " vs " << want[i]);
}

std::vector<double> values(const Tensor& t) {
    std::vector<double> out;
    for (std::int64_t i = 0; i < t.numel(); ++i) out.push_back(t.at(i));
    return out;
}

const Json& goldens() {
    static const Json g = read_json_file(testing::source_root() + "/tests/golden/hessian.json");
    return g;
}

// The case's model at the case's point: parameters from their initializers, inputs from the feed.
Model at_point(const Json& c) {
    Model m = load_model(testing::source_root() + "/" + c["model"].get<std::string>());
    m.graph.init_parameters(0);
    for (const auto& [name, value] : c["feed"].items()) m.graph.set_value(name, tensor_from_json(value, name));
    return m;
}

// Every op a case names (needs_vjp: the conv net's conv2d and avg_pool2d) has a vjp now, so
// every case runs: a case whose op lost its vjp fails here rather than being passed over.
bool runnable(const Json& c) {
    bool all = true;
    for (const Json& op : c.value("needs_vjp", Json::array()))
        if (!find_op(op.get<std::string>())->vjp) {
            BOOST_ERROR(c["name"].get<std::string>() << " needs the vjp of " << op.get<std::string>());
            all = false;
        }
    return all;
}

std::string cli() { return testing::build_root() + "/cli/chainrule"; }

// A file name in this process's scratch folder.
std::string temp_file(const std::string& name) { return (testing::scratch() / (name + ".json")).string(); }

}  // namespace

using chainrule::testing::RemoveScratch;
BOOST_TEST_GLOBAL_FIXTURE(RemoveScratch);

BOOST_AUTO_TEST_CASE(hessians_equal_torch_autograd_functional_hessian) {
    for (const Json& c : goldens()["cases"]) {
        const std::string name = c["name"].get<std::string>();
        BOOST_TEST_CONTEXT(name) {
            if (!runnable(c)) continue;
            Model m = at_point(c);
            HessianGraph h(m.graph);
            BOOST_REQUIRE_EQUAL(h.wrt().size(), c["params"].size());
            for (std::size_t k = 0; k < h.wrt().size(); ++k)
                BOOST_TEST(m.graph.node(h.wrt()[k]).name == c["params"][k]["name"].get<std::string>());
            h.set_point(m.graph);
            const Tensor H = h.hessian();
            near(values(H), flat(c["hessian"]), name + " hessian");
            const double loss = h.loss_and_gradient(), want = c["loss"].get<double>();
            BOOST_TEST(std::abs(loss - want) <= 1e-12 * std::abs(want));
            // Symmetric, as a Hessian is: each column is its own product, so this is a check.
            for (std::int64_t i = 0; i < h.size(); ++i)
                for (std::int64_t j = 0; j < i; ++j)
                    BOOST_TEST(std::abs(H.at(i * h.size() + j) - H.at(j * h.size() + i)) <= 1e-12);
        }
    }
}

BOOST_AUTO_TEST_CASE(hessian_vector_products_equal_torch_autograd_functional_hvp) {
    for (const Json& c : goldens()["cases"]) {
        const std::string name = c["name"].get<std::string>();
        BOOST_TEST_CONTEXT(name) {
            if (!runnable(c)) continue;
            Model m = at_point(c);
            HessianGraph h(m.graph);
            h.set_point(m.graph);
            std::vector<Tensor> v, hv;
            std::vector<const Tensor*> in;
            std::vector<Tensor*> out;
            for (int id : h.wrt()) {
                const std::string p = m.graph.node(id).name;
                v.push_back(tensor_from_json(c["v"][p], p));
                hv.emplace_back(Dtype::f64, v.back().dims());
            }
            for (std::size_t k = 0; k < v.size(); ++k) in.push_back(&v[k]), out.push_back(&hv[k]);
            h.hvp(in, out);
            std::vector<double> got, want;
            for (std::size_t k = 0; k < hv.size(); ++k) {
                for (double x : values(hv[k])) got.push_back(x);
                for (double x : flat(c["hvp"][m.graph.node(h.wrt()[k]).name])) want.push_back(x);
            }
            near(got, want, name + " hvp");
        }
    }
}

BOOST_AUTO_TEST_CASE(the_hvp_and_hessian_commands_print_torchs_numbers) {
    const Json& c = goldens()["cases"][0];  // the worked example, at its own point
    const std::string v = temp_file("v");
    {
        std::ofstream f(v);
        f << c["v"].dump();
    }
    const std::string model = testing::source_root() + "/models/worked_example.json";
    const auto r = testing::run_command(cli() + " hvp " + model + " --vector " + v + " --json");
    BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
    const Json out = parse_json_text(r.out, "stdout");
    BOOST_TEST(std::abs(out["loss"].get<double>() - c["loss"].get<double>()) <= 1e-12);
    near(flat(out["hvp"]["w"]), flat(c["hvp"]["w"]), "hvp w");
    near(flat(out["hvp"]["b"]), flat(c["hvp"]["b"]), "hvp b");
    // A parameter left out is zero: V = {"b": 1} gives H's b column.
    {
        std::ofstream f(v);
        f << R"({"b": [1]})";
    }
    const auto column = testing::run_command(cli() + " hvp " + model + " --vector " + v + " --json");
    BOOST_REQUIRE_MESSAGE(column.code == 0, column.err);
    const Json b = parse_json_text(column.out, "stdout");
    std::vector<double> got = flat(b["hvp"]["w"]), want;
    got.push_back(flat(b["hvp"]["b"])[0]);
    for (const Json& row : c["hessian"]) want.push_back(row[4].get<double>());
    near(got, want, "H[:, b]");
    // hessian --params b,w: b's row and column first.
    const auto hs = testing::run_command(cli() + " hessian " + model + " --params b,w --json");
    BOOST_REQUIRE_MESSAGE(hs.code == 0, hs.err);
    const Json h = parse_json_text(hs.out, "stdout");
    BOOST_TEST(h["params"].dump() == R"([{"name":"b","shape":[1]},{"name":"w","shape":[4,1]}])");
    const std::vector<int> order = {4, 0, 1, 2, 3};
    for (std::size_t i = 0; i < 5; ++i)
        for (std::size_t j = 0; j < 5; ++j) {
            const double w = c["hessian"][std::size_t(order[i])][std::size_t(order[j])].get<double>();
            BOOST_TEST(std::abs(h["hessian"][i][j].get<double>() - w) <= 1e-12, i << "," << j);
        }
    std::remove(v.c_str());
}

BOOST_AUTO_TEST_CASE(a_bad_vector_is_refused_naming_the_file_and_the_place) {
    const std::string model = testing::source_root() + "/models/worked_example.json";
    const std::string v = temp_file("bad");
    const std::vector<std::pair<std::string, std::string>> bad = {
        {R"({"w": [1, 2]})", v + ": w: has shape [2], but parameter 'w' is [4,1]"},
        {R"({"q": [1]})", v + ": q: 'q' is not a parameter of the model (parameters: w, b)"},
        {R"({"x": [[1, 2, 3, 4]]})", v + ": x: 'x' is not a parameter of the model"},
        {R"({"b": [[1], [2, 3]]})", v + ": b"},
        {R"({"b": [1)", v + ":1:9: malformed JSON"},
        {R"([1, 2])", v + ": expected an object"},
    };
    for (const auto& [text, message] : bad) {
        BOOST_TEST_CONTEXT(text) {
            {
                std::ofstream f(v);
                f << text;
            }
            const auto r = testing::run_command(cli() + " hvp " + model + " --vector " + v);
            BOOST_TEST(r.code == 2);
            CHECK_HAS(r.err, message);
        }
    }
    std::remove(v.c_str());
}

BOOST_AUTO_TEST_CASE(a_hessian_above_1e8_entries_is_refused_with_its_size) {
    const std::string model = testing::source_root() + "/models/slides_mnist.json";
    const auto r = testing::run_command(cli() + " hessian " + model);
    BOOST_TEST(r.code == 2);
    CHECK_HAS(r.err, "the Hessian over 79510 parameter entries would have 79510 × 79510 = 6.322e+09 entries, above "
                     "the limit of 10^8");
    const auto named = testing::run_command(cli() + " hessian " + model + " --params W2,nope");
    BOOST_TEST(named.code == 2);
    CHECK_HAS(named.err, "--params: 'nope' is not a parameter of the model");
    // One small parameter of the big model is fine: b2 [10] gives 10 × 10.
    const auto small = testing::run_command(cli() + " hessian " + model + " --params b2 --json");
    BOOST_REQUIRE_MESSAGE(small.code == 0, small.err);
    const Json h = parse_json_text(small.out, "stdout");
    BOOST_TEST(h["hessian"].size() == 10u);
}
