// conv2d(x[N,C,H,W], w[O,C,kh,kw][, b[O]]) -> [N,O,H',W'], PyTorch's cross-correlation with
// attrs stride, padding, dilation (an integer or [h, w]; defaults 1, 0, 1).
//
// float32 runs oneDNN's direct kernels (cpu/convolution.hpp) on fixed chunks of the batch,
// and chainrule's own kernel (cpu/direct_conv.hpp) for the forward of one input channel.
// float64 (which oneDNN has no kernels for), and float32 where oneDNN offers only its
// reference code, go through the GEMM that matmul uses (im2col): for each sample the input
// windows become the columns of X̃ [C·kh·kw, H'·W'], and
//     y = W·X̃ + b,   dL/dW = Σₙ dL/dy·X̃ᵀ,   dL/dX̃ = Wᵀ·dL/dy (scattered back: col2im),
//     dL/db = Σ over N, H', W' of dL/dy.
#include <algorithm>
#include <array>
#include <type_traits>
#include <vector>

#include "cpu/convolution.hpp"
#include "cpu/direct_conv.hpp"
#include "cpu/gemm.hpp"
#include "ops/im2col.hpp"
#include "ops/op.hpp"
#include "ops/vjp.hpp"
#include "ops/window2d.hpp"

namespace chainrule {
namespace {

Window2d geometry(std::span<const Shape> in, const Attrs& attrs) {
    const Shape& w = in[1];
    if (w.size() != 4 || !is_fixed(w))
        throw ShapeError(fmt::format("needs a weight [O,C,kh,kw] of fixed sizes, got {}", format_shape(w)));
    Window2d g = window_shape(in[0], {w[2].size, w[3].size}, pair_attr(attrs, "stride", {1, 1}, 1),
                              pair_attr(attrs, "padding", {0, 0}, 0), pair_attr(attrs, "dilation", {1, 1}, 1), "kernel");
    if (w[1].size != g.c)
        throw ShapeError(fmt::format("weight {} expects {} input channels, but x {} has {}", format_shape(w), w[1].size,
                                     format_shape(in[0]), g.c));
    if (in.size() == 3 && !(in[2].size() == 1 && in[2][0] == w[0]))
        throw ShapeError(fmt::format("bias must be [{}] (one per output channel of weight {}), got {}", w[0].size,
                                     format_shape(w), format_shape(in[2])));
    return g;
}

// The GEMM sizes of one sample: y [o, plane] = W [o, k] · X̃ [k, plane]; `image` elements per input sample.
struct Conv {
    Window2d g;
    std::int64_t o = 0, k = 0, plane = 0, image = 0;
};

// The batch in a fixed number of chunks, whatever the thread count: each chunk has its own
// partial dL/dW (and dL/db), and the partials are summed in chunk order, so that any
// --threads gives the same bits. Chunks run on the pass's helper threads when it has them.
//
// Scratch (the node's workspace), in bytes, with S = slots (threads, at most kChunks) and
// C = chunks (kChunks, or N when smaller):
//   float32, oneDNN: C·(O·k + O)·4 for the chunks' partial gradients + S·((O·k + O)·4 + the
//     largest scratch of one call: the arguments of at most kPiece = 16 samples reordered
//     into the kernels' layouts, plus oneDNN's scratchpad) + alignment;
//   im2col path: S·k·plane·size (X̃) + C·O·k·size (the partials, backward only);
// k = C_in·kh·kw, plane = H'·W'. Neither grows with the batch beyond C·S pieces. mnist_cnn
// float32 on 2 threads: 1.3 MiB for conv1, 0.6 MiB for conv2, at batch 100 or 1000.
constexpr std::int64_t kChunks = 8;

struct Chunks {
    std::int64_t count, n;
    std::int64_t begin(std::int64_t c) const { return n * c / count; }
    std::int64_t size(std::int64_t c) const { return begin(c + 1) - begin(c); }
};

// Room for the slots' X̃ [k,plane] and the chunks' partial dL/dW [o,k]: the engine's
// workspace (no allocation after the first step), or `local` when the op runs outside a graph.
template <class T>
T* columns(Workspace* scratch, std::vector<T>& local, std::int64_t n) {
    if (scratch) return scratch->get<T>(std::size_t(n)).data();
    local.resize(std::size_t(n));
    return local.data();
}

// How many chunks run at once: one per thread (at most one per chunk). Scratch that a chunk
// needs only while it runs (X̃, oneDNN's reordered arguments) is kept per slot, not per chunk.
std::int64_t slots(Workers* workers, std::int64_t chunks) {
    return !workers || workers->threads() < 2 ? 1 : std::min<std::int64_t>(workers->threads(), chunks);
}

// f(chunk, slot) for every chunk: the chunks dealt to the threads in contiguous groups, one
// group per thread, run in order within a group on that group's slot (< slots(...)). Each
// GEMM then runs on one OpenBLAS thread.
template <class F>
void each_chunk(Workers* workers, std::int64_t chunks, F&& f) {
    const std::int64_t groups = slots(workers, chunks);
    if (groups == 1) {
        for (std::int64_t c = 0; c < chunks; ++c) f(c, 0);
        return;
    }
    OneBlasThread one;
    auto part = [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t group = begin; group < end; ++group)
            for (std::int64_t c = chunks * group / groups; c < chunks * (group + 1) / groups; ++c) f(c, group);
    };
    workers->run(groups, part);
}

// The sizes from the tensors themselves (the shape rule checked them), allocating nothing.
Conv runtime_sizes(std::span<const Tensor* const> in, const Attrs& attrs) {
    const Tensor& w = *in[1];
    Window2d g = window_dims(in[0]->dims(), {w.dim(2), w.dim(3)}, pair_attr(attrs, "stride", {1, 1}, 1),
                             pair_attr(attrs, "padding", {0, 0}, 0), pair_attr(attrs, "dilation", {1, 1}, 1), "kernel");
    return {g, w.dim(0), g.c * g.kernel.h * g.kernel.w, g.oh * g.ow, g.c * g.h * g.w};
}

// Adds the sum of `count` arrays of `size` (one after another in `parts`) into `out`, in
// order: the chunks' partial weight gradients.
template <class T>
void sum_parts(const T* parts, std::int64_t count, std::int64_t size, T* out) {
    std::copy(parts, parts + size, out);
    for (std::int64_t p = 1; p < count; ++p)
        for (std::int64_t i = 0; i < size; ++i) out[i] += parts[p * size + i];
}

// ---- float32: oneDNN's kernels (cpu/convolution.hpp), one chunk per call ----------------

ConvSizes onednn_sizes(const Conv& cv, std::int64_t n, bool bias) {
    const Window2d& g = cv.g;
    return {n, g.c, g.h, g.w, cv.o, g.kernel.h, g.kernel.w, g.oh, g.ow,
            g.stride.h, g.stride.w, g.padding.h, g.padding.w, g.dilation.h, g.dilation.w, bias};
}

// Each oneDNN call takes at most this many samples of a chunk, so that the arguments it
// reorders stay in cache and its scratch does not grow with the batch (a chunk of a
// 60,000-row batch would otherwise reorder 7,500 samples at once). Fixed, like the chunks:
// the pieces, and so the bits, depend on the batch size alone.
constexpr std::int64_t kPiece = 16;

// f(first sample, samples) for the pieces of chunk c, in order.
template <class F>
void each_piece(const Chunks& chunks, std::int64_t c, F&& f) {
    for (std::int64_t first = chunks.begin(c); first < chunks.begin(c + 1); first += kPiece)
        f(first, std::min(kPiece, chunks.begin(c + 1) - first));
}

const ConvKernels* piece_kernels(const Conv& cv, std::int64_t samples, bool bias, ConvPass pass) {
    return conv_kernels(onednn_sizes(cv, samples, bias), pass);
}

// Whether oneDNN has kernels of `pass` for every piece of the batch (else the op keeps
// im2col + GEMM for this pass), and the largest scratch one call of them needs.
bool onednn_ready(const Conv& cv, const Chunks& chunks, bool bias, ConvPass pass, std::size_t& scratch) {
    bool ok = true;
    for (std::int64_t c = 0; c < chunks.count; ++c)
        each_piece(chunks, c, [&](std::int64_t, std::int64_t samples) {
            const ConvKernels* k = ok ? piece_kernels(cv, samples, bias, pass) : nullptr;
            ok = k != nullptr;
            if (k) scratch = std::max(scratch, conv_scratch_bytes(*k));
        });
    return ok;
}

// One workspace for a float32 pass: `floats` floats (the chunks' partial gradients), then a
// slot per thread for the kernels' reordered arguments and scratchpad, each 64-byte aligned.
struct OnednnRoom {
    float* floats = nullptr;
    std::byte* slots = nullptr;
    std::size_t slot = 0;
    std::byte* at(std::int64_t index) const { return slots + std::size_t(index) * slot; }
};
constexpr std::size_t kLine = 64;
std::size_t up(std::size_t n) { return (n + kLine - 1) / kLine * kLine; }

OnednnRoom onednn_room(Workspace* scratch, std::vector<std::byte>& local, std::int64_t floats, std::size_t slot,
                       std::int64_t slot_count) {
    const std::size_t bytes = up(std::size_t(floats) * sizeof(float)) + std::size_t(slot_count) * up(slot) + kLine;
    std::byte* base = scratch ? scratch->get<std::byte>(bytes).data() : (local.resize(bytes), local.data());
    base += (kLine - reinterpret_cast<std::uintptr_t>(base) % kLine) % kLine;
    return {reinterpret_cast<float*>(base), base + up(std::size_t(floats) * sizeof(float)), up(slot)};
}

// A single input channel (an image net's first layer): chainrule's own kernel
// (cpu/direct_conv), one chunk per call; false when it does not take these sizes.
bool forward_direct(const ForwardCall& c, const Conv& cv, const Chunks& chunks) {
    const bool bias = c.in.size() == 3;
    const ConvSizes one = onednn_sizes(cv, 1, bias);
    if (!direct_conv_fits(one)) return false;
    std::vector<std::byte> local;
    const OnednnRoom room =
        onednn_room(c.scratch, local, 0, direct_conv_scratch(one) * sizeof(float), slots(c.workers, chunks.count));
    const float *x = c.in[0]->data<float>(), *w = c.in[1]->data<float>(), *b = bias ? c.in[2]->data<float>() : nullptr;
    float* y = c.out.data<float>();
    each_chunk(c.workers, chunks.count, [&](std::int64_t chunk, std::int64_t slot) {
        ConvSizes s = one;
        s.n = chunks.size(chunk);
        const std::int64_t first = chunks.begin(chunk);
        direct_conv_forward(s, x + first * cv.image, w, b, y + first * cv.o * cv.plane,
                            reinterpret_cast<float*>(room.at(slot)));
    });
    return true;
}

bool forward_onednn(const ForwardCall& c, const Conv& cv, const Chunks& chunks) {
    const bool bias = c.in.size() == 3;
    std::size_t most = 0;
    if (!onednn_ready(cv, chunks, bias, ConvPass::forward, most)) return false;
    std::vector<std::byte> local;
    const OnednnRoom room = onednn_room(c.scratch, local, 0, most, slots(c.workers, chunks.count));
    const float *x = c.in[0]->data<float>(), *w = c.in[1]->data<float>(), *b = bias ? c.in[2]->data<float>() : nullptr;
    float* y = c.out.data<float>();
    each_chunk(c.workers, chunks.count, [&](std::int64_t chunk, std::int64_t slot) {
        each_piece(chunks, chunk, [&](std::int64_t first, std::int64_t samples) {
            conv_forward(*piece_kernels(cv, samples, bias, ConvPass::forward), x + first * cv.image, w, b,
                         y + first * cv.o * cv.plane, room.at(slot));
        });
    });
    return true;
}

bool backward_onednn(const BackwardCall& c, const Conv& cv, const Chunks& chunks) {
    const bool bias = c.in.size() == 3;
    const bool want_w = c.grad_in[1] || (bias && c.grad_in[2]), want_x = c.grad_in[0] != nullptr;
    std::size_t most = 0;
    if ((want_w && !onednn_ready(cv, chunks, bias, ConvPass::backward_weights, most)) ||
        (want_x && !onednn_ready(cv, chunks, bias, ConvPass::backward_data, most)))
        return false;
    // Per slot: a piece's dL/dW and dL/db (added to its chunk's after the first piece), then
    // the kernels' scratch. Per chunk: its partial dL/dW and dL/db, summed in chunk order.
    const std::int64_t wsize = cv.o * cv.k, parts = want_w ? chunks.count * (wsize + cv.o) : 0;
    const std::size_t piece_grads = up(std::size_t(wsize + cv.o) * sizeof(float));
    std::vector<std::byte> local;
    const OnednnRoom room = onednn_room(c.scratch, local, parts, piece_grads + most, slots(c.workers, chunks.count));
    const float *x = c.in[0]->data<float>(), *w = c.in[1]->data<float>(), *gy = c.grad_out.data<float>();
    float *gw_parts = room.floats, *gb_parts = room.floats + chunks.count * wsize;
    each_chunk(c.workers, chunks.count, [&](std::int64_t chunk, std::int64_t slot) {
        float* piece_gw = reinterpret_cast<float*>(room.at(slot));
        float* chunk_gw = gw_parts + chunk * wsize;
        float* chunk_gb = gb_parts + chunk * cv.o;
        std::byte* scratch = room.at(slot) + piece_grads;
        each_piece(chunks, chunk, [&](std::int64_t first, std::int64_t samples) {
            const float* gy_piece = gy + first * cv.o * cv.plane;
            if (want_w) {
                const bool opening = first == chunks.begin(chunk);
                float* gw = opening ? chunk_gw : piece_gw;
                float* gb = bias ? (opening ? chunk_gb : piece_gw + wsize) : nullptr;
                conv_backward_weights(*piece_kernels(cv, samples, bias, ConvPass::backward_weights),
                                      x + first * cv.image, gy_piece, gw, gb, scratch);
                if (!opening) {
                    for (std::int64_t i = 0; i < wsize; ++i) chunk_gw[i] += piece_gw[i];
                    for (std::int64_t i = 0; bias && i < cv.o; ++i) chunk_gb[i] += piece_gw[wsize + i];
                }
            }
            if (want_x)
                conv_backward_data(*piece_kernels(cv, samples, bias, ConvPass::backward_data), w, gy_piece,
                                   c.grad_in[0]->data<float>() + first * cv.image, scratch);
        });
    });
    if (c.grad_in[1]) sum_parts(gw_parts, chunks.count, wsize, c.grad_in[1]->data<float>());
    if (bias && c.grad_in[2]) sum_parts(gb_parts, chunks.count, cv.o, c.grad_in[2]->data<float>());
    return true;
}

// ---- im2col + GEMM: float64, and float32 where oneDNN has no kernel ---------------------

template <class T>
void forward_im2col(const ForwardCall& c, const Conv& cv, const Chunks& chunks) {
    const Window2d& g = cv.g;
    const std::int64_t o = cv.o, k = cv.k, plane = cv.plane, image = cv.image;
    const T *x = c.in[0]->data<T>(), *w = c.in[1]->data<T>();
    std::vector<T> local;
    T* room = columns(c.scratch, local, slots(c.workers, chunks.count) * k * plane);
    each_chunk(c.workers, chunks.count, [&](std::int64_t chunk, std::int64_t slot) {
        T* cols = room + slot * k * plane;
        for (std::int64_t n = chunks.begin(chunk); n < chunks.begin(chunk + 1); ++n) {
            im2col(g, x + n * image, cols);
            T* y = c.out.data<T>() + n * o * plane;
            gemm<T>(false, false, o, plane, k, w, cols, y, T(0));
            if (c.in.size() == 3)
                for (std::int64_t q = 0; q < o; ++q)
                    for (std::int64_t p = 0; p < plane; ++p) y[q * plane + p] += c.in[2]->data<T>()[q];
        }
    });
}

template <class T>
void backward_im2col(const BackwardCall& c, const Conv& cv, const Chunks& chunks) {
    const Window2d& g = cv.g;
    const std::int64_t o = cv.o, k = cv.k, plane = cv.plane, image = cv.image;
    const T *x = c.in[0]->data<T>(), *w = c.in[1]->data<T>(), *gy_all = c.grad_out.data<T>();
    std::vector<T> local;
    // X̃ per slot, then each chunk's partial dL/dW (summed in chunk order at the end)
    T* room = columns(c.scratch, local, slots(c.workers, chunks.count) * k * plane + chunks.count * o * k);
    T* partials = room + slots(c.workers, chunks.count) * k * plane;
    each_chunk(c.workers, chunks.count, [&](std::int64_t chunk, std::int64_t slot) {
        T* cols = room + slot * k * plane;
        T* gw = partials + chunk * o * k;
        const std::int64_t first = chunks.begin(chunk);
        for (std::int64_t n = first; n < chunks.begin(chunk + 1); ++n) {
            const T* gy = gy_all + n * o * plane;
            if (c.grad_in[1]) {  // dL/dW [O,k] (+)= dL/dy [O,plane] · X̃ᵀ [plane,k]
                im2col(g, x + n * image, cols);
                gemm<T>(false, true, o, k, plane, gy, cols, gw, T(n == first ? 0 : 1));
            }
            if (c.grad_in[0]) {  // dL/dX̃ [k,plane] = Wᵀ [k,O] · dL/dy [O,plane]
                gemm<T>(true, false, k, plane, o, w, gy, cols, T(0));
                col2im(g, cols, c.grad_in[0]->data<T>() + n * image);
            }
        }
    });
    if (c.grad_in[1]) sum_parts(partials, chunks.count, o * k, c.grad_in[1]->data<T>());
    if (c.grad_in.size() == 3 && c.grad_in[2]) {
        T* db = c.grad_in[2]->data<T>();
        for (std::int64_t q = 0; q < o; ++q) {
            T s = 0;
            for (std::int64_t n = 0; n < g.n; ++n)
                for (std::int64_t p = 0; p < plane; ++p) s += gy_all[(n * o + q) * plane + p];
            db[q] = s;
        }
    }
}

// At most what forward or backward asks of the workspace, with S = C slots (every chunk on
// its own thread: the most any thread count asks): the larger of what im2col's path and the
// float32 kernels' path (`onednn_room`, with both gradients wanted) ask, since which one
// runs can depend on the pass.
std::int64_t workspace_bytes(const Conv& cv, bool bias, Dtype dtype) {
    const Chunks chunks{std::min(kChunks, cv.g.n), cv.g.n};
    const std::int64_t c = chunks.count, s = c, size = std::int64_t(dtype_size(dtype));
    const std::int64_t cols = s * cv.k * cv.plane * size, partials = c * cv.o * cv.k * size;
    auto room = [&](std::int64_t floats, std::size_t slot) {
        return std::int64_t(up(std::size_t(floats) * sizeof(float)) + std::size_t(s) * up(slot) + kLine);
    };
    std::int64_t most = cols + partials;
    if (dtype == Dtype::f32) {
        const ConvSizes one = onednn_sizes(cv, 1, bias);
        const std::size_t direct = direct_conv_fits(one) ? direct_conv_scratch(one) * sizeof(float) : 0;
        std::size_t forward = direct, backward = 0;
        if (onednn_ready(cv, chunks, bias, ConvPass::forward, forward)) most = std::max(most, room(0, forward));
        if (onednn_ready(cv, chunks, bias, ConvPass::backward_weights, backward) &&
            onednn_ready(cv, chunks, bias, ConvPass::backward_data, backward))
            most = std::max(most, room(c * (cv.o * cv.k + cv.o), up(std::size_t(cv.o * cv.k + cv.o) * sizeof(float)) + backward));
        if (direct > 0) most = std::max(most, room(0, direct));
    }
    return (most + 7) / 8 * 8;  // Workspace keeps whole doubles
}

const bool conv2d_registered = register_op({
    .name = "conv2d",
    .formula = "y = w ⋆ x + b (cross-correlation, NCHW);  dL/dx = wᵀ ⋆ dL/dy (col2im),  "
               "dL/dw = Σₙ dL/dy·x̃ᵀ,  dL/db = dL/dy summed over batch and positions",
    .inputs = {"x", "w", "b"},
    .attrs = {{"stride", nullptr}, {"padding", nullptr}, {"dilation", nullptr}},
    .shape =
        [](std::span<const Shape> in, const Attrs& attrs) {
            Window2d g = geometry(in, attrs);
            return Shape{in[0][0], in[1][0], Dim{g.oh, {}}, Dim{g.ow, {}}};
        },
    .forward =
        [](const ForwardCall& c) {
            const Conv cv = runtime_sizes(c.in, c.attrs);
            const Chunks chunks{std::min(kChunks, cv.g.n), cv.g.n};
            dispatch(c.out.dtype(), [&]<class T>() {
                if constexpr (std::is_same_v<T, float>)
                    if (forward_direct(c, cv, chunks) || forward_onednn(c, cv, chunks)) return;
                forward_im2col<T>(c, cv, chunks);
            });
        },
    .backward =
        [](const BackwardCall& c) {
            const Conv cv = runtime_sizes(c.in, c.attrs);
            const Chunks chunks{std::min(kChunks, cv.g.n), cv.g.n};
            dispatch(c.out.dtype(), [&]<class T>() {
                if constexpr (std::is_same_v<T, float>)
                    if (backward_onednn(c, cv, chunks)) return;
                backward_im2col<T>(c, cv, chunks);
            });
        },
    .samples = {{.shapes = {{2, 3, 5, 5}, {4, 3, 3, 3}, {4}}},
                {.shapes = {{1, 2, 6, 5}, {3, 2, 2, 3}}, .attrs = {{"stride", {2, 1}}, {"padding", 1}}},
                {.shapes = {{2, 1, 7, 7}, {2, 1, 3, 2}, {2}}, .attrs = {{"dilation", 2}, {"padding", {1, 0}}}},
                {.shapes = {{1, 2, 4, 4}, {1, 2, 4, 4}, {1}}},
                {.shapes = {{3, 2, 5, 4}, {2, 2, 1, 1}}, .attrs = {{"stride", 2}}}},
    .summary = "2-D convolution (cross-correlation) of NCHW images; attrs stride, padding, dilation; optional bias",
    .bad_samples = {{.shapes = {{1, 1, 4, 4}, {1, 1, 5, 5}}, .error = "kernel 5×5 is larger than the padded input 4×4"},
                    {.shapes = {{1, 2, 4, 4}, {1, 3, 3, 3}}, .error = "expects 3 input channels, but x [1,2,4,4] has 2"},
                    {.shapes = {{1, 2, 4, 4}, {5, 2, 3, 3}, {4}}, .error = "bias must be [5]"},
                    {.shapes = {{2, 4, 4}, {1, 2, 3, 3}}, .error = "needs a 4-D input [N,C,H,W], got [2,4,4]"},
                    {.shapes = {{1, 1, 4, 4}, {1, 1, 3, 3}}, .attrs = {{"stride", 0}}, .error = "attr stride must be an integer >= 1"},
                    {.shapes = {{1, 1, 4, 4}, {1, 1, 3, 3}}, .attrs = {{"padding", {1, 2, 3}}}, .error = "attr padding must be an integer or a pair [h, w], got [1,2,3]"},
                    {.shapes = {{1, 1, 4, 4}, {1, 1, 3, 3}}, .attrs = {{"dilation", 2}}, .error = "kernel 5×5 is larger than the padded input 4×4"}},
    .optional_inputs = 1,
    // The most forward or backward asks of the node's workspace, with every chunk on its own
    // thread (fewer threads ask less): see `workspace_bytes`.
    .workspace = [](std::span<const Dims> in, const Attrs& attrs, Dtype dtype) -> std::int64_t {
        const Dims& w = in[1];
        const Window2d g = window_dims(in[0], {w[2], w[3]}, pair_attr(attrs, "stride", {1, 1}, 1),
                                       pair_attr(attrs, "padding", {0, 0}, 0), pair_attr(attrs, "dilation", {1, 1}, 1),
                                       "kernel");
        const Conv cv{g, w[0], g.c * g.kernel.h * g.kernel.w, g.oh * g.ow, g.c * g.h * g.w};
        return workspace_bytes(cv, in.size() == 3, dtype);
    },
    // dL/dx = conv2d_grad_input(g, w) (the transposed convolution), dL/dw = conv2d_grad_weight(g, x),
    // dL/db = g summed over N, H', W' (ops/conv2d_grads.cpp)
    .vjp =
        [](VjpBuilder& b) {
            const VjpRef x = b.input(0), w = b.input(1), g = b.grad();
            const Attrs window = {{"stride", b.attrs().at("stride")}, {"padding", b.attrs().at("padding")},
                                  {"dilation", b.attrs().at("dilation")}};
            std::vector<VjpRef> grads{b.add_op("conv2d_grad_input", {g, w, x}, window),
                                      b.add_op("conv2d_grad_weight", {g, x, w}, window)};
            if (b.input_count() == 3) grads.push_back(b.add_op("sum", {g}, {{"axis", {0, 2, 3}}}));
            return grads;
        },
});

}  // namespace
}  // namespace chainrule
