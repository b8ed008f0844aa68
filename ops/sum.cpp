// sum(x, axis, keepdims): the sum over one axis, a list of axes, or (axis null, the
// default) all of them, giving a scalar. keepdims leaves the reduced axes as size 1.
#include "ops/reduce.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

const bool sum_registered = register_op({
    .name = "sum",
    .formula = "y = Σ x over axis (null: all axes);  dL/dx = dL/dy broadcast back to x's shape",
    .inputs = {"x"},
    .attrs = {{"axis", nullptr}, {"keepdims", false}},
    .shape = reduction_shape,
    .forward = reduction_forward(Reduction::sum),
    .backward = reduction_backward(Reduction::sum),
    .samples = {{.shapes = {{3, 4}}},
                {.shapes = {{3, 4}}, .attrs = {{"axis", 0}}},
                {.shapes = {{3, 4}}, .attrs = {{"axis", -1}, {"keepdims", true}}},
                {.shapes = {{2, 3, 2}}, .attrs = {{"axis", {0, 2}}}},
                {.shapes = {{2, 3}}, .attrs = {{"keepdims", true}}},
                {.shapes = {{}}}},
    .summary = "sum over an axis, a list of axes, or all (axis null); keepdims keeps them as 1",
    .bad_samples = {{.shapes = {{3, 4}}, .attrs = {{"axis", 2}},
                     .error = "axis 2 is out of range for a tensor of rank 2"},
                    {.shapes = {{3, 4}}, .attrs = {{"axis", {1, -1}}}, .error = "axis [1,-1] names axis 1 twice"},
                    {.shapes = {{3, 4}}, .attrs = {{"axis", "rows"}},
                     .error = "an integer or a list of integers, got \"rows\""},
                    {.shapes = {{3, 4}}, .attrs = {{"axis", 0.5}},
                     .error = "an integer or a list of integers, got 0.5"},
                    {.shapes = {{}}, .attrs = {{"axis", 0}},
                     .error = "axis 0 is out of range for a tensor of rank 0"}},
    // dL/dx = dL/dy broadcast back over the summed axes
    .vjp = [](VjpBuilder& b) { return refs(b.add_op("expand", {b.grad(), b.input(0)}, {{"axis", b.attrs().at("axis")}, {"keepdims", b.attrs().at("keepdims")}})); },
});

}  // namespace
}  // namespace chainrule
