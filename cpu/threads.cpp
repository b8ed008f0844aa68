#include "cpu/threads.hpp"

#include <algorithm>
#include <cblas.h>
#include <cstdint>
#include <fmt/format.h>
#include <fstream>
#include <string>
#include <sys/resource.h>
#include <unistd.h>

#include "core/error.hpp"

namespace chainrule {

void set_threads(int n) {
    if (n <= 0) return;
    // Each OpenBLAS thread maps a 128 MiB buffer, and one that cannot retries forever (and
    // the process then hangs at exit joining it): under an address-space limit (ulimit -v)
    // too small for them, refuse before OpenBLAS tries.
    constexpr std::uint64_t kBlasBuffer = std::uint64_t{128} << 20;
    struct rlimit limit {};
    std::uint64_t pages = 0;
    if (getrlimit(RLIMIT_AS, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY &&
        std::ifstream("/proc/self/statm") >> pages) {
        const std::uint64_t used = pages * std::uint64_t(sysconf(_SC_PAGESIZE));
        const std::uint64_t need = used + std::uint64_t(n) * kBlasBuffer;
        if (need > limit.rlim_cur) {
            const std::uint64_t room = limit.rlim_cur - std::min(used, std::uint64_t(limit.rlim_cur));
            throw RunError(fmt::format("--threads {} needs about {} MiB of address space ({} MiB in use and a 128 MiB "
                                       "buffer for each OpenBLAS thread), but the limit (ulimit -v) is {} MiB: {}",
                                       n, need >> 20, used >> 20, limit.rlim_cur >> 20,
                                       room >= kBlasBuffer ? fmt::format("use --threads {} or fewer, or raise the limit",
                                                                         room / kBlasBuffer)
                                                           : std::string("raise the limit")));
        }
    }
    openblas_set_num_threads(n);
}

int thread_count(int asked) { return asked > 0 ? asked : openblas_get_num_threads(); }

}  // namespace chainrule
