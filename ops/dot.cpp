// dot(x0, x1, x2, x3, ...) = Σ_k Σ_i x_2k,i · x_2k+1,i: the inner product of two lists of
// tensors taken pair by pair (torch: sum((a * b).sum() for a, b in pairs)). HessianGraph
// writes v·∇L over every parameter with it as one node, where a mul and a sum per parameter
// and an add between them cost a product of a tiny model more steps than its arithmetic.
// Backward: dL/dx_2k = dL/dy · x_2k+1 and dL/dx_2k+1 = dL/dy · x_2k (dL/dy a scalar).
#include <fmt/format.h>

#include "ops/op.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

Shape dot_shape(std::span<const Shape> in, const Attrs&) {
    if (in.size() % 2 != 0)
        throw ShapeError(fmt::format("needs pairs of inputs (an even number), got {}", in.size()));
    for (std::size_t k = 0; k < in.size(); k += 2)
        if (in[k] != in[k + 1])
            throw ShapeError(fmt::format("needs each pair of equal shapes: x{} {} and x{} {} differ", k,
                                         format_shape(in[k]), k + 1, format_shape(in[k + 1])));
    return Shape{};
}

const bool dot_registered = register_op({
    .name = "dot",
    .formula = "y = Σ_k Σ_i x_2k,i · x_2k+1,i (pairs of equal shape);  "
               "dL/dx_2k = dL/dy · x_2k+1,  dL/dx_2k+1 = dL/dy · x_2k",
    .inputs = {"x"},
    .shape = dot_shape,
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                T total = 0;
                for (std::size_t k = 0; k < c.in.size(); k += 2) {
                    const T *a = c.in[k]->data<T>(), *b = c.in[k + 1]->data<T>();
                    T part = 0;
                    for (std::int64_t i = 0; i < c.in[k]->numel(); ++i) part += a[i] * b[i];
                    total += part;
                }
                c.out.data<T>()[0] = total;
            });
        },
    .backward =
        [](const BackwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const T g = c.grad_out.data<T>()[0];
                for (std::size_t k = 0; k < c.in.size(); ++k) {
                    if (!c.grad_in[k]) continue;
                    const T* other = c.in[k ^ 1]->data<T>();
                    T* gx = c.grad_in[k]->data<T>();
                    for (std::int64_t i = 0; i < c.in[k]->numel(); ++i) gx[i] = g * other[i];
                }
            });
        },
    .samples = {{.shapes = {{3, 4}, {3, 4}}},
                {.shapes = {{2, 2}, {2, 2}, {3}, {3}}},
                {.shapes = {{}, {}}},
                {.shapes = {{2, 1, 3}, {2, 1, 3}, {1}, {1}, {4, 2}, {4, 2}}}},
    .summary = "inner product of pairs of tensors, summed over the pairs (v·w of two lists)",
    .bad_samples = {{.shapes = {{3, 4}, {3, 4}, {2}}, .error = "needs pairs of inputs (an even number), got 3"},
                    {.shapes = {{3, 4}, {4, 3}}, .error = "needs each pair of equal shapes: x0 [3,4] and x1 [4,3] differ"}},
    .variadic = true,
    .mixes_rows = [](const RowQuery& q) -> std::string {
        for (bool batched : q.batch_inputs)
            if (batched) return "sums over every entry, the batch's rows together";
        return "";
    },
    // dy = Σ x_2k+1·dx_2k + x_2k·dx_2k+1: each input's gradient the scalar dL/dy times its partner
    .vjp =
        [](VjpBuilder& b) {
            std::vector<VjpRef> grads;
            for (std::size_t k = 0; k < b.input_count(); ++k) grads.push_back(b.mul(b.grad(), b.input(k ^ 1)));
            return grads;
        },
});

}  // namespace
}  // namespace chainrule
