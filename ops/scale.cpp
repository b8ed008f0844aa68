// scale(x) = factor·x + shift, elementwise: the constants of vector-Jacobian products written
// with ops (tanh's 1 − y², sigmoid's 1 − y, mse's 1/N), and usable in a model.
#include "ops/elementwise.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

const bool scale_registered = register_op({
    .name = "scale",
    .formula = "y = factor·x + shift;  dL/dx = factor · dL/dy",
    .inputs = {"x"},
    .attrs = {{"factor", 1.0}, {"shift", 0.0}},
    .shape = [](std::span<const Shape> in, const Attrs&) { return in[0]; },
    .forward =
        [](const ForwardCall& c) {
            const double factor = c.attrs.at("factor").get<double>(), shift = c.attrs.at("shift").get<double>();
            unary_forward([&](auto x) { return decltype(x)(factor) * x + decltype(x)(shift); })(c);
        },
    .backward =
        [](const BackwardCall& c) {
            const double factor = c.attrs.at("factor").get<double>();
            unary_backward([&](auto, auto, auto g) { return decltype(g)(factor) * g; })(c);
        },
    .samples = {{.shapes = {{3, 4}}, .attrs = {{"factor", -2.5}, {"shift", 1.0}}},
                {.shapes = {{5}}, .attrs = {{"factor", 0.5}}},
                {.shapes = {{}}}},
    .summary = "factor·x + shift (constants as attrs)",
    .elementwise = true,
    // d(factor·x + shift) = factor·dx
    .vjp = [](VjpBuilder& b) { return refs(b.scale(b.grad(), b.attrs().at("factor").get<double>())); },
});

}  // namespace
}  // namespace chainrule
