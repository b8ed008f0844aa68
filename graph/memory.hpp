// How much memory a pass over a graph takes at a batch size, from the shapes alone (no data,
// nothing allocated): what `check` reports. Values, gradients (of the nodes the pass gives
// gradients) and the ops' scratch memory (Op::workspace: conv2d's columns, max_pool2d's
// argmax), every symbol bound to the batch size. Training adds the optimizer's state.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "graph/graph.hpp"

namespace chainrule {

struct MemoryUse {
    std::int64_t batch = 1;
    std::int64_t parameters = 0;  // bytes of the parameters' values
    std::int64_t values = 0;      // bytes of every node's value, parameters included
    std::int64_t gradients = 0;   // bytes of the gradients the pass keeps
    std::int64_t workspaces = 0;  // bytes of the ops' scratch memory
    struct Buffer {
        std::string node, what;   // "c1", "workspace" / "value" / "gradient"
        std::int64_t bytes = 0;
    };
    std::vector<Buffer> largest;  // the largest three buffers
    std::int64_t total() const { return values + gradients + workspaces; }
};

// Every symbol bound to `batch`. An InputError naming the node when a shape or a workspace
// is over its cap at that size (docs/limits.md).
MemoryUse memory_use(const Graph& g, const Pass& pass, std::int64_t batch);

// "12.3 MiB", "512 bytes", "1.20 GiB".
std::string format_bytes(std::int64_t bytes);

}  // namespace chainrule
