// The two products of the lecture's first layer, alone, on a batch of real MNIST rows: x·W1
// and the weight gradient xᵀ·δ1 ([1000,784] at MNIST's density, m = 100), through the sparse
// kernels (ops/sparse_matmul.cpp), through the dense GEMM in parts on chainrule's threads
// (cpu/gemm.hpp), as one OpenBLAS call on N OpenBLAS threads and through oneDNN's sgemm on N
// OpenMP threads, on 1 and on N threads. Microseconds per call, median and fastest of --reps calls, interleaved so that a
// busy moment of the machine falls on every candidate alike. The first line names the machine.
// Run by hand (docs/performance.md, "Sparse first layer").
//
//     build/bench/sparse_products --threads 2 --reps 400
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <fmt/format.h>
#include <functional>
#include <random>
#include <vector>

#include <cblas.h>
#include <dnnl.h>
#include <omp.h>

#include "core/error.hpp"
#include "core/sparse_rows.hpp"
#include "cpu/blas_kernel.hpp"
#include "cpu/gemm.hpp"
#include "cpu/threads.hpp"
#include "data/idx.hpp"
#include "ops/sparse_matmul.hpp"

namespace {

using namespace chainrule;

struct Options {
    std::string data = std::string(CHAINRULE_SOURCE_DIR) + "/data/mnist";
    std::int64_t batch = 1000, width = 100;
    int threads = 2, reps = 400;
    bool grouped = false;
};

// The batch's rows as floats (v / 255) and as their row form with its block index.
void fill_batch(const std::vector<std::uint8_t>& pixels, std::int64_t cols, const std::vector<std::int64_t>& rows,
                std::vector<float>& dense, SparseRows& x) {
    const auto n = std::int64_t(rows.size());
    dense.assign(std::size_t(n * cols), 0.0f);
    x.reshape(Dtype::f32, n, cols);
    for (std::int64_t i = 0; i < n; ++i) {
        std::int64_t k = x.row_begin[std::size_t(i)];
        for (std::int64_t j = 0; j < cols; ++j) {
            const std::uint8_t v = pixels[std::size_t(rows[std::size_t(i)] * cols + j)];
            if (v == 0) continue;
            dense[std::size_t(i * cols + j)] = float(v) / 255.0f;
            x.row_index[std::size_t(k)] = std::int32_t(j);
            x.row_values_f32[std::size_t(k++)] = float(v) / 255.0f;
        }
        x.row_end[std::size_t(i)] = k;
        x.index_row(i);
    }
    x.finish(1.0);
}

struct Candidate {
    std::string name;
    std::function<void()> run;
    std::vector<double> us;
};

}  // namespace

int main(int argc, char** argv) {
    Options o;
    std::string kernel;
    try {
        kernel = ensure_blas_kernel(argv);
    } catch (const std::exception& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return 2;
    }
    CLI::App app{"The lecture's first-layer products, sparse kernels against the dense GEMM"};
    app.add_option("--data", o.data, "folder with MNIST's train-images-idx3-ubyte(.gz)");
    app.add_option("--batch", o.batch, "rows of the batch")->check(CLI::Range(1, 60000));
    app.add_option("--width", o.width, "columns of W1 (hidden units)")->check(CLI::Range(1, 4096));
    app.add_option("--threads", o.threads, "threads of the second run")->check(CLI::Range(1, 256));
    app.add_option("--reps", o.reps, "calls per candidate")->check(CLI::Range(1, 100000));
    app.add_flag("--grouped", o.grouped,
                 "each candidate's calls one after another (its helpers stay awake) instead of interleaved");
    CLI11_PARSE(app, argc, argv);
    try {
        const std::string path = data::find_idx_file(o.data, data::kTrainImages);
        if (path.empty()) throw InputError(fmt::format("{}: no {}(.gz) there (scripts/get-mnist)", o.data,
                                                       data::kTrainImages));
        const data::IdxFile images = data::read_idx(path, data::IdxRole::images);
        const std::int64_t count = images.dims[0], cols = images.dims[1] * images.dims[2];
        std::mt19937_64 rng(1);
        std::vector<std::int64_t> rows(std::size_t(o.batch));
        for (auto& r : rows) r = std::int64_t(rng() % std::uint64_t(count));
        std::vector<float> dense;
        SparseRows x;
        fill_batch(images.data, cols, rows, dense, x);
        const std::int64_t m = o.width;
        std::uniform_real_distribution<float> u(-1, 1);
        std::vector<float> w(std::size_t(cols * m)), g(std::size_t(o.batch * m)), c(std::size_t(o.batch * m)),
            dw(std::size_t(cols * m));
        for (auto& v : w) v = u(rng);
        for (auto& v : g) v = u(rng);
        set_threads(1);
        Workers one(1), many(o.threads);
        Workspace ws;
        std::vector<Candidate> cands;
        for (Workers* wk : {&one, &many}) {
            const std::string t = fmt::format("{} thread{}", wk->threads(), wk->threads() == 1 ? "" : "s");
            cands.push_back({"sparse x·W1, " + t, [&, wk] { sparse_rows_times<float>(x, w.data(), m, c.data(), false, wk, &ws); }, {}});
            cands.push_back({"sparse xᵀ·δ1, " + t, [&, wk] { sparse_transposed_times(x, g.data(), m, dw.data(), wk, &ws); }, {}});
            cands.push_back({"GEMM x·W1, " + t, [&, wk] { gemm<float>(false, false, o.batch, m, cols, dense.data(), w.data(), c.data(), 0.0f, wk); }, {}});
            cands.push_back({"GEMM xᵀ·δ1, " + t, [&, wk] { gemm<float>(true, false, cols, m, o.batch, dense.data(), g.data(), dw.data(), 0.0f, wk); }, {}});
            // The same GEMMs as one call on N OpenBLAS threads (chainrule's way before its parts), and
            // as oneDNN's sgemm on N OpenMP threads.
            const int n = wk->threads();
            cands.push_back({"OpenBLAS x·W1, " + t, [&, n] {
                                 openblas_set_num_threads(n);
                                 cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(o.batch), int(m), int(cols),
                                             1.0f, dense.data(), int(cols), w.data(), int(m), 0.0f, c.data(), int(m));
                                 openblas_set_num_threads(1);
                             }, {}});
            cands.push_back({"OpenBLAS xᵀ·δ1, " + t, [&, n] {
                                 openblas_set_num_threads(n);
                                 cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(cols), int(m), int(o.batch),
                                             1.0f, dense.data(), int(cols), g.data(), int(m), 0.0f, dw.data(), int(m));
                                 openblas_set_num_threads(1);
                             }, {}});
            cands.push_back({"oneDNN x·W1, " + t, [&, n] {
                                 omp_set_num_threads(n);
                                 dnnl_sgemm('N', 'N', o.batch, m, cols, 1.0f, dense.data(), cols, w.data(), m, 0.0f,
                                            c.data(), m);
                             }, {}});
            cands.push_back({"oneDNN xᵀ·δ1, " + t, [&, n] {
                                 omp_set_num_threads(n);
                                 dnnl_sgemm('T', 'N', cols, m, o.batch, 1.0f, dense.data(), cols, g.data(), m, 0.0f,
                                            dw.data(), m);
                             }, {}});
            if (wk->threads() == 1 && o.threads == 1) break;
        }
        fmt::print("sparse_products on {} ({}); batch {} of MNIST, density {:.3f}, W1 [{},{}]\n", cpu_model_name(),
                   kernel, o.batch, x.density(), cols, m);
        auto time_one = [](Candidate& cand) {
            const auto t0 = std::chrono::steady_clock::now();
            cand.run();
            cand.us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
        };
        if (o.grouped)
            for (Candidate& cand : cands)
                for (int r = 0; r < o.reps; ++r) time_one(cand);
        else
            for (int r = 0; r < o.reps; ++r)
                for (Candidate& cand : cands) time_one(cand);
        fmt::print("{:<30} {:>10} {:>10}\n", "candidate", "median µs", "fastest");
        for (Candidate& cand : cands) {
            std::sort(cand.us.begin(), cand.us.end());
            fmt::print("{:<30} {:>10.1f} {:>10.1f}\n", cand.name, cand.us[cand.us.size() / 2], cand.us.front());
        }
    } catch (const InputError& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return 2;
    }
    return 0;
}
