// matmul(A, B) with torch.matmul's rules for ranks >= 2, through cblas (OpenBLAS, wrapped in
// cpu/gemm.hpp). Two matrices: A[n,k]·B[k,m] -> [n,m], one GEMM; in a training pass over a
// sparse fed batch the planner runs its sparse form instead (ops/sparse_matmul.hpp), and the
// fused dense pass (graph/fusion.cpp) finishes its rows. A batch of matrices: the dims before
// the last two are batch dims, broadcast numpy-style ([N,H,T,D]·[N,H,D,T] -> [N,H,T,T],
// [N,T,C]·[C,K] -> [N,T,K]), and each output block is one GEMM of the blocks it comes from;
// the gradient of an operand whose batch dims were broadcast sums over them. A rank-1 operand
// (torch's vector case) is refused: write it as [1,k] or [k,1].
#include <array>
#include <fmt/format.h>

#include "cpu/gemm.hpp"
#include "ops/broadcast.hpp"
#include "ops/op.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

Shape matmul_shape(std::span<const Shape> in) {
    const Shape &a = in[0], &b = in[1];
    if (a.size() < 2 || b.size() < 2)
        throw ShapeError(fmt::format("needs inputs of rank >= 2 (a matrix or a batch of them), got {} and {}",
                                     format_shape(a), format_shape(b)));
    if (a.size() > kMaxRank || b.size() > kMaxRank)
        throw ShapeError(fmt::format("supports rank up to {}, got {} and {}", kMaxRank, format_shape(a),
                                     format_shape(b)));
    const bool batched = a.size() > 2 || b.size() > 2;
    const Dim &ka = a[a.size() - 1], &kb = b[b.size() - 2];
    if (!(ka == kb))
        throw ShapeError(fmt::format(
            "cannot multiply {} by {}: the inner dims {} and {} differ ({}; did you mean to transpose one of "
            "them?)",
            format_shape(a), format_shape(b), format_shape({ka}), format_shape({kb}),
            batched ? "A[…,n,k]·B[…,k,m]" : "A[n,k]·B[k,m]"));
    if (!batched) return Shape{a[0], b[1]};
    const Shape a_batch(a.begin(), a.end() - 2), b_batch(b.begin(), b.end() - 2);
    Shape out;
    try {
        out = broadcast_shapes(a_batch, b_batch);
    } catch (const ShapeError&) {
        throw ShapeError(fmt::format("cannot multiply {} by {}: their batch dims {} and {} do not broadcast",
                                     format_shape(a), format_shape(b), format_shape(a_batch),
                                     format_shape(b_batch)));
    }
    out.push_back(a[a.size() - 2]);
    out.push_back(b.back());
    return out;
}

// One batched product C = A·B (at least one operand of rank >= 3): the sizes of one block,
// A's [n,k], B's [k,m] and C's [n,m], and per batch axis of C its length and the step, in
// blocks, of A's and B's block along it (0 where that operand is broadcast). Fixed arrays, so
// a training step allocates nothing here.
struct Blocks {
    std::int64_t n, k, m, a_count = 1, b_count = 1, c_count = 1;
    std::size_t rank;  // of C's batch dims
    std::array<std::int64_t, kMaxRank> c_dims{}, a_step{}, b_step{};
    Blocks(const Tensor& a, const Tensor& b, const Tensor& c)
        : n(a.dim(a.rank() - 2)), k(a.dim(a.rank() - 1)), m(b.dim(b.rank() - 1)), rank(c.rank() - 2) {
        for (std::size_t i = 0; i < rank; ++i) c_count *= c_dims[i] = c.dim(i);
        a_count = steps(a, a_step);
        b_count = steps(b, b_step);
    }
    // An operand's block steps along C's batch axes (its own right-aligned); its block count.
    std::int64_t steps(const Tensor& x, std::array<std::int64_t, kMaxRank>& step) const {
        const std::size_t own = x.rank() - 2;
        std::int64_t blocks = 1;
        for (std::size_t j = own; j-- > 0;) {
            step[rank - own + j] = x.dim(j) == 1 ? 0 : blocks;
            blocks *= x.dim(j);
        }
        return blocks;
    }
    // One B for every block and A not broadcast ([N,T,C]·[C,K]): A's blocks lie one after
    // another, so the whole product is one GEMM of A as [blocks·n, k] by B.
    bool folds() const { return b_count == 1 && a_count == c_count; }
    // f(c, a, b): the element offsets of every block of C, in row-major order, and of the
    // blocks of A and B it comes from.
    template <class F>
    void each(F&& f) const {
        std::array<std::int64_t, kMaxRank> count{};
        std::int64_t ia = 0, ib = 0;
        for (std::int64_t ic = 0; ic < c_count; ++ic) {
            f(ic * n * m, ia * n * k, ib * k * m);
            for (std::size_t i = rank; i-- > 0;) {  // odometer over C's batch index
                ia += a_step[i];
                ib += b_step[i];
                if (++count[i] < c_dims[i]) break;
                ia -= a_step[i] * c_dims[i];
                ib -= b_step[i] * c_dims[i];
                count[i] = 0;
            }
        }
    }
    // The same for blocks that each write their own memory (C's blocks; a gradient's when its
    // operand is not broadcast), split over the helper threads in ranges of C's blocks: each
    // block is still one GEMM of the same operands, so the bits do not depend on the split.
    template <class F>
    void each_apart(Workers* workers, F&& f) const {
        if (!workers || workers->threads() < 2 || c_count < 2) return each(f);
        const OneBlasThread one;  // the helpers' GEMMs each on one OpenBLAS thread
        auto part = [&](std::int64_t begin, std::int64_t end) {
            for (std::int64_t ic = begin; ic < end; ++ic) {
                std::int64_t ia = 0, ib = 0, rest = ic;
                for (std::size_t i = rank; i-- > 0; rest /= c_dims[i]) {
                    ia += rest % c_dims[i] * a_step[i];
                    ib += rest % c_dims[i] * b_step[i];
                }
                f(ic * n * m, ia * n * k, ib * k * m);
            }
        };
        workers->run(c_count, part);
    }
};

template <class T>
void batched_forward(const Tensor& a, const Tensor& b, Tensor& out, Workers* workers) {
    const Blocks s(a, b, out);
    const T *pa = a.data<T>(), *pb = b.data<T>();
    T* pc = out.data<T>();
    if (s.folds()) return gemm<T>(false, false, s.c_count * s.n, s.m, s.k, pa, pb, pc, T(0), workers);
    s.each_apart(workers, [&](std::int64_t c, std::int64_t ia, std::int64_t ib) {
        gemm<T>(false, false, s.n, s.m, s.k, pa + ia, pb + ib, pc + c, T(0));
    });
}

// dL/dA = G·Bᵀ and dL/dB = Aᵀ·G block by block. An operand whose blocks each make one block
// of C gets its gradient written (beta 0), its blocks split over the helper threads; a
// broadcast one is zeroed, then every block of C adds its part, in C's row-major order on
// one thread (so the sums keep their order).
template <class T>
void batched_backward(const BackwardCall& call) {
    const Tensor &a = *call.in[0], &b = *call.in[1];
    const Blocks s(a, b, call.out);
    const T *pa = a.data<T>(), *pb = b.data<T>(), *g = call.grad_out.data<T>();
    if (Tensor* ga = call.grad_in[0]) {
        T* d = ga->data<T>();
        if (s.folds()) {
            gemm<T>(false, true, s.c_count * s.n, s.k, s.m, g, pb, d, T(0), call.workers);
        } else {
            auto block = [&](std::int64_t c, std::int64_t ia, std::int64_t ib, T beta) {
                gemm<T>(false, true, s.n, s.k, s.m, g + c, pb + ib, d + ia, beta);
            };
            if (s.a_count == s.c_count) {
                s.each_apart(call.workers,
                             [&](std::int64_t c, std::int64_t ia, std::int64_t ib) { block(c, ia, ib, T(0)); });
            } else {
                ga->zero();
                s.each([&](std::int64_t c, std::int64_t ia, std::int64_t ib) { block(c, ia, ib, T(1)); });
            }
        }
    }
    if (Tensor* gb = call.grad_in[1]) {
        T* d = gb->data<T>();
        if (s.folds()) {  // Σ over the blocks of Aᵀ·G is one GEMM of the folded A
            gemm<T>(true, false, s.k, s.m, s.c_count * s.n, pa, g, d, T(0), call.workers);
        } else {
            auto block = [&](std::int64_t c, std::int64_t ia, std::int64_t ib, T beta) {
                gemm<T>(true, false, s.k, s.m, s.n, pa + ia, g + c, d + ib, beta);
            };
            if (s.b_count == s.c_count) {
                s.each_apart(call.workers,
                             [&](std::int64_t c, std::int64_t ia, std::int64_t ib) { block(c, ia, ib, T(0)); });
            } else {
                gb->zero();
                s.each([&](std::int64_t c, std::int64_t ia, std::int64_t ib) { block(c, ia, ib, T(1)); });
            }
        }
    }
}

// Rows of the batch (axis 0 of an operand that carries the batch symbol) stay apart when the
// batch is a batch dim of the product that lands on C's axis 0 (an operand of C's rank >= 3:
// block i of C reads block i of it alone), or the rows of a 2-D A (each row of C is a row of A
// times B). They mix when the batch is B's rows (the inner dim, summed over), and they leave
// axis 0 when a 2-D A with the batch is broadcast against a batched B ([N,k]·[G,k,m] gives
// [G,N,m]): shards cut along C's axis 0 would not be the batch's.
std::string matmul_mixes_rows(const RowQuery& q) {
    if (q.batch_inputs.size() < 2 || q.ranks.size() < 2) return "";
    const std::size_t out_rank = std::max(q.ranks[0], q.ranks[1]);
    if (q.batch_inputs[1] && q.ranks[1] == 2) return "has the batch's rows as its right operand, mixing them";
    for (std::size_t i : {0, 1}) {
        if (!q.batch_inputs[i]) continue;
        const bool batch_dim = q.ranks[i] >= 3 && q.ranks[i] == out_rank;
        const bool rows_of_a = i == 0 && q.ranks[i] == 2 && out_rank == 2;
        if (!batch_dim && !rows_of_a)
            return fmt::format("broadcasts its {}-D {} operand, which carries the batch, against a {}-D one, "
                               "moving the batch's rows off axis 0",
                               q.ranks[i], i == 0 ? "left" : "right", out_rank);
    }
    return "";
}

const bool matmul_registered = register_op({
    .name = "matmul",
    // The formula stays the 2-D one: `step` and `--explain` write it with the model's names
    // and shapes; the summary says how batches broadcast.
    .formula = "C = A·B;  dL/dA = dL/dC·Bᵀ,  dL/dB = Aᵀ·dL/dC",
    .inputs = {"A", "B"},
    .shape = [](std::span<const Shape> in, const Attrs&) { return matmul_shape(in); },
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const Tensor &a = *c.in[0], &b = *c.in[1];
                if (a.rank() != 2 || b.rank() != 2) return batched_forward<T>(a, b, c.out, c.workers);
                gemm<T>(false, false, a.dim(0), b.dim(1), a.dim(1), a.data<T>(), b.data<T>(),
                        c.out.data<T>(), T(0), c.workers);
            });
        },
    .backward =
        [](const BackwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const Tensor &a = *c.in[0], &b = *c.in[1], &g = c.grad_out;
                if (a.rank() != 2 || b.rank() != 2) return batched_backward<T>(c);
                std::int64_t n = a.dim(0), k = a.dim(1), m = b.dim(1);
                if (c.grad_in[0])  // [n,k] = G[n,m] · Bᵀ[m,k]
                    gemm<T>(false, true, n, k, m, g.data<T>(), b.data<T>(),
                            c.grad_in[0]->data<T>(), T(0), c.workers);
                if (c.grad_in[1])  // [k,m] = Aᵀ[k,n] · G[n,m]
                    gemm<T>(true, false, k, m, n, a.data<T>(), g.data<T>(),
                            c.grad_in[1]->data<T>(), T(0), c.workers);
            });
        },
    .samples = {{.shapes = {{3, 4}, {4, 2}}},
                {.shapes = {{1, 5}, {5, 1}}},
                {.shapes = {{2, 1}, {1, 3}}},
                {.shapes = {{2, 3, 4}, {4, 5}}},            // [N,T,C]·[C,K]: one folded GEMM
                {.shapes = {{2, 2, 3, 4}, {2, 2, 4, 3}}},   // [N,H,T,D]·[N,H,D,T]
                {.shapes = {{2, 1, 3, 4}, {3, 4, 2}}},      // both broadcast: [2,1]·[3] -> [2,3]
                {.shapes = {{3, 4}, {2, 4, 5}}},            // a 2-D A shared by every block of B
                {.shapes = {{1, 3, 4}, {2, 4, 2}}},         // A's batch dim of 1 broadcast
                {.shapes = {{2, 3, 4}, {1, 4, 2}}}},        // B's batch dim of 1 (not folded)
    .summary = "matrix product; dims before the last two are batch dims, broadcast like torch.matmul, "
               "and a broadcast operand's gradient is summed over them (cblas)",
    .bad_samples = {{.shapes = {{3, 4}, {3, 2}},
                     .error = "cannot multiply [3,4] by [3,2]: the inner dims [4] and [3]"},
                    {.shapes = {{3}, {3, 2}},
                     .error = "needs inputs of rank >= 2 (a matrix or a batch of them), got [3] and [3,2]"},
                    {.shapes = {{2, 3, 4}, {2, 5, 2}},
                     .error = "cannot multiply [2,3,4] by [2,5,2]: the inner dims [4] and [5] differ (A[…,n,k]"},
                    {.shapes = {{2, 3, 4}, {3, 4, 2}},
                     .error = "cannot multiply [2,3,4] by [3,4,2]: their batch dims [2] and [3] do not broadcast"},
                    {.shapes = {{1, 1, 1, 1, 1, 1, 1, 2, 3}, {3, 2}}, .error = "supports rank up to 8"}},
    .mixes_rows = matmul_mixes_rows,
    .fusable = Fusable::gemm,
    // dL/dA = dL/dC·Bᵀ, dL/dB = Aᵀ·dL/dC (ᵀ: the last two axes), summed over broadcast batch dims
    .vjp =
        [](VjpBuilder& b) {
            const VjpRef a = b.input(0), m = b.input(1), g = b.grad();
            return refs(b.sum_to(b.add_op("matmul", {g, b.transpose_last2(m)}), a),
                        b.sum_to(b.add_op("matmul", {b.transpose_last2(a), g}), m));
        },
});

}  // namespace
}  // namespace chainrule
