// gelu, layer_norm, embedding and causal_mask against PyTorch (tests/golden/token_ops.json,
// made by tests/golden/make_token_op_goldens.py), concat and cross_entropy over [..., C]
// logits (tests/golden/seq_ops.json, make_seq_op_goldens.py): values and every differentiable
// input's gradient of L = sum(r * y) in float64. The finite-difference checks, float32 and the bad
// samples run in the op table (test_ops_table).
#define BOOST_TEST_MODULE token_ops
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <fmt/format.h>
#include <limits>

#include "core/error.hpp"
#include "core/json.hpp"
#include "ops/op.hpp"
#include "testing.hpp"

using namespace chainrule;
using namespace chainrule::testing;

namespace {

// The numbers of a nested JSON array in row-major order; null stands for −inf (causal_mask).
void flatten(const Json& j, std::vector<double>& out) {
    if (j.is_array())
        for (const Json& e : j) flatten(e, out);
    else
        out.push_back(j.is_null() ? -std::numeric_limits<double>::infinity() : j.get<double>());
}

// The largest |got − want| / max(1, |want|); equal infinities count as 0.
double max_gap(const Tensor& got, const Json& want) {
    std::vector<double> w;
    flatten(want, w);
    BOOST_REQUIRE_EQUAL(std::size_t(got.numel()), w.size());
    double worst = 0;
    for (std::int64_t i = 0; i < got.numel(); ++i) {
        if (got.at(i) == w[std::size_t(i)]) continue;
        const double gap = std::abs(got.at(i) - w[std::size_t(i)]) / std::max(1.0, std::abs(w[std::size_t(i)]));
        worst = std::isnan(gap) ? INFINITY : std::max(worst, gap);
    }
    return worst;
}

// Every case of a golden file through the op's forward and backward; how many cases each op had.
std::map<std::string, int> check_against_pytorch(const std::string& file) {
    Json golden = read_json_file(source_root() + "/tests/golden/" + file);
    std::map<std::string, int> seen;
    int k = 0;
    for (const Json& c : golden["cases"]) {
        const Op* op = find_op(c["op"].get<std::string>());
        BOOST_REQUIRE(op);
        ++seen[op->name];
        Attrs attrs = op->attrs;
        for (auto& [key, v] : c["attrs"].items()) attrs[key] = v;
        std::vector<Tensor> in;
        for (const auto& name : c["order"]) in.push_back(tensor_from_json(c["inputs"][name.get<std::string>()], "golden"));
        std::vector<const Tensor*> ptrs;
        std::vector<Shape> shapes;
        for (auto& t : in) ptrs.push_back(&t), shapes.push_back(fixed_shape(t.dims()));
        const std::string what =
            fmt::format("{} case {} ({} {}, {} inputs)", file, k++, op->name, c["attrs"].dump(), in.size());
        Tensor y(Dtype::f64, to_dims(op->shape(shapes, attrs)));
        op->forward(ForwardCall{ptrs, y, attrs});
        BOOST_TEST(max_gap(y, c["y"]) < 1e-12, what << ": value");
        Tensor r = tensor_from_json(c["r"], "golden");
        std::vector<Tensor> grads;
        for (auto& t : in) grads.emplace_back(Dtype::f64, t.dims()), grads.back().fill(7.0);
        std::vector<Tensor*> gptrs;
        for (auto& g : grads) gptrs.push_back(&g);
        op->backward(BackwardCall{ptrs, y, r, gptrs, attrs});
        for (std::size_t i = 0; i < in.size(); ++i) {
            const std::string name = c["order"][i].get<std::string>();
            if (c["grads"].contains(name)) {
                BOOST_TEST(max_gap(grads[i], c["grads"][name]) < 1e-12, what << ": dL/d" << name);
                continue;
            }
            // embedding's ids, cross_entropy's class indices: no gradient, and zeros when a
            // buffer is given anyway.
            for (std::int64_t e = 0; e < grads[i].numel(); ++e)
                BOOST_TEST(grads[i].at(e) == 0.0, what << ": dL/d" << name << " entry " << e);
        }
    }
    return seen;
}

}  // namespace

BOOST_AUTO_TEST_CASE(values_and_gradients_match_pytorch) {
    std::map<std::string, int> seen = check_against_pytorch("token_ops.json");
    BOOST_TEST(seen["gelu"] == 3);
    BOOST_TEST(seen["layer_norm"] == 4);
    BOOST_TEST(seen["embedding"] == 3);
    BOOST_TEST(seen["causal_mask"] == 3);
}

// concat of 1 to 4 inputs along axes 0, 1, −1, −2; cross_entropy over [N,C], [N,T,C] and
// [N,H,T,C] logits with class indices, soft targets (whose gradient is checked too), and
// ignore_index -1 leaving positions out of the mean; dot over one to three pairs.
BOOST_AUTO_TEST_CASE(concat_cross_entropy_and_dot_match_pytorch) {
    std::map<std::string, int> seen = check_against_pytorch("seq_ops.json");
    BOOST_TEST(seen["concat"] == 5);
    BOOST_TEST(seen["cross_entropy"] == 7);  // two with ignore_index -1
    BOOST_TEST(seen["dot"] == 3);
}

// A token used twice gets both rows of dL/dy added into its table row, and rows no id picks
// get 0 (by hand: ids [1, 0, 1], table [3, 2], dL/dy rows (1,2), (3,4), (5,6)).
BOOST_AUTO_TEST_CASE(embedding_adds_the_rows_of_a_repeated_id) {
    const Op* op = find_op("embedding");
    BOOST_REQUIRE(op);
    Tensor ids(Dtype::f64, {3}), table(Dtype::f64, {3, 2}), y(Dtype::f64, {3, 2}), g(Dtype::f64, {3, 2});
    const double id_values[] = {1, 0, 1};
    for (int i = 0; i < 3; ++i) ids.set(i, id_values[i]);
    for (int i = 0; i < 6; ++i) table.set(i, 10.0 * i), g.set(i, i + 1.0);
    std::vector<const Tensor*> ptrs{&ids, &table};
    op->forward(ForwardCall{ptrs, y, op->attrs});
    const double want_y[] = {20, 30, 0, 10, 20, 30};
    for (int i = 0; i < 6; ++i) BOOST_TEST(y.at(i) == want_y[i]);
    Tensor gt(Dtype::f64, {3, 2});
    gt.fill(99.0);
    std::vector<Tensor*> gptrs{nullptr, &gt};
    op->backward(BackwardCall{ptrs, y, g, gptrs, op->attrs});
    const double want[] = {3, 4, 1 + 5, 2 + 6, 0, 0};
    for (int i = 0; i < 6; ++i) BOOST_TEST(gt.at(i) == want[i], "dL/dtable entry " << i);
}

// Outside a model (where the places that give ids values check them first) the op itself
// refuses a fraction, a negative id and one past the table, naming the position.
BOOST_AUTO_TEST_CASE(embedding_refuses_a_bad_id_itself) {
    const Op* op = find_op("embedding");
    BOOST_REQUIRE(op);
    for (double bad : {1.5, -1.0, 3.0}) {
        Tensor ids(Dtype::f64, {2}), table(Dtype::f64, {3, 2}), y(Dtype::f64, {2, 2});
        ids.set(0, 0.0);
        ids.set(1, bad);
        std::vector<const Tensor*> ptrs{&ids, &table};
        try {
            op->forward(ForwardCall{ptrs, y, op->attrs});
            BOOST_FAIL("accepted id " << bad);
        } catch (const RunError& e) {
            BOOST_TEST(std::string(e.what()).find(fmt::format("ids entry 1 is {}, but an id must be a whole number "
                                                              "in [0, 3)",
                                                              bad)) != std::string::npos,
                       e.what());
        }
    }
}

// cross_entropy refuses a label that is no class index itself, naming its position: the row
// of [N] labels, the row and column of [N,T] ones.
BOOST_AUTO_TEST_CASE(cross_entropy_names_the_position_of_a_bad_label) {
    const Op* op = find_op("cross_entropy");
    BOOST_REQUIRE(op);
    struct Case {
        Dims logits, labels;
        std::int64_t at;
        double bad;
        std::string want;
    };
    for (const Case& c : {Case{{3, 4}, {3}, 2, 4.0, "cross_entropy: row 2 has label 4, but a class index"},
                          Case{{2, 3, 4}, {2, 3}, 5, 1.5, "cross_entropy: row 1, column 2 has label 1.5, but a class"},
                          Case{{2, 3, 4}, {2, 3}, 1, -1.0, "cross_entropy: row 0, column 1 has label -1"},
                          Case{{2, 2, 1, 4}, {2, 2, 1}, 3, 9.0, "cross_entropy: position [1,1,0] has label 9"}}) {
        Tensor logits(Dtype::f64, c.logits), labels(Dtype::f64, c.labels), y(Dtype::f64, {});
        labels.set(c.at, c.bad);
        std::vector<const Tensor*> ptrs{&logits, &labels};
        try {
            op->forward(ForwardCall{ptrs, y, op->attrs});
            BOOST_FAIL("accepted label " << c.bad);
        } catch (const RunError& e) {
            CHECK_HAS(std::string(e.what()), c.want);
            CHECK_HAS(std::string(e.what()), "must be an integer in [0, 4) (one per logits column)");
        }
    }
}

// Exact gelu in float32 takes Φ from Abramowitz & Stegun's erf (|error| ≤ 1.5e-7) in a loop
// that vectorizes; float64 keeps std::erf. Over x from −12 to 12 (through 0, the tails where
// Φ saturates), both the value and the slope agree with the exact ones to a few float32
// roundings, relative to max(1, |·|), and the tails are 0 and x.
BOOST_AUTO_TEST_CASE(gelu_float32_is_exact_to_float32_rounding) {
    const Op* op = find_op("gelu");
    BOOST_REQUIRE(op);
    const std::int64_t n = 2401;  // x = −12, −11.99, ..., 12
    Tensor x64(Dtype::f64, {n}), g64(Dtype::f64, {n});
    for (std::int64_t i = 0; i < n; ++i) x64.set(i, -12 + 0.01 * double(i)), g64.set(i, 1.0);
    const Tensor x32 = x64.to(Dtype::f32), g32 = g64.to(Dtype::f32);
    double worst_value = 0, worst_slope = 0;
    Tensor y[2], dx[2];
    for (int k = 0; k < 2; ++k) {
        const Dtype d = k ? Dtype::f32 : Dtype::f64;
        const Tensor& x = k ? x32 : x64;
        y[k] = Tensor(d, {n});
        dx[k] = Tensor(d, {n});
        std::vector<const Tensor*> in{&x};
        std::vector<Tensor*> grads{&dx[k]};
        op->forward(ForwardCall{in, y[k], op->attrs});
        op->backward(BackwardCall{in, y[k], k ? g32 : g64, grads, op->attrs});
    }
    for (std::int64_t i = 0; i < n; ++i) {
        const double xi = x32.at(i);  // the float32 input, so only gelu's own error counts
        const double want_y = xi * std::erfc(-xi / std::sqrt(2.0)) / 2;
        const double want_dx = std::erfc(-xi / std::sqrt(2.0)) / 2 + xi * std::exp(-xi * xi / 2) / std::sqrt(2 * M_PI);
        worst_value = std::max(worst_value, std::abs(y[1].at(i) - want_y) / std::max(1.0, std::abs(want_y)));
        worst_slope = std::max(worst_slope, std::abs(dx[1].at(i) - want_dx) / std::max(1.0, std::abs(want_dx)));
    }
    BOOST_TEST(worst_value <= 1e-6, "worst value gap " << worst_value);
    BOOST_TEST(worst_slope <= 1e-6, "worst slope gap " << worst_slope);
    BOOST_TEST(worst_value > 0);  // the float32 path is not float64's
    BOOST_TEST(y[1].at(0) == 0.0f);
    BOOST_TEST(y[1].at(n - 1) == 12.0f);
    BOOST_TEST(std::abs(dx[1].at(0)) < 1e-30);  // −12·φ(−12) ≈ −2.6e-31
    BOOST_TEST(dx[1].at(n - 1) == 1.0f);
}
