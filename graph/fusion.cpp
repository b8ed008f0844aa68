// The engine's fused passes: which chains of ops forward() and backward() run as one pass
// over their data, and the passes themselves.
//
// Forward, "dense": a matmul read only by an add of a bias row ([m] or [1,m]), optionally
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

bool is_op(const Node& n, const char* name) { return n.kind == NodeKind::op && n.op->name == name; }

// A forward dense pass of at least this many values is split over the helpers.
constexpr std::int64_t kSplitPass = 32 * 1024;

}  // namespace

// add(full, bias) with full [n,m] and bias [m] or [1,m]; `full` gets the full input's slot.
bool Graph::bias_add(int id, std::size_t& full) const {
    const Node& n = nodes_[id];
    if (!is_op(n, "add")) return false;
    const Dims& d = n.value.dims();
    if (d.size() != 2) return false;
    for (std::size_t f : {0, 1}) {
        const Dims& a = nodes_[n.inputs[f]].value.dims();
        const Dims& b = nodes_[n.inputs[1 - f]].value.dims();
        bool row = (b.size() == 1 && b[0] == d[1]) || (b.size() == 2 && b[0] == 1 && b[1] == d[1]);
        if (a == d && row) {
            full = f;
            return true;
        }
    }
    return false;
}

void Graph::plan_forward_steps() {
    std::vector<int> run_at(nodes_.size(), -1);  // index into `dense` of the chain ending here
    std::vector<bool> covered(nodes_.size());
    std::vector<Step> dense;
    for (int id : forward_order_) {
        if (!is_op(nodes_[id], "matmul") || readers_[id] != 1 || is_output_[id]) continue;
        int add = reader_[id];
        std::size_t full = 0;
        if (!bias_add(add, full) || nodes_[add].inputs[full] != id || nodes_[add].inputs[1 - full] == id) continue;
        Step s{.kind = Step::Kind::dense, .node = id, .next = add, .full = full};
        int act = reader_[add];
        if (readers_[add] == 1 && !is_output_[add] && is_op(nodes_[act], "sigmoid")) s.last = act;
        covered[id] = true;
        if (s.last >= 0) covered[add] = true;
        run_at[s.last >= 0 ? s.last : add] = static_cast<int>(dense.size());
        dense.push_back(s);
    }
    forward_steps_.clear();
    for (int id : forward_order_) {
        if (run_at[id] >= 0)
            forward_steps_.push_back(dense[run_at[id]]);
        else if (!covered[id])
            forward_steps_.push_back(Step{.node = id});
    }
}

void Graph::plan_backward_steps(bool keep_contributions) {
    backward_steps_.clear();
    const std::size_t count = backward_order_.size();
    for (std::size_t k = 0; k < count; ++k) {
        const int id = backward_order_[k];
        const Node& n = nodes_[id];
        const int next = k + 1 < count ? backward_order_[k + 1] : -1;
        std::size_t full = 0;
        Step s{.node = id};
        if (keep_contributions) {
            // the stepper shows each node's own contribution: no fusion
        } else if (is_op(n, "mse") && next == n.inputs[0] && n.inputs[1] != next && is_op(nodes_[next], "normalize") &&
                   readers_[next] == 1 && nodes_[nodes_[next].inputs[0]].wants_grad &&
                   resolve_axis(nodes_[next].attrs.at("axis").get<std::int64_t>(), nodes_[next].value.rank()) ==
                       nodes_[next].value.rank() - 1) {
            s = Step{.kind = Step::Kind::mse_normalize, .node = id, .next = next};
            ++k;
        } else if (is_op(n, "sigmoid") && next == n.inputs[0] && readers_[next] == 1 && bias_add(next, full)) {
            s = Step{.kind = Step::Kind::sigmoid_bias, .node = next, .next = id, .full = full};
            ++k;
        } else if (bias_add(id, full)) {
            s = Step{.kind = Step::Kind::bias, .node = id, .full = full};
        }
        backward_steps_.push_back(s);
    }
}

void Graph::run_dense(const Step& s, bool keep_intermediates) {
    Node& mm = nodes_[s.node];
    Node& add = nodes_[s.next];
    Node* act = s.last >= 0 ? &nodes_[s.last] : nullptr;
    // Not keeping intermediates, the GEMM writes straight into the chain's last value and
    // the pass runs in place.
    Tensor& gemm_out = keep_intermediates ? mm.value : act ? act->value : add.value;
    in_ptrs_.clear();
    for (int j : mm.inputs) in_ptrs_.push_back(&nodes_[j].value);
    // The matmul's own forward: over its left operand's nonzeros when the pass has them.
    mm.op->forward(ForwardCall{in_ptrs_, gemm_out, mm.attrs, &scratch_[s.node], {}, workers_, sparse_for(s.node)});
    const Tensor& bias = nodes_[add.inputs[1 - s.full]].value;
    dispatch(dtype_, [&]<class T>() {
        T* pre = keep_intermediates || !act ? add.value.data<T>() : nullptr;
        T* out = act ? act->value.data<T>() : nullptr;
        const std::int64_t cols = gemm_out.dim(1);
        auto rows = [&](std::int64_t r0, std::int64_t r1) {
            auto at = [&](T* p) { return p ? p + r0 * cols : nullptr; };
            dense_pass(gemm_out.data<T>() + r0 * cols, bias.data<T>(), at(pre), at(out), r1 - r0, cols);
        };
        // Row by row, so any split gives the same bits; only a large pass pays for the split.
        if (workers_ && gemm_out.numel() >= kSplitPass)
            workers_->run(gemm_out.dim(0), rows);
        else
            rows(0, gemm_out.dim(0));
    });
}

// sigmoid_bias and bias: the add's gradient (through the sigmoid when there is one) to its
// full input and its column sums to the bias.
void Graph::run_sigmoid_bias(const Step& s, bool keep_intermediates) {
    Node& add = nodes_[s.node];
    const Node* act = s.next >= 0 ? &nodes_[s.next] : nullptr;
    const std::size_t full = s.full, bias = 1 - s.full;
    Tensor* dfull = grad_target(s.node, full);
    Tensor* dbias = grad_target(s.node, bias);
    // With a sigmoid, the add's own gradient is one more output of the pass, written only
    // when intermediates are kept.
    Tensor* dadd = act && keep_intermediates ? &add.grad : nullptr;
    dispatch(dtype_, [&]<class T>() {
        const T* g = act ? act->grad.data<T>() : add.grad.data<T>();
        const T* y = act ? act->value.data<T>() : nullptr;
        T* first = dfull ? dfull->data<T>() : dadd ? dadd->data<T>() : nullptr;
        bias_backward(g, y, first, data_or_null<T>(dbias), add.value.dim(0), add.value.dim(1));
        if (dadd && first != dadd->data<T>()) std::copy(first, first + dfull->numel(), dadd->data<T>());
    });
    written_[s.node] = true;
    if (dfull) finish_slot(s.node, full);
    if (dbias) finish_slot(s.node, bias);
}

void Graph::run_mse_normalize(const Step& s, bool keep_intermediates) {
    Node& mse = nodes_[s.node];
    Node& norm = nodes_[s.next];
    Tensor* dy = grad_target(s.next, 0);
    Tensor* dt = grad_target(s.node, 1);
    Tensor* dp = keep_intermediates ? &norm.grad : nullptr;
    dispatch(dtype_, [&]<class T>() {
        const std::int64_t len = norm.value.dim(norm.value.rank() - 1);
        kernels::mse_normalize_backward(norm.value.data<T>(), nodes_[mse.inputs[1]].value.data<T>(),
                                        nodes_[norm.inputs[0]].value.data<T>(), mse.grad.data<T>()[0],
                                        norm.value.dim(0), data_or_null<T>(dp), data_or_null<T>(dt),
                                        dy->data<T>(), norm.value.numel() / len, len);
    });
    written_[s.next] = true;
    if (dt) finish_slot(s.node, 1);
    finish_slot(s.next, 0);
}

std::vector<std::string> Graph::fusions() const {
    std::vector<std::string> out;
    auto name = [&](int id) { return nodes_[id].name; };
    for (const Step& s : forward_steps_)
        if (s.kind == Step::Kind::dense)
            out.push_back(fmt::format("forward dense: {} → {}{}", name(s.node), name(s.next),
                                      s.last >= 0 ? " → " + name(s.last) : ""));
    for (const Step& s : backward_steps_) {
        if (s.kind == Step::Kind::sigmoid_bias)
            out.push_back(fmt::format("backward sigmoid_bias: {} ← {}", name(s.node), name(s.next)));
        else if (s.kind == Step::Kind::bias)
            out.push_back(fmt::format("backward bias: {}", name(s.node)));
        else if (s.kind == Step::Kind::mse_normalize)
            out.push_back(fmt::format("backward mse_normalize: {} ← {}", name(s.next), name(s.node)));
    }
    return out;
}

}  // namespace chainrule
