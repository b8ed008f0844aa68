// lecture_sigmoid_normalize(a): the lecture's output layer with the lecture's own update.
//
// Forward: s = sigmoid(a), y2 = s / Σ s along the last axis (sigmoid then normalize).
// Backward: dL/da = g ⊙ y2 ⊙ (1 − y2), the lecture's hand-derived formula, which is NOT the
// gradient of this forward: it skips normalize's Jacobian and applies sigmoid's
// derivative y(1−y) to the normalized y2 instead of to s. models/mnist_lecture.json uses it
// to reproduce the lecture's training curve; the exact chain is sigmoid → normalize.
// The op table therefore skips its finite-difference check (exact_gradient = false).
// Its VJP is that update written with ops, y2 recomputed from a (sigmoid → normalize) rather
// than read from the node's output: the output's own adjoint would go through this op's
// inexact backward, while a graph of a alone differentiates as it is. Differentiating it again
// gives the derivative of the lecture's update, which is no second derivative of a loss.
#include <cmath>

#include "ops/op.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

template <class T>
T stable_sigmoid(T x) {
    if (x >= 0) return T(1) / (T(1) + std::exp(-x));
    T e = std::exp(x);
    return e / (T(1) + e);
}

const bool lecture_sigmoid_normalize_registered = register_op({
    .name = "lecture_sigmoid_normalize",
    .formula = "y2 = s / Σ s along the last axis, s = sigmoid(a);  dL/da = dL/dy2 · y2·(1−y2)  "
               "— the lecture's update, NOT the true gradient (it drops normalize's Jacobian and "
               "uses y2 where sigmoid's derivative needs s); exact: sigmoid → normalize",
    .inputs = {"a"},
    .shape =
        [](std::span<const Shape> in, const Attrs&) {
            if (in[0].empty()) throw ShapeError("needs a tensor of rank >= 1, got a scalar");
            return in[0];
        },
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const std::int64_t len = c.out.dim(c.out.rank() - 1), rows = c.out.numel() / len;
                const T* a = c.in[0]->data<T>();
                T* y = c.out.data<T>();
                for (std::int64_t r = 0; r < rows; ++r) {
                    T sum = 0;
                    for (std::int64_t j = 0; j < len; ++j) {
                        y[r * len + j] = stable_sigmoid(a[r * len + j]);
                        sum += y[r * len + j];
                    }
                    for (std::int64_t j = 0; j < len; ++j) y[r * len + j] /= sum;
                }
            });
        },
    .backward =
        [](const BackwardCall& c) {
            if (!c.grad_in[0]) return;
            dispatch(c.out.dtype(), [&]<class T>() {
                const T* y = c.out.data<T>();
                const T* g = c.grad_out.data<T>();
                T* ga = c.grad_in[0]->data<T>();
                for (std::int64_t i = 0; i < c.out.numel(); ++i) ga[i] = g[i] * y[i] * (T(1) - y[i]);
            });
        },
    .samples = {{.shapes = {{3, 10}}}, {.shapes = {{4}}}, {.shapes = {{2, 3, 2}}}},
    .summary = "the lecture's sigmoid+normalize output with its hand-derived (inexact) update",
    .bad_samples = {{.shapes = {{}}, .error = "needs a tensor of rank >= 1, got a scalar"}},
    .exact_gradient = false,
    // Its normalize runs along the last axis: a batch given as one row vector is normalized across rows.
    .mixes_rows = [](const RowQuery& q) -> std::string {
        return !q.batch_inputs.empty() && q.batch_inputs[0] && q.ranks[0] < 2
                   ? "normalizes along the batch axis, mixing the rows" : "";
    },
    // dL/da = g·y2·(1 − y2), y2 = normalize(sigmoid(a)) along the last axis
    .vjp =
        [](VjpBuilder& b) {
            const VjpRef y2 = b.add_op("normalize", {b.add_op("sigmoid", {b.input(0)})}, {{"axis", -1}});
            return refs(b.mul(b.grad(), b.mul(y2, b.scale(y2, -1, 1))));
        },
});

}  // namespace
}  // namespace chainrule
