// mean(x, axis, keepdims): the mean over one axis, a list of axes, or (axis null, the
// default) all of them, giving a scalar. keepdims leaves the reduced axes as size 1.
#include "ops/reduce.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

const bool mean_registered = register_op({
    .name = "mean",
    .formula = "y = 1/n · Σ x over axis (null: all axes), n = elements averaged;  "
               "dL/dx = dL/dy / n broadcast back to x's shape",
    .inputs = {"x"},
    .attrs = {{"axis", nullptr}, {"keepdims", false}},
    .shape = reduction_shape,
    .forward = reduction_forward(Reduction::mean),
    .backward = reduction_backward(Reduction::mean),
    .samples = {{.shapes = {{3, 4}}},
                {.shapes = {{3, 4}}, .attrs = {{"axis", 0}}},
                {.shapes = {{3, 4}}, .attrs = {{"axis", 1}, {"keepdims", true}}},
                {.shapes = {{2, 3, 2}}, .attrs = {{"axis", {2, 0}}}},
                {.shapes = {{2, 3}}, .attrs = {{"keepdims", true}}},
                {.shapes = {{}}}},
    .summary = "mean over an axis, a list of axes, or all (axis null); keepdims keeps them as 1",
    .bad_samples = {{.shapes = {{3, 4}}, .attrs = {{"axis", -3}},
                     .error = "axis -3 is out of range for a tensor of rank 2"},
                    {.shapes = {{3, 4}}, .attrs = {{"axis", {0, 0}}}, .error = "axis [0,0] names axis 0 twice"},
                    {.shapes = {{3, 4}}, .attrs = {{"axis", true}},
                     .error = "axis must be null (all axes), an integer or a list of integers, got true"}},
    .mean_over_rows = true,
    // dL/dx = dL/dy / n broadcast back over the averaged axes
    .vjp =
        [](VjpBuilder& b) {
            return refs(b.add_op("expand", {b.grad(), b.input(0)},
                                     {{"axis", b.attrs().at("axis")}, {"keepdims", b.attrs().at("keepdims")}, {"mean", true}}));
        },
});

}  // namespace
}  // namespace chainrule
