// A plugin whose ops are malformed in the ways the registry refuses at load (docs/writing-ops.md):
// which one it registers comes from CHAINRULE_TEST_MALFORMED, so that one library covers them all.
#include <cstdlib>
#include <string>

#include "ops/op.hpp"

extern "C" void chainrule_register_ops() {
    using namespace chainrule;
    const char* which_env = std::getenv("CHAINRULE_TEST_MALFORMED");
    const std::string which = which_env ? which_env : "";
    Op op{
        .name = "malformed",
        .formula = "y = x;  dL/dx = dL/dy",
        .inputs = {"x"},
        .shape = [](std::span<const Shape> in, const Attrs&) { return in.empty() ? Shape{} : in[0]; },
        .forward = [](const ForwardCall& c) { c.out.fill(0); },
        .backward = [](const BackwardCall&) {},
        .samples = {{.shapes = {{2}}}},
    };
    if (which == "no_inputs") op.inputs = {}, op.samples = {{.shapes = {}}};
    if (which == "all_optional") op.optional_inputs = 1;
    if (which == "more_optional") op.optional_inputs = 3;
    if (which == "same_input_names") op.inputs = {"x", "x"}, op.samples = {{.shapes = {{2}, {2}}}};
    if (which == "bad_name") op.name = "mal formed<x>";
    if (which == "labels_input") op.labels_input = 2;
    if (which == "fusable") op.fusable = Fusable::sigmoid;
    // Well formed, but with an attr no sample sets: `ops --check` must fail it (a leaky_relu whose
    // slope is written into its backward as a number passed every check this way).
    if (which == "unvaried_attr") op.attrs = {{"alpha", 0.01}};
    register_op(std::move(op));
}
