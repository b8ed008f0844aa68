// A plugin op with the classic small-engine bug: its backward adds to grad_in instead of
// overwriting it. gradcheck on fresh buffers can miss it; `chainrule ops --check` must not.
#include "ops/elementwise.hpp"

extern "C" void chainrule_register_ops() {
    using namespace chainrule;
    register_op({
        .name = "accumulating_square",
        .formula = "y = x²;  dL/dx = dL/dy · 2x (but added, not written)",
        .inputs = {"x"},
        .shape = [](std::span<const Shape> in, const Attrs&) { return in[0]; },
        .forward = unary_forward([](auto x) { return x * x; }),
        .backward =
            [](const BackwardCall& c) {
                if (!c.grad_in[0]) return;
                dispatch(c.out.dtype(), [&]<class T>() {
                    const T *x = c.in[0]->data<T>(), *g = c.grad_out.data<T>();
                    T* gx = c.grad_in[0]->data<T>();
                    for (std::int64_t i = 0; i < c.out.numel(); ++i) gx[i] += g[i] * 2 * x[i];
                });
            },
        .samples = {{.shapes = {{3, 4}}}},
    });
}
