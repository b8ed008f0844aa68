#include "graph/memory.hpp"

#include <algorithm>
#include <fmt/format.h>

#include "core/error.hpp"

namespace chainrule {

MemoryUse memory_use(const Graph& g, const Pass& pass, std::int64_t batch) {
    MemoryUse m;
    m.batch = batch;
    const Plan plan = g.plan(pass);
    const std::int64_t size = std::int64_t(dtype_size(g.dtype()));
    std::vector<Dims> dims(g.size());
    std::vector<MemoryUse::Buffer> buffers;
    auto place = [&](const Node& n) { return n.place.empty() ? fmt::format("node '{}'", n.name) : n.place; };
    for (std::size_t id = 0; id < g.size(); ++id) {
        const Node& n = g.node(int(id));
        if (n.kind == NodeKind::op) {
            std::vector<Shape> in;
            std::vector<Dims> in_dims;
            for (int j : n.inputs) in.push_back(fixed_shape(dims[std::size_t(j)])), in_dims.push_back(dims[std::size_t(j)]);
            try {
                dims[id] = to_dims(n.op->shape(in, n.attrs));
            } catch (const ShapeError& e) {
                throw InputError(fmt::format("{}: {} (every symbol {})", place(n), shape_refusal(g, n, in, e.what()), batch));
            }
            const std::int64_t w = workspace_bytes(n, in_dims, g.dtype(), place(n));
            m.workspaces += w;
            buffers.push_back({n.name, "workspace", w});
        } else {
            for (const Dim& d : n.shape) dims[id].push_back(d.symbolic() ? batch : d.size);
        }
        std::int64_t count = 0;
        try {
            count = checked_numel(dims[id]);
        } catch (const InputError& e) {
            throw InputError(fmt::format("{}: {} (every symbol {})", place(n), e.what(), batch));
        }
        m.values += count * size;
        buffers.push_back({n.name, "value", count * size});
        if (n.kind == NodeKind::parameter) m.parameters += count * size;
        if (plan.wants_grad(int(id)) || int(id) == plan.loss()) {
            m.gradients += count * size;
            buffers.push_back({n.name, "gradient", count * size});
        }
    }
    std::stable_sort(buffers.begin(), buffers.end(), [](const auto& a, const auto& b) { return a.bytes > b.bytes; });
    buffers.resize(std::min<std::size_t>(buffers.size(), 3));
    m.largest = std::move(buffers);
    return m;
}

std::string format_bytes(std::int64_t bytes) {
    if (bytes < 1024) return fmt::format("{} bytes", bytes);
    if (bytes < (std::int64_t{1} << 20)) return fmt::format("{:.1f} KiB", double(bytes) / 1024);
    if (bytes < (std::int64_t{1} << 30)) return fmt::format("{:.1f} MiB", double(bytes) / double(1 << 20));
    return fmt::format("{:.2f} GiB", double(bytes) / double(1 << 30));
}

}  // namespace chainrule
