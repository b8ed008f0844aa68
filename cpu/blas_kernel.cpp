#include "cpu/blas_kernel.hpp"

#include <algorithm>
#include <cblas.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <fmt/format.h>
#include <strings.h>
#include <unistd.h>

#include "core/error.hpp"
#include "cpu/gemm.hpp"

namespace chainrule {
namespace {

constexpr const char* kModeVar = "CHAINRULE_BLAS_KERNEL";
constexpr const char* kCoretypeVar = "OPENBLAS_CORETYPE";
constexpr const char* kChosenVar = "CHAINRULE_BLAS_CHOSEN";

bool same_name(std::string_view a, std::string_view b) {
    return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::string names_list() {
    std::string s;
    for (const KernelName& k : known_kernels()) s += (s.empty() ? "" : ", ") + std::string(k.name);
    return s;
}

// The marker a re-run carries, "<what OpenBLAS picked>-><what chainrule set>"; it counts only
// while OPENBLAS_CORETYPE still holds what chainrule set, so a marker inherited by some other
// program does not stop that program's own choice.
struct Marker {
    std::string picked, set;
};
std::optional<Marker> valid_marker(const BlasEnvironment& env) {
    if (!env.chosen || !env.openblas_coretype) return std::nullopt;
    auto arrow = env.chosen->find("->");
    if (arrow == std::string::npos) return std::nullopt;
    Marker m{env.chosen->substr(0, arrow), env.chosen->substr(arrow + 2)};
    if (!same_name(m.set, *env.openblas_coretype)) return std::nullopt;
    return m;
}

// What each kernel needs beyond its level: read off the instructions OpenBLAS 0.3.21's own
// kernels contain (objdump of libopenblas.so: femms in every *_OPTERON and *_OPTERON_SSE3
// GEMM kernel and copy routine; FMA4 in the family 15h kernels).
bool needs_fma4(const KernelName& k) {
    return k.name == "Bulldozer" || k.name == "Piledriver" || k.name == "Steamroller" || k.name == "Excavator";
}
bool needs_3dnow(const KernelName& k) { return k.name == "Opteron" || k.name == "Opteron_SSE3"; }

bool cpu_runs(const CpuFeatures& cpu, const KernelName& k) {
    return k.level <= isa_level(cpu) && (!needs_fma4(k) || cpu.fma4) && (!needs_3dnow(k) || cpu.three_dnow);
}

std::string needs_message(const std::string& what, const KernelName& k, const CpuFeatures& features) {
    const IsaLevel cpu = isa_level(features);
    std::string extra, lacks;
    if (needs_fma4(k)) extra += " and FMA4", lacks += features.fma4 ? "" : " FMA4";
    if (needs_3dnow(k)) extra += " and AMD's 3DNow! (their femms)", lacks += features.three_dnow ? "" : " 3DNow!";
    return fmt::format("{}: OpenBLAS's {} kernels need {}{}, which this CPU does not have (it has {}{}); they would "
                       "stop at the first instruction it lacks. Use one of the names its level allows, or unset the "
                       "variable (docs/performance.md, \"The BLAS kernel\")",
                       what, k.name, level_name(k.level), extra, level_name(cpu),
                       k.level <= cpu && !lacks.empty() ? " but not" + lacks : "");
}

// The program's own file by its real path: started as /proc/self/exe, the new process would
// be named "exe" (the kernel names a process after the file it runs), and ps, top, pgrep and
// killall would no longer find it by its name. argv stays as it was.
std::string own_executable() {
    std::string path(4096, '\0');
    const ssize_t n = readlink("/proc/self/exe", path.data(), path.size());
    if (n <= 0 || std::size_t(n) >= path.size()) return "/proc/self/exe";
    path.resize(std::size_t(n));
    // A binary replaced or deleted since it started is only reachable through /proc.
    if (path.ends_with(" (deleted)") || access(path.c_str(), X_OK) != 0) return "/proc/self/exe";
    return path;
}

}  // namespace

CpuFeatures cpu_features() {
    CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    f.sse3 = __builtin_cpu_supports("sse3");
    f.sse4_2 = __builtin_cpu_supports("sse4.2");
    f.avx = __builtin_cpu_supports("avx");
    f.avx2 = __builtin_cpu_supports("avx2");
    f.fma = __builtin_cpu_supports("fma");
    f.avx512f = __builtin_cpu_supports("avx512f");
    f.avx512bw = __builtin_cpu_supports("avx512bw");
    f.avx512dq = __builtin_cpu_supports("avx512dq");
    f.avx512vl = __builtin_cpu_supports("avx512vl");
    f.fma4 = __builtin_cpu_supports("fma4");
    unsigned a = 0, b = 0, c = 0, d = 0;
    f.three_dnow = __get_cpuid(0x80000001u, &a, &b, &c, &d) && (d & (1u << 31)) != 0;
#endif
    return f;
}

IsaLevel isa_level(const CpuFeatures& f) {
    if (f.avx2 && f.fma && f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl) return IsaLevel::avx512;
    if (f.avx2 && f.fma) return IsaLevel::avx2_fma;
    if (f.avx) return IsaLevel::avx;
    if (f.sse4_2) return IsaLevel::sse4_2;
    if (f.sse3) return IsaLevel::sse3;
    return IsaLevel::sse2;
}

std::string_view level_name(IsaLevel level) {
    switch (level) {
        case IsaLevel::sse2: return "SSE2";
        case IsaLevel::sse3: return "SSE3";
        case IsaLevel::sse4_2: return "SSE4.2";
        case IsaLevel::avx: return "AVX";
        case IsaLevel::avx2_fma: return "AVX2+FMA";
        case IsaLevel::avx512: return "AVX-512 (F, BW, DQ, VL)";
    }
    return "?";
}

std::string_view kernel_for(IsaLevel level) {
    switch (level) {
        case IsaLevel::sse2: return "Opteron";  // decide_blas_kernel takes it only with 3DNow!
        case IsaLevel::sse3: return "Prescott";
        case IsaLevel::sse4_2: return "Nehalem";
        case IsaLevel::avx: return "Sandybridge";
        case IsaLevel::avx2_fma: return "Haswell";
        case IsaLevel::avx512: return "SkylakeX";
    }
    return "Prescott";
}

const std::vector<KernelName>& known_kernels() {
    // Ranked by the instruction set of the kernels' inner loops (OpenBLAS's kernel/x86_64/KERNEL.*
    // files); a CPU family's own kernels (Bobcat, Bulldozer ... Excavator, Zen) rank with what
    // that family has. Katmai, Coppermine, Northwood, Banias and Athlon are 32-bit names that
    // OpenBLAS maps to Prescott on x86-64, so they are not offered.
    static const std::vector<KernelName> table = {
        {"Opteron", IsaLevel::sse2},       {"Prescott", IsaLevel::sse3},      {"Core2", IsaLevel::sse3},
        {"Penryn", IsaLevel::sse3},        {"Dunnington", IsaLevel::sse3},    {"Atom", IsaLevel::sse3},
        {"Opteron_SSE3", IsaLevel::sse3},  {"Barcelona", IsaLevel::sse3},     {"Nano", IsaLevel::sse3},
        {"Bobcat", IsaLevel::sse3},        {"Nehalem", IsaLevel::sse4_2},     {"Sandybridge", IsaLevel::avx},
        {"Bulldozer", IsaLevel::avx},      {"Piledriver", IsaLevel::avx},     {"Steamroller", IsaLevel::avx},
        {"Excavator", IsaLevel::avx2_fma}, {"Haswell", IsaLevel::avx2_fma},   {"Zen", IsaLevel::avx2_fma},
        {"SkylakeX", IsaLevel::avx512},    {"Cooperlake", IsaLevel::avx512},  {"SapphireRapids", IsaLevel::avx512},
    };
    return table;
}

std::optional<KernelName> find_kernel(std::string_view name) {
    for (const KernelName& k : known_kernels())
        if (same_name(k.name, name)) return k;
    return std::nullopt;
}

BlasEnvironment BlasEnvironment::of_process() {
    auto get = [](const char* var) -> std::optional<std::string> {
        const char* v = std::getenv(var);
        return v ? std::optional<std::string>(v) : std::nullopt;
    };
    return {get(kModeVar), get(kCoretypeVar), get(kChosenVar)};
}

BlasDecision decide_blas_kernel(const CpuFeatures& cpu, std::string_view corename, const BlasEnvironment& env) {
    const IsaLevel level = isa_level(cpu);
    const std::string core(corename);
    const std::optional<KernelName> in_effect = find_kernel(corename);
    BlasDecision d;
    d.description = fmt::format("OpenBLAS {} kernels", core);

    // CHAINRULE_BLAS_KERNEL: unset (auto, respecting a user's OPENBLAS_CORETYPE), auto, keep or a name.
    enum class Mode { unset, automatic, keep, named } mode = Mode::unset;
    std::optional<KernelName> wanted;
    if (env.chainrule_kernel && !env.chainrule_kernel->empty()) {
        const std::string& v = *env.chainrule_kernel;
        if (same_name(v, "auto")) mode = Mode::automatic;
        else if (same_name(v, "keep")) mode = Mode::keep;
        else if ((wanted = find_kernel(v))) mode = Mode::named;
        else
            throw InputError(fmt::format("{}={}: expected auto, keep or one of OpenBLAS's x86-64 kernels: {} "
                                         "(docs/performance.md, \"The BLAS kernel\")",
                                         kModeVar, v, names_list()));
        if (wanted && !cpu_runs(cpu, *wanted))
            throw InputError(needs_message(fmt::format("{}={}", kModeVar, v), *wanted, cpu));
    }

    auto rerun = [&](std::string_view kernel) {
        d.action = BlasDecision::Action::rerun;
        d.coretype = std::string(kernel);
        d.chosen = core + "->" + d.coretype;
        d.description = fmt::format("OpenBLAS {} kernels (below this {} CPU; chainrule could not run again with {})",
                                    core, level_name(level), kernel);
        return d;
    };

    // The re-run: never another one; say who chose, and whether OpenBLAS took the name.
    if (std::optional<Marker> m = valid_marker(env)) {
        d.picked_by_openblas = m->picked;
        if (!same_name(core, m->set))
            d.warning = fmt::format("OpenBLAS did not take {}={}: it runs its {} kernels", kCoretypeVar, m->set, core);
        else if (mode == Mode::named)
            d.description += fmt::format(" ({}={}; OpenBLAS picked {})", kModeVar, *env.chainrule_kernel, m->picked);
        else
            d.description += fmt::format(" (chosen by chainrule: OpenBLAS picked {} on this {} CPU)", m->picked,
                                         level_name(level));
        return d;
    }

    if (mode == Mode::named) {
        d.description += fmt::format(" ({}={})", kModeVar, *env.chainrule_kernel);
        return same_name(core, wanted->name) ? d : rerun(wanted->name);
    }

    // A kernel forced above the CPU would stop the program at its first GEMM.
    const bool user_coretype = env.openblas_coretype && !env.openblas_coretype->empty();
    if (in_effect && user_coretype && !cpu_runs(cpu, *in_effect) && mode != Mode::automatic)
        throw InputError(needs_message(fmt::format("{}={}", kCoretypeVar, *env.openblas_coretype), *in_effect, cpu));

    if (!in_effect) {
        d.description += " (a name chainrule does not know: left alone)";
        return d;
    }
    const bool below = in_effect->level < level;
    const std::string_view better = kernel_for(level);
    if (mode == Mode::keep) {
        d.description += fmt::format(" ({}=keep)", kModeVar);
        if (below)
            d.warning = fmt::format("OpenBLAS runs its {} kernels ({}), below this CPU's {}; {}=keep leaves them (unset "
                                    "it to let chainrule choose {}, several times faster)",
                                    core, level_name(in_effect->level), level_name(level), kModeVar, better);
        return d;
    }
    if (mode == Mode::unset && user_coretype) {
        d.description += fmt::format(" ({}={})", kCoretypeVar, *env.openblas_coretype);
        if (below)
            d.warning = fmt::format("{}={} holds OpenBLAS to its {} kernels ({}), below this CPU's {}: GEMMs run several "
                                    "times slower than with {}; unset it, or set {}=auto to let chainrule choose",
                                    kCoretypeVar, *env.openblas_coretype, core, level_name(in_effect->level),
                                    level_name(level), better, kModeVar);
        return d;
    }
    // auto: the kernels of the CPU's level (Zen and Haswell count as one level). Kernels
    // above it that OpenBLAS picked itself are trusted; only a forced name is corrected.
    if (!below && (cpu_runs(cpu, *in_effect) || !user_coretype)) return d;
    // An SSE2-only CPU without 3DNow! has no kernel of its level it can run: OpenBLAS's pick stays.
    if (!cpu_runs(cpu, *find_kernel(better))) return d;
    return rerun(better);
}

void check_blas_products(std::string_view kernel, const GemmFunction<float>& sgemm,
                         const GemmFunction<double>& dgemm) {
    auto check = [&]<class T>(const GemmFunction<T>& product, const char* name) {
        // Integer entries in [-8, 8]: every partial sum is an integer far below 2^24, so
        // exact in float32 whatever the order of the additions.
        const std::int64_t n = 67, m = 61, k = 53;
        std::vector<T> a(std::size_t(n * k)), b(std::size_t(k * m));
        for (std::size_t i = 0; i < a.size(); ++i) a[i] = T(std::int64_t(i * 7 % 17) - 8);
        for (std::size_t i = 0; i < b.size(); ++i) b[i] = T(std::int64_t(i * 5 % 13) - 6);
        for (bool ta : {false, true})
            for (bool tb : {false, true})
                for (T beta : {T(0), T(1)}) {
                    std::vector<T> c(std::size_t(n * m), T(1)), want(c.size());
                    for (std::int64_t i = 0; i < n; ++i)
                        for (std::int64_t j = 0; j < m; ++j) {
                            T s = beta * c[std::size_t(i * m + j)];
                            for (std::int64_t p = 0; p < k; ++p)
                                s += a[std::size_t(ta ? p * n + i : i * k + p)] * b[std::size_t(tb ? j * k + p : p * m + j)];
                            want[std::size_t(i * m + j)] = s;
                        }
                    product(ta, tb, n, m, k, a.data(), b.data(), c.data(), beta);
                    auto bad = std::mismatch(c.begin(), c.end(), want.begin());
                    if (bad.first == c.end()) continue;
                    const std::int64_t at = bad.first - c.begin();
                    throw RunError(fmt::format(
                        "OpenBLAS's {} kernels compute a wrong {} ({}x{}x{}{}{}, beta {}): C[{},{}] = {} instead of {}. Set "
                        "{}=keep to use the kernels OpenBLAS picks itself, or {}=Prescott (or OPENBLAS_CORETYPE) for "
                        "other ones (docs/performance.md, \"The BLAS kernel\")",
                        kernel, name, n, m, k, ta ? ", A transposed" : "", tb ? ", B transposed" : "", beta, at / m,
                        at % m, *bad.first, *bad.second, kModeVar, kModeVar));
                }
    };
    check(sgemm, "sgemm");
    check(dgemm, "dgemm");
}

void check_blas_kernel() {
    check_blas_products(
        openblas_get_corename(), [](auto... args) { gemm<float>(args...); },
        [](auto... args) { gemm<double>(args...); });
}

std::string ensure_blas_kernel(char** argv) {
    BlasDecision d = decide_blas_kernel(cpu_features(), openblas_get_corename(), BlasEnvironment::of_process());
    if (d.action == BlasDecision::Action::rerun) {
        // OpenBLAS read OPENBLAS_CORETYPE when it loaded: only a fresh start of the program changes it.
        const std::optional<std::string> before = BlasEnvironment::of_process().openblas_coretype;
        if (setenv(kCoretypeVar, d.coretype.c_str(), 1) == 0 && setenv(kChosenVar, d.chosen.c_str(), 1) == 0)
            execv(own_executable().c_str(), argv);
        const int err = errno;
        fmt::print(stderr, "warning: chainrule could not start itself again with {}={}: {}\n", kCoretypeVar,
                   d.coretype, std::strerror(err));
        unsetenv(kChosenVar);
        if (before) setenv(kCoretypeVar, before->c_str(), 1);
        else unsetenv(kCoretypeVar);
    }
    if (!d.warning.empty()) fmt::print(stderr, "warning: {}\n", d.warning);
    check_blas_kernel();
    return d.description;
}

std::string blas_kernel_description() {
    try {
        return decide_blas_kernel(cpu_features(), openblas_get_corename(), BlasEnvironment::of_process()).description;
    } catch (const InputError&) {
        return fmt::format("OpenBLAS {} kernels", openblas_get_corename());
    }
}

std::string cpu_model_name() {
    std::ifstream in("/proc/cpuinfo");
    std::string line, name, family, model;
    auto value = [&] { return line.substr(std::min(line.size(), line.find(':') + 2)); };
    while (std::getline(in, line) && line.find_first_not_of(" \t") != std::string::npos) {  // the first CPU
        if (line.rfind("model name", 0) == 0) name = value();
        else if (line.rfind("cpu family", 0) == 0) family = value();
        else if (line.rfind("model\t", 0) == 0 || line.rfind("model ", 0) == 0) model = value();
    }
    if (name.empty()) return "unknown CPU";
    return family.empty() ? name : fmt::format("{} (family {}, model {})", name, family, model);
}

}  // namespace chainrule
