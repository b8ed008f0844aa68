// linear(x[N,in], W[in,out], b[out]) = x·W + b in one node, through cblas: the output is
// prefilled with the bias rows and gemm adds x·W onto it (beta = 1), so the bias add
// costs no extra pass over the output. In a training pass over a sparse fed batch the planner
// runs its sparse form instead (ops/sparse_matmul.hpp).
#include <fmt/format.h>

#include "cpu/gemm.hpp"
#include "ops/op.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

const bool linear_registered = register_op({
    .name = "linear",
    .formula = "y = x·W + b (b added to every row);  dL/dx = dL/dy·Wᵀ,  dL/dW = xᵀ·dL/dy,  "
               "dL/db = Σ_rows dL/dy",
    .inputs = {"x", "W", "b"},
    .shape =
        [](std::span<const Shape> in, const Attrs&) {
            const Shape &x = in[0], &w = in[1], &b = in[2];
            if (x.size() != 2 || w.size() != 2 || b.size() != 1)
                throw ShapeError(fmt::format("needs x[N,in], W[in,out], b[out], got {}, {}, {}", format_shape(x),
                                             format_shape(w), format_shape(b)));
            if (!(x[1] == w[0]))
                throw ShapeError(fmt::format("cannot multiply x {} by W {}: x's columns and W's rows differ "
                                             "(x[N,in]·W[in,out]; did you swap W's dims?)",
                                             format_shape(x), format_shape(w)));
            if (!(b[0] == w[1]))
                throw ShapeError(fmt::format("bias {} does not match W {}: needs one per output column, {}",
                                             format_shape(b), format_shape(w), format_shape(Shape{w[1]})));
            return Shape{x[0], w[1]};
        },
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const Tensor &x = *c.in[0], &w = *c.in[1];
                const std::int64_t n = x.dim(0), k = x.dim(1), m = w.dim(1);
                const T* b = c.in[2]->data<T>();
                T* y = c.out.data<T>();
                for (std::int64_t r = 0; r < n; ++r) std::copy(b, b + m, y + r * m);
                gemm<T>(false, false, n, m, k, x.data<T>(), w.data<T>(), y, T(1), c.workers);
            });
        },
    .backward =
        [](const BackwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const Tensor &x = *c.in[0], &w = *c.in[1], &g = c.grad_out;
                const std::int64_t n = x.dim(0), k = x.dim(1), m = w.dim(1);
                if (c.grad_in[0])  // [n,k] = G[n,m]·Wᵀ[m,k]
                    gemm<T>(false, true, n, k, m, g.data<T>(), w.data<T>(), c.grad_in[0]->data<T>(), T(0), c.workers);
                if (c.grad_in[1])  // [k,m] = xᵀ[k,n]·G[n,m]
                    gemm<T>(true, false, k, m, n, x.data<T>(), g.data<T>(), c.grad_in[1]->data<T>(), T(0), c.workers);
                if (c.grad_in[2]) {
                    T* gb = c.grad_in[2]->data<T>();
                    const T* pg = g.data<T>();
                    std::fill(gb, gb + m, T(0));
                    for (std::int64_t r = 0; r < n; ++r)
                        for (std::int64_t j = 0; j < m; ++j) gb[j] += pg[r * m + j];
                }
            });
        },
    .samples = {{.shapes = {{3, 4}, {4, 2}, {2}}},
                {.shapes = {{1, 5}, {5, 1}, {1}}},
                {.shapes = {{2, 1}, {1, 3}, {3}}}},
    .summary = "fully connected layer x·W + b in one node (cblas, bias fused)",
    .bad_samples = {{.shapes = {{3, 4}, {3, 2}, {2}}, .error = "cannot multiply x [3,4] by W [3,2]"},
                    {.shapes = {{3, 4}, {4, 2}, {4}}, .error = "bias [4] does not match W [4,2]"},
                    {.shapes = {{3, 4}, {4, 2}, {1, 2}},
                     .error = "needs x[N,in], W[in,out], b[out], got [3,4], [4,2], [1,2]"},
                    {.shapes = {{4}, {4, 2}, {2}}, .error = "needs x[N,in], W[in,out], b[out], got [4], [4,2], [2]"}},
    // dL/dx = g·Wᵀ, dL/dW = xᵀ·g, dL/db = Σ_rows g
    .vjp =
        [](VjpBuilder& b) {
            const VjpRef g = b.grad();
            return refs(b.add_op("matmul", {g, b.transpose_last2(b.input(1))}),
                        b.add_op("matmul", {b.transpose_last2(b.input(0)), g}), b.add_op("sum", {g}, {{"axis", 0}}));
        },
});

}  // namespace
}  // namespace chainrule
