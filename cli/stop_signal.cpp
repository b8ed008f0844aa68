#include "cli/stop_signal.hpp"

#include <cstdlib>

namespace chainrule::cli {
namespace {

// A signal handler can reach nothing but static storage: this flag is the one piece of
// mutable global state outside the op registry, and only a StopOnSignal sets it up.
std::atomic<bool> stop_requested{false};
std::atomic<int> stop_signal{0};
static_assert(std::atomic<bool>::is_always_lock_free && std::atomic<int>::is_always_lock_free);

void on_signal(int sig) {
    if (stop_requested.exchange(true)) std::_Exit(128 + sig);  // the second one: now
    stop_signal = sig;
}

}  // namespace

StopOnSignal::StopOnSignal() {
    stop_requested = false;
    stop_signal = 0;
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
}

const std::atomic<bool>& StopOnSignal::requested() const { return stop_requested; }
int StopOnSignal::signal() const { return stop_signal.load(); }

}  // namespace chainrule::cli
