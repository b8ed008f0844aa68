// SIGINT and SIGTERM as a request to stop, not a kill: once a StopOnSignal is made, either
// signal sets `requested`; the trainer polls that flag after every step, saves its last
// whole epoch and ends. A second signal ends the process at once (every file is written
// atomically, so even that loses nothing but the unsaved epochs). The handlers stay until
// the process ends: a signal that comes after the last save, while the process tears down
// (long under the sanitizers' leak check), must not kill a run that finished.
#pragma once

#include <atomic>
#include <csignal>

namespace chainrule::cli {

// Thrown once a stopped run has saved and said so: main exits with 128 + signal (130 for
// Ctrl-C), as a shell expects of a process ended by that signal.
struct SignalExit {
    int signal = 0;
};

class StopOnSignal {
public:
    StopOnSignal();
    StopOnSignal(const StopOnSignal&) = delete;
    StopOnSignal& operator=(const StopOnSignal&) = delete;
    const std::atomic<bool>& requested() const;
    int signal() const;  // the signal received, 0 if none
};

}  // namespace chainrule::cli
