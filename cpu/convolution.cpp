// oneDNN's float32 convolutions (cpu/convolution.hpp). Set-up goes through oneDNN's C++
// API; each call goes through its C API with the arguments on the stack, so that chainrule
// itself allocates nothing per step (oneDNN allocates a few small objects per call inside
// itself, as OpenBLAS's threaded driver does: tests/test_alloc.cpp counts them apart).
#include "cpu/convolution.hpp"

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <omp.h>
#include <oneapi/dnnl/dnnl.hpp>
#include <stdexcept>
#include <vector>

namespace chainrule {

using dnnl::memory;
using Tag = memory::format_tag;

namespace {

// oneDNN's OpenMP team held to the calling thread while it lives: every call is one chunk
// of conv2d's batch on one of chainrule's threads (a team per helper would fight them for
// the cores, and a kernel that splits its sums over a team would change bits with it).
class OneOmpThread {
public:
    OneOmpThread() : saved_(omp_get_max_threads()) {
        if (saved_ != 1) omp_set_num_threads(1);
    }
    ~OneOmpThread() {
        if (saved_ != 1) omp_set_num_threads(saved_);
    }
    OneOmpThread(const OneOmpThread&) = delete;
    OneOmpThread& operator=(const OneOmpThread&) = delete;

private:
    int saved_;
};

const dnnl::engine& cpu_engine() {
    static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    return engine;
}

void check(dnnl_status_t status, const char* what) {
    if (status != dnnl_success) throw std::runtime_error(std::string("oneDNN: ") + what + " failed");
}

// One argument of a kernel: chainrule's layout (`plain`) and the kernel's (`inner`); when
// they differ, the argument is reordered through the scratch at `offset`.
struct Arg {
    int id = 0;
    memory::desc plain, inner;
    bool output = false;
    dnnl::primitive reorder = {};  // plain → inner for an input, inner → plain for an output
    std::size_t offset = 0;
};

constexpr std::size_t kAlign = 64;
std::size_t aligned(std::size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

}  // namespace

struct ConvKernels {
    dnnl::primitive kernel;
    std::vector<Arg> args;
    memory::desc scratchpad;
    std::size_t scratchpad_offset = 0, bytes = 0;
    std::string name;
};

namespace {

using Pointers = std::array<std::pair<int, const void*>, 4>;

void* pointer_of(const Pointers& ptrs, int id) {
    for (const auto& [arg, p] : ptrs)
        if (arg == id) return const_cast<void*>(p);
    throw std::logic_error("oneDNN convolution: an argument is missing");
}

// Owns the C handles one call makes.
struct CallHandles {
    dnnl_stream_t stream = nullptr;
    std::array<dnnl_memory_t, 12> memories{};
    int count = 0;
    CallHandles() { check(dnnl_stream_create(&stream, cpu_engine().get(), dnnl_stream_default_flags), "stream"); }
    ~CallHandles() {
        for (int i = 0; i < count; ++i) dnnl_memory_destroy(memories[std::size_t(i)]);
        dnnl_stream_destroy(stream);
    }
    CallHandles(const CallHandles&) = delete;
    CallHandles& operator=(const CallHandles&) = delete;
    dnnl_memory_t wrap(const memory::desc& d, void* p) {
        dnnl_memory_t m = nullptr;
        check(dnnl_memory_create(&m, &d.data, cpu_engine().get(), p), "memory");
        memories[std::size_t(count++)] = m;
        return m;
    }
    void reorder(const dnnl::primitive& r, dnnl_memory_t from, dnnl_memory_t to) {
        const dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
        check(dnnl_primitive_execute(r.get(), stream, 2, args), "reorder");
    }
};

void run(const ConvKernels& k, const Pointers& ptrs, std::byte* scratch) {
    const OneOmpThread one;
    CallHandles h;
    std::array<dnnl_exec_arg_t, 6> exec{};
    struct Pending {  // an output the kernel writes in its layout, reordered after it
        const dnnl::primitive* reorder;
        dnnl_memory_t inner, plain;
    };
    std::array<Pending, 4> outputs{};
    int n = 0, out = 0;
    for (const Arg& a : k.args) {
        dnnl_memory_t plain = h.wrap(a.plain, pointer_of(ptrs, a.id));
        dnnl_memory_t used = plain;
        if (a.reorder) {
            used = h.wrap(a.inner, scratch + a.offset);
            if (a.output)
                outputs[std::size_t(out++)] = {&a.reorder, used, plain};
            else
                h.reorder(a.reorder, plain, used);
        }
        exec[std::size_t(n++)] = {a.id, used};
    }
    exec[std::size_t(n++)] = {DNNL_ARG_SCRATCHPAD, h.wrap(k.scratchpad, scratch + k.scratchpad_offset)};
    check(dnnl_primitive_execute(k.kernel.get(), h.stream, n, exec.data()), "convolution");
    for (int i = 0; i < out; ++i) h.reorder(*outputs[std::size_t(i)].reorder, outputs[std::size_t(i)].inner, outputs[std::size_t(i)].plain);
    check(dnnl_stream_wait(h.stream), "stream wait");
}

memory::desc plain_desc(const memory::dims& dims, Tag tag) { return {dims, memory::data_type::f32, tag}; }
memory::desc any_desc(const memory::dims& dims) { return {dims, memory::data_type::f32, Tag::any}; }

// The kernel of `pass` with its arguments' layouts; null when oneDNN offers only its
// reference code (or refuses the sizes).
std::unique_ptr<ConvKernels> make_kernels(const ConvSizes& s, ConvPass pass) {
    using namespace dnnl;
    const OneOmpThread one;  // kernels are tuned for the threads they will run on: one
    const engine& eng = cpu_engine();
    const memory::dims src{s.n, s.c, s.h, s.w}, wei{s.o, s.c, s.kh, s.kw}, dst{s.n, s.o, s.oh, s.ow}, bias{s.o};
    const memory::dims strides{s.stride_h, s.stride_w}, holes{s.dilation_h - 1, s.dilation_w - 1},
        pad_l{s.pad_h, s.pad_w},
        // PyTorch's output size rounds down: the right/bottom padding is what makes oneDNN's agree.
        pad_r{(s.oh - 1) * s.stride_h + (s.kh - 1) * s.dilation_h + 1 - s.h - s.pad_h,
              (s.ow - 1) * s.stride_w + (s.kw - 1) * s.dilation_w + 1 - s.w - s.pad_w};
    const memory::desc bias_md = s.bias ? plain_desc(bias, Tag::x) : memory::desc();
    primitive_attr attr;
    attr.set_scratchpad_mode(scratchpad_mode::user);
    auto k = std::make_unique<ConvKernels>();
    try {
        const convolution_forward::primitive_desc fwd(
            convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct, any_desc(src),
                                      any_desc(wei), bias_md, any_desc(dst), strides, holes, pad_l, pad_r),
            attr, eng);
        auto add = [&](int id, const memory::dims& dims, Tag tag, const memory::desc& inner, bool output) {
            k->args.push_back({id, plain_desc(dims, tag), inner, output});
        };
        if (pass == ConvPass::forward) {
            add(DNNL_ARG_SRC, src, Tag::nchw, fwd.src_desc(), false);
            add(DNNL_ARG_WEIGHTS, wei, Tag::oihw, fwd.weights_desc(), false);
            if (s.bias) add(DNNL_ARG_BIAS, bias, Tag::x, bias_md, false);
            add(DNNL_ARG_DST, dst, Tag::nchw, fwd.dst_desc(), true);
            k->kernel = convolution_forward(fwd), k->scratchpad = fwd.scratchpad_desc(), k->name = fwd.impl_info_str();
        } else if (pass == ConvPass::backward_data) {
            const convolution_backward_data::primitive_desc bwd(
                convolution_backward_data::desc(algorithm::convolution_direct, any_desc(src), any_desc(wei),
                                                any_desc(dst), strides, holes, pad_l, pad_r),
                attr, eng, fwd);
            add(DNNL_ARG_WEIGHTS, wei, Tag::oihw, bwd.weights_desc(), false);
            add(DNNL_ARG_DIFF_DST, dst, Tag::nchw, bwd.diff_dst_desc(), false);
            add(DNNL_ARG_DIFF_SRC, src, Tag::nchw, bwd.diff_src_desc(), true);
            k->kernel = convolution_backward_data(bwd), k->scratchpad = bwd.scratchpad_desc(),
            k->name = bwd.impl_info_str();
        } else {
            const convolution_backward_weights::primitive_desc bwd(
                convolution_backward_weights::desc(algorithm::convolution_direct, any_desc(src), any_desc(wei),
                                                   bias_md, any_desc(dst), strides, holes, pad_l, pad_r),
                attr, eng, fwd);
            add(DNNL_ARG_SRC, src, Tag::nchw, bwd.src_desc(), false);
            add(DNNL_ARG_DIFF_DST, dst, Tag::nchw, bwd.diff_dst_desc(), false);
            add(DNNL_ARG_DIFF_WEIGHTS, wei, Tag::oihw, bwd.diff_weights_desc(), true);
            if (s.bias) add(DNNL_ARG_DIFF_BIAS, bias, Tag::x, bias_md, true);
            k->kernel = convolution_backward_weights(bwd), k->scratchpad = bwd.scratchpad_desc(),
            k->name = bwd.impl_info_str();
        }
        if (k->name.rfind("ref", 0) == 0) return nullptr;
        for (Arg& a : k->args) {
            if (a.plain == a.inner) continue;
            a.reorder = a.output ? reorder(reorder::primitive_desc(eng, a.inner, eng, a.plain))
                                 : reorder(reorder::primitive_desc(eng, a.plain, eng, a.inner));
            a.offset = k->bytes;
            k->bytes += aligned(a.inner.get_size());
        }
        k->scratchpad_offset = k->bytes;
        k->bytes += aligned(k->scratchpad.get_size());
    } catch (const dnnl::error&) {
        return nullptr;
    }
    return k;
}

}  // namespace

const ConvKernels* conv_kernels(const ConvSizes& s, ConvPass pass) {
    static std::mutex lock;
    static std::map<std::pair<ConvSizes, ConvPass>, std::unique_ptr<ConvKernels>> made;
    const std::lock_guard held(lock);
    auto [at, fresh] = made.try_emplace({s, pass});
    if (fresh) at->second = make_kernels(s, pass);
    return at->second.get();
}

std::size_t conv_scratch_bytes(const ConvKernels& k) { return k.bytes; }

void conv_forward(const ConvKernels& k, const float* x, const float* w, const float* b, float* y, std::byte* scratch) {
    run(k, {{{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_BIAS, b}, {DNNL_ARG_DST, y}}}, scratch);
}

void conv_backward_data(const ConvKernels& k, const float* w, const float* gy, float* gx, std::byte* scratch) {
    run(k, {{{DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_DST, gy}, {DNNL_ARG_DIFF_SRC, gx}, {0, nullptr}}}, scratch);
}

void conv_backward_weights(const ConvKernels& k, const float* x, const float* gy, float* gw, float* gb,
                           std::byte* scratch) {
    run(k, {{{DNNL_ARG_SRC, x}, {DNNL_ARG_DIFF_DST, gy}, {DNNL_ARG_DIFF_WEIGHTS, gw}, {DNNL_ARG_DIFF_BIAS, gb}}},
        scratch);
}

std::string conv_kernel_name(const ConvKernels& k) { return k.name; }

std::string onednn_version() {
    const dnnl_version_t* v = dnnl_version();
    return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}

std::string onednn_isa() {
    switch (dnnl_get_effective_cpu_isa()) {
        case dnnl_cpu_isa_sse41: return "sse41";
        case dnnl_cpu_isa_avx: return "avx";
        case dnnl_cpu_isa_avx2: return "avx2";
        case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
        case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
        case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
        case dnnl_cpu_isa_avx512_core: return "avx512_core";
        case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
        case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
        case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
        default: return "no JIT";
    }
}

}  // namespace chainrule
