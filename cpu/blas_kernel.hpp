// Which OpenBLAS kernels run chainrule's GEMMs, and making sure they are not below what the
// CPU can run (docs/performance.md, "The BLAS kernel").
//
// OpenBLAS built with DYNAMIC_ARCH picks its kernels once, when the library loads, from the
// CPU's family and model numbers; a CPU newer than the OpenBLAS release falls back to the
// generic Prescott (SSE3) kernels, 3-4x slower. chainrule compares the kernel in effect with
// the CPU's level read from its feature bits and, when the kernel is below it, runs the
// program again with OPENBLAS_CORETYPE set: the only way to change the choice is before the
// library loads.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chainrule {

// The x86-64 instruction set levels OpenBLAS's kernels are written for, lowest first.
enum class IsaLevel { sse2, sse3, sse4_2, avx, avx2_fma, avx512 };

struct CpuFeatures {
    bool sse3 = false, sse4_2 = false, avx = false, avx2 = false, fma = false;
    bool avx512f = false, avx512bw = false, avx512dq = false, avx512vl = false;
    bool fma4 = false;  // AMD family 15h only; its kernels (Bulldozer ... Excavator) use it
    // AMD's 3DNow! (CPUID 0x80000001 EDX bit 31), on AMD CPUs up to family 10h only: OpenBLAS's
    // Opteron and Opteron_SSE3 kernels end their loops with its femms, which no Intel CPU and
    // no AMD CPU since Bulldozer runs (SIGILL).
    bool three_dnow = false;
};

// This CPU's features as the compiler's runtime check sees them (it also checks that the
// OS saves the wider registers); all false off x86-64.
CpuFeatures cpu_features();
IsaLevel isa_level(const CpuFeatures& f);
// "AVX2+FMA", "AVX-512 (F, BW, DQ, VL)", ...
std::string_view level_name(IsaLevel level);
// The OpenBLAS kernels chainrule asks for on a CPU of this level: "Haswell", "SkylakeX", ...
std::string_view kernel_for(IsaLevel level);

struct KernelName {
    std::string_view name;  // as OpenBLAS spells it
    IsaLevel level;         // what its kernels need
};
// The x86-64 kernels of OpenBLAS 0.3.21 built with DYNAMIC_ARCH (plus SapphireRapids, new in
// 0.3.22), each with the instruction set its kernels use.
const std::vector<KernelName>& known_kernels();
// The entry for a name, compared without case as OpenBLAS does; nullopt when unknown.
std::optional<KernelName> find_kernel(std::string_view name);

// The environment variables that steer the choice; nullopt when unset.
struct BlasEnvironment {
    std::optional<std::string> chainrule_kernel;  // CHAINRULE_BLAS_KERNEL: auto, keep or a kernel
    std::optional<std::string> openblas_coretype;  // OPENBLAS_CORETYPE
    std::optional<std::string> chosen;             // CHAINRULE_BLAS_CHOSEN, set before a re-run
    static BlasEnvironment of_process();
};

// What to do about the kernel in effect. Bad values of the variables (an unknown name, a
// kernel this CPU cannot run) throw InputError naming the variable.
struct BlasDecision {
    enum class Action { keep, rerun } action = Action::keep;
    std::string coretype;  // rerun: the OPENBLAS_CORETYPE to run with
    std::string chosen;    // rerun: the CHAINRULE_BLAS_CHOSEN marker to set
    std::string warning;   // for stderr, empty when all is well
    std::string description;  // keep: the kernel in words, for train's first line
    std::string picked_by_openblas;  // in a re-run: what OpenBLAS had picked before it
};
BlasDecision decide_blas_kernel(const CpuFeatures& cpu, std::string_view corename, const BlasEnvironment& env);

// A small sgemm and dgemm through cpu/gemm.hpp (plain and transposed) against a triple
// loop, on integer-valued entries so that every sum is exact; RunError naming the kernel
// when they differ.
void check_blas_kernel();
template <class T>
using GemmFunction = std::function<void(bool, bool, std::int64_t, std::int64_t, std::int64_t, const T*, const T*, T*, T)>;
// The same check of any product with cpu/gemm.hpp's signature (tests give it wrong ones).
void check_blas_products(std::string_view kernel, const GemmFunction<float>& sgemm, const GemmFunction<double>& dgemm);

// For main() of a program that embeds chainrule, before anything else: decides, re-runs the
// program (its own file, found through /proc/self/exe, so that it keeps its name; same argv) with the better kernel when that is the decision,
// prints the warning if any on stderr, checks the kernel and returns its description, e.g.
// "OpenBLAS Haswell kernels (chosen by chainrule: OpenBLAS picked Prescott on this AVX2+FMA CPU)".
// Throws InputError for bad variables, RunError when the check fails or the re-run cannot start.
std::string ensure_blas_kernel(char** argv);

// The description of the kernel in effect, for a line of output (reads the environment).
std::string blas_kernel_description();

// The CPU as `lscpu` names it, with its family and model numbers (which OpenBLAS chooses its
// kernels by), e.g. "AMD EPYC (family 26, model 2)"; from /proc/cpuinfo, "unknown CPU" without
// it. Benchmarks print it first so that no figure is read without its machine.
std::string cpu_model_name();

}  // namespace chainrule
