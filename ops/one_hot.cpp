// one_hot(labels[...], like[..., C]): position r is 1 at class labels[r] and 0 elsewhere; like
// gives only its shape. cross_entropy's vector-Jacobian product written with ops needs it
// (dL/dlogits = (p − one_hot(labels)) / N); neither input gets a gradient.
#include <fmt/format.h>

#include "ops/op.hpp"
#include "ops/vjp.hpp"

namespace chainrule {
namespace {

const bool one_hot_registered = register_op({
    .name = "one_hot",
    .formula = "y[r, c] = 1 if c = labels[r], else 0;  dL/dlabels = 0,  dL/dlike = 0",
    .inputs = {"labels", "like"},
    .shape =
        [](std::span<const Shape> in, const Attrs&) {
            if (in[1].empty() || Shape(in[1].begin(), in[1].end() - 1) != in[0])
                throw ShapeError(fmt::format("needs labels [...] and like [..., C], got {} and {}",
                                             format_shape(in[0]), format_shape(in[1])));
            return in[1];
        },
    .forward =
        [](const ForwardCall& c) {
            const std::int64_t classes = c.out.dim(c.out.rank() - 1);
            c.out.zero();
            for (std::int64_t r = 0; r < c.in[0]->numel(); ++r) {
                const auto label = std::int64_t(c.in[0]->at(r));
                if (label >= 0 && label < classes) c.out.set(r * classes + label, 1.0);
            }
        },
    .backward =
        [](const BackwardCall& c) {
            for (Tensor* g : c.grad_in)
                if (g) g->zero();
        },
    .samples = {{.shapes = {{3}, {3, 3}}, .domains = {Domain::class_index, Domain::no_gradient}},
                {.shapes = {{2, 3}, {2, 3, 3}}, .domains = {Domain::class_index, Domain::no_gradient}}},
    .summary = "one-hot rows from class indices (no gradient)",
    .bad_samples = {{.shapes = {{4}, {3, 3}}, .error = "needs labels [...] and like [..., C], got [4] and [3,3]"}},
    .labels_input = 0,
    .vjp = [](VjpBuilder&) { return refs(VjpRef{}, VjpRef{}); },  // constant in both inputs
});

}  // namespace
}  // namespace chainrule
