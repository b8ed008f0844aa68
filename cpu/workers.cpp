#include "cpu/workers.hpp"

#include <chrono>
#include <fmt/format.h>
#include <system_error>

#include "core/error.hpp"

namespace chainrule {
namespace {

// How long a helper keeps yielding before it sleeps. Waking a sleeper costs tens of µs,
// paid at every pass that follows a stretch of single-threaded work (a training step of the
// lecture's net has several); a yielding helper gives its core to OpenBLAS's threads when
// they want it. 1 ms covers the gaps within a step: measured against 10 µs, the lecture's
// sparse float32 step takes 8 % less and the dense one no longer (docs/performance.md).
constexpr auto kSpin = std::chrono::microseconds(1000);

}  // namespace

Workers::Workers(int threads) {
    try {
        for (int i = 1; i < threads; ++i) helpers_.emplace_back([this, i] { helper(i); });
    } catch (const std::system_error& e) {
        // The helpers started so far wait for work: they must be told to stop before the
        // joins, or the unwinding hangs (no destructor runs for a half-built object).
        stop_helpers();
        throw RunError(fmt::format("cannot start {} threads (--threads {}): {}; the system allows fewer here (a "
                                   "process or memory limit, e.g. ulimit -v or -u): use fewer threads",
                                   threads, threads, e.what()));
    }
}

Workers::~Workers() {
    wait();
    stop_helpers();
}

void Workers::stop_helpers() {
    stop_.store(true, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    helpers_.clear();  // joins
}

std::pair<std::int64_t, std::int64_t> Workers::range(int index) const {
    // A background job is split over the helpers alone (index 1 and up).
    const std::int64_t parts = background_ ? threads() - 1 : threads(), at = background_ ? index - 1 : index;
    return {n_ * at / parts, n_ * (at + 1) / parts};
}

void Workers::wait() {
    if (!pending_) return;
    while (done_.load(std::memory_order_acquire) < int(helpers_.size())) std::this_thread::yield();
    pending_ = false;
}

void Workers::run_erased(std::int64_t n, Fn fn, void* ctx, bool background) {
    wait();  // the helpers read fn_, ctx_ and n_ until they finish
    if (background && (helpers_.empty() || n < 1)) return;
    if (!background && (helpers_.empty() || n < 2)) {
        fn(ctx, 0, n);
        return;
    }
    fn_ = fn;
    ctx_ = ctx;
    n_ = n;
    background_ = background;
    done_.store(0, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    pending_ = true;
    if (background) return;
    auto [b, e] = range(0);
    fn(ctx, b, e);
    wait();
}

void Workers::helper(int index) {
    std::uint64_t seen = 0;
    for (;;) {
        const auto idle_since = std::chrono::steady_clock::now();
        for (int i = 0; generation_.load(std::memory_order_acquire) == seen; ++i) {
            // A yield takes about 0.2 µs here: the clock is read every 16th.
            if (i % 16 != 0 || std::chrono::steady_clock::now() - idle_since < kSpin)
                std::this_thread::yield();
            else
                generation_.wait(seen, std::memory_order_acquire);
        }
        seen = generation_.load(std::memory_order_acquire);
        if (stop_.load(std::memory_order_relaxed)) return;
        auto [b, e] = range(index);
        if (b < e) fn_(ctx_, b, e);
        done_.fetch_add(1, std::memory_order_release);
    }
}

}  // namespace chainrule
