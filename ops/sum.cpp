// sum(x, axis, keepdims): the sum over one axis, a list of axes, or (axis null, the
// default) all of them, giving a scalar. keepdims leaves the reduced axes as size 1.
#include "ops/broadcast.hpp"
#include "ops/op.hpp"

namespace chainrule {
namespace {

Dims kept_of(const Tensor& x, const Attrs& attrs) {
    return kept_dims(x.dims(), reduced_axes(attrs.at("axis"), x.rank()));
}

const bool registered = register_op({
    .name = "sum",
    .formula = "y = Σ x over axis (null: all axes);  dL/dx = dL/dy broadcast back to x's shape",
    .inputs = {"x"},
    .attrs = {{"axis", nullptr}, {"keepdims", false}},
    .shape = reduction_shape,
    .forward =
        [](const ForwardCall& c) {
            dispatch(c.out.dtype(), [&]<class T>() {
                const Tensor& x = *c.in[0];
                const T* px = x.data<T>();
                T* y = c.out.data<T>();
                if (c.out.numel() == 1) {  // in double: 10^5 float32 terms would lose digits
                    double total = 0;
                    for (std::int64_t i = 0; i < x.numel(); ++i) total += double(px[i]);
                    y[0] = static_cast<T>(total);
                    return;
                }
                Dims kept = kept_of(x, c.attrs);
                c.out.zero();
                walk_broadcast(x.dims(), kept, kept, [&](std::int64_t i, std::int64_t o, std::int64_t) { y[o] += px[i]; });
            });
        },
    .backward =
        [](const BackwardCall& c) {
            if (!c.grad_in[0]) return;
            dispatch(c.out.dtype(), [&]<class T>() {
                const Tensor& x = *c.in[0];
                Dims kept = kept_of(x, c.attrs);
                const T* g = c.grad_out.data<T>();
                T* gx = c.grad_in[0]->data<T>();
                walk_broadcast(x.dims(), kept, kept, [&](std::int64_t i, std::int64_t o, std::int64_t) { gx[i] = g[o]; });
            });
        },
    .samples = {{.shapes = {{3, 4}}},
                {.shapes = {{3, 4}}, .attrs = {{"axis", 0}}},
                {.shapes = {{3, 4}}, .attrs = {{"axis", -1}, {"keepdims", true}}},
                {.shapes = {{2, 3, 2}}, .attrs = {{"axis", {0, 2}}}},
                {.shapes = {{2, 3}}, .attrs = {{"keepdims", true}}},
                {.shapes = {{}}}},
    .summary = "sum over an axis, a list of axes, or all (axis null); keepdims keeps them as 1",
    .bad_samples = {{.shapes = {{3, 4}}, .attrs = {{"axis", 2}}},
                    {.shapes = {{3, 4}}, .attrs = {{"axis", {1, -1}}}},
                    {.shapes = {{3, 4}}, .attrs = {{"axis", "rows"}}},
                    {.shapes = {{3, 4}}, .attrs = {{"axis", 0.5}}},
                    {.shapes = {{}}, .attrs = {{"axis", 0}}}},
});

}  // namespace
}  // namespace chainrule
