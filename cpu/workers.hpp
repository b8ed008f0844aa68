// Helper threads for chainrule's own memory-bound passes (OpenBLAS has its own threads for
// the GEMMs); the trainer converts each batch's images on them. run(n, f) splits [0, n)
// into one contiguous range per thread, the caller taking the first, and returns when every
// range is done; each element is handled exactly as in a single-threaded loop, so results
// do not depend on the thread count.
//
// Nothing is allocated after construction. A helper that finished its range yields the
// CPU for up to 1 ms, then sleeps on a futex, so that it never holds a core OpenBLAS's
// threads want for long. Waking a sleeper costs some 10-30 µs, which a pass split over
// the helpers pays only after a gap of more than 1 ms (docs/performance.md).
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace chainrule {

class Workers {
public:
    // threads counts the caller: 1 means no helpers. RunError when they cannot be started.
    explicit Workers(int threads);
    ~Workers();
    Workers(const Workers&) = delete;
    Workers& operator=(const Workers&) = delete;

    int threads() const { return int(helpers_.size()) + 1; }

    // f(begin, end) for the ranges of [0, n); f must not throw.
    template <class F>
    void run(std::int64_t n, F& f) {
        run_erased(n, [](void* ctx, std::int64_t b, std::int64_t e) { (*static_cast<F*>(ctx))(b, e); }, &f, false);
    }

    // The same on the helpers alone, in the background: returns at once, and the next run()
    // (or wait()) first waits for it; f and what it reads must live until then. Nothing
    // happens without helpers. For work that only prepares a later pass (bringing the next
    // batch's rows into cache while the caller computes alone).
    template <class F>
    void start(std::int64_t n, F& f) {
        run_erased(n, [](void* ctx, std::int64_t b, std::int64_t e) { (*static_cast<F*>(ctx))(b, e); }, &f, true);
    }
    void wait();

private:
    using Fn = void (*)(void*, std::int64_t, std::int64_t);
    void run_erased(std::int64_t n, Fn fn, void* ctx, bool background);
    void helper(int index);
    void stop_helpers();
    std::pair<std::int64_t, std::int64_t> range(int index) const;

    std::vector<std::jthread> helpers_;
    std::atomic<std::uint64_t> generation_{0};  // a new job each time it changes
    std::atomic<int> done_{0};
    std::atomic<bool> stop_{false};
    Fn fn_ = nullptr;
    void* ctx_ = nullptr;
    std::int64_t n_ = 0;
    bool background_ = false;  // the current job leaves the caller out (start)
    bool pending_ = false;     // a started job may still run
};

}  // namespace chainrule
