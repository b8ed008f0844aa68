// mse(y, t) = 1/(2N) · Σ (y − t)², N = number of rows: the lecture's loss.
#include <fmt/format.h>

#include "ops/op.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

const bool mse_registered = register_op({
    .name = "mse",
    .formula = "L = 1/(2N)·Σ(y−t)²,  N = rows;  dL/dy = (y−t)/N,  dL/dt = −(y−t)/N",
    .inputs = {"y", "t"},
    .shape =
        [](std::span<const Shape> in, const Attrs&) {
            if (in[0] != in[1])
                throw ShapeError(fmt::format("needs equal shapes for prediction and target, got {} and {}",
                                             format_shape(in[0]), format_shape(in[1])));
            if (in[0].empty()) throw ShapeError("needs inputs of rank >= 1 (rows), got scalars");
            return Shape{};
        },
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const T* y = c.in[0]->data<T>();
                const T* t = c.in[1]->data<T>();
                double sum = 0;  // accumulate in double: a batch of 10^4 float32 squares loses digits
                for (std::int64_t i = 0; i < c.in[0]->numel(); ++i) {
                    double d = double(y[i]) - double(t[i]);
                    sum += d * d;
                }
                c.out.data<T>()[0] = static_cast<T>(sum / (2.0 * double(c.in[0]->dim(0))));
            });
        },
    .backward =
        [](const BackwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const T* y = c.in[0]->data<T>();
                const T* t = c.in[1]->data<T>();
                T scale = c.grad_out.data<T>()[0] / static_cast<T>(c.in[0]->dim(0));
                T* gy = c.grad_in[0] ? c.grad_in[0]->data<T>() : nullptr;
                T* gt = c.grad_in[1] ? c.grad_in[1]->data<T>() : nullptr;
                for (std::int64_t i = 0; i < c.in[0]->numel(); ++i) {
                    T d = (y[i] - t[i]) * scale;
                    if (gy) gy[i] = d;
                    if (gt) gt[i] = -d;
                }
            });
        },
    .samples = {{.shapes = {{3, 4}, {3, 4}}}, {.shapes = {{5}, {5}}}, {.shapes = {{2, 1}, {2, 1}}}},
    .summary = "the lecture's loss: half the mean over rows of the squared error",
    .bad_samples = {{.shapes = {{3, 4}, {3, 1}},
                     .error = "needs equal shapes for prediction and target, got [3,4] and [3,1]"},
                    {.shapes = {{}, {}}, .error = "needs inputs of rank >= 1 (rows), got scalars"}},
    .mean_over_rows = true,
    .fusable = Fusable::mse,
    // L = 1/(2N)·Σ(y−t)²: dL/dy = g·(y−t)/N = C·(g/(N·C))·(y−t), C = elements per row
    .vjp =
        [](VjpBuilder& b) {
            const Shape& y = b.shape(b.input(0));
            double per_row = 1;
            for (std::size_t i = 1; i < y.size(); ++i) {
                if (y[i].symbolic()) throw ShapeError("vjp of mse: needs fixed sizes past the rows, got " + format_shape(y));
                per_row *= double(y[i].size);
            }
            const VjpRef share = b.add_op("expand", {b.grad(), b.input(0)}, {{"mean", true}});  // g / (N·C)
            const VjpRef dy = b.scale(b.mul(share, b.sub(b.input(0), b.input(1))), per_row);
            return refs(dy, b.neg(dy));
        },
});

}  // namespace
}  // namespace chainrule
