#include "render/explain.hpp"

#include <algorithm>
#include <charconv>
#include <fmt/format.h>

#include "core/error.hpp"
#include "core/text.hpp"
#include "ops/formula.hpp"

namespace chainrule {
namespace {

std::vector<std::string> input_names(const Graph& g, const Node& n) {
    std::vector<std::string> out;
    for (int k : n.inputs) out.push_back(g.node(k).name);
    return out;
}

// The node name a template name of op node `id` stands for, in the formula's part for input
// `slot`: a variadic op's repeated name stands for the node in that slot (and stays generic
// when no slot of it is meant).
std::string node_name_for(const Graph& g, int id, const std::string& generic, std::size_t slot = SIZE_MAX) {
    const Node& n = g.node(id);
    if (generic == formula_output(*n.op)) return n.name;
    const std::size_t repeated = n.op->variadic ? n.op->inputs.size() - 1 : SIZE_MAX;
    if (generic == n.op->inputs.back() && n.op->variadic)
        return slot >= repeated && slot < n.inputs.size() ? g.node(n.inputs[slot]).name : generic;
    for (std::size_t k = 0; k < n.op->inputs.size() && k < n.inputs.size(); ++k)
        if (n.op->inputs[k] == generic) return g.node(n.inputs[k]).name;
    return generic;
}

std::string named(const Graph& g, int id, const std::string& text, std::size_t slot = SIZE_MAX) {
    return rename_formula(*g.node(id).op, text, [&](const std::string& generic, bool, bool gradient) {
        std::string name = node_name_for(g, id, generic, slot);
        return gradient ? "dL/d" + name : name;
    });
}

// The nodes through which the loss depends on each node.
std::vector<bool> on_path_to(const Graph& g, int loss) {
    std::vector<bool> on(g.size(), false);
    on[loss] = true;
    for (int i = int(g.size()) - 1; i >= 0; --i)
        for (int k : g.node(i).inputs)
            if (on[i] && g.node(i).kind == NodeKind::op) on[k] = true;
    return on;
}

struct Use {
    int id;
    std::size_t slot;
};

// Each node's uses by nodes on the path to the loss, in model order. Built once: asking
// the whole graph per node made explaining a chain quadratic in its length.
std::vector<std::vector<Use>> uses_on_path(const Graph& g, const std::vector<bool>& on) {
    std::vector<std::vector<Use>> uses(g.size());
    for (std::size_t k = 0; k < g.size(); ++k)
        if (on[k])
            for (std::size_t s = 0; s < g.node(int(k)).inputs.size(); ++s)
                uses[std::size_t(g.node(int(k)).inputs[s])].push_back({int(k), s});
    return uses;
}

// Row j of ∂c/∂in_slot for every j: the op's backward of a one-hot upstream.
std::vector<double> jacobian_column(const Graph& g, int c, std::size_t slot, std::int64_t i) {
    const Node& n = g.node(c);
    std::vector<const Tensor*> in;
    for (int k : n.inputs) in.push_back(&g.node(k).value);
    std::vector<Tensor*> grad_in(n.inputs.size(), nullptr);
    Tensor gi(g.node(n.inputs[slot]).value.dtype(), g.node(n.inputs[slot]).value.dims());
    grad_in[slot] = &gi;
    Tensor up(n.value.dtype(), n.value.dims());
    std::vector<double> out(std::size_t(n.value.numel()));
    for (std::int64_t j = 0; j < n.value.numel(); ++j) {
        up.zero();
        up.set(j, 1.0);
        n.op->backward({.in = in, .out = n.value, .grad_out = up, .grad_in = grad_in, .attrs = n.attrs});
        out[std::size_t(j)] = gi.at(i);
    }
    return out;
}

std::int64_t parse_index(const std::string& text, const std::string& entry) {
    std::int64_t v = -1;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || p != text.data() + text.size() || v < 0)
        throw InputError(fmt::format("explain '{}': '{}' is not an index (write NAME[i] or NAME[i,j], from 0)",
                                     entry, text));
    return v;
}

std::string trimmed(const std::string& s) {
    auto b = s.find_first_not_of(' ');
    return b == std::string::npos ? "" : s.substr(b, s.find_last_not_of(' ') - b + 1);
}

}  // namespace

std::string node_formula(const Graph& g, int id) {
    const Node& n = g.node(id);
    std::vector<std::string> ins = input_names(g, n);
    return named_formula(*n.op, n.name, ins);
}

std::string node_input_formula(const Graph& g, int id, std::size_t slot) {
    return named(g, id, input_formula(*g.node(id).op, slot), slot);
}

std::string node_input_shapes(const Graph& g, int id, std::size_t slot) {
    const Op& op = *g.node(id).op;
    return rename_formula(op, input_formula(op, slot), [&](const std::string& generic, bool transposed, bool) {
        int k = g.find(node_name_for(g, id, generic, slot));
        if (k < 0) return generic;
        Dims d = g.node(k).value.dims();
        if (transposed && d.size() >= 2) std::swap(d[d.size() - 2], d[d.size() - 1]);  // ᵀ: the last two axes
        return format_dims(d);
    });
}

Tensor local_derivative(const Graph& g, int id, std::size_t slot) {
    const Node& n = g.node(id);
    if (!n.op->elementwise || slot >= n.inputs.size()) return {};
    const Tensor& x = g.node(n.inputs[slot]).value;
    if (x.dims() != n.value.dims()) return {};
    std::vector<const Tensor*> in;
    for (int k : n.inputs) in.push_back(&g.node(k).value);
    std::vector<Tensor*> grad_in(n.inputs.size(), nullptr);
    Tensor local(x.dtype(), x.dims());
    grad_in[slot] = &local;
    Tensor ones(n.value.dtype(), n.value.dims());
    ones.fill(1.0);
    n.op->backward({.in = in, .out = n.value, .grad_out = ones, .grad_in = grad_in, .attrs = n.attrs});
    return local;
}

std::string local_derivative_text(const Graph& g, int id, std::size_t slot) {
    const Node& n = g.node(id);
    std::string d = fmt::format("∂{}/∂{}", n.name, g.node(n.inputs[slot]).name);
    std::optional<std::string> f = local_factor(*n.op, slot);
    return f ? d + " = " + named(g, id, *f, slot) : d;
}

std::string index_text(const Dims& dims, std::int64_t flat) {
    std::vector<std::int64_t> idx(dims.size());
    for (std::size_t k = dims.size(); k-- > 0;) {
        idx[k] = flat % dims[k];
        flat /= dims[k];
    }
    return fmt::format("[{}]", fmt::join(idx, ","));
}

namespace {

// The node and flat index that `entry` ("w1[3]", "w1[0,3]") names, with messages for each way
// it can fail to name one.
struct EntryRef {
    int id;
    std::string name;
    std::int64_t flat = 0;
};

EntryRef find_entry(const Graph& g, int loss, const std::string& entry) {
    auto open = entry.find('[');
    if (entry.empty() || open == std::string::npos || entry.back() != ']')
        throw InputError(fmt::format("explain needs one entry of a tensor, e.g. explain {}[0]; got '{}'",
                                     g.node(g.parameters().empty() ? loss : g.parameters()[0]).name, entry));
    std::string name = trimmed(entry.substr(0, open));
    int id = g.find(name);
    if (id < 0) {
        std::vector<std::string> all;
        for (const Node& n : g.nodes()) all.push_back(n.name);
        std::string guess = closest_name(name, all);
        throw InputError(fmt::format("explain '{}': model '{}' has no node '{}'{}", entry, g.name, name,
                                     guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess)));
    }
    const Node& n = g.node(id);
    const Dims& dims = n.value.dims();
    std::vector<std::int64_t> idx;
    std::string inside = entry.substr(open + 1, entry.size() - open - 2);
    for (std::size_t b = 0;;) {
        std::size_t e = inside.find(',', b);
        idx.push_back(parse_index(trimmed(inside.substr(b, e == std::string::npos ? e : e - b)), entry));
        if (e == std::string::npos) break;
        b = e + 1;
    }
    std::int64_t flat = 0;
    if (idx.size() == 1) {
        flat = idx[0];
        if (flat >= n.value.numel())
            throw InputError(fmt::format("explain '{}': index {} is out of range: {} has {} entries (shape {}), "
                                         "0 to {}",
                                         entry, flat, name, n.value.numel(), format_dims(dims), n.value.numel() - 1));
    } else if (idx.size() == dims.size()) {
        for (std::size_t k = 0; k < dims.size(); ++k) {
            if (idx[k] >= dims[k])
                throw InputError(fmt::format("explain '{}': index {} of axis {} is out of range: {} has shape {}",
                                             entry, idx[k], k, name, format_dims(dims)));
            flat = flat * dims[k] + idx[k];
        }
    } else {
        throw InputError(fmt::format("explain '{}': {} has shape {}: give one flat index or {} indices", entry, name,
                                     format_dims(dims), dims.size()));
    }
    return {id, name, flat};
}

}  // namespace

Explanation explain_entry(const Graph& g, const Plan& plan, const std::string& entry_text) {
    const int loss = plan.loss();
    const std::string entry = trimmed(entry_text);
    const EntryRef ref = find_entry(g, loss, entry);
    const int id = ref.id;
    const std::string& name = ref.name;
    const std::int64_t flat = ref.flat;
    const Node& n = g.node(id);
    const Dims& dims = n.value.dims();
    if (id == loss) throw InputError(fmt::format("explain '{}': {} is the loss; dL/d{} = 1", entry, name, name));
    std::vector<bool> on = on_path_to(g, loss);
    if (!plan.wants_grad(id) || !on[id])
        throw InputError(fmt::format("explain '{}': the loss {} does not depend on {}, so it has no gradient", entry,
                                     g.node(loss).name, name));
    const std::vector<std::vector<Use>> uses_of = uses_on_path(g, on);
    const std::vector<Use>& uses = uses_of[std::size_t(id)];
    if (uses.size() != 1) {
        std::vector<std::string> users;
        for (const Use& u : uses) users.push_back(g.node(u.id).name);
        throw InputError(fmt::format("explain '{}': {} feeds {} uses on the way to the loss ({}); its gradient is "
                                     "their sum, and explain follows a single path",
                                     entry, name, uses.size(), fmt::join(users, ", ")));
    }
    const int c = uses[0].id;
    const Node& cn = g.node(c);
    if (cn.value.numel() > 20000)
        throw InputError(fmt::format("explain '{}': {} has {} entries, more than the 20000 explain writes out "
                                     "(feed fewer rows)",
                                     entry, cn.name, cn.value.numel()));

    Explanation x{.node = name, .entry = name + index_text(dims, flat), .consumer = cn.name};
    // From c up through elementwise nodes of c's shape, each with one use.
    std::vector<int> chain = {c};
    std::vector<Tensor> locals;
    std::vector<ExplainFactor> local_factors;
    int cur = c;
    while (cur != loss) {
        const std::vector<Use>& up = uses_of[std::size_t(cur)];
        if (up.size() != 1) break;
        const Node& p = g.node(up[0].id);
        Tensor local = local_derivative(g, up[0].id, up[0].slot);
        if (local.empty() || p.value.dims() != cn.value.dims()) break;
        locals.push_back(std::move(local));
        local_factors.push_back({fmt::format("∂{}/∂{}", p.name, g.node(cur).name), "", p.op->name});
        std::optional<std::string> f = local_factor(*p.op, up[0].slot);
        local_factors.back().formula = f ? named(g, up[0].id, *f, up[0].slot) : "";
        cur = up[0].id;
        chain.push_back(cur);
    }
    const int top = cur;
    ExplainFactor top_factor{.name = "dL/d" + g.node(top).name};
    if (top == loss) {
        top_factor.formula = "1";
    } else {
        const std::vector<Use>& up = uses_of[std::size_t(top)];
        if (up.size() == 1) {
            std::string part = node_input_formula(g, up[0].id, up[0].slot);
            auto eq = part.find(" = ");
            top_factor.formula = eq == std::string::npos ? part : part.substr(eq + 3);
            top_factor.op = g.node(up[0].id).op->name;
        }
    }
    x.factors.push_back(top_factor);
    for (std::size_t k = local_factors.size(); k-- > 0;) x.factors.push_back(local_factors[k]);
    x.factors.push_back({fmt::format("∂{}[j]/∂{}", cn.name, x.entry), node_input_formula(g, c, uses[0].slot),
                         cn.op->name});
    std::reverse(chain.begin(), chain.end());
    for (int k : chain) x.chain.push_back(g.node(k).name);
    x.chain.push_back(name);

    const Tensor& top_grad = g.node(top).grad;
    std::vector<double> jac = jacobian_column(g, c, uses[0].slot, flat);
    for (std::int64_t j = 0; j < cn.value.numel(); ++j) {
        double dj = jac[std::size_t(j)];
        if (dj == 0) {
            ++x.zero_terms;
            continue;
        }
        ExplainTerm t{.at = index_text(cn.value.dims(), j)};
        t.factors.push_back(top_grad.at(j));
        for (std::size_t k = locals.size(); k-- > 0;) t.factors.push_back(locals[k].at(j));
        t.factors.push_back(dj);
        t.value = 1;
        for (double f : t.factors) t.value *= f;
        x.sum += t.value;
        x.terms.push_back(std::move(t));
    }
    x.grad = n.grad.at(flat);
    return x;
}

}  // namespace chainrule
