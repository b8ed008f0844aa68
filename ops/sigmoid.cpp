// sigmoid(x) = 1 / (1 + exp(-x)), computed without overflow for any x.
#include "ops/elementwise.hpp"
#include "ops/kernels.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

// The loops live in ops/kernels.hpp, shared with the engine's fused matmul → add → sigmoid
// pass so that both give the same numbers; exp is only ever taken of -|x|, so nothing
// overflows and x = ±1000 gives exactly 0 or 1, never NaN.
CHAINRULE_SIMD_CLONES void sigmoid_loop(const float* x, float* y, std::int64_t n) { kernels::sigmoid(x, y, n); }
CHAINRULE_SIMD_CLONES void sigmoid_loop(const double* x, double* y, std::int64_t n) { kernels::sigmoid(x, y, n); }

const bool sigmoid_registered = register_op({
    .name = "sigmoid",
    .formula = "y = 1/(1+exp(-x));  dL/dx = dL/dy · y(1−y)",
    .inputs = {"x"},
    .shape = [](std::span<const Shape> in, const Attrs&) { return in[0]; },
    .forward = unary_forward_loop([](auto x, auto y, std::int64_t n) { sigmoid_loop(x, y, n); }),
    .backward = unary_backward([](auto, auto y, auto g) { return kernels::sigmoid_backward(g, y); }),
    .samples = {{.shapes = {{3, 4}}}, {.shapes = {{5}}}, {.shapes = {{}}}},
    .summary = "logistic function, stable for large |x|",
    .elementwise = true,
    .gives_probabilities = true,
    .fusable = Fusable::sigmoid,
    // d σ(x) = y·(1 − y)·dx
    .vjp = [](VjpBuilder& b) { return refs(b.mul(b.grad(), b.mul(b.output(), b.scale(b.output(), -1, 1)))); },
});

}  // namespace
}  // namespace chainrule
