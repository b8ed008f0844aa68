// Batched matmul and slice against PyTorch (tests/golden/batched_ops.json, made by
// tests/golden/make_batched_op_goldens.py): values and every input's gradient in float64 and
// float32, and so at rank 4 for reshape, transpose, softmax, add and mul (attention's heads);
// the op table's checks at rank 4 for those and dropout; the facts the distributed trainer reads (mixes_rows) for the batched shapes; and
// the sparse form of matmul keeping to the dense op for a batched right operand. The
// finite-difference, overwrite and bad-sample checks run in the op table (test_ops_table).
#define BOOST_TEST_MODULE batched_ops
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <fmt/format.h>
#include <limits>

#include "core/json.hpp"
#include "core/sparse_rows.hpp"
#include "ops/op.hpp"
#include "ops/opcheck.hpp"
#include "ops/sparse_matmul.hpp"
#include "testing.hpp"

using namespace chainrule;
using namespace chainrule::testing;

namespace {

// The largest |got − want| / max(1, |want|).
double max_gap(const Tensor& got, const Tensor& want) {
    BOOST_REQUIRE(got.dims() == want.dims());
    double worst = 0;
    for (std::int64_t i = 0; i < got.numel(); ++i)
        worst = std::max(worst, std::abs(got.at(i) - want.at(i)) / std::max(1.0, std::abs(want.at(i))));
    return worst;
}

// Runs one golden case in `dtype`; checks y and each gradient within `tolerance`.
void check_case(const Json& c, Dtype dtype, double tolerance, int k) {
    const Op* op = find_op(c["op"].get<std::string>());
    BOOST_REQUIRE(op);
    Attrs attrs = op->attrs;
    for (auto& [key, v] : c["attrs"].items()) attrs[key] = v;
    std::vector<Tensor> in;
    for (const auto& name : c["order"])
        in.push_back(tensor_from_json(c["inputs"][name.get<std::string>()], "golden").to(dtype));
    std::vector<const Tensor*> ptrs;
    std::vector<Shape> shapes;
    for (auto& t : in) ptrs.push_back(&t), shapes.push_back(fixed_shape(t.dims()));
    const std::string what = fmt::format("case {} ({} {} {})", k, op->name, c["order"].dump(), c["attrs"].dump());
    Tensor y(dtype, to_dims(op->shape(shapes, attrs)));
    op->forward(ForwardCall{ptrs, y, attrs});
    BOOST_TEST(max_gap(y, tensor_from_json(c["y"], "golden")) < tolerance, what << ": value");
    const Tensor r = tensor_from_json(c["r"], "golden").to(dtype);
    std::vector<Tensor> grads;
    for (auto& t : in) {
        grads.emplace_back(dtype, t.dims());
        grads.back().fill(12345.0);  // backward overwrites: what was there must not show
    }
    std::vector<Tensor*> gptrs;
    for (auto& g : grads) gptrs.push_back(&g);
    op->backward(BackwardCall{ptrs, y, r, gptrs, attrs});
    for (std::size_t i = 0; i < in.size(); ++i) {
        const std::string name = c["order"][i].get<std::string>();
        BOOST_TEST(max_gap(grads[i], tensor_from_json(c["grads"][name], "golden")) < tolerance,
                   what << ": dL/d" << name);
    }
}

Json goldens() {
    Json golden = read_json_file(source_root() + "/tests/golden/batched_ops.json");
    BOOST_REQUIRE(golden["cases"].size() >= 19u);
    return golden;
}

std::string mixes(const std::string& op, std::vector<bool> batch, std::vector<std::size_t> ranks,
                  const Attrs& attrs = Attrs::object()) {
    const Op* o = find_op(op);
    Attrs merged = o->attrs;
    for (auto& [key, v] : attrs.items()) merged[key] = v;
    return o->mixes_rows(RowQuery{batch, ranks, merged});
}

Shape shape_of(const std::string& op, std::vector<Shape> in, const Attrs& attrs = Attrs::object()) {
    const Op* o = find_op(op);
    Attrs merged = o->attrs;
    for (auto& [key, v] : attrs.items()) merged[key] = v;
    return o->shape(in, merged);
}

const Dim N{1, "N"};

}  // namespace

using chainrule::testing::RemoveScratch;
BOOST_TEST_GLOBAL_FIXTURE(RemoveScratch);

BOOST_AUTO_TEST_CASE(float64_values_and_gradients_match_pytorch) {
    const Json golden = goldens();  // kept: a range-for over goldens()["cases"] would dangle
    int k = 0;
    for (const Json& c : golden["cases"]) check_case(c, Dtype::f64, 1e-12, k++);
}

BOOST_AUTO_TEST_CASE(float32_values_and_gradients_match_pytorch_to_float32_precision) {
    const Json golden = goldens();  // kept: a range-for over goldens()["cases"] would dangle
    int k = 0;
    for (const Json& c : golden["cases"]) check_case(c, Dtype::f32, 1e-5, k++);
}

BOOST_AUTO_TEST_CASE(matmul_shapes_keep_the_batch_symbol) {
    BOOST_TEST(format_shape(shape_of("matmul", {{N, Dim{5}, Dim{3}}, {Dim{3}, Dim{4}}})) == "[N,5,4]");
    BOOST_TEST(format_shape(shape_of("matmul", {{N, Dim{2}, Dim{5}, Dim{3}}, {N, Dim{2}, Dim{3}, Dim{5}}})) ==
               "[N,2,5,5]");
    BOOST_TEST(format_shape(shape_of("matmul", {{N, Dim{1}, Dim{5}, Dim{3}}, {Dim{2}, Dim{3}, Dim{4}}})) ==
               "[N,2,5,4]");
    BOOST_TEST(format_shape(shape_of("matmul", {{N, Dim{4}}, {Dim{4}, Dim{2}}})) == "[N,2]");
    BOOST_CHECK_EXCEPTION(shape_of("matmul", {{N, Dim{5}, Dim{3}}, {Dim{2}, Dim{3}, Dim{4}}}), ShapeError,
                          [](const ShapeError& e) {
                              return std::string(e.what()).find("their batch dims [N] and [2] do not broadcast") !=
                                     std::string::npos;
                          });
}

// [N,T,C]·[C,K] and [N,H,T,D]·[N,H,D,T] keep the batch's rows apart, so a sequence model can
// be trained in shards; the 2-D facts are as before.
BOOST_AUTO_TEST_CASE(matmul_mixes_rows_only_where_the_batch_is_summed_or_moved) {
    BOOST_TEST(mixes("matmul", {true, false}, {2, 2}) == "");
    BOOST_TEST(mixes("matmul", {false, true}, {2, 2}) == "has the batch's rows as its right operand, mixing them");
    BOOST_TEST(mixes("matmul", {true, false}, {3, 2}) == "");  // [N,T,C]·[C,K]
    BOOST_TEST(mixes("matmul", {true, true}, {4, 4}) == "");   // [N,H,T,D]·[N,H,D,T]
    BOOST_TEST(mixes("matmul", {true, false}, {4, 3}) == "");  // [N,H,T,D]·[H,D,T]
    BOOST_TEST(mixes("matmul", {false, true}, {2, 3}) == "");  // [T,C]·[N,C,K]
    BOOST_TEST(mixes("matmul", {true, true}, {3, 2}) == "has the batch's rows as its right operand, mixing them");
    BOOST_TEST(mixes("matmul", {true, false}, {2, 3}).find("moving the batch's rows off axis 0") !=
               std::string::npos);  // [N,k]·[G,k,m] -> [G,N,m]
    BOOST_TEST(mixes("matmul", {true, false}, {3, 4}).find("its 3-D left operand") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(slice_refuses_a_symbolic_axis_and_declares_the_batch_axis) {
    BOOST_TEST(format_shape(shape_of("slice", {{N, Dim{6}, Dim{3}}}, {{"axis", 1}, {"start", 2}, {"end", 5}})) ==
               "[N,3,3]");
    BOOST_TEST(format_shape(shape_of("slice", {{N, Dim{6}}}, {{"start", 4}})) == "[N,2]");
    BOOST_CHECK_EXCEPTION(shape_of("slice", {{N, Dim{6}}}, {{"axis", 0}, {"end", 2}}), ShapeError,
                          [](const ShapeError& e) {
                              return std::string(e.what()).find("cannot slice axis 0 of [N,6]: it is the symbolic "
                                                                "dim N") != std::string::npos;
                          });
    BOOST_CHECK_EXCEPTION(shape_of("slice", {{N, Dim{6}}}, {{"axis", -2}}), ShapeError, [](const ShapeError& e) {
        return std::string(e.what()).find("cannot slice axis -2 of [N,6]") != std::string::npos;
    });
    BOOST_TEST(mixes("slice", {true}, {3}, {{"axis", 0}}).find("slices the batch axis (axis 0)") != std::string::npos);
    BOOST_TEST(mixes("slice", {true}, {3}, {{"axis", -3}}).find("slices the batch axis") != std::string::npos);
    BOOST_TEST(mixes("slice", {true}, {3}, {{"axis", 1}}) == "");
    BOOST_TEST(mixes("slice", {false}, {3}, {{"axis", 0}}) == "");
}

// The sparse form of matmul (the first layer over a sparse fed batch) multiplies a 2-D W; a
// batched W ([G,k,m], torch.matmul broadcasting x) gets the dense op's numbers, not rows read
// as if W were [k,m].
BOOST_AUTO_TEST_CASE(sparse_form_runs_the_dense_op_for_a_batched_right_operand) {
    const std::int64_t rows = 3, k = 4, m = 2, g = 2;
    Rng rng(5);
    Tensor x = random_tensor({rows, k}, Domain::real, rng);
    x.data<double>()[1] = 0;
    x.data<double>()[6] = 0;
    Tensor w = random_tensor({g, k, m}, Domain::real, rng);
    SparseRows s;
    s.reshape(Dtype::f64, rows, k);
    for (std::int64_t i = 0; i < rows; ++i) {
        std::int64_t at = s.row_begin[std::size_t(i)];
        for (std::int64_t j = 0; j < k; ++j)
            if (double v = x.data<double>()[i * k + j]; v != 0) {
                s.row_index[std::size_t(at)] = std::int32_t(j);
                s.row_values<double>()[std::size_t(at++)] = v;
            }
        s.row_end[std::size_t(i)] = at;
        s.index_row(i);
    }
    BOOST_REQUIRE(s.finish(std::numeric_limits<double>::infinity()));
    const Op& matmul = *find_op("matmul");
    const SparseForm* form = sparse_form(matmul);
    BOOST_REQUIRE(form);
    std::vector<const Tensor*> in{&x, &w};
    Tensor dense(Dtype::f64, {g, rows, m}), sparse(Dtype::f64, {g, rows, m});
    matmul.forward(ForwardCall{in, dense, matmul.attrs});
    form->forward(ForwardCall{in, sparse, matmul.attrs}, s);
    BOOST_TEST(max_gap(sparse, dense) == 0.0);
    Tensor r = random_tensor({g, rows, m}, Domain::real, rng);
    Tensor gx_dense(Dtype::f64, {rows, k}), gw_dense(Dtype::f64, {g, k, m});
    Tensor gx_sparse(Dtype::f64, {rows, k}), gw_sparse(Dtype::f64, {g, k, m});
    std::vector<Tensor*> dense_grads{&gx_dense, &gw_dense}, sparse_grads{&gx_sparse, &gw_sparse};
    matmul.backward(BackwardCall{in, dense, r, dense_grads, matmul.attrs});
    form->backward(BackwardCall{in, sparse, r, sparse_grads, matmul.attrs}, s);
    BOOST_TEST(max_gap(gx_sparse, gx_dense) == 0.0);
    BOOST_TEST(max_gap(gw_sparse, gw_dense) == 0.0);
    // and the dense op's dL/dW sums over nothing here (each block of W makes one block of C):
    // block 1 of dL/dW is xᵀ·r[1]
    double want = 0;
    for (std::int64_t i = 0; i < rows; ++i) want += x.data<double>()[i * k + 2] * r.data<double>()[(rows + i) * m + 1];
    BOOST_TEST(std::abs(gw_dense.data<double>()[(k + 2) * m + 1] - want) < 1e-12);
}

// A model with [N,T,C]·[C,K], a matmul of two batched operands and two slices: every
// gradient, of the parameters and of the input, agrees with central differences.
BOOST_AUTO_TEST_CASE(gradcheck_passes_on_a_model_with_batched_matmuls_and_slices) {
    const std::string model = source_root() + "/tests/fixtures/batched_matmul_slice.json";
    CommandResult r = run_command(chainrule_binary() + " gradcheck " + model + " --inputs --max-entries 0");
    BOOST_TEST(r.code == 0, r.err);
    BOOST_TEST(r.out.find("gradcheck passed") != std::string::npos, r.out);
    for (const char* line : {"x            36 of 36", "W            15 of 15", "Wk            9 of 9"})
        BOOST_TEST(r.out.find(line) != std::string::npos, line << " in " << r.out);
}

// Slicing the batch axis of a model is refused when the model is loaded, naming the node.
BOOST_AUTO_TEST_CASE(a_model_slicing_the_batch_axis_exits_2) {
    Json m = read_json_file(source_root() + "/tests/fixtures/batched_matmul_slice.json");
    m["nodes"][1]["attrs"] = Json::parse(R"({"axis": 0, "start": 0, "end": 2})");
    const std::string path = (scratch() / "batch_slice.json").string();
    std::ofstream(path) << m.dump();
    CommandResult r = run_command(chainrule_binary() + " check " + path);
    std::remove(path.c_str());
    BOOST_TEST(r.code == 2);
    BOOST_TEST(r.err.find("nodes[1]: slice cannot slice axis 0 of [N,4,5]: it is the symbolic dim N") !=
                   std::string::npos,
               r.err);
}

// [N,T,C] -> [N,T,H,D] -> [N,H,T,D] and back keep the batch symbol at axis 0.
BOOST_AUTO_TEST_CASE(attention_heads_keep_the_batch_symbol) {
    const Shape heads = shape_of("reshape", {{N, Dim{4}, Dim{6}}}, {{"shape", {-1, 4, 2, 3}}});
    BOOST_TEST(format_shape(heads) == "[N,4,2,3]");
    const Shape per_head = shape_of("transpose", {heads}, {{"perm", {0, 2, 1, 3}}});
    BOOST_TEST(format_shape(per_head) == "[N,2,4,3]");
    const Shape kt = shape_of("transpose", {per_head}, {{"perm", {0, 1, 3, 2}}});
    const Shape scores = shape_of("matmul", {per_head, kt});
    BOOST_TEST(format_shape(scores) == "[N,2,4,4]");
    BOOST_TEST(format_shape(shape_of("softmax", {scores})) == "[N,2,4,4]");
    BOOST_TEST(format_shape(shape_of("add", {scores, {Dim{2}, Dim{1}, Dim{4}}})) == "[N,2,4,4]");
    BOOST_TEST(format_shape(shape_of("mul", {scores, {Dim{4}, Dim{1}}})) == "[N,2,4,4]");
    BOOST_TEST(format_shape(shape_of("dropout", {scores})) == "[N,2,4,4]");
    const Shape back = shape_of("transpose", {per_head}, {{"perm", {0, 2, 1, 3}}});
    BOOST_TEST(format_shape(shape_of("reshape", {back}, {{"shape", {-1, 4, 6}}})) == "[N,4,6]");
    BOOST_TEST(mixes("softmax", {true}, {4}) == "");
    BOOST_TEST(mixes("softmax", {true}, {4}, {{"axis", -4}}) != "");
}

// The op table's checks (finite differences, overwrite, float32 against float64) on rank-4
// samples, run on copies of the ops with these samples in place of their own.
BOOST_AUTO_TEST_CASE(rank_4_samples_pass_the_op_table_checks) {
    const std::vector<std::pair<std::string, std::vector<OpSample>>> cases = {
        {"softmax", {{.shapes = {{2, 2, 3, 4}}}, {.shapes = {{2, 2, 3, 4}}, .attrs = {{"axis", 1}}}}},
        {"add", {{.shapes = {{2, 2, 3, 4}, {2, 1, 4}}}, {.shapes = {{2, 1, 3, 1}, {1, 2, 1, 4}}}}},
        {"mul", {{.shapes = {{2, 2, 3, 4}, {2, 3, 1}}}, {.shapes = {{1, 2, 1, 4}, {2, 1, 3, 4}}}}},
        {"dropout", {{.shapes = {{2, 2, 3, 4}}, .attrs = {{"p", 0.3}}}}},
        {"reshape", {{.shapes = {{2, 3, 6}}, .attrs = {{"shape", {-1, 3, 2, 3}}}}}},
        {"transpose", {{.shapes = {{2, 3, 2, 4}}, .attrs = {{"perm", {0, 2, 1, 3}}}},
                       {.shapes = {{2, 2, 3, 4}}, .attrs = {{"perm", {0, 1, 3, 2}}}}}},
        {"matmul", {{.shapes = {{2, 2, 3, 4}, {2, 2, 4, 3}}}, {.shapes = {{2, 1, 3, 4}, {2, 4, 2}}}}},
        {"slice", {{.shapes = {{2, 2, 3, 4}}, .attrs = {{"axis", 2}, {"start", 1}, {"end", 3}}}}},
    };
    for (const auto& [name, samples] : cases) {
        Op op = *find_op(name);
        op.samples = samples;
        op.bad_samples.clear();
        const auto checks = check_op(op);
        BOOST_TEST(checks.size() >= 4 * samples.size(), name);
        for (const OpCheck& c : checks) BOOST_TEST(c.passed, name << ": " << c.what << ": " << c.detail);
    }
}

// Two heads of self-attention: every gradient agrees with central differences.
BOOST_AUTO_TEST_CASE(gradcheck_passes_on_two_attention_heads) {
    const std::string model = source_root() + "/tests/fixtures/attention_heads.json";
    CommandResult r = run_command(chainrule_binary() + " gradcheck " + model + " --inputs --max-entries 0");
    BOOST_TEST(r.code == 0, r.err);
    BOOST_TEST(r.out.find("gradcheck passed") != std::string::npos, r.out);
    for (const char* line : {"x            72 of 72", "Wq           36 of 36", "Wv           36 of 36", "g             6 of 6"})
        BOOST_TEST(r.out.find(line) != std::string::npos, line << " in " << r.out);
}

// A next-token loss: logits [N,4,5] whose positions a concat of two slices rotates, and
// cross_entropy over every position with [N,4] class indices (drawn valid, as none are fed):
// the gradient through both slices and the concat agrees with central differences.
BOOST_AUTO_TEST_CASE(gradcheck_passes_on_concat_of_slices_and_cross_entropy_over_positions) {
    const std::string model = source_root() + "/tests/fixtures/concat_cross_entropy.json";
    CommandResult r = run_command(chainrule_binary() + " gradcheck " + model + " --max-entries 0");
    BOOST_TEST(r.code == 0, r.err);
    BOOST_TEST(r.out.find("gradcheck passed") != std::string::npos, r.out);
    BOOST_TEST(r.out.find("W            15 of 15") != std::string::npos, r.out);
    BOOST_TEST(r.err.find("t [N,4] drawn at random") != std::string::npos, r.err);
}

// Concatenating along the batch symbol is refused when the model is loaded, and a fed label
// outside the logits' columns is refused naming its row and column (t[1][2]).
BOOST_AUTO_TEST_CASE(concat_along_the_batch_and_a_bad_label_at_a_position_exit_2) {
    Json m = read_json_file(source_root() + "/tests/fixtures/concat_cross_entropy.json");
    const std::string path = (scratch() / "concat.json").string();
    const std::string feed = (scratch() / "concat_feed.json").string();
    std::ofstream(feed) << R"({"x": [[[1, 2, 3], [4, 5, 6], [7, 8, 9], [1, 1, 1]], [[0, 1, 0], [1, 0, 1], [2, 2, 2], [3, 2, 1]]],
                              "t": [[0, 4, 2, 1], [3, 1, 5, 0]]})";
    m["nodes"][3]["attrs"] = Json::parse(R"({"axis": 0})");
    std::ofstream(path) << m.dump();
    CommandResult along_n = run_command(chainrule_binary() + " check " + path);
    CommandResult bad_label = run_command(chainrule_binary() + " grad " + source_root() +
                                          "/tests/fixtures/concat_cross_entropy.json --feed " + feed);
    std::remove(path.c_str());
    std::remove(feed.c_str());
    BOOST_TEST(along_n.code == 2);
    CHECK_HAS(along_n.err, "nodes[3]: concat cannot concatenate along axis 0 of x0 [N,3,5]: it is the symbolic dim N, "
                           "whose length is known only when fed; here x0 is rest [N,3,5], x1 is first [N,1,5]");
    BOOST_TEST(bad_label.code == 2);
    CHECK_HAS(bad_label.err, feed + ": t[1][2]: entry 6 is 5, but input 't' holds class indices for node 'L' "
                             "(cross_entropy), whose logits 'z' have 5 columns: each must be a whole number from 0 to 4");
}

// concat is variadic: one input or many, none refused with the names it takes; it mixes the
// batch's rows only when it concatenates along axis 0 of batched inputs.
BOOST_AUTO_TEST_CASE(concat_takes_any_number_of_inputs_and_keeps_rows_apart_off_axis_0) {
    const Op* op = find_op("concat");
    BOOST_REQUIRE(op);
    BOOST_TEST(fewest_inputs(*op) == 1u);
    BOOST_TEST(most_inputs(*op) == SIZE_MAX);
    BOOST_TEST(input_list(*op) == "x0, x1, ...");
    BOOST_TEST(input_name(*op, 3) == "x3");
    BOOST_TEST(format_shape(shape_of("concat", {{N, Dim{2}, Dim{3}}, {N, Dim{5}, Dim{3}}, {N, Dim{1}, Dim{3}}},
                                     {{"axis", 1}})) == "[N,8,3]");
    BOOST_TEST(mixes("concat", {true, true}, {3, 3}, {{"axis", 1}}) == "");
    BOOST_TEST(mixes("concat", {true, true}, {3, 3}, {{"axis", -3}}) != "");
    BOOST_TEST(mixes("concat", {false, false}, {2, 2}, {{"axis", 0}}) == "");

    Json m = read_json_file(source_root() + "/tests/fixtures/concat_cross_entropy.json");
    m["nodes"][3]["inputs"] = Json::array();
    const std::string path = (scratch() / "concat_none.json").string();
    std::ofstream(path) << m.dump();
    CommandResult none = run_command(chainrule_binary() + " check " + path);
    std::remove(path.c_str());
    BOOST_TEST(none.code == 2);
    CHECK_HAS(none.err, "nodes[3]: concat takes 1 or more inputs (x0, x1, ...), got 0");
}

// The batched product's blocks split over 1, 2 or 3 threads give the same bits, forward and
// both gradients, for blocks written apart (both operands batched, or B broadcast: dL/dA's
// blocks are apart, dL/dB's summed over the batch in order) and in float32 and float64.
BOOST_AUTO_TEST_CASE(batched_matmul_gives_the_same_bits_on_any_thread_count) {
    const Op* op = find_op("matmul");
    BOOST_REQUIRE(op);
    const std::vector<std::pair<Dims, Dims>> cases = {{{3, 2, 4, 5}, {3, 2, 5, 3}}, {{2, 3, 4, 5}, {3, 5, 2}},
                                                      {{5, 7, 6}, {5, 6, 4}}};
    for (Dtype dtype : {Dtype::f32, Dtype::f64})
        for (const auto& [da, db] : cases) {
            Rng rng(7);
            Tensor a = sample_tensor(da, Domain::real, rng).to(dtype), b = sample_tensor(db, Domain::real, rng).to(dtype);
            std::vector<Shape> shapes{fixed_shape(da), fixed_shape(db)};
            const Dims dc = to_dims(op->shape(shapes, op->attrs));
            Tensor g = sample_tensor(dc, Domain::real, rng).to(dtype);
            std::vector<const Tensor*> in{&a, &b};
            auto run = [&](int threads) {
                Workers workers(threads);
                std::vector<Tensor> out;
                out.emplace_back(dtype, dc), out.emplace_back(dtype, da), out.emplace_back(dtype, db);
                op->forward(ForwardCall{.in = in, .out = out[0], .attrs = op->attrs, .workers = &workers});
                std::vector<Tensor*> grads{&out[1], &out[2]};
                op->backward(BackwardCall{.in = in, .out = out[0], .grad_out = g, .grad_in = grads,
                                          .attrs = op->attrs, .workers = &workers});
                return out;
            };
            const std::vector<Tensor> one = run(1);
            for (int threads : {2, 3}) {
                const std::vector<Tensor> many = run(threads);
                for (std::size_t t = 0; t < one.size(); ++t)
                    for (std::int64_t e = 0; e < one[t].numel(); ++e)
                        BOOST_TEST(one[t].at(e) == many[t].at(e), format_dims(da) << "·" << format_dims(db) << " "
                                   << threads << " threads, tensor " << t << " entry " << e);
            }
        }
}
