// expand(x, like, {"axis", "keepdims", "mean"}): the adjoint of sum (and of mean when `mean`
// is true): x, shaped like sum(like, axis, keepdims), broadcast back over the reduced axes to
// like's shape, divided by the number of elements each output of the reduction averaged when
// `mean`. like gives only its shape. Bit for bit what sum's and mean's backward write.
#include <fmt/format.h>

#include "ops/reduce.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

const bool expand_registered = register_op({
    .name = "expand",
    .formula = "y = x broadcast over like's reduced axes (/ n with mean);  dL/dx = sum (mean) of dL/dy over "
               "axis,  dL/dlike = 0",
    .inputs = {"x", "like"},
    .attrs = {{"axis", nullptr}, {"keepdims", false}, {"mean", false}},
    .shape =
        [](std::span<const Shape> in, const Attrs& attrs) {
            const Shape reduced = reduction_shape(in.subspan(1, 1), attrs);
            if (reduced != in[0])
                throw ShapeError(fmt::format("cannot expand {} to {}: it needs the reduced shape {}",
                                             format_shape(in[0]), format_shape(in[1]), format_shape(reduced)));
            return in[1];
        },
    .forward =
        [](const ForwardCall& c) {
            const Reduction kind = c.attrs.at("mean").get<bool>() ? Reduction::mean : Reduction::sum;
            // sum's backward from x as dL/dy: the out argument is only read for its size.
            std::array<Tensor*, 1> gx{&c.out};
            std::array<const Tensor*, 1> like{c.in[1]};
            reduction_backward(kind)(BackwardCall{like, *c.in[0], *c.in[0], gx, c.attrs});
        },
    .backward =
        [](const BackwardCall& c) {
            if (c.grad_in[1]) c.grad_in[1]->zero();
            if (!c.grad_in[0]) return;
            const Reduction kind = c.attrs.at("mean").get<bool>() ? Reduction::mean : Reduction::sum;
            std::array<const Tensor*, 1> g{&c.grad_out};
            reduction_forward(kind)(ForwardCall{g, *c.grad_in[0], c.attrs});
        },
    .samples = {{.shapes = {{}, {3, 4}}, .domains = {Domain::real, Domain::no_gradient}},
                {.shapes = {{4}, {3, 4}}, .attrs = {{"axis", 0}, {"mean", true}},
                 .domains = {Domain::real, Domain::no_gradient}},
                {.shapes = {{3}, {2, 3, 2}}, .attrs = {{"axis", {0, 2}}}, .domains = {Domain::real, Domain::no_gradient}},
                {.shapes = {{3, 1}, {3, 4}}, .attrs = {{"axis", -1}, {"keepdims", true}, {"mean", true}},
                 .domains = {Domain::real, Domain::no_gradient}}},
    .summary = "the adjoint of sum and mean: x broadcast back over the reduced axes of like",
    .bad_samples = {{.shapes = {{3}, {3, 4}}, .attrs = {{"axis", 0}}, .error = "cannot expand [3] to [3,4]"}},
    // expand is linear in x; its adjoint is the reduction it undoes.
    .vjp =
        [](VjpBuilder& b) {
            const Attrs& a = b.attrs();
            return refs(b.add_op(a.at("mean").get<bool>() ? "mean" : "sum", {b.grad()},
                                 {{"axis", a.at("axis")}, {"keepdims", a.at("keepdims")}}),
                        VjpRef{});
        },
});

}  // namespace
}  // namespace chainrule
