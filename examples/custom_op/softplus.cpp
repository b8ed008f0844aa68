// softplus(x) = ln(1 + e^x), an op written outside chainrule and loaded as a plugin:
//
//     chainrule --plugin ./libsoftplus.so gradcheck softplus_iris.json
//
// The whole op is here: shape rule, forward, backward, formula and the samples that
// chainrule's op table test uses to verify it (see docs/writing-ops.md).
#include <chainrule/ops/op.hpp>
#include <cmath>

namespace {

// ln(1 + e^x) without overflow: for large x it is x + ln(1 + e^-x).
template <class T>
T softplus(T x) {
    return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

// d/dx softplus(x) = sigmoid(x), in the same overflow-free form.
template <class T>
T sigmoid(T x) {
    if (x >= 0) return T(1) / (T(1) + std::exp(-x));
    T e = std::exp(x);
    return e / (T(1) + e);
}

chainrule::Op softplus_op() {
    using namespace chainrule;
    return {
        .name = "softplus",
        .formula = "y = ln(1 + e^x);  dL/dx = dL/dy · sigmoid(x)",
        .inputs = {"x"},
        .shape = [](std::span<const Shape> in, const Attrs&) { return in[0]; },
        .forward =
            [](const ForwardCall& c) {
                dispatch(c.out.dtype(), [&]<class T>() {
                    const T* x = c.in[0]->data<T>();
                    T* y = c.out.data<T>();
                    for (std::int64_t i = 0; i < c.out.numel(); ++i) y[i] = softplus(x[i]);
                });
            },
        .backward =
            [](const BackwardCall& c) {
                if (!c.grad_in[0]) return;
                dispatch(c.out.dtype(), [&]<class T>() {
                    const T* x = c.in[0]->data<T>();
                    const T* g = c.grad_out.data<T>();
                    T* gx = c.grad_in[0]->data<T>();
                    for (std::int64_t i = 0; i < c.out.numel(); ++i) gx[i] = g[i] * sigmoid(x[i]);
                });
            },
        .samples = {{.shapes = {{3, 4}}}, {.shapes = {{5}}}},
        .summary = "smooth ReLU: ln(1 + e^x) (example plugin)",
    };
}

}  // namespace

// The entry point chainrule looks up after loading the library.
extern "C" void chainrule_register_ops() { chainrule::register_op(softplus_op()); }
