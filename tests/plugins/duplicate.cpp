// A plugin that registers a name chainrule already has: loading it must fail cleanly.
#include "ops/op.hpp"

extern "C" void chainrule_register_ops() {
    using namespace chainrule;
    register_op({
        .name = "sigmoid",
        .formula = "a second sigmoid",
        .inputs = {"x"},
        .shape = [](std::span<const Shape> in, const Attrs&) { return in[0]; },
        .forward = [](const ForwardCall& c) { c.out.assign(*c.in[0]); },
        .backward = [](const BackwardCall& c) { c.grad_in[0]->assign(c.grad_out); },
        .samples = {{.shapes = {{2}}}},
    });
}
