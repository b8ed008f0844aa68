// conv_engines: mnist_cnn's two convolutions through each candidate engine, side by side.
//
// For each layer (conv1: 1→8 channels, 28×28, 5×5, padding 2; conv2: 8→16, 14×14, 5×5)
// and each pass (forward, dL/dx, dL/dW + dL/db), a batch of 100 cut into conv2d's 8 chunks,
// on one thread, in CPU microseconds per batch (the thread's CPU clock: steadier than the
// wall clock on a shared machine); the median of --reps batches after warm-up:
//
//   im2col + OpenBLAS   conv2d before oneDNN (and its float64 path): X̃ per sample by
//                       ops/im2col.hpp, sgemm on one thread
//   im2col + libxsmm    the same with libxsmm's JIT small GEMM (forward only: its row-major
//                       forward is a plain column-major GEMM)
//   oneDNN gemm         oneDNN's own im2col + GEMM on NCHW tensors (its layouts forced plain)
//   oneDNN direct       cpu/convolution: oneDNN's direct JIT kernels, layouts of their choice,
//                       reordered in and out per chunk (what conv2d runs in float32)
//   chainrule direct    cpu/direct_conv: chainrule's own AVX-512 forward for one input
//                       channel (what conv2d runs for conv1's forward)
//
//     build/bench/conv_engines [--reps 50]
//
// The first line names the CPU, the OpenBLAS kernels, oneDNN's version and kernels.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cblas.h>
#include <ctime>
#include <fmt/format.h>
#include <libxsmm.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.hpp>
#include <vector>

#include "core/random.hpp"
#include "cpu/blas_kernel.hpp"
#include "cpu/convolution.hpp"
#include "cpu/direct_conv.hpp"
#include "ops/im2col.hpp"

namespace {

using namespace chainrule;

double cpu_now_us() {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return double(t.tv_sec) * 1e6 + double(t.tv_nsec) / 1e3;
}

template <class F>
double median_us(int reps, F&& f) {
    f();
    std::vector<double> v;
    for (int r = 0; r < reps; ++r) {
        const double t0 = cpu_now_us();
        f();
        v.push_back(cpu_now_us() - t0);
    }
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

struct Layer {
    const char* name;
    ConvSizes s;  // n = the whole batch
};
constexpr std::int64_t kBatch = 100;
std::int64_t kChunks = 8;  // conv2d's; --chunks changes it here to see what a call costs
std::int64_t chunk_begin(std::int64_t c) { return kBatch * c / kChunks; }

// The window geometry ops/im2col.hpp takes (one sample at a time).
Window2d window_of(const ConvSizes& s) {
    return {{s.kh, s.kw}, {s.stride_h, s.stride_w}, {s.pad_h, s.pad_w}, {s.dilation_h, s.dilation_w},
            s.n, s.c, s.h, s.w, s.oh, s.ow};
}

struct Buffers {
    std::vector<float> x, w, b, y, gy, gx, gw, gb, cols;
    explicit Buffers(const ConvSizes& s) {
        Rng rng(1);
        auto random = [&](std::int64_t n) {
            std::vector<float> v(static_cast<std::size_t>(n));
            for (auto& e : v) e = float(rng.normal());
            return v;
        };
        x = random(s.n * s.c * s.h * s.w), w = random(s.o * s.c * s.kh * s.kw), b = random(s.o);
        gy = random(s.n * s.o * s.oh * s.ow);
        y.resize(gy.size()), gx.resize(x.size()), gw.resize(w.size()), gb.resize(b.size());
        cols.resize(std::size_t(s.c * s.kh * s.kw * s.oh * s.ow));
    }
};

// The three passes of im2col + a GEMM; `forward_gemm` computes y [o,plane] = W·X̃.
template <class G>
std::array<double, 3> im2col_engine(const ConvSizes& s, Buffers& m, int reps, G&& forward_gemm, bool backward) {
    const std::int64_t k = s.c * s.kh * s.kw, plane = s.oh * s.ow, image = s.c * s.h * s.w;
    const Window2d g = window_of(s);
    std::array<double, 3> t{};
    t[0] = median_us(reps, [&] {
        for (std::int64_t n = 0; n < s.n; ++n) {
            im2col(g, m.x.data() + n * image, m.cols.data());
            float* y = m.y.data() + n * s.o * plane;
            forward_gemm(y);
            for (std::int64_t q = 0; q < s.o; ++q)
                for (std::int64_t p = 0; p < plane; ++p) y[q * plane + p] += m.b[std::size_t(q)];
        }
    });
    if (!backward) return {t[0], -1, -1};
    t[1] = s.c == 1 ? -1 : median_us(reps, [&] {
        for (std::int64_t n = 0; n < s.n; ++n) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(k), int(plane), int(s.o), 1.f, m.w.data(), int(k),
                        m.gy.data() + n * s.o * plane, int(plane), 0.f, m.cols.data(), int(plane));
            col2im(g, m.cols.data(), m.gx.data() + n * image);
        }
    });
    t[2] = median_us(reps, [&] {
        for (std::int64_t c = 0; c < kChunks; ++c)
            for (std::int64_t n = chunk_begin(c); n < chunk_begin(c + 1); ++n) {
                im2col(g, m.x.data() + n * image, m.cols.data());
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(s.o), int(k), int(plane), 1.f,
                            m.gy.data() + n * s.o * plane, int(plane), m.cols.data(), int(plane),
                            n == chunk_begin(c) ? 0.f : 1.f, m.gw.data(), int(k));
            }
        for (std::int64_t q = 0; q < s.o; ++q) {
            float sum = 0;
            for (std::int64_t n = 0; n < s.n; ++n)
                for (std::int64_t p = 0; p < plane; ++p) sum += m.gy[std::size_t((n * s.o + q) * plane + p)];
            m.gb[std::size_t(q)] = sum;
        }
    });
    return t;
}

std::array<double, 3> openblas_engine(const ConvSizes& s, Buffers& m, int reps) {
    const int k = int(s.c * s.kh * s.kw), plane = int(s.oh * s.ow);
    return im2col_engine(s, m, reps, [&](float* y) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(s.o), plane, k, 1.f, m.w.data(), k, m.cols.data(),
                    plane, 0.f, y, plane);
    }, true);
}

std::array<double, 3> libxsmm_engine(const ConvSizes& s, Buffers& m, int reps) {
    // Row-major y [o,plane] = W [o,k]·X̃ [k,plane] is column-major yᵀ = X̃ᵀ·Wᵀ: M = plane, N = o.
    const libxsmm_blasint M = s.oh * s.ow, N = s.o, K = s.c * s.kh * s.kw;
    const float alpha = 1, beta = 0;
    libxsmm_smmfunction kernel = libxsmm_smmdispatch(M, N, K, &M, &K, &M, &alpha, &beta, nullptr, nullptr);
    if (!kernel) return {-1, -1, -1};
    return im2col_engine(s, m, reps, [&](float* y) { kernel(m.cols.data(), m.w.data(), y); }, false);
}

// oneDNN with every tensor in chainrule's plain layout: it then runs its own im2col + GEMM.
std::array<double, 3> onednn_plain_engine(const ConvSizes& s, Buffers& m, int reps, std::string& names) {
    using namespace dnnl;
    using tag = memory::format_tag;
    engine eng(engine::kind::cpu, 0);
    stream st(eng);
    std::array<double, 3> t{-1, -1, -1};
    std::vector<std::string> impl;
    for (int pass = 0; pass < 3; ++pass) {
        if (pass == 1 && s.c == 1) continue;
        std::vector<primitive> prims;
        std::vector<std::unordered_map<int, memory>> args;
        for (std::int64_t c = 0; c < kChunks; ++c) {
            const std::int64_t n = chunk_begin(c + 1) - chunk_begin(c), first = chunk_begin(c);
            memory::desc src({n, s.c, s.h, s.w}, memory::data_type::f32, tag::nchw),
                wei({s.o, s.c, s.kh, s.kw}, memory::data_type::f32, tag::oihw),
                bias({s.o}, memory::data_type::f32, tag::x), dst({n, s.o, s.oh, s.ow}, memory::data_type::f32, tag::nchw);
            const memory::dims strides{1, 1}, holes{0, 0}, pad{s.pad_h, s.pad_w};
            convolution_forward::primitive_desc fwd(
                {prop_kind::forward_training, algorithm::convolution_direct, src, wei, bias, dst, strides, holes, pad, pad}, eng);
            float* xs = m.x.data() + first * s.c * s.h * s.w;
            float* gys = m.gy.data() + first * s.o * s.oh * s.ow;
            if (pass == 0) {
                prims.push_back(convolution_forward(fwd)), impl.push_back(fwd.impl_info_str());
                args.push_back({{DNNL_ARG_SRC, memory(src, eng, xs)}, {DNNL_ARG_WEIGHTS, memory(wei, eng, m.w.data())},
                                {DNNL_ARG_BIAS, memory(bias, eng, m.b.data())},
                                {DNNL_ARG_DST, memory(dst, eng, m.y.data() + first * s.o * s.oh * s.ow)}});
            } else if (pass == 1) {
                convolution_backward_data::primitive_desc bd({algorithm::convolution_direct, src, wei, dst, strides, holes, pad, pad}, eng, fwd);
                prims.push_back(convolution_backward_data(bd)), impl.push_back(bd.impl_info_str());
                args.push_back({{DNNL_ARG_DIFF_SRC, memory(src, eng, m.gx.data() + first * s.c * s.h * s.w)},
                                {DNNL_ARG_WEIGHTS, memory(wei, eng, m.w.data())}, {DNNL_ARG_DIFF_DST, memory(dst, eng, gys)}});
            } else {
                convolution_backward_weights::primitive_desc bw({algorithm::convolution_direct, src, wei, bias, dst, strides, holes, pad, pad}, eng, fwd);
                prims.push_back(convolution_backward_weights(bw)), impl.push_back(bw.impl_info_str());
                args.push_back({{DNNL_ARG_SRC, memory(src, eng, xs)}, {DNNL_ARG_DIFF_DST, memory(dst, eng, gys)},
                                {DNNL_ARG_DIFF_WEIGHTS, memory(wei, eng, m.gw.data())},
                                {DNNL_ARG_DIFF_BIAS, memory(bias, eng, m.gb.data())}});
            }
        }
        t[std::size_t(pass)] = median_us(reps, [&] {
            for (std::size_t c = 0; c < prims.size(); ++c) prims[c].execute(st, args[c]);
            st.wait();
        });
    }
    names = fmt::format("{}", fmt::join(impl.begin(), impl.begin() + 1, ""));
    return t;
}

// What conv2d runs: cpu/convolution, chunk by chunk, partial dL/dW summed in chunk order.
std::array<double, 3> onednn_direct_engine(const ConvSizes& whole, Buffers& m, int reps, std::string& names) {
    std::array<double, 3> t{-1, -1, -1};
    std::vector<std::string> impl;
    const ConvPass passes[3] = {ConvPass::forward, ConvPass::backward_data, ConvPass::backward_weights};
    for (int pass = 0; pass < 3; ++pass) {
        if (pass == 1 && whole.c == 1) continue;
        std::vector<const ConvKernels*> kernels;
        std::size_t room = 0;
        for (std::int64_t c = 0; c < kChunks; ++c) {
            ConvSizes s = whole;
            s.n = chunk_begin(c + 1) - chunk_begin(c);
            kernels.push_back(conv_kernels(s, passes[pass]));
            if (!kernels.back()) return t;
            room = std::max(room, conv_scratch_bytes(*kernels.back()));
        }
        impl.push_back(fmt::format("{} ({} KiB scratch per chunk)", conv_kernel_name(*kernels[0]), (room + 1023) / 1024));
        std::vector<std::byte> scratch_bytes(room + 64);
        auto* scratch = reinterpret_cast<std::byte*>((reinterpret_cast<std::uintptr_t>(scratch_bytes.data()) + 63) / 64 * 64);
        std::vector<float> parts(std::size_t(kChunks) * (m.gw.size() + m.gb.size()));
        const std::int64_t image = whole.c * whole.h * whole.w, out = whole.o * whole.oh * whole.ow;
        t[std::size_t(pass)] = median_us(reps, [&] {
            for (std::int64_t c = 0; c < kChunks; ++c) {
                const std::int64_t first = chunk_begin(c);
                const ConvKernels& k = *kernels[std::size_t(c)];
                if (pass == 0) conv_forward(k, m.x.data() + first * image, m.w.data(), m.b.data(), m.y.data() + first * out, scratch);
                if (pass == 1) conv_backward_data(k, m.w.data(), m.gy.data() + first * out, m.gx.data() + first * image, scratch);
                if (pass == 2)
                    conv_backward_weights(k, m.x.data() + first * image, m.gy.data() + first * out,
                                          parts.data() + std::size_t(c) * m.gw.size(),
                                          parts.data() + std::size_t(kChunks) * m.gw.size() + std::size_t(c) * m.gb.size(), scratch);
            }
            if (pass == 2)
                for (std::size_t i = 0; i < m.gw.size(); ++i) {
                    float sum = 0;
                    for (std::int64_t c = 0; c < kChunks; ++c) sum += parts[std::size_t(c) * m.gw.size() + i];
                    m.gw[i] = sum;
                }
        });
    }
    names = fmt::format("{}", fmt::join(impl, " / "));
    return t;
}

// chainrule's own single-channel forward (cpu/direct_conv), chunk by chunk, as conv2d runs it.
std::array<double, 3> direct_engine(const ConvSizes& whole, Buffers& m, int reps) {
    ConvSizes one = whole;
    one.n = 1;
    if (!direct_conv_fits(one)) return {-1, -1, -1};
    std::vector<float> scratch(direct_conv_scratch(one) + 16);
    const std::int64_t image = whole.c * whole.h * whole.w, out = whole.o * whole.oh * whole.ow;
    auto each = [&](auto&& call) {
        for (std::int64_t c = 0; c < kChunks; ++c) {
            ConvSizes s = one;
            s.n = chunk_begin(c + 1) - chunk_begin(c);
            call(s, chunk_begin(c));
        }
    };
    const double forward = median_us(reps, [&] {
        each([&](const ConvSizes& s, std::int64_t first) {
            direct_conv_forward(s, m.x.data() + first * image, m.w.data(), m.b.data(), m.y.data() + first * out,
                                scratch.data());
        });
    });
    return {forward, -1, -1};
}

std::string cell(double us) { return us < 0 ? "-" : fmt::format("{:.0f}", us); }

}  // namespace

int main(int argc, char** argv) {
    std::string kernel = ensure_blas_kernel(argv);
    int reps = 50;
    CLI::App app{"mnist_cnn's convolutions through each candidate engine, side by side"};
    app.add_option("--reps", reps, "timed batches per cell (the median is shown)")->check(CLI::Range(1, 100000));
    app.add_option("--chunks", kChunks, "chunks of the batch of 100 (conv2d: 8)")->check(CLI::Range(1, 100));
    CLI11_PARSE(app, argc, argv);
    openblas_set_num_threads(1);
    omp_set_num_threads(1);
    libxsmm_init();
    fmt::print("conv_engines on {} ({}; {}; libxsmm {}), 1 thread, batch {} in {} chunks, CPU µs per batch "
               "(median of {})\n",
               cpu_model_name(), kernel, onednn_version(), LIBXSMM_VERSION, kBatch, kChunks, reps);
    const Layer layers[] = {{"conv1 1→8, 28×28, 5×5 pad 2", {kBatch, 1, 28, 28, 8, 5, 5, 28, 28, 1, 1, 2, 2, 1, 1, true}},
                            {"conv2 8→16, 14×14, 5×5", {kBatch, 8, 14, 14, 16, 5, 5, 10, 10, 1, 1, 0, 0, 1, 1, true}}};
    fmt::print("\n| layer | engine | forward | dL/dx | dL/dW + dL/db | sum | kernels |\n|---|---|---|---|---|---|---|\n");
    for (const Layer& l : layers) {
        Buffers m(l.s);
        std::string plain_names, direct_names;
        const std::pair<const char*, std::array<double, 3>> rows[] = {
            {"im2col + OpenBLAS", openblas_engine(l.s, m, reps)},
            {"im2col + libxsmm", libxsmm_engine(l.s, m, reps)},
            {"oneDNN gemm (NCHW)", onednn_plain_engine(l.s, m, reps, plain_names)},
            {"oneDNN direct (cpu/convolution)", onednn_direct_engine(l.s, m, reps, direct_names)},
            {"chainrule direct (cpu/direct_conv)", direct_engine(l.s, m, reps)}};
        for (const auto& [name, t] : rows) {
            double sum = 0;
            for (double v : t) sum += std::max(v, 0.0);
            const std::string names = name == rows[2].first ? plain_names : name == rows[3].first ? direct_names
                                      : name == rows[0].first ? kernel : name == rows[1].first ? "libxsmm JIT"
                                      : "AVX-512, one input channel only";
            if (name == rows[4].first && t[0] < 0) continue;
            fmt::print("| {} | {} | {} | {} | {} | {} | {} |\n", l.name, name, cell(t[0]), cell(t[1]), cell(t[2]),
                       name == rows[1].first || name == rows[4].first ? "-" : cell(sum), names);
        }
    }
    libxsmm_finalize();
    return 0;
}
