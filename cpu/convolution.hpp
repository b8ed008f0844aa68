// oneDNN's float32 convolution kernels, for conv2d (ops/conv2d.cpp): forward, dL/dx and
// dL/dW + dL/db of one chunk of a batch, each run on the calling thread alone.
//
// Why oneDNN: conv2d through im2col + OpenBLAS spent some 80 % of mnist_cnn's step outside
// the GEMMs (copying windows, scattering them back, small-GEMM overhead); oneDNN's JIT
// direct kernels read the images in place (docs/performance.md, "Choosing the engine").
//
// Determinism: for a given convolution and chunk size the kernels are chosen once, by
// oneDNN's fixed order of implementations for this CPU (algorithm "direct": never Winograd,
// no auto-tuning), and always run on one thread (oneDNN's OpenMP team is held to one for
// the call), so a chunk gives the same bits whichever thread runs it and however many
// threads there are. conv2d sums the chunks' dL/dW in chunk order. Like a GEMM's, the bits
// depend on the instruction set the kernels use.
//
// Layouts: chainrule's tensors are NCHW (weights OIHW); the kernels may want blocked layouts
// (nChw16c, ...), into which the chunk's arguments are reordered in the scratch memory the
// caller gives (conv_scratch_bytes), in cache, and back.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <string>

namespace chainrule {

// x [n,c,h,w], w [o,c,kh,kw], y [n,o,oh,ow], PyTorch's stride, padding and dilation
// (dilation 1: no holes); `bias`: b [o] is added / its gradient wanted.
struct ConvSizes {
    std::int64_t n = 0, c = 0, h = 0, w = 0, o = 0, kh = 0, kw = 0, oh = 0, ow = 0;
    std::int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1;
    bool bias = false;
    auto operator<=>(const ConvSizes&) const = default;
};

enum class ConvPass { forward, backward_data, backward_weights };

// The kernels of one convolution and chunk size, made on first use and kept for the
// process (a cache like the op registry: compiled code, never changed once made).
struct ConvKernels;

// The kernels for `s`, or null when oneDNN has only its reference code for this pass or
// refuses the sizes (then the caller keeps its own path; the choice is fixed per
// convolution, so it does not change bits from step to step).
const ConvKernels* conv_kernels(const ConvSizes& s, ConvPass pass);

// Bytes of scratch one call needs (reordered arguments and oneDNN's own scratchpad);
// `scratch` must be 64-byte aligned.
std::size_t conv_scratch_bytes(const ConvKernels& k);

// y = w ⋆ x (+ b), y in NCHW.
void conv_forward(const ConvKernels& k, const float* x, const float* w, const float* b, float* y, std::byte* scratch);
// dx = wᵀ ⋆ dy (overwritten).
void conv_backward_data(const ConvKernels& k, const float* w, const float* gy, float* gx, std::byte* scratch);
// dw = Σ dy·x̃ᵀ over the chunk, db = Σ dy (overwritten; gb only when the kernels have a bias).
void conv_backward_weights(const ConvKernels& k, const float* x, const float* gy, float* gw, float* gb,
                           std::byte* scratch);

// oneDNN's name of the kernel, e.g. "jit:avx512_core" (for benchmarks' headers).
std::string conv_kernel_name(const ConvKernels& k);
// "oneDNN 2.6.3", the library's own version (it may differ from the headers').
std::string onednn_version();
// The widest instruction set oneDNN's JIT uses here, in its own words ("avx512_core_bf16",
// "avx2", ...; DNNL_MAX_CPU_ISA can lower it); a kernel may still choose a narrower one.
std::string onednn_isa();

}  // namespace chainrule
