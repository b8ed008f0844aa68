// models/words_gpt.json against PyTorch (tests/golden/gpt.json and gpt_grads.bin, made by
// tests/golden/make_gpt_goldens.py, which runs the model's JSON node by node in torch): in
// float64 the loss and every entry of every parameter's gradient agree to rtol 1e-9 on the
// same weights and batch; in float32 the loss to 1e-5.
#define BOOST_TEST_MODULE gpt
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstring>
#include <fmt/format.h>
#include <fstream>

#include "core/files.hpp"
#include "core/json.hpp"
#include "format/model_json.hpp"
#include "graph/gradcheck.hpp"
#include "graph/graph.hpp"
#include "testing.hpp"

using namespace chainrule;
using namespace chainrule::testing;

namespace {

const std::string kModel = "/models/words_gpt.json";

// The model in `dtype`, its parameters set by the golden file's rule (entry i of the k-th
// parameter: offset + amplitude·sin(0.37·i + 1.3·k + 0.1)) and the golden batch fed.
Model gpt_at_golden_point(const Json& golden, const char* dtype) {
    Json m = read_json_file(source_root() + kModel);
    m["dtype"] = dtype;
    Model model = parse_model(m.dump(), "words_gpt.json");
    Graph& g = model.graph;
    int k = 0;
    for (auto& [name, p] : m["parameters"].items()) {
        const Json& init = p["init"];
        double offset = 0, amplitude = 0;
        if (init.contains("constant")) {
            offset = init["constant"].get<double>();
            amplitude = offset == 1 ? 0.1 : 0.05;
        } else {
            amplitude = 10 * init["normal"]["std"].get<double>();
        }
        Tensor w(Dtype::f64, p["shape"].get<Dims>());
        for (std::int64_t i = 0; i < w.numel(); ++i) w.set(i, offset + amplitude * std::sin(0.37 * double(i) + 1.3 * k + 0.1));
        g.set_value(name, w.to(g.dtype()));
        ++k;
    }
    g.set_value("ids", tensor_from_json(golden["ids"], "golden ids").to(g.dtype()));
    g.set_value("targets", tensor_from_json(golden["targets"], "golden targets").to(g.dtype()));
    return model;
}

std::vector<double> golden_grads() {
    std::ifstream f(source_root() + "/tests/golden/gpt_grads.bin", std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::vector<double> out(bytes.size() / 8);
    std::memcpy(out.data(), bytes.data(), out.size() * 8);  // little-endian, as x86 and the writer
    return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(float64_loss_and_every_gradient_equal_pytorch) {
    const Json golden = read_json_file(source_root() + "/tests/golden/gpt.json");
    Model model = gpt_at_golden_point(golden, "float64");
    Graph& g = model.graph;
    const double loss = forward_backward_once(g);
    const double want = golden["loss"].get<double>();
    BOOST_TEST(std::abs(loss - want) <= 1e-9 * std::abs(want), fmt::format("loss {:.17g} vs PyTorch {:.17g}", loss, want));

    const std::vector<double> grads = golden_grads();
    BOOST_REQUIRE_EQUAL(golden["params"].size(), g.parameters().size());
    double overall = 0;  // the largest entry of any parameter's gradient
    for (double w : grads) overall = std::max(overall, std::abs(w));
    BOOST_TEST(overall > 1e-3);
    std::size_t entries = 0;
    for (const Json& p : golden["params"]) {
        const std::string name = p["name"].get<std::string>();
        const Tensor& got = g.grad(name);
        const std::size_t at = p["offset"].get<std::size_t>();
        BOOST_REQUIRE_LE(at + std::size_t(got.numel()), grads.size());
        double largest = 0;
        for (std::int64_t i = 0; i < got.numel(); ++i) largest = std::max(largest, std::abs(grads[at + std::size_t(i)]));
        // rtol 1e-9 of each entry; entries far below their gradient's largest (cancellations in
        // sums of ~10^3 terms) are held to 1e-9 of a thousandth of it, and a gradient that is 0
        // in exact arithmetic to 1e-9 of a millionth of the model's largest: the keys' biases,
        // since softmax ignores a shift that is the same along a row (both sides give ~1e-20).
        const double floor = std::max(1e-3 * largest, 1e-6 * overall);
        double worst = 0;
        std::int64_t worst_at = 0;
        for (std::int64_t i = 0; i < got.numel(); ++i) {
            const double w = grads[at + std::size_t(i)];
            const double gap = std::abs(got.at(i) - w) / std::max(std::abs(w), floor);
            if (!(gap <= worst)) worst = gap, worst_at = i;
        }
        BOOST_TEST(worst <= 1e-9, fmt::format("dL/d{}: relative gap {:.3g} at entry {} ({:.17g} vs PyTorch {:.17g})",
                                              name, worst, worst_at, got.at(worst_at), grads[at + std::size_t(worst_at)]));
        const bool key_bias = name.ends_with("_k_b");
        BOOST_TEST((key_bias ? largest < 1e-12 * overall : largest > 1e-9 * overall), name << " " << largest);
        entries += std::size_t(got.numel());
    }
    BOOST_TEST(entries == grads.size());
}

BOOST_AUTO_TEST_CASE(float32_loss_is_pytorchs_to_single_precision) {
    const Json golden = read_json_file(source_root() + "/tests/golden/gpt.json");
    Model model = gpt_at_golden_point(golden, "float32");
    const double loss = forward_backward_once(model.graph);
    const double want = golden["loss"].get<double>();
    BOOST_TEST(std::abs(loss - want) <= 1e-5 * std::abs(want), fmt::format("loss {:.9g} vs PyTorch {:.9g}", loss, want));
}

// gradcheck on the GPT in float64, at the golden batch (whose rows end in padding labelled -1,
// which cross_entropy leaves out): every parameter sampled against finite differences, and
// with inputs on, the ids and the labels skipped by name, since nudging an index by h would
// make it an invalid id rather than change the loss a little.
BOOST_AUTO_TEST_CASE(gradcheck_passes_and_skips_the_index_inputs) {
    const Json golden = read_json_file(source_root() + "/tests/golden/gpt.json");
    Model model = gpt_at_golden_point(golden, "float64");
    const GradcheckReport r = gradcheck(model.graph, {.max_entries = 8, .inputs = true});
    BOOST_TEST(r.ok);
    BOOST_TEST(!r.vacuous);
    BOOST_TEST(r.tensors.size() == model.graph.parameters().size());
    for (const GradcheckTensor& t : r.tensors) BOOST_TEST((t.name != "ids" && t.name != "targets"), t.name);
    BOOST_REQUIRE_EQUAL(r.skipped.size(), 2u);
    BOOST_TEST(r.skipped[0].name == "ids");
    BOOST_TEST(r.skipped[0].reason == "ids of node 'te' (embedding), whose table 'tok' has 27 rows");
    BOOST_TEST(r.skipped[1].name == "targets");
    BOOST_TEST(r.skipped[1].reason == "class indices of node 'L' (cross_entropy), whose logits 'logits' have 27 columns");
}

BOOST_AUTO_TEST_CASE(gradcheck_command_says_which_inputs_it_skipped) {
    const std::string cmd = chainrule_binary() + " gradcheck " + source_root() + kModel + " --inputs --max-entries 4";
    const CommandResult text = run_command(cmd);
    BOOST_TEST(text.code == 0, text.out << text.err);
    BOOST_TEST(text.out.find("gradcheck passed") != std::string::npos, text.out);
    BOOST_TEST(text.out.find("  ids      skipped: it holds the ids of node 'te' (embedding), whose table 'tok' has 27 "
                             "rows (indices, not numbers to nudge)") != std::string::npos, text.out);
    BOOST_TEST(text.out.find("  targets  skipped: it holds the class indices of node 'L' (cross_entropy)") !=
                   std::string::npos, text.out);
    const CommandResult json = run_command(cmd + " --json");
    BOOST_TEST(json.code == 0, json.err);
    const Json doc = parse_json_text(json.out, "gradcheck --json");
    BOOST_TEST(doc["ok"].get<bool>());
    BOOST_TEST(doc["skipped"].size() == 2u);
    BOOST_TEST(doc["skipped"]["ids"].get<std::string>().starts_with("ids of node 'te' (embedding)"));
    BOOST_TEST(!doc["tensors"].contains("ids"));
    BOOST_TEST(doc["tensors"].contains("tok"));
}
