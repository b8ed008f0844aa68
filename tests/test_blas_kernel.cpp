// The choice of OpenBLAS's kernels (cpu/blas_kernel.hpp): the decision on fake CPUs and
// environments, the check of a product, and the command line with the variables set.
#define BOOST_TEST_MODULE blas_kernel
#include <boost/test/unit_test.hpp>
#include <fmt/format.h>

#include "core/error.hpp"
#include "cpu/blas_kernel.hpp"
#include "cpu/gemm.hpp"
#include "testing.hpp"

#include <chrono>
#include <cmath>
#include <limits>
#include <vector>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace chainrule;
using namespace chainrule::testing;
using Action = BlasDecision::Action;

namespace chainrule {
std::ostream& operator<<(std::ostream& o, IsaLevel level) { return o << level_name(level); }
}  // namespace chainrule

namespace {

CpuFeatures sse3() { return {.sse3 = true}; }
CpuFeatures avx2() {
    return {.sse3 = true, .sse4_2 = true, .avx = true, .avx2 = true, .fma = true};
}
CpuFeatures avx512() {
    CpuFeatures f = avx2();
    f.avx512f = f.avx512bw = f.avx512dq = f.avx512vl = true;
    return f;
}

BlasEnvironment env(std::optional<std::string> mode, std::optional<std::string> coretype = std::nullopt,
                    std::optional<std::string> chosen = std::nullopt) {
    return {std::move(mode), std::move(coretype), std::move(chosen)};
}
const BlasEnvironment none = env(std::nullopt);

std::string input_error(const CpuFeatures& cpu, std::string_view core, const BlasEnvironment& e) {
    return message_of<InputError>([&] { decide_blas_kernel(cpu, core, e); });
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_level_comes_from_the_feature_bits) {
    BOOST_TEST(isa_level({}) == IsaLevel::sse2);
    BOOST_TEST(isa_level(sse3()) == IsaLevel::sse3);
    BOOST_TEST(isa_level(avx2()) == IsaLevel::avx2_fma);
    BOOST_TEST(isa_level(avx512()) == IsaLevel::avx512);
    CpuFeatures no_vl = avx512();
    no_vl.avx512vl = false;  // AVX-512 F alone (Xeon Phi) is not SkylakeX's level
    BOOST_TEST(isa_level(no_vl) == IsaLevel::avx2_fma);
    CpuFeatures no_fma = avx2();
    no_fma.fma = false;
    BOOST_TEST(isa_level(no_fma) == IsaLevel::avx);
    BOOST_TEST(kernel_for(IsaLevel::avx512) == "SkylakeX");
    BOOST_TEST(kernel_for(IsaLevel::avx2_fma) == "Haswell");
    BOOST_TEST(kernel_for(IsaLevel::avx) == "Sandybridge");
    BOOST_TEST(kernel_for(IsaLevel::sse4_2) == "Nehalem");
    BOOST_TEST(kernel_for(IsaLevel::sse3) == "Prescott");
}

BOOST_AUTO_TEST_CASE(kernel_names_are_ranked_and_compared_without_case) {
    BOOST_TEST(known_kernels().size() == 21u);
    BOOST_REQUIRE(find_kernel("zen"));
    BOOST_TEST(find_kernel("zen")->name == "Zen");
    BOOST_TEST(find_kernel("Zen")->level == find_kernel("Haswell")->level);
    BOOST_TEST(find_kernel("Prescott")->level < find_kernel("Nehalem")->level);
    BOOST_TEST(find_kernel("Nehalem")->level < find_kernel("Sandybridge")->level);
    BOOST_TEST(find_kernel("Sandybridge")->level < find_kernel("Haswell")->level);
    BOOST_TEST(find_kernel("Haswell")->level < find_kernel("SKYLAKEX")->level);
    BOOST_TEST(!find_kernel("Katmai"));  // a 32-bit name OpenBLAS maps to Prescott on x86-64
    BOOST_TEST(!find_kernel("Haswel"));
    BOOST_TEST(!find_kernel(""));
}

BOOST_AUTO_TEST_CASE(the_generic_kernel_on_a_better_cpu_is_replaced_by_the_cpus_own) {
    BlasDecision d = decide_blas_kernel(avx2(), "Prescott", none);
    BOOST_TEST((d.action == Action::rerun));
    BOOST_TEST(d.coretype == "Haswell");
    BOOST_TEST(d.chosen == "Prescott->Haswell");
    BOOST_TEST(d.warning.empty());
    d = decide_blas_kernel(avx512(), "Prescott", none);  // the Xeon
    BOOST_TEST((d.action == Action::rerun));
    BOOST_TEST(d.coretype == "SkylakeX");
    d = decide_blas_kernel(avx512(), "Haswell", none);
    BOOST_TEST(d.coretype == "SkylakeX");
    d = decide_blas_kernel(avx2(), "Nehalem", env("auto"));
    BOOST_TEST(d.coretype == "Haswell");
}

BOOST_AUTO_TEST_CASE(kernels_of_the_cpus_level_are_kept) {
    for (const char* core : {"Zen", "Haswell"}) {
        BlasDecision d = decide_blas_kernel(avx2(), core, none);
        BOOST_TEST((d.action == Action::keep), core);
        BOOST_TEST(d.description == fmt::format("OpenBLAS {} kernels", core));
        BOOST_TEST(d.warning.empty());
    }
    BOOST_TEST((decide_blas_kernel(sse3(), "Prescott", env("auto")).action == Action::keep));
    BOOST_TEST((decide_blas_kernel(avx512(), "Cooperlake", none).action == Action::keep));
    // Above the level read from the bits, but OpenBLAS's own pick: trusted.
    BOOST_TEST((decide_blas_kernel(avx2(), "SkylakeX", none).action == Action::keep));
    BlasDecision unknown = decide_blas_kernel(avx2(), "Loongson3R4", none);
    BOOST_TEST((unknown.action == Action::keep));
    BOOST_TEST(unknown.description == "OpenBLAS Loongson3R4 kernels (a name chainrule does not know: left alone)");
}

BOOST_AUTO_TEST_CASE(a_users_openblas_coretype_is_kept_with_a_warning_unless_auto_is_said) {
    BlasDecision d = decide_blas_kernel(avx2(), "Prescott", env(std::nullopt, "Prescott"));
    BOOST_TEST((d.action == Action::keep));
    BOOST_TEST(d.description == "OpenBLAS Prescott kernels (OPENBLAS_CORETYPE=Prescott)");
    BOOST_TEST(d.warning == "OPENBLAS_CORETYPE=Prescott holds OpenBLAS to its Prescott kernels (SSE3), below this "
                            "CPU's AVX2+FMA: GEMMs run several times slower than with Haswell; unset it, or set "
                            "CHAINRULE_BLAS_KERNEL=auto to let chainrule choose");
    // An empty CHAINRULE_BLAS_KERNEL is the same as none.
    BOOST_TEST((decide_blas_kernel(avx2(), "Prescott", env("", "Prescott")).action == Action::keep));
    // The user's own pick at the CPU's level: no word.
    BOOST_TEST(decide_blas_kernel(avx2(), "Zen", env(std::nullopt, "zen")).warning.empty());
    d = decide_blas_kernel(avx2(), "Prescott", env("AUTO", "Prescott"));
    BOOST_TEST((d.action == Action::rerun));
    BOOST_TEST(d.coretype == "Haswell");
    BOOST_TEST(d.chosen == "Prescott->Haswell");
}

BOOST_AUTO_TEST_CASE(keep_never_reruns_and_says_what_it_leaves) {
    BlasDecision d = decide_blas_kernel(avx512(), "Prescott", env("keep"));
    BOOST_TEST((d.action == Action::keep));
    BOOST_TEST(d.description == "OpenBLAS Prescott kernels (CHAINRULE_BLAS_KERNEL=keep)");
    BOOST_TEST(d.warning == "OpenBLAS runs its Prescott kernels (SSE3), below this CPU's AVX-512 (F, BW, DQ, VL); "
                            "CHAINRULE_BLAS_KERNEL=keep leaves them (unset it to let chainrule choose SkylakeX, "
                            "several times faster)");
    BOOST_TEST(decide_blas_kernel(avx2(), "Zen", env("Keep")).warning.empty());
}

BOOST_AUTO_TEST_CASE(a_named_kernel_is_used_even_over_openblas_coretype) {
    BlasDecision d = decide_blas_kernel(avx2(), "Zen", env("prescott"));
    BOOST_TEST((d.action == Action::rerun));
    BOOST_TEST(d.coretype == "Prescott");  // OpenBLAS's spelling
    BOOST_TEST(d.chosen == "Zen->Prescott");
    d = decide_blas_kernel(avx2(), "Zen", env("Sandybridge", "Zen"));
    BOOST_TEST(d.coretype == "Sandybridge");
    d = decide_blas_kernel(avx2(), "Prescott", env("Prescott"));  // already in effect
    BOOST_TEST((d.action == Action::keep));
    BOOST_TEST(d.description == "OpenBLAS Prescott kernels (CHAINRULE_BLAS_KERNEL=Prescott)");
}

BOOST_AUTO_TEST_CASE(the_rerun_never_reruns_and_names_who_chose) {
    BlasDecision d = decide_blas_kernel(avx2(), "Haswell", env(std::nullopt, "Haswell", "Prescott->Haswell"));
    BOOST_TEST((d.action == Action::keep));
    BOOST_TEST(d.description == "OpenBLAS Haswell kernels (chosen by chainrule: OpenBLAS picked Prescott on this "
                                "AVX2+FMA CPU)");
    BOOST_TEST(d.picked_by_openblas == "Prescott");
    BOOST_TEST(d.warning.empty());
    d = decide_blas_kernel(avx2(), "Prescott", env("Prescott", "Prescott", "Zen->Prescott"));
    BOOST_TEST((d.action == Action::keep));
    BOOST_TEST(d.description == "OpenBLAS Prescott kernels (CHAINRULE_BLAS_KERNEL=Prescott; OpenBLAS picked Zen)");
    // OpenBLAS did not take the name (a build without those kernels): said, and still no loop.
    d = decide_blas_kernel(avx512(), "Haswell", env(std::nullopt, "Cooperlake", "Prescott->Cooperlake"));
    BOOST_TEST((d.action == Action::keep));
    BOOST_TEST(d.warning == "OpenBLAS did not take OPENBLAS_CORETYPE=Cooperlake: it runs its Haswell kernels");
    BOOST_TEST(d.description == "OpenBLAS Haswell kernels");
}

BOOST_AUTO_TEST_CASE(a_marker_without_its_coretype_is_stale) {
    // Inherited by a program whose OPENBLAS_CORETYPE was unset or changed since: ignored.
    BlasDecision d = decide_blas_kernel(avx2(), "Prescott", env(std::nullopt, std::nullopt, "Prescott->Haswell"));
    BOOST_TEST((d.action == Action::rerun));
    d = decide_blas_kernel(avx2(), "Prescott", env("auto", "Prescott", "Prescott->Haswell"));
    BOOST_TEST((d.action == Action::rerun));
    d = decide_blas_kernel(avx2(), "Prescott", env("auto", "Prescott", "no arrow"));
    BOOST_TEST((d.action == Action::rerun));
}

BOOST_AUTO_TEST_CASE(bad_values_are_input_errors_naming_the_variable) {
    const std::string bad = input_error(avx2(), "Zen", env("nonsense"));
    CHECK_HAS(bad, "CHAINRULE_BLAS_KERNEL=nonsense: expected auto, keep or one of OpenBLAS's x86-64 kernels: "
                   "Opteron, Prescott, Core2,");
    CHECK_HAS(bad, "Haswell, Zen, SkylakeX, Cooperlake, SapphireRapids (docs/performance.md");
    // Kernels the CPU cannot run stop at their first instruction: refused before.
    BOOST_TEST(input_error(avx2(), "Zen", env("SkylakeX")) ==
               "CHAINRULE_BLAS_KERNEL=SkylakeX: OpenBLAS's SkylakeX kernels need AVX-512 (F, BW, DQ, VL), which this "
               "CPU does not have (it has AVX2+FMA); they would stop at the first instruction it lacks. Use one of "
               "the names its level allows, or unset the variable (docs/performance.md, \"The BLAS kernel\")");
    CHECK_HAS(input_error(avx2(), "Zen", env("Bulldozer")), "Bulldozer kernels need AVX and FMA4, which this CPU");
    CpuFeatures amd15h = avx2();
    amd15h.fma4 = true;
    BOOST_TEST((decide_blas_kernel(amd15h, "Excavator", env("Bulldozer")).action == Action::rerun));
    CHECK_HAS(input_error(avx2(), "SkylakeX", env(std::nullopt, "SkylakeX")),
              "OPENBLAS_CORETYPE=SkylakeX: OpenBLAS's SkylakeX kernels need AVX-512");
    CHECK_HAS(input_error(avx2(), "SkylakeX", env("keep", "SkylakeX")), "OPENBLAS_CORETYPE=SkylakeX: ");
    // OpenBLAS's Opteron kernels end in 3DNow!'s femms: SIGILL on every Intel CPU and on AMD
    // since Bulldozer, whatever their level. Refused by name and as OPENBLAS_CORETYPE.
    for (const char* name : {"Opteron", "Opteron_SSE3", "opteron"}) {
        BOOST_TEST(input_error(avx512(), "SkylakeX", env(name)) ==
                   fmt::format("CHAINRULE_BLAS_KERNEL={}: OpenBLAS's {} kernels need {} and AMD's 3DNow! (their femms), "
                               "which this CPU does not have (it has AVX-512 (F, BW, DQ, VL) but not 3DNow!); they would stop at the first instruction it lacks. Use one of the names "
                               "its level allows, or unset the variable (docs/performance.md, \"The BLAS kernel\")",
                               name, find_kernel(name)->name, name == std::string("Opteron") || name == std::string("opteron") ? "SSE2" : "SSE3"));
        CHECK_HAS(input_error(avx2(), "Opteron", env(std::nullopt, name)),
                  fmt::format("OPENBLAS_CORETYPE={}: OpenBLAS's", name));
        // auto replaces it with the CPU's own.
        BOOST_TEST((decide_blas_kernel(avx2(), "Opteron", env("auto", name)).action == Action::rerun));
    }
    CpuFeatures k8 = sse3();
    k8.three_dnow = true;  // an Athlon 64 of family 10h runs them
    BOOST_TEST((decide_blas_kernel(k8, "Prescott", env("Opteron_SSE3")).action == Action::rerun));
    // An SSE2-only CPU without 3DNow! keeps OpenBLAS's own pick rather than be given Opteron's.
    BOOST_TEST((decide_blas_kernel({}, "Prescott", env("auto")).action == Action::keep));
    // auto corrects it instead.
    BlasDecision d = decide_blas_kernel(avx2(), "SkylakeX", env("auto", "SkylakeX"));
    BOOST_TEST((d.action == Action::rerun));
    BOOST_TEST(d.coretype == "Haswell");
}

BOOST_AUTO_TEST_CASE(the_kernels_in_effect_pass_the_check) {
    BOOST_CHECK_NO_THROW(check_blas_kernel());
}

BOOST_AUTO_TEST_CASE(a_wrong_product_fails_the_check_with_the_place) {
    // One entry off by one: the check must see it, for each precision on its own.
    GemmFunction<float> wrong_s = [](bool ta, bool tb, std::int64_t n, std::int64_t m, std::int64_t k, const float* a,
                                     const float* b, float* c, float beta) {
        gemm<float>(ta, tb, n, m, k, a, b, c, beta);
        if (tb) c[5 * m + 7] += 1;
    };
    GemmFunction<double> wrong_d = [](bool ta, bool tb, std::int64_t n, std::int64_t m, std::int64_t k,
                                      const double* a, const double* b, double* c, double beta) {
        gemm<double>(ta, tb, n, m, k, a, b, c, beta);
        if (ta && beta == 1) c[0] -= 1;
    };
    const GemmFunction<float> right_s = [](auto... args) { gemm<float>(args...); };
    const GemmFunction<double> right_d = [](auto... args) { gemm<double>(args...); };
    BOOST_CHECK_NO_THROW(check_blas_products("Fake", right_s, right_d));
    std::string s = message_of<RunError>([&] { check_blas_products("Fake", wrong_s, right_d); });
    CHECK_HAS(s, "OpenBLAS's Fake kernels compute a wrong sgemm (67x61x53, B transposed, beta 0): C[5,7] = ");
    CHECK_HAS(s, "Set CHAINRULE_BLAS_KERNEL=keep to use the kernels OpenBLAS picks itself, or "
                 "CHAINRULE_BLAS_KERNEL=Prescott (or OPENBLAS_CORETYPE) for other ones");
    std::string d = message_of<RunError>([&] { check_blas_products("Fake", right_s, wrong_d); });
    CHECK_HAS(d, "wrong dgemm (67x61x53, A transposed, beta 1): C[0,0] = ");
    // The numbers of the message: the product's and the plain loop's, one apart.
    const auto eq = s.find("] = "), inst = s.find(" instead of ");
    BOOST_REQUIRE(eq != std::string::npos && inst != std::string::npos);
    const double got = std::stod(s.substr(eq + 4)), want = std::stod(s.substr(inst + 12));
    BOOST_TEST(got - want == 1.0);
}

// ---- the command line: the choice happens before OpenBLAS runs a single kernel -----------

namespace {

const IsaLevel here = isa_level(cpu_features());

// The variables exactly as given, whatever the shell running the tests has set.
const std::string clean = "env -u CHAINRULE_BLAS_KERNEL -u OPENBLAS_CORETYPE -u CHAINRULE_BLAS_CHOSEN ";

CommandResult train_with(const std::string& vars) {
    return run_command(clean + vars + " " + chainrule_binary() + " train " + source_root() +
                       "/models/iris_neuron.json --epochs 1 --no-progress");
}
std::string first_line(const std::string& out) { return out.substr(0, out.find('\n')); }
std::size_t count_of(const std::string& text, const std::string& part) {
    std::size_t n = 0;
    for (auto p = text.find(part); p != std::string::npos; p = text.find(part, p + 1)) ++n;
    return n;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_users_slow_coretype_is_kept_and_warned_about) {
    CommandResult r = train_with("OPENBLAS_CORETYPE=Prescott");
    BOOST_REQUIRE(r.code == 0);
    CHECK_HAS(first_line(r.out), "test samples; ");
    CHECK_HAS(first_line(r.out), "; OpenBLAS Prescott kernels (OPENBLAS_CORETYPE=Prescott)");
    if (here > IsaLevel::sse3)
        CHECK_HAS(r.err, fmt::format("warning: OPENBLAS_CORETYPE=Prescott holds OpenBLAS to its Prescott kernels "
                                     "(SSE3), below this CPU's {}: GEMMs run several times slower than with {};",
                                     level_name(here), kernel_for(here)));
}

BOOST_AUTO_TEST_CASE(auto_overrides_the_slow_coretype_by_running_once_more) {
    CommandResult r = train_with("OPENBLAS_CORETYPE=Prescott CHAINRULE_BLAS_KERNEL=auto");
    BOOST_REQUIRE(r.code == 0);
    if (here > IsaLevel::sse3)
        CHECK_HAS(first_line(r.out), fmt::format("; OpenBLAS {} kernels (chosen by chainrule: OpenBLAS picked "
                                                 "Prescott on this {} CPU)",
                                                 kernel_for(here), level_name(here)));
    BOOST_TEST(r.err.find("warning") == std::string::npos, r.err);
    BOOST_TEST(count_of(r.out, "test samples;") == 1u);  // one run's output, not two
}

BOOST_AUTO_TEST_CASE(the_marker_of_a_rerun_stops_another_one) {
    // As the re-run sees its environment: however slow the kernel, no third start.
    CommandResult r = train_with("OPENBLAS_CORETYPE=Prescott CHAINRULE_BLAS_CHOSEN='Zen->Prescott'");
    BOOST_REQUIRE(r.code == 0);
    CHECK_HAS(first_line(r.out), fmt::format("; OpenBLAS Prescott kernels (chosen by chainrule: OpenBLAS picked Zen "
                                             "on this {} CPU)",
                                             level_name(here)));
    BOOST_TEST(r.err.empty(), r.err);
}

BOOST_AUTO_TEST_CASE(keep_and_a_named_kernel_from_the_command_line) {
    CommandResult keep = train_with("OPENBLAS_CORETYPE=Prescott CHAINRULE_BLAS_KERNEL=keep");
    BOOST_REQUIRE(keep.code == 0);
    CHECK_HAS(first_line(keep.out), "; OpenBLAS Prescott kernels (CHAINRULE_BLAS_KERNEL=keep)");
    BOOST_TEST(keep.out.find("chosen by chainrule") == std::string::npos);
    if (here > IsaLevel::sse3) CHECK_HAS(keep.err, "warning: OpenBLAS runs its Prescott kernels (SSE3), below this CPU's");
    CommandResult named = train_with("CHAINRULE_BLAS_KERNEL=Prescott");
    BOOST_REQUIRE(named.code == 0);
    CHECK_HAS(first_line(named.out), "; OpenBLAS Prescott kernels (CHAINRULE_BLAS_KERNEL=Prescott");
    BOOST_TEST(named.err.empty(), named.err);
}

BOOST_AUTO_TEST_CASE(a_bad_variable_exits_2_before_any_command) {
    CommandResult r = run_command(clean + "CHAINRULE_BLAS_KERNEL=nonsense " + chainrule_binary() + " ops");
    BOOST_TEST(r.code == 2);
    BOOST_TEST(r.out.empty());
    CHECK_HAS(r.err, "error: CHAINRULE_BLAS_KERNEL=nonsense: expected auto, keep or one of OpenBLAS's x86-64 kernels: ");
    CHECK_HAS(r.err, "Prescott, ");
    if (!cpu_features().three_dnow) {  // every CPU made since 2011: the kernels would die of SIGILL
        for (const char* var : {"CHAINRULE_BLAS_KERNEL=Opteron ", "OPENBLAS_CORETYPE=Opteron_SSE3 "}) {
            CommandResult opteron = run_command(clean + var + chainrule_binary() + " grad " + source_root() +
                                                "/models/worked_example.json");
            BOOST_TEST(opteron.code == 2, var << opteron.err);
            CHECK_HAS(opteron.err, "kernels need SSE");
            CHECK_HAS(opteron.err, "and AMD's 3DNow! (their femms), which this CPU does not have");
        }
    }
    if (here < IsaLevel::avx512) {
        CommandResult above = run_command(clean + "CHAINRULE_BLAS_KERNEL=SkylakeX " + chainrule_binary() + " ops");
        BOOST_TEST(above.code == 2);
        CHECK_HAS(above.err, "error: CHAINRULE_BLAS_KERNEL=SkylakeX: OpenBLAS's SkylakeX kernels need AVX-512");
    }
}

namespace {

// The file a process's /proc entry names, or "" once the process is gone.
std::string proc_file(pid_t pid, const char* name) {
    std::ifstream f(fmt::format("/proc/{}/{}", pid, name), std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_rerun_keeps_the_process_name_and_its_arguments) {
    // OpenBLAS held to Prescott and the automatic choice on: chainrule starts itself again with
    // the CPU's kernels. ps, top, pgrep and killall must still find it as `chainrule`.
    CpuFeatures cpu = cpu_features();
    if (isa_level(cpu) <= IsaLevel::sse3) {
        BOOST_TEST_MESSAGE("this CPU's own kernels are Prescott's: no re-run to look at");
        return;
    }
    int in[2];
    BOOST_REQUIRE(pipe(in) == 0);
    const std::string binary = chainrule_binary();
    const std::string model = source_root() + "/models/worked_example.json";
    pid_t pid = fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        close(in[1]);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        setenv("OPENBLAS_CORETYPE", "Prescott", 1);
        setenv("CHAINRULE_BLAS_KERNEL", "auto", 1);
        unsetenv("CHAINRULE_BLAS_CHOSEN");
        // The REPL waits for a line on stdin: the process lives until the pipe closes.
        execl(binary.c_str(), binary.c_str(), "step", model.c_str(), "--interactive", static_cast<char*>(nullptr));
        _exit(127);
    }
    close(in[0]);
    // Once it runs again its environment holds the marker of the re-run.
    std::string environ;
    for (int i = 0; i < 500 && environ.find("CHAINRULE_BLAS_CHOSEN=") == std::string::npos; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        environ = proc_file(pid, "environ");
    }
    const std::string comm = proc_file(pid, "comm"), cmdline = proc_file(pid, "cmdline");
    close(in[1]);
    int status = 0;
    waitpid(pid, &status, 0);
    BOOST_TEST(environ.find("CHAINRULE_BLAS_CHOSEN=") != std::string::npos, "the process did not run again");
    BOOST_TEST(comm == "chainrule\n");
    const std::string want = binary + '\0' + "step" + '\0' + model + '\0' + "--interactive" + '\0';
    BOOST_TEST(cmdline == want);
    BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0), "status " << status);
}

// A large GEMM is cut into parts by its shape alone (cpu/gemm.hpp): tall ones by C's rows, wide
// ones by its columns, small ones not at all.
BOOST_AUTO_TEST_CASE(a_gemm_is_cut_into_parts_by_its_shape_alone) {
    BOOST_TEST(gemm_parts(1000, 100, 784) == 2);  // the lecture's x·W1: 78 M multiply-adds
    BOOST_TEST(gemm_parts(784, 100, 1000) == 2);  // its xᵀ·δ1
    BOOST_TEST(gemm_parts(1536, 256, 64) == 4);   // a GPT block's [N·T,C]·[C,4C]
    BOOST_TEST(gemm_parts(1000, 10, 100) == 1);   // 1 M: one call
    BOOST_TEST(gemm_parts(64, 2048, 64) == 2);    // wide: by columns, each part 4.2 M
    BOOST_TEST(gemm_parts(400, 100, 100000) == 1);  // 200 rows a part would be too few
    BOOST_TEST(gemm_parts(8192, 8192, 8192) == 16);
}

// The parts give the same bits on any thread count, with helpers or without, in both
// precisions, for every transposition, cut by rows and by columns; and the product is right
// (against a plain loop in long double, within the textbook bound 2·k·u·Σ|a·b|).
template <class T>
void parts_give_the_same_bits_on_any_thread_count() {
    struct Case {
        bool ta, tb;
        std::int64_t n, m, k;
    };
    const std::vector<Case> cases = {{false, false, 1000, 100, 784}, {true, false, 784, 100, 1000},
                                     {false, true, 1000, 130, 100},  {true, true, 600, 100, 200},
                                     {false, false, 64, 2048, 64},   {true, true, 64, 2048, 64}};
    for (const Case& c : cases) {
        BOOST_TEST_REQUIRE(gemm_parts(c.n, c.m, c.k) > 1);
        std::vector<T> a(std::size_t(c.n * c.k)), b(std::size_t(c.k * c.m));
        for (std::size_t i = 0; i < a.size(); ++i) a[i] = T(int(i * 7919 % 201) - 100) / T(37);
        for (std::size_t i = 0; i < b.size(); ++i) b[i] = T(int(i * 104729 % 199) - 99) / T(41);
        auto product = [&](Workers* workers) {
            std::vector<T> out(std::size_t(c.n * c.m), T(0.5));  // beta 1 adds onto it
            gemm<T>(c.ta, c.tb, c.n, c.m, c.k, a.data(), b.data(), out.data(), T(1), workers);
            return out;
        };
        const std::vector<T> alone = product(nullptr);
        for (int threads : {1, 2, 3}) {
            Workers workers(threads);
            BOOST_TEST((product(&workers) == alone), threads << " threads, case " << c.n << "x" << c.m << "x" << c.k);
        }
        const std::int64_t lda = c.ta ? c.n : c.k, ldb = c.tb ? c.k : c.m;
        int wrong = 0;
        for (std::int64_t i = 0; i < c.n; i += 37)
            for (std::int64_t j = 0; j < c.m; j += 11) {
                long double sum = 0.5L, size = 0.5L;
                for (std::int64_t p = 0; p < c.k; ++p) {
                    const long double t = (long double)(c.ta ? a[p * lda + i] : a[i * lda + p]) *
                                          (c.tb ? b[j * ldb + p] : b[p * ldb + j]);
                    sum += t, size += std::fabs(t);
                }
                const long double bound = 2 * (c.k + 1) * std::numeric_limits<T>::epsilon() * size;
                wrong += std::fabs((long double)alone[i * c.m + j] - sum) > bound;
            }
        BOOST_TEST(wrong == 0, c.n << "x" << c.m << "x" << c.k);
    }
}
BOOST_AUTO_TEST_CASE(gemm_parts_give_the_same_bits_on_any_thread_count_in_float32) {
    parts_give_the_same_bits_on_any_thread_count<float>();
}
BOOST_AUTO_TEST_CASE(gemm_parts_give_the_same_bits_on_any_thread_count_in_float64) {
    parts_give_the_same_bits_on_any_thread_count<double>();
}
