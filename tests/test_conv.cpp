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
#include "cpu/convolution.hpp"
#include "cpu/direct_conv.hpp"
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

// float32 runs oneDNN's kernels (cpu/convolution.hpp) where they exist, im2col + GEMM where
// not: both agree with PyTorch's float64 values to float32's precision, alone, with a
// workspace and on two helper threads.
BOOST_AUTO_TEST_CASE(float32_values_and_gradients_match_pytorch_to_float32_precision) {
    Json golden = read_json_file(source_root() + "/tests/golden/conv.json");
    Workers two(2);
    int k = 0;
    for (const Json& c : golden["cases"]) {
        const Op* op = find_op(c["op"].get<std::string>());
        Attrs attrs = op->attrs;
        for (auto& [key, v] : c["attrs"].items()) attrs[key] = v;
        std::vector<Tensor> in;
        for (const auto& name : c["order"])
            in.push_back(tensor_from_json(c["inputs"][name.get<std::string>()], "golden").to(Dtype::f32));
        std::vector<const Tensor*> ptrs;
        std::vector<Shape> shapes;
        for (auto& t : in) ptrs.push_back(&t), shapes.push_back(fixed_shape(t.dims()));
        Tensor r = tensor_from_json(c["r"], "golden").to(Dtype::f32);
        for (int mode : {0, 1, 2}) {
            Workspace ws;
            Workspace* node_scratch = mode > 0 ? &ws : nullptr;
            Workers* workers = mode == 2 ? &two : nullptr;
            Tensor y(Dtype::f32, to_dims(op->shape(shapes, attrs)));
            op->forward(ForwardCall{ptrs, y, attrs, node_scratch, {}, workers});
            std::string what = fmt::format("case {} ({} {}), mode {}", k, op->name, c["attrs"].dump(), mode);
            BOOST_TEST(max_gap(y, c["y"]) < 1e-5, what << ": value");
            std::vector<Tensor> grads;
            for (auto& t : in) grads.emplace_back(Dtype::f32, t.dims());
            std::vector<Tensor*> gptrs;
            for (auto& g : grads) gptrs.push_back(&g);
            op->backward(BackwardCall{ptrs, y, r, gptrs, attrs, node_scratch, {}, workers});
            for (std::size_t i = 0; i < in.size(); ++i)
                BOOST_TEST(max_gap(grads[i], c["grads"][c["order"][i].get<std::string>()]) < 1e-5,
                           what << ": dL/d" << c["order"][i].get<std::string>());
        }
        ++k;
    }
}

// mnist_cnn's two convolutions get oneDNN's JIT kernels for every pass (not its reference
// code, nor the im2col fallback), in the chunk sizes a batch of 100 and one of 1000 give.
BOOST_AUTO_TEST_CASE(mnist_cnn_convolutions_run_onednn_kernels) {
    for (std::int64_t n : {12, 13, 125})
        for (ConvSizes s : {ConvSizes{n, 1, 28, 28, 8, 5, 5, 28, 28, 1, 1, 2, 2, 1, 1, true},
                            ConvSizes{n, 8, 14, 14, 16, 5, 5, 10, 10, 1, 1, 0, 0, 1, 1, true}})
            for (ConvPass pass : {ConvPass::forward, ConvPass::backward_data, ConvPass::backward_weights}) {
                const ConvKernels* k = conv_kernels(s, pass);
                BOOST_TEST_REQUIRE(k != nullptr, "n " << n << " c " << s.c << " pass " << int(pass));
                BOOST_TEST(conv_kernel_name(*k).rfind("ref", 0) != 0);
                BOOST_TEST_MESSAGE("n " << n << " c " << s.c << " pass " << int(pass) << ": " << conv_kernel_name(*k));
            }
    BOOST_TEST(onednn_version().rfind("oneDNN ", 0) == 0);
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
    // 37 samples: chunks of 4 or 5; 300: chunks of 37 or 38, each cut into oneDNN calls of
    // at most 16 samples whose weight gradients are added in order.
    for (std::int64_t n : {37, 300}) {
        Tensor x = random({n, 3, 9, 8}), w = random({5, 3, 3, 3}), b = random({5});
        Attrs attrs = op->attrs;
        attrs["padding"] = 1;
        std::vector<const Tensor*> in{&x, &w, &b};
        Tensor r = random({n, 5, 9, 8});
        auto run = [&](Workers* workers) {
            Workspace ws;
            std::vector<Tensor> out;
            out.emplace_back(Dtype::f32, Dims{n, 5, 9, 8});
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
                BOOST_TEST(differ == 0, n << " samples, " << threads << " threads, output " << t << ": " << differ
                                           << " entries differ");
            }
        }
        // And the pieces' sums agree with float64 to float32's precision.
        Tensor x64 = x.to(Dtype::f64), w64 = w.to(Dtype::f64), b64 = b.to(Dtype::f64), r64 = r.to(Dtype::f64);
        std::vector<const Tensor*> in64{&x64, &w64, &b64};
        Tensor y64(Dtype::f64, {n, 5, 9, 8}), gx64(Dtype::f64, x.dims()), gw64(Dtype::f64, w.dims()), gb64(Dtype::f64, b.dims());
        op->forward(ForwardCall{in64, y64, attrs});
        std::vector<Tensor*> g64{&gx64, &gw64, &gb64};
        op->backward(BackwardCall{in64, y64, r64, g64, attrs});
        const Tensor* want[] = {&y64, &gx64, &gw64, &gb64};
        for (std::size_t t = 0; t < 4; ++t) {
            double worst = 0, scale = 0;
            for (std::int64_t i = 0; i < want[t]->numel(); ++i) {
                worst = std::max(worst, std::abs(alone[t].at(i) - want[t]->at(i)));
                scale = std::max(scale, std::abs(want[t]->at(i)));
            }
            BOOST_TEST(worst <= 1e-5 * std::max(1.0, scale) * (t == 2 ? 30 : 1), n << " samples, output " << t);
        }
    }
}

// One input channel, stride 1 (mnist_cnn's first layer): chainrule's own AVX-512 forward
// (cpu/direct_conv) where the CPU has it. Its values agree with float64 to float32's
// precision, with 8 channels and with 11 (a block of 8 and a partial one), padding on one
// side only, rows of 28 and of 40 columns (a masked tail), and on 1 or 2 threads alike; the
// weight gradient (oneDNN's) too.
BOOST_AUTO_TEST_CASE(single_channel_forward_agrees_with_float64) {
    const Op* op = find_op("conv2d");
    Rng rng(11);
    struct Case {
        Dims x, w;
        Attrs attrs;
    };
    const Case cases[] = {{{23, 1, 28, 28}, {8, 1, 5, 5}, {{"padding", 2}}},
                          {{5, 1, 9, 40}, {11, 1, 3, 4}, {{"padding", {0, 1}}}},
                          {{3, 1, 6, 6}, {2, 1, 1, 1}, Attrs::object()}};
    BOOST_TEST(direct_conv_fits(ConvSizes{1, 1, 28, 28, 8, 5, 5, 28, 28, 1, 1, 2, 2, 1, 1, true}) ==
               bool(__builtin_cpu_supports("avx512f")));
    for (const Case& k : cases) {
        Attrs attrs = op->attrs;
        for (auto& [key, v] : k.attrs.items()) attrs[key] = v;
        Tensor x(Dtype::f64, k.x), w(Dtype::f64, k.w), b(Dtype::f64, {k.w[0]});
        for (Tensor* t : {&x, &w, &b})
            for (std::int64_t i = 0; i < t->numel(); ++i) t->set(i, rng.normal());
        const Shape out = op->shape(std::vector<Shape>{fixed_shape(k.x), fixed_shape(k.w), fixed_shape({k.w[0]})}, attrs);
        Tensor want(Dtype::f64, to_dims(out));
        const Tensor* in64[] = {&x, &w, &b};
        op->forward(ForwardCall{in64, want, attrs});
        Tensor x32 = x.to(Dtype::f32), w32 = w.to(Dtype::f32), b32 = b.to(Dtype::f32);
        const Tensor* in32[] = {&x32, &w32, &b32};
        Tensor alone(Dtype::f32, want.dims()), split(Dtype::f32, want.dims());
        Workspace ws1, ws2;
        Workers two(2);
        op->forward(ForwardCall{in32, alone, attrs, &ws1});
        op->forward(ForwardCall{in32, split, attrs, &ws2, {}, &two});
        double worst = 0;
        std::int64_t differ = 0;
        for (std::int64_t i = 0; i < want.numel(); ++i) {
            worst = std::max(worst, std::abs(alone.at(i) - want.at(i)) / std::max(1.0, std::abs(want.at(i))));
            differ += alone.at(i) != split.at(i);
        }
        BOOST_TEST(worst < 1e-5, format_dims(k.x) << " ⋆ " << format_dims(k.w) << ": worst gap " << worst);
        BOOST_TEST(differ == 0);
        // dL/dW and dL/db, when only they are wanted (as in training).
        Tensor r = want;
        for (std::int64_t i = 0; i < r.numel(); ++i) r.set(i, rng.normal());
        Tensor r32 = r.to(Dtype::f32);
        Tensor gw(Dtype::f64, k.w), gb(Dtype::f64, {k.w[0]});
        Tensor* g64[] = {nullptr, &gw, &gb};
        op->backward(BackwardCall{in64, want, r, g64, attrs});
        for (Workers* workers : {static_cast<Workers*>(nullptr), &two}) {
            Tensor gw32(Dtype::f32, k.w), gb32(Dtype::f32, {k.w[0]});
            Tensor* g32[] = {nullptr, &gw32, &gb32};
            Workspace ws;
            op->backward(BackwardCall{in32, alone, r32, g32, attrs, &ws, {}, workers});
            for (auto [got, ref] : {std::pair{&gw32, &gw}, std::pair{&gb32, &gb}}) {
                double gap = 0, scale = 1;
                for (std::int64_t i = 0; i < ref->numel(); ++i) {
                    gap = std::max(gap, std::abs(got->at(i) - ref->at(i)));
                    scale = std::max(scale, std::abs(ref->at(i)));
                }
                BOOST_TEST(gap < 3e-5 * scale, format_dims(k.x) << " ⋆ " << format_dims(k.w) << ": dL/dw or dL/db gap " << gap);
            }
        }
    }
}

// conv2d's, its gradients' and max_pool2d's `workspace` facts bound what their passes ask of
// a node's workspace (max_pool2d's exactly; conv2d's paths can depend on the pass, so its
// fact is the largest of them, with every chunk on its own thread; conv2d_grad_input and
// conv2d_grad_weight run conv2d's passes in the node's workspace and take conv2d's fact).
BOOST_AUTO_TEST_CASE(workspace_facts_match_what_the_passes_ask) {
    Rng rng(3);
    struct Case {
        const char* op;
        std::vector<Dims> shapes;
        Attrs attrs;
    };
    const Case cases[] = {{"conv2d", {{100, 1, 28, 28}, {8, 1, 5, 5}, {8}}, {{"padding", 2}}},
                          {"conv2d", {{100, 8, 14, 14}, {16, 8, 5, 5}, {16}}, Attrs::object()},
                          {"conv2d", {{300, 3, 9, 8}, {5, 3, 3, 3}}, {{"padding", 1}, {"stride", 2}}},
                          {"conv2d", {{5, 2, 7, 7}, {3, 2, 3, 3}, {3}}, {{"dilation", 2}}},
                          {"conv2d_grad_input", {{100, 8, 28, 28}, {8, 1, 5, 5}, {100, 1, 28, 28}}, {{"padding", 2}}},
                          {"conv2d_grad_weight", {{100, 16, 10, 10}, {100, 8, 14, 14}, {16, 8, 5, 5}}, Attrs::object()},
                          {"conv2d_grad_input", {{6, 5, 5, 4}, {5, 3, 3, 3}, {6, 3, 9, 8}}, {{"padding", 1}, {"stride", 2}}},
                          {"max_pool2d", {{10, 8, 28, 28}}, {{"kernel_size", 2}}},
                          {"max_pool2d", {{10, 8, 27, 27}}, {{"kernel_size", 3}, {"stride", 2}}}};
    for (const Case& k : cases)
        for (Dtype dtype : {Dtype::f32, Dtype::f64})
            for (int threads : {1, 2, 8}) {
                const Op* op = find_op(k.op);
                Attrs attrs = op->attrs;
                for (auto& [key, v] : k.attrs.items()) attrs[key] = v;
                std::vector<Tensor> in;
                std::vector<Shape> shapes;
                for (const Dims& d : k.shapes) {
                    in.emplace_back(dtype, d);
                    for (std::int64_t i = 0; i < in.back().numel(); ++i) in.back().set(i, rng.normal());
                    shapes.push_back(fixed_shape(d));
                }
                std::vector<const Tensor*> ptrs;
                for (auto& t : in) ptrs.push_back(&t);
                Tensor y(dtype, to_dims(op->shape(shapes, attrs))), r(dtype, y.dims());
                std::vector<Tensor> grads;
                for (auto& t : in) grads.emplace_back(dtype, t.dims());
                std::vector<Tensor*> gptrs;
                for (auto& g : grads) gptrs.push_back(&g);
                Workspace ws;
                Workers workers(threads);
                op->forward(ForwardCall{ptrs, y, attrs, &ws, {}, &workers});
                op->backward(BackwardCall{ptrs, y, r, gptrs, attrs, &ws, {}, &workers});
                const std::int64_t fact = op->workspace(k.shapes, attrs, dtype);
                BOOST_TEST_CONTEXT(k.op << " " << format_dims(k.shapes[0]) << " " << (dtype == Dtype::f32 ? "f32" : "f64")
                                        << ", " << threads << " threads") {
                    BOOST_TEST(std::int64_t(ws.bytes()) <= fact);
                    if (std::string(k.op) == "max_pool2d") BOOST_TEST(std::int64_t(ws.bytes()) == fact);
                }
            }
}

// The 2×2 stride-2 windows (their own vectorized loop) pick as the general loop does: the
// first maximum, and the first NaN over any number; 3×3 windows take the general loop.
BOOST_AUTO_TEST_CASE(max_pool_2x2_takes_the_first_maximum_or_the_first_nan) {
    const Op* op = find_op("max_pool2d");
    const double nan = std::nan("");
    // Five windows side by side, each one's four cells in row-major order (top row, bottom row).
    const double cells[5][4] = {{1, 4, 4, 2}, {1, nan, 3, nan}, {nan, 5, 6, 7}, {-3, -2, -1, nan}, {2, 2, 2, 2}};
    const int want_at[5] = {1, 1, 0, 3, 0};  // the cell whose gradient is dL/dy
    for (Dtype dtype : {Dtype::f32, Dtype::f64})
        for (int mode : {0, 1}) {
            Tensor x(dtype, {1, 1, 2, 10});
            for (int w = 0; w < 5; ++w)
                for (int i = 0; i < 4; ++i) x.set((i / 2) * 10 + 2 * w + i % 2, cells[w][i]);
            Attrs attrs = op->attrs;
            attrs["kernel_size"] = 2;
            Tensor y(dtype, {1, 1, 1, 5}), g(dtype, {1, 1, 1, 5}), gx(dtype, {1, 1, 2, 10});
            for (int w = 0; w < 5; ++w) g.set(w, 10 + w);
            const Tensor* in[] = {&x};
            Tensor* gin[] = {&gx};
            Workspace ws;
            op->forward(ForwardCall{in, y, attrs, mode ? &ws : nullptr});
            op->backward(BackwardCall{in, y, g, gin, attrs, mode ? &ws : nullptr});
            for (int w = 0; w < 5; ++w) {
                const double want = cells[w][want_at[w]];
                BOOST_TEST((std::isnan(want) ? std::isnan(y.at(w)) : y.at(w) == want), "window " << w);
                for (int i = 0; i < 4; ++i)
                    BOOST_TEST(gx.at((i / 2) * 10 + 2 * w + i % 2) == (i == want_at[w] ? 10.0 + w : 0.0),
                               "window " << w << " cell " << i << (mode ? " (workspace)" : ""));
            }
        }
}

// The same against a plain loop on rows longer than one vector (41 columns: 20 windows) and
// odd sizes (the last row and column are in no window), with ties, through a workspace.
BOOST_AUTO_TEST_CASE(max_pool_2x2_agrees_with_a_plain_loop) {
    const Op* op = find_op("max_pool2d");
    Rng rng(5);
    Workers two(2);
    for (Dtype dtype : {Dtype::f32, Dtype::f64}) {
        Tensor x(dtype, {3, 2, 7, 41}), y(dtype, {3, 2, 3, 20}), g(dtype, {3, 2, 3, 20}), gx(dtype, {3, 2, 7, 41});
        for (std::int64_t i = 0; i < x.numel(); ++i) x.set(i, double(rng.below(4)));  // many ties
        for (std::int64_t i = 0; i < g.numel(); ++i) g.set(i, double(i + 1));
        gx.fill(7.0);  // overwritten everywhere, the last row and column (in no window) too
        Attrs attrs = op->attrs;
        attrs["kernel_size"] = 2;
        const Tensor* in[] = {&x};
        Tensor* gin[] = {&gx};
        Workspace ws;
        op->forward(ForwardCall{in, y, attrs, &ws, {}, &two});
        op->backward(BackwardCall{in, y, g, gin, attrs, &ws, {}, &two});
        std::vector<double> want_gx(std::size_t(x.numel()), 0.0);
        for (std::int64_t p = 0; p < 6; ++p)
            for (std::int64_t oy = 0; oy < 3; ++oy)
                for (std::int64_t ox = 0; ox < 20; ++ox) {
                    std::int64_t best = -1;
                    for (std::int64_t i = 0; i < 2; ++i)
                        for (std::int64_t j = 0; j < 2; ++j) {
                            std::int64_t at = (p * 7 + 2 * oy + i) * 41 + 2 * ox + j;
                            if (best < 0 || x.at(at) > x.at(best)) best = at;
                        }
                    const std::int64_t o = (p * 3 + oy) * 20 + ox;
                    BOOST_TEST(y.at(o) == x.at(best));
                    want_gx[std::size_t(best)] = g.at(o);
                }
        std::int64_t differ = 0;
        for (std::int64_t i = 0; i < gx.numel(); ++i) differ += gx.at(i) != want_gx[std::size_t(i)];
        BOOST_TEST(differ == 0);
    }
}

// The ops of max pooling's derivatives walk the windows as max_pool2d does (one loop,
// pool2d::each_window_max): max_unpool2d(g, x) puts g where max_pool2d's backward puts it,
// and gather_max2d(z, x) takes z from there, on the ties and NaNs of the test above, and on
// rows of more windows than one run of the 2×2 kernel (141 columns: 70 windows) against a
// plain loop; 3×3 windows (the general loop) against max_pool2d's backward.
BOOST_AUTO_TEST_CASE(max_unpool2d_and_gather_max2d_pick_max_pool2d_s_cells) {
    const Op *pool = find_op("max_pool2d"), *unpool = find_op("max_unpool2d"), *gather = find_op("gather_max2d");
    const double nan = std::nan("");
    const double cells[5][4] = {{1, 4, 4, 2}, {1, nan, 3, nan}, {nan, 5, 6, 7}, {-3, -2, -1, nan}, {2, 2, 2, 2}};
    const int want_at[5] = {1, 1, 0, 3, 0};
    Attrs two = pool->attrs;
    two["kernel_size"] = 2;
    for (Dtype dtype : {Dtype::f32, Dtype::f64}) {
        Tensor x(dtype, {1, 1, 2, 10}), g(dtype, {1, 1, 1, 5}), up(dtype, {1, 1, 2, 10}), z(dtype, {1, 1, 2, 10}),
            picked(dtype, {1, 1, 1, 5});
        for (int w = 0; w < 5; ++w)
            for (int i = 0; i < 4; ++i) x.set((i / 2) * 10 + 2 * w + i % 2, cells[w][i]);
        for (int w = 0; w < 5; ++w) g.set(w, 10 + w);
        for (std::int64_t i = 0; i < z.numel(); ++i) z.set(i, 100 + double(i));
        const Tensor* unpool_in[] = {&g, &x};
        const Tensor* gather_in[] = {&z, &x};
        unpool->forward(ForwardCall{unpool_in, up, two});
        gather->forward(ForwardCall{gather_in, picked, two});
        for (int w = 0; w < 5; ++w) {
            const std::int64_t at = (want_at[w] / 2) * 10 + 2 * w + want_at[w] % 2;
            BOOST_TEST(picked.at(w) == 100.0 + double(at), "window " << w);
            for (int i = 0; i < 4; ++i)
                BOOST_TEST(up.at((i / 2) * 10 + 2 * w + i % 2) == (i == want_at[w] ? 10.0 + w : 0.0),
                           "window " << w << " cell " << i);
        }
    }
    Rng rng(9);
    for (int kernel : {2, 3})
        for (Dtype dtype : {Dtype::f32, Dtype::f64}) {
            Attrs attrs = pool->attrs;
            attrs["kernel_size"] = kernel;
            const Dims xd{2, 3, 7, 141};
            const Dims yd = to_dims(pool->shape(std::vector<Shape>{fixed_shape(xd)}, attrs));
            Tensor x(dtype, xd), y(dtype, yd), g(dtype, yd), want(dtype, xd), up(dtype, xd), z(dtype, xd),
                picked(dtype, yd);
            for (std::int64_t i = 0; i < x.numel(); ++i) x.set(i, double(rng.below(4)));  // many ties
            for (std::int64_t i = 0; i < g.numel(); ++i) g.set(i, double(i + 1));
            for (std::int64_t i = 0; i < z.numel(); ++i) z.set(i, double(i));
            const Tensor* pool_in[] = {&x};
            Tensor* pool_grad[] = {&want};
            Workspace ws;
            pool->forward(ForwardCall{pool_in, y, attrs, &ws});
            pool->backward(BackwardCall{pool_in, y, g, pool_grad, attrs, &ws});
            const Tensor* unpool_in[] = {&g, &x};
            const Tensor* gather_in[] = {&z, &x};
            unpool->forward(ForwardCall{unpool_in, up, attrs});
            gather->forward(ForwardCall{gather_in, picked, attrs});
            std::int64_t differ = 0, wrong = 0;
            for (std::int64_t i = 0; i < x.numel(); ++i) differ += up.at(i) != want.at(i);
            // z holds each cell's own index, so gather_max2d names the cell it took: a cell
            // of the window holding the window's maximum
            for (std::int64_t o = 0; o < picked.numel(); ++o) {
                const std::int64_t at = std::int64_t(picked.at(o));
                wrong += x.at(at) != y.at(o) || want.at(at) == 0.0;
            }
            BOOST_TEST(differ == 0, "kernel " << kernel);
            BOOST_TEST(wrong == 0, "kernel " << kernel);
        }
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
