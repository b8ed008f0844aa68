#include "graph/gradcheck.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.hpp"
#include "graph/labels.hpp"
#include "ops/finite_difference.hpp"

namespace chainrule {

namespace {

// Why input `id` is read as indices by an op ("ids of node 'te' (embedding), whose table
// 'tok' has 27 rows; ..."), or empty when no op does.
std::string index_input_reason(const Graph& g, int id) {
    std::string reason;
    for (const ClassIndexUse& use : class_index_uses(g, id))
        reason += (reason.empty() ? "" : "; ") + std::string(use.ids ? "ids of " : "class indices of ") +
                  describe_use(g, use);
    return reason;
}

}  // namespace

GradcheckReport gradcheck(Graph& g, const GradcheckOptions& opt) {
    if (g.dtype() != Dtype::f64) throw InputError("gradcheck needs a float64 graph");
    int loss = g.loss();
    if (loss < 0) throw InputError("the model has no \"loss\" output to check gradients of");
    Plan pass = g.plan(Pass{.input_grads = opt.inputs});
    g.forward(pass);
    // Junk in every gradient buffer first: an op whose backward adds to what is there instead
    // of overwriting it (the contract in ops/op.hpp) then fails here instead of passing on
    // freshly zeroed buffers.
    for (std::size_t id = 0; id < g.size(); ++id)
        if (!g.node(int(id)).grad.empty()) g.node(int(id)).grad.fill(12345.0);
    g.backward(pass);
    GradcheckReport report;
    report.loss = g.node(loss).value.at(0);
    Rng rng(opt.seed);
    double max_numeric = 0;
    for (std::size_t id = 0; id < g.size(); ++id) {
        Node& n = g.node(static_cast<int>(id));
        bool check = n.kind == NodeKind::parameter || (opt.inputs && n.kind == NodeKind::input);
        if (!check) continue;
        if (n.kind == NodeKind::input) {
            std::string reason = index_input_reason(g, int(id));
            if (!reason.empty()) {
                report.skipped.push_back({n.name, std::move(reason)});
                continue;
            }
        }
        GradcheckTensor t;
        t.name = n.name;
        t.total = n.value.numel();
        std::vector<std::int64_t> picks(static_cast<std::size_t>(t.total));
        std::iota(picks.begin(), picks.end(), 0);
        if (opt.max_entries > 0 && t.total > opt.max_entries) {
            // Partial Fisher-Yates: a seeded sample without repeats.
            for (std::int64_t i = 0; i < opt.max_entries; ++i)
                std::swap(picks[i], picks[i + std::int64_t(rng.below(std::uint64_t(t.total - i)))]);
            picks.resize(static_cast<std::size_t>(opt.max_entries));
            std::sort(picks.begin(), picks.end());
        }
        Tensor analytic = n.grad;  // backward results before we perturb anything
        const FdTolerance tol{opt.step, opt.rtol, opt.atol};
        const auto perturbed_loss = [&] {
            g.forward(pass);
            return g.node(loss).value.at(0);
        };
        for (std::int64_t i : picks) {
            GradcheckEntry e;
            e.index = i;
            e.analytic = analytic.at(i);
            e.numeric = central_difference(n.value, i, perturbed_loss, opt.step);
            const FdComparison c = compare_to_numeric(e.analytic, e.numeric, tol);
            e.abs_error = c.abs_error;
            e.ok = c.ok;
            t.max_abs_error = std::max(t.max_abs_error, e.abs_error);
            t.max_abs_numeric = std::max(t.max_abs_numeric, std::abs(e.numeric));
            t.ok = t.ok && e.ok;
            t.entries.push_back(e);
        }
        max_numeric = std::max(max_numeric, t.max_abs_numeric);
        report.ok = report.ok && t.ok;
        report.tensors.push_back(std::move(t));
    }
    g.forward(pass);  // leave the graph at the unperturbed point
    report.vacuous = max_numeric < 1e-12;
    if (report.vacuous) report.ok = false;
    return report;
}

}  // namespace chainrule
