// chainrule's own float32 forward convolution for one input channel (an image net's first
// layer: mnist_cnn's conv1), with AVX-512. oneDNN's kernel for it writes its output in a
// layout padded to 16 channels and then has to reorder it; this one reads a zero-padded copy
// of each image and writes NCHW directly, 16 output columns and 8 channels at a time.
//
// Each output is b + Σ over the window of w·x in the window's row-major order, with fused
// multiply-adds: a sample's outputs do not depend on the batch, its chunks or the threads.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cpu/convolution.hpp"

namespace chainrule {

// Whether the kernel takes these sizes on this CPU: one input channel, stride 1, no
// dilation, AVX-512F.
bool direct_conv_fits(const ConvSizes& s);

// Floats of scratch one call needs (the padded image and the padded weights).
std::size_t direct_conv_scratch(const ConvSizes& s);

// y [n,o,oh,ow] = w ⋆ x (+ b), for the s.n samples at x; `scratch` 64-byte aligned.
void direct_conv_forward(const ConvSizes& s, const float* x, const float* w, const float* b, float* y, float* scratch);

}  // namespace chainrule
