// The thread policy: how many threads chainrule's work runs on. OpenBLAS's threads run the
// GEMMs; chainrule's own helpers (cpu/workers.hpp) run its memory-bound passes and split
// conv2d's batch; a run uses as many of each as `--threads` says (docs/performance.md).
#pragma once

namespace chainrule {

// Sets the thread count of OpenBLAS (and so of chainrule's GEMMs); n <= 0 leaves its default.
// RunError when an address-space limit (ulimit -v) leaves no room for that many threads.
void set_threads(int n);

// The threads a pass may use, the caller included: `asked` when positive, else OpenBLAS's count.
int thread_count(int asked = 0);

}  // namespace chainrule
