// The two ops of conv2d's vector-Jacobian product, with conv2d's attrs (stride, padding,
// dilation):
//
//     conv2d_grad_input(g, w, like)  = dL/dx of y = conv2d(x, w) for dL/dy = g: the
//         transposed convolution col2im(wᵀ·g), shaped like x (`like` gives only its shape);
//     conv2d_grad_weight(g, x, like) = dL/dw of the same: Σₙ g·x̃ᵀ, shaped like w.
//
// Each is conv2d's own numeric backward asked for one gradient, so the graph's numbers are
// the fast path's bit for bit. Every call goes through conv2d's kernels (oneDNN's or the
// direct ones in float32, im2col + GEMM in float64) with the node's workspace, sized by
// conv2d's own workspace fact for the same (x, w): conv2d keeps nothing there from its
// forward to its backward, so one workspace serves the forward and both adjoints, and a
// Hessian-vector product allocates nothing per call. Both are bilinear, and conv2d, conv2d_grad_input and
// conv2d_grad_weight are each other's adjoints (⟨u, conv2d(x, w)⟩ = ⟨conv2d_grad_input(u, w), x⟩
// = ⟨conv2d_grad_weight(u, x), w⟩), so every one's VJP is written with the other two: all
// three are twice differentiable.
#include <array>
#include <fmt/format.h>

#include "ops/vjp.hpp"
#include "ops/window2d.hpp"

namespace chainrule {
namespace {

const Op& conv2d() { return *find_op("conv2d"); }

// out = conv2d(x, w) (no bias), in the node's workspace (null outside a graph).
void convolve(const Tensor& x, const Tensor& w, Tensor& out, const Attrs& attrs, Workspace* scratch,
              Workers* workers) {
    const std::array<const Tensor*, 2> in{&x, &w};
    conv2d().forward(ForwardCall{in, out, attrs, scratch, std::nullopt, workers});
}

// conv2d's backward for y = conv2d(x, w) and dL/dy = gy, writing dL/dx into gx or dL/dw into
// gw (the other null); the input whose gradient is asked gives only its shape.
void convolve_back(const Tensor& x, const Tensor& w, const Tensor& gy, Tensor* gx, Tensor* gw, const Attrs& attrs,
                   Workspace* scratch, Workers* workers) {
    const std::array<const Tensor*, 2> in{&x, &w};
    const std::array<Tensor*, 2> grads{gx, gw};
    conv2d().backward(BackwardCall{in, gy, gy, grads, attrs, scratch, std::nullopt, workers});
}

// The workspace of a node of either op: conv2d's for the convolution of x by w (bias-free),
// which every call of the node runs (input `x_at` holds x's dims, `w_at` w's).
std::int64_t conv_workspace(std::span<const Dims> in, const Attrs& attrs, Dtype dtype, std::size_t x_at,
                            std::size_t w_at) {
    const std::array<Dims, 2> xw{in[x_at], in[w_at]};
    return conv2d().workspace(xw, attrs, dtype);
}

// The shape rule: g must be conv2d's output for (x, w), one of which is `like`.
Shape checked(std::span<const Shape> in, const Attrs& attrs, bool like_is_x) {
    const std::array<Shape, 2> xw = like_is_x ? std::array<Shape, 2>{in[2], in[1]} : std::array<Shape, 2>{in[1], in[2]};
    const Shape y = conv2d().shape(xw, attrs);
    if (in[0] != y)
        throw ShapeError(fmt::format("needs g of shape {} (conv2d of x {} by w {}), got {}", format_shape(y),
                                     format_shape(xw[0]), format_shape(xw[1]), format_shape(in[0])));
    return in[2];
}

// conv2d's samples as (g, other, like), g of the output's shape (from the window arithmetic:
// conv2d itself may register after this file).
struct ConvCase {
    Dims x, w;
    Attrs attrs;
};
const std::vector<ConvCase> kCases = {
    {{2, 3, 5, 5}, {4, 3, 3, 3}, Attrs::object()},
    {{1, 2, 6, 5}, {3, 2, 2, 3}, {{"stride", {2, 1}}, {"padding", 1}}},
    {{2, 1, 7, 7}, {2, 1, 3, 2}, {{"dilation", 2}, {"padding", {1, 0}}}},
    {{1, 2, 4, 4}, {1, 2, 4, 4}, Attrs::object()},
    {{3, 2, 5, 4}, {2, 2, 1, 1}, {{"stride", 2}}},
};
std::vector<OpSample> samples(bool like_is_x) {
    std::vector<OpSample> out;
    for (const ConvCase& c : kCases) {
        auto pair = [&](const char* key, Pair fallback) {
            return c.attrs.contains(key) ? pair_attr(c.attrs, key, fallback, 0) : fallback;
        };
        const Window2d g = window_dims(c.x, {c.w[2], c.w[3]}, pair("stride", {1, 1}), pair("padding", {0, 0}),
                                       pair("dilation", {1, 1}), "kernel");
        const Dims y{g.n, c.w[0], g.oh, g.ow};
        out.push_back({.shapes = like_is_x ? std::vector<Dims>{y, c.w, c.x} : std::vector<Dims>{y, c.x, c.w},
                       .attrs = c.attrs,
                       .domains = {Domain::real, Domain::real, Domain::no_gradient}});
    }
    return out;
}

const Attrs kConvAttrs = {{"stride", nullptr}, {"padding", nullptr}, {"dilation", nullptr}};

const bool input_registered = register_op({
    .name = "conv2d_grad_input",
    .formula = "y = col2im(wᵀ·g) (the transposed convolution: conv2d's dL/dx for dL/dy = g), shaped like `like`;  "
               "dL/dg = conv2d(dL/dy, w);  dL/dw = conv2d_grad_weight(g, dL/dy);  dL/dlike = 0",
    .inputs = {"g", "w", "like"},
    .attrs = kConvAttrs,
    .shape = [](std::span<const Shape> in, const Attrs& attrs) { return checked(in, attrs, true); },
    .forward = [](const ForwardCall& c) { convolve_back(*c.in[2], *c.in[1], *c.in[0], &c.out, nullptr, c.attrs, c.scratch, c.workers); },
    .backward =
        [](const BackwardCall& c) {
            if (c.grad_in[2]) c.grad_in[2]->zero();
            if (c.grad_in[0]) convolve(c.grad_out, *c.in[1], *c.grad_in[0], c.attrs, c.scratch, c.workers);
            if (c.grad_in[1]) convolve_back(c.grad_out, *c.in[1], *c.in[0], nullptr, c.grad_in[1], c.attrs, c.scratch, c.workers);
        },
    .samples = samples(true),
    .summary = "conv2d's gradient with respect to its input (a transposed convolution), shaped like `like`",
    .bad_samples = {{.shapes = {{2, 4, 5, 5}, {4, 3, 3, 3}, {2, 3, 5, 5}},
                     .error = "needs g of shape [2,4,3,3] (conv2d of x [2,3,5,5] by w [4,3,3,3]), got [2,4,5,5]"}},
    .workspace = [](std::span<const Dims> in, const Attrs& attrs, Dtype dtype) {
        return conv_workspace(in, attrs, dtype, 2, 1);
    },
    // bilinear: d y = conv2d_grad_input(dg, w) + conv2d_grad_input(g, dw), whose adjoints are
    // conv2d(u, w) for g and conv2d_grad_weight(g, u) for w
    .vjp =
        [](VjpBuilder& b) {
            const VjpRef u = b.grad(), g = b.input(0), w = b.input(1);
            return refs(b.add_op("conv2d", {u, w}, b.attrs()), b.add_op("conv2d_grad_weight", {g, u, w}, b.attrs()),
                        VjpRef{});
        },
});

const bool weight_registered = register_op({
    .name = "conv2d_grad_weight",
    .formula = "y = Σₙ g·x̃ᵀ (conv2d's dL/dw for dL/dy = g), shaped like `like`;  "
               "dL/dg = conv2d(x, dL/dy);  dL/dx = conv2d_grad_input(g, dL/dy);  dL/dlike = 0",
    .inputs = {"g", "x", "like"},
    .attrs = kConvAttrs,
    .shape = [](std::span<const Shape> in, const Attrs& attrs) { return checked(in, attrs, false); },
    .forward = [](const ForwardCall& c) { convolve_back(*c.in[1], *c.in[2], *c.in[0], nullptr, &c.out, c.attrs, c.scratch, c.workers); },
    .backward =
        [](const BackwardCall& c) {
            if (c.grad_in[2]) c.grad_in[2]->zero();
            if (c.grad_in[0]) convolve(*c.in[1], c.grad_out, *c.grad_in[0], c.attrs, c.scratch, c.workers);
            if (c.grad_in[1]) convolve_back(*c.in[1], c.grad_out, *c.in[0], c.grad_in[1], nullptr, c.attrs, c.scratch, c.workers);
        },
    .samples = samples(false),
    .summary = "conv2d's gradient with respect to its weight, shaped like `like`",
    .bad_samples = {{.shapes = {{2, 4, 3, 3}, {2, 2, 5, 5}, {4, 3, 3, 3}},
                     .error = "expects 3 input channels, but x [2,2,5,5] has 2"}},
    .workspace = [](std::span<const Dims> in, const Attrs& attrs, Dtype dtype) {
        return conv_workspace(in, attrs, dtype, 1, 2);
    },
    // bilinear: the adjoints are conv2d(x, u) for g and conv2d_grad_input(g, u) for x
    .vjp =
        [](VjpBuilder& b) {
            const VjpRef u = b.grad(), g = b.input(0), x = b.input(1);
            return refs(b.add_op("conv2d", {x, u}, b.attrs()), b.add_op("conv2d_grad_input", {g, u, x}, b.attrs()),
                        VjpRef{});
        },
});

}  // namespace
}  // namespace chainrule
