// The engine's fused passes: which chains of ops forward() and backward() run as one pass
// over their data, and the passes themselves.
//
// Forward, "dense": a matmul read only by an add of a bias row ([m] or [1,m]; the matmul
// may be batched, [N,T,C]·[C,m], its output then rows of m), optionally
// read only by a sigmoid: the GEMM, then one pass adds the bias and applies the sigmoid.
// Backward, "sigmoid_bias": sigmoid ← add(bias) in one pass that also sums the bias
// gradient; "bias": add(bias) alone; "mse_normalize": mse ← normalize(last axis), row by
// row. Each pass evaluates the ops' own expressions in the same order, so the numbers are
// those of the ops run one by one, bit for bit; tests/test_fused.cpp holds that.
//
// A fused backward step runs at the place of its first node and covers the next one, so
// the covered node must come right after it in the backward order: gradients then
// accumulate in the same order as unfused.
#include <fmt/format.h>

#include "graph/graph.hpp"
#include "cpu/workers.hpp"
#include "core/shape.hpp"
#include "ops/kernels.hpp"

namespace chainrule {
namespace {

CHAINRULE_SIMD_CLONES void dense_pass(const float* src, const float* bias, float* pre, float* out, std::int64_t rows,
                                      std::int64_t cols) {
    kernels::dense_pass(src, bias, pre, out, rows, cols);
}
CHAINRULE_SIMD_CLONES void dense_pass(const double* src, const double* bias, double* pre, double* out,
                                      std::int64_t rows, std::int64_t cols) {
    kernels::dense_pass(src, bias, pre, out, rows, cols);
}
CHAINRULE_SIMD_CLONES void bias_backward(const float* g, const float* y, float* dfull, float* dbias,
                                         std::int64_t rows, std::int64_t cols) {
    kernels::bias_backward(g, y, dfull, dbias, rows, cols);
}
CHAINRULE_SIMD_CLONES void bias_backward(const double* g, const double* y, double* dfull, double* dbias,
                                         std::int64_t rows, std::int64_t cols) {
    kernels::bias_backward(g, y, dfull, dbias, rows, cols);
}

template <class T>
T* data_or_null(Tensor* t) {
    return t ? t->data<T>() : nullptr;
}

// Whether `n` is an op node playing `role` in the fused passes (a fact on its op, ops/op.hpp).
bool plays(const Node& n, Fusable role) { return n.kind == NodeKind::op && n.op->fusable == role; }

// A forward dense pass of at least this many values is split over the helpers.
constexpr std::int64_t kSplitPass = 32 * 1024;

}  // namespace

// add(full, bias) with full [..., m] (rank >= 2) and bias [m], [1,m] or [1,..,1,m], so the
// pass sees full as rows of m; `full` gets the full input's slot.
bool Graph::bias_add(const Plan&, int id, std::size_t& full) const {
    const Node& n = nodes_[std::size_t(id)];
    if (!plays(n, Fusable::bias_add)) return false;
    // Decided on the declared shapes, so the plan holds for any batch size.
    const Shape& d = n.shape;
    if (d.size() < 2) return false;
    for (std::size_t f : {0, 1}) {
        const Shape& a = nodes_[std::size_t(n.inputs[f])].shape;
        const Shape& b = nodes_[std::size_t(n.inputs[1 - f])].shape;
        bool row = !b.empty() && b.size() <= d.size() && b.back() == d.back();
        for (std::size_t k = 0; row && k + 1 < b.size(); ++k) row = b[k].is_one();
        if (a == d && row) {
            full = f;
            return true;
        }
    }
    return false;
}

void Graph::plan_forward_steps(Plan& p) const {
    using Step = Plan::Step;
    std::vector<int> run_at(nodes_.size(), -1);  // index into `dense` of the chain ending here
    std::vector<bool> covered(nodes_.size());
    std::vector<Step> dense;
    for (int id : p.forward_order_) {
        const std::size_t i = std::size_t(id);
        if (!plays(nodes_[i], Fusable::gemm) || p.readers_[i] != 1 || p.is_output_[i]) continue;
        const int add = p.reader_[i];
        std::size_t full = 0;
        if (!bias_add(p, add, full) || nodes_[std::size_t(add)].inputs[full] != id ||
            nodes_[std::size_t(add)].inputs[1 - full] == id)
            continue;
        Step s{.kind = Step::Kind::dense, .node = id, .next = add, .full = full};
        const int act = p.reader_[std::size_t(add)];
        if (p.readers_[std::size_t(add)] == 1 && !p.is_output_[std::size_t(add)] &&
            plays(nodes_[std::size_t(act)], Fusable::sigmoid))
            s.last = act;
        covered[i] = true;
        if (s.last >= 0) covered[std::size_t(add)] = true;
        run_at[std::size_t(s.last >= 0 ? s.last : add)] = int(dense.size());
        dense.push_back(s);
        p.fusions_.push_back(fmt::format("forward dense: {} → {}{}", nodes_[i].name, nodes_[std::size_t(add)].name,
                                         s.last >= 0 ? " → " + nodes_[std::size_t(s.last)].name : ""));
    }
    for (int id : p.forward_order_) {
        if (run_at[std::size_t(id)] >= 0)
            p.forward_steps_.push_back(dense[std::size_t(run_at[std::size_t(id)])]);
        else if (!covered[std::size_t(id)])
            p.forward_steps_.push_back(Step{.node = id});
    }
}

// mse(normalize(x) along its last axis, t), the normalize read by the mse alone.
bool Graph::mse_of_normalize(const Plan& p, int mse, int next) const {
    const Node& n = nodes_[std::size_t(mse)];
    if (!plays(n, Fusable::mse) || next != n.inputs[0] || n.inputs[1] == next) return false;
    const Node& norm = nodes_[std::size_t(next)];
    if (!plays(norm, Fusable::row_normalize) || p.readers_[std::size_t(next)] != 1 ||
        !p.wants_grad_[std::size_t(norm.inputs[0])])
        return false;
    const std::size_t rank = norm.shape.size();
    return resolve_axis(norm.attrs.at("axis").get<std::int64_t>(), rank) == rank - 1;
}

void Graph::plan_backward_steps(Plan& p) const {
    using Step = Plan::Step;
    const std::size_t count = p.backward_order_.size();
    auto name = [&](int id) { return nodes_[std::size_t(id)].name; };
    for (std::size_t k = 0; k < count; ++k) {
        const int id = p.backward_order_[k];
        const Node& n = nodes_[std::size_t(id)];
        const int next = k + 1 < count ? p.backward_order_[k + 1] : -1;
        std::size_t full = 0;
        Step s{.node = id};
        if (p.pass_.keep_contributions) {
            // the stepper shows each node's own contribution: no fusion
        } else if (mse_of_normalize(p, id, next)) {
            s = Step{.kind = Step::Kind::mse_normalize, .node = id, .next = next};
            p.fusions_.push_back(fmt::format("backward mse_normalize: {} ← {}", name(next), name(id)));
            ++k;
        } else if (plays(n, Fusable::sigmoid) && next == n.inputs[0] && p.readers_[std::size_t(next)] == 1 &&
                   bias_add(p, next, full)) {
            s = Step{.kind = Step::Kind::sigmoid_bias, .node = next, .next = id, .full = full};
            p.fusions_.push_back(fmt::format("backward sigmoid_bias: {} ← {}", name(next), name(id)));
            ++k;
        } else if (bias_add(p, id, full)) {
            s = Step{.kind = Step::Kind::bias, .node = id, .full = full};
            p.fusions_.push_back(fmt::format("backward bias: {}", name(id)));
        }
        p.backward_steps_.push_back(s);
    }
}

void Graph::run_dense(Plan& p, const Plan::Step& s) {
    Node& mm = nodes_[std::size_t(s.node)];
    Node& add = nodes_[std::size_t(s.next)];
    Node* act = s.last >= 0 ? &nodes_[std::size_t(s.last)] : nullptr;
    const bool keep = p.pass_.keep_intermediates;
    // Not keeping intermediates, the GEMM writes straight into the chain's last value and
    // the pass runs in place.
    Tensor& gemm_out = keep ? mm.value : act ? act->value : add.value;
    p.in_ptrs_.clear();
    for (int j : mm.inputs) p.in_ptrs_.push_back(&nodes_[std::size_t(j)].value);
    // The matmul's own forward (its sparse form when the plan lends its left operand's nonzeros).
    forward_node(p, s.node, gemm_out);
    const Tensor& bias = nodes_[std::size_t(add.inputs[1 - s.full])].value;
    Workers* workers = p.pass_.workers;
    dispatch(dtype_, [&]<class T>() {
        T* pre = keep || !act ? add.value.data<T>() : nullptr;
        T* out = act ? act->value.data<T>() : nullptr;
        const std::int64_t cols = gemm_out.dim(gemm_out.rank() - 1), row_count = cols ? gemm_out.numel() / cols : 0;
        auto rows = [&](std::int64_t r0, std::int64_t r1) {
            auto at = [&](T* q) { return q ? q + r0 * cols : nullptr; };
            dense_pass(gemm_out.data<T>() + r0 * cols, bias.data<T>(), at(pre), at(out), r1 - r0, cols);
        };
        // Row by row, so any split gives the same bits; only a large pass pays for the split.
        if (workers && gemm_out.numel() >= kSplitPass)
            workers->run(row_count, rows);
        else
            rows(0, row_count);
    });
}

// sigmoid_bias and bias: the add's gradient (through the sigmoid when there is one) to its
// full input and its column sums to the bias.
void Graph::run_sigmoid_bias(Plan& p, const Plan::Step& s) {
    Node& add = nodes_[std::size_t(s.node)];
    const Node* act = s.next >= 0 ? &nodes_[std::size_t(s.next)] : nullptr;
    const std::size_t full = s.full, bias = 1 - s.full;
    Tensor* dfull = grad_target(p, s.node, full);
    Tensor* dbias = grad_target(p, s.node, bias);
    // With a sigmoid, the add's own gradient is one more output of the pass, written only
    // when intermediates are kept.
    Tensor* dadd = act && p.pass_.keep_intermediates ? &add.grad : nullptr;
    dispatch(dtype_, [&]<class T>() {
        const T* g = act ? act->grad.data<T>() : add.grad.data<T>();
        const T* y = act ? act->value.data<T>() : nullptr;
        T* first = dfull ? dfull->data<T>() : dadd ? dadd->data<T>() : nullptr;
        const std::int64_t cols = add.value.dim(add.value.rank() - 1);
        bias_backward(g, y, first, data_or_null<T>(dbias), cols ? add.value.numel() / cols : 0, cols);
        if (dadd && first != dadd->data<T>()) std::copy(first, first + dfull->numel(), dadd->data<T>());
    });
    p.written_[std::size_t(s.node)] = true;
    if (dfull) finish_slot(p, s.node, full);
    if (dbias) finish_slot(p, s.node, bias);
}

void Graph::run_mse_normalize(Plan& p, const Plan::Step& s) {
    Node& mse = nodes_[std::size_t(s.node)];
    Node& norm = nodes_[std::size_t(s.next)];
    Tensor* dy = grad_target(p, s.next, 0);
    Tensor* dt = grad_target(p, s.node, 1);
    Tensor* dp = p.pass_.keep_intermediates ? &norm.grad : nullptr;
    dispatch(dtype_, [&]<class T>() {
        const std::int64_t len = norm.value.dim(norm.value.rank() - 1);
        kernels::mse_normalize_backward(norm.value.data<T>(), nodes_[std::size_t(mse.inputs[1])].value.data<T>(),
                                        nodes_[std::size_t(norm.inputs[0])].value.data<T>(), mse.grad.data<T>()[0],
                                        norm.value.dim(0), data_or_null<T>(dp), data_or_null<T>(dt), dy->data<T>(),
                                        norm.value.numel() / len, len);
    });
    p.written_[std::size_t(s.next)] = true;
    if (dt) finish_slot(p, s.node, 1);
    finish_slot(p, s.next, 0);
}

}  // namespace chainrule
