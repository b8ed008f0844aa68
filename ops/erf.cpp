// erf(x), elementwise: the error function 2/√π·∫₀ˣ exp(−t²) dt (std::erf). gelu's VJP needs it
// (Φ(x) = (1 + erf(x/√2))/2), and it is usable in a model. Its derivative is written with
// exp, mul and scale, so it is twice differentiable.
#include <cmath>
#include <numbers>

#include "ops/elementwise.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

constexpr double kTwoOverSqrtPi = 2 * std::numbers::inv_sqrtpi;

const bool erf_registered = register_op({
    .name = "erf",
    .formula = "y = erf(x);  dL/dx = dL/dy · 2/√π·exp(−x²)",
    .inputs = {"x"},
    .shape = [](std::span<const Shape> in, const Attrs&) { return in[0]; },
    .forward = unary_forward([](auto x) { return std::erf(x); }),
    .backward = unary_backward([](auto x, auto, auto g) {
        using T = decltype(x);
        return g * T(kTwoOverSqrtPi) * std::exp(-x * x);
    }),
    .samples = {{.shapes = {{3, 4}}}, {.shapes = {{5}}}, {.shapes = {{}}}},
    .summary = "elementwise error function (gelu's Φ(x) = (1 + erf(x/√2))/2)",
    .elementwise = true,
    // d erf(x) = 2/√π·exp(−x²)·dx
    .vjp =
        [](VjpBuilder& b) {
            const VjpRef x = b.input(0);
            return refs(b.mul(b.grad(), b.scale(b.add_op("exp", {b.neg(b.mul(x, x))}), kTwoOverSqrtPi)));
        },
});

}  // namespace
}  // namespace chainrule
