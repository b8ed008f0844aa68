#include "cli/step_view.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <istream>
#include <optional>
#include <ostream>

#include "cli/lecture_labels.hpp"
#include "core/error.hpp"
#include "core/print.hpp"
#include "core/text.hpp"
#include "render/explain.hpp"

namespace chainrule::cli {

// ---- text ----

namespace {

// Slot order, except that labelled inputs come in the lecture's order among themselves:
// matmul y1W2 sends (6) to slot 0 and (5) to slot 1.
std::vector<const LabelledInput*> display_order(const std::vector<LabelledInput>& ins) {
    std::vector<const LabelledInput*> out, labelled;
    std::vector<std::size_t> where;
    for (const LabelledInput& in : ins) {
        if (in.label) labelled.push_back(&in), where.push_back(out.size());
        out.push_back(&in);
    }
    std::stable_sort(labelled.begin(), labelled.end(), [](const LabelledInput* a, const LabelledInput* b) {
        return a->label->number < b->label->number;
    });
    for (std::size_t k = 0; k < where.size(); ++k) out[where[k]] = labelled[k];
    return out;
}

std::vector<std::string> names_of(const Graph& g, const std::vector<int>& ids) {
    std::vector<std::string> out;
    for (int id : ids) out.push_back(g.node(id).name);
    return out;
}

// Continuation lines of a multi-line tensor start under its first line.
std::string indented(std::string s, std::size_t by) {
    for (std::size_t p = s.find('\n'); p != std::string::npos; p = s.find('\n', p + 1))
        s.insert(p + 1, std::string(by, ' '));
    return s;
}

struct Lines {
    std::string out;
    std::size_t width = 12;
    // Values of every level start in one column: deeper labels get less room.
    void add(std::size_t indent, const std::string& label, const std::string& text) {
        std::string pad(indent, ' ');
        std::size_t w = std::max(width + 2 - std::min(indent, width), label.size());
        out += fmt::format("{}{:<{}} {}\n", pad, label, w, indented(text, indent + w + 1));
    }
};

// A column ([N,1], the worked example's shapes) reads better on one line than as a tower.
std::string tensor_text(const Tensor& t, const ShowOptions& o) {
    std::string s = format_tensor(t, o.limit, o.digits);
    if (t.rank() < 2 || t.dims().back() != 1) return s;
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '\n') {
            out += s[i];
            continue;
        }
        out += ' ';
        while (i + 1 < s.size() && s[i + 1] == ' ') ++i;
    }
    return out;
}

std::string pct(double r) { return std::isfinite(r) ? fmt::format("{:.3g}%", 100 * r) : "inf"; }

}  // namespace

std::string format_step(const Stepper& s, const Step& st, const ShowOptions& o) {
    const Graph& g = s.graph();
    const Node& n = g.node(st.id);
    std::vector<std::string> ins = names_of(g, n.inputs);
    Lines l;
    l.out = fmt::format("step {}/{}: {} = {}({})   shape {}\n", st.index + 1, s.order().size(), n.name, n.op->name,
                        fmt::join(ins, ", "), format_dims(n.value.dims()));
    l.add(2, "formula", node_formula(g, st.id));
    for (std::size_t i = 0; i < ins.size(); ++i)
        if (std::find(ins.begin(), ins.begin() + long(i), ins[i]) == ins.begin() + long(i))
            l.add(2, ins[i], tensor_text(g.node(n.inputs[i]).value, o));
    l.add(2, n.name, tensor_text(n.value, o));
    l.add(2, "dL/d" + n.name, tensor_text(n.grad, o) + "   (upstream gradient)");
    const std::vector<LabelledInput> labelled = label_step(g, st);
    for (const LabelledInput* p : display_order(labelled)) {
        const StepInput& in = *p->input;
        const LectureLabel* label = p->label;
        const std::optional<LectureGap>& gap = p->gap;
        const std::string& name = g.node(in.id).name;
        if (label)
            l.out += fmt::format("  → {}   ({}) {} = {}{}\n", name, label->number, label->derivative, label->formula,
                                 *label->local ? fmt::format("   (local: {})", label->local) : "");
        else
            l.out += fmt::format("  → {}\n", name);
        if (in.contribution.empty()) {
            l.out += "      (no gradient wanted)\n";
            continue;
        }
        Tensor local = local_derivative(g, st.id, in.slot);
        if (!local.empty()) {
            l.add(4, "local", local_derivative_text(g, st.id, in.slot) + "\n" + tensor_text(local, o));
            l.add(4, "product", fmt::format("dL/d{} = dL/d{} ⊙ ∂{}/∂{}   (upstream ⊙ local)", name, n.name, n.name, name));
        } else if (std::string part = node_input_formula(g, st.id, in.slot); !part.empty()) {
            l.add(4, "rule", part + "   shapes " + node_input_shapes(g, st.id, in.slot));
        }
        l.add(4, "sends", tensor_text(in.contribution, o));
        if (gap) {
            l.add(4, "lecture", tensor_text(gap->lecture, o) + "   (g passed straight through)");
            l.add(4, "gap", fmt::format("‖exact − lecture‖ = {:.{}g}, ‖exact‖ = {:.{}g}, ‖lecture‖ = {:.{}g}, "
                                        "relative difference {}",
                                        gap->norm_diff, o.digits, gap->norm_exact, o.digits, gap->norm_lecture,
                                        o.digits, pct(gap->relative_diff)));
        }
        // mul(x, x) sends x two contributions in one step; the snapshot holds their sum.
        bool alone = std::count_if(st.inputs.begin(), st.inputs.end(), [&](const StepInput& o) {
                         return o.id == in.id;
                     }) == 1;
        if (in.first && alone)
            l.add(4, "dL/d" + name, "= sends (its first contribution)");
        else
            l.add(4, "dL/d" + name, tensor_text(in.grad, o) + "   (accumulated: earlier contributions + sends)");
    }
    return l.out;
}

Tensor leading_slice(const Tensor& t, const std::vector<std::int64_t>& at, const std::string& name) {
    if (at.size() >= t.rank())
        throw InputError(fmt::format("{} has shape {}: give at most {} indices to show a slice (e.g. {}[0])", name,
                                     format_dims(t.dims()), t.rank() == 0 ? 0 : t.rank() - 1, name));
    std::int64_t offset = 0;
    for (std::size_t a = 0; a < at.size(); ++a) {
        if (at[a] < 0 || at[a] >= t.dim(a))
            throw InputError(fmt::format("{} has shape {}: index {} of axis {} is out of range [0, {})", name,
                                         format_dims(t.dims()), at[a], a, t.dim(a)));
        offset = offset * t.dim(a) + at[a];
    }
    const Dims rest(t.dims().begin() + long(at.size()), t.dims().end());
    Tensor out(t.dtype(), rest);
    const std::int64_t n = out.numel();
    for (std::int64_t i = 0; i < n; ++i) out.set(i, t.at(offset * n + i));
    return out;
}

std::pair<std::string, std::vector<std::int64_t>> parse_slice(const std::string& text) {
    const std::size_t open = text.find('[');
    if (open == std::string::npos) return {text, {}};
    const std::string name = text.substr(0, open);
    const std::string bad = fmt::format("'{}': a slice is written NAME[i] or NAME[i,j], whole numbers from 0", text);
    if (text.back() != ']' || open + 2 > text.size() - 1) throw InputError(bad);
    std::vector<std::int64_t> at;
    std::string digits;
    for (std::size_t i = open + 1; i < text.size(); ++i) {
        const char c = text[i];
        if (c == ' ') continue;
        if (c != ',' && c != ']') {
            digits += c;
            continue;
        }
        if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos)
            throw InputError(bad);
        at.push_back(std::stoll(digits));
        digits.clear();
    }
    return {name, at};
}

std::string format_node(const Stepper& s, int id, const ShowOptions& o, const std::vector<std::int64_t>& at) {
    const Graph& g = s.graph();
    const Node& n = g.node(id);
    const std::string where = at.empty() ? n.name : fmt::format("{}[{}]", n.name, fmt::join(at, ","));
    const Tensor value = at.empty() ? Tensor() : leading_slice(n.value, at, n.name);
    auto part = [&](const Tensor& t) -> std::string {
        return at.empty() ? tensor_text(t, o) : tensor_text(leading_slice(t, at, n.name), o);
    };
    Lines l;
    l.out = fmt::format("{} ({}{}) {}{}\n", n.name, kind_name(n.kind), n.op ? " " + n.op->name : "",
                        format_dims(n.value.dims()),
                        at.empty() ? "" : fmt::format("; the slice {} of shape {}", where, format_dims(value.dims())));
    l.add(2, "value", part(n.value));
    std::string label = "dL/d" + where;
    if (!s.plan().wants_grad(id) && id != s.loss())
        l.add(2, label, "(no gradient: nothing trainable or fed depends on it)");
    else if (s.reached(id) || s.done())
        l.add(2, label, part(n.grad) + (s.done() ? "" : "   (so far)"));
    else if (std::optional<std::size_t> k = complete_after(s, id); k && *k > 0)
        l.add(2, label, fmt::format("(not reached yet: complete after step {}, {})", *k, g.node(s.order()[*k - 1]).name));
    else
        l.add(2, label, "(not reached yet)");
    if (at.size() + 2 < n.value.rank())
        l.out += fmt::format("  slices: p {}[{}0] shows the next axis's first (axis {} has {})\n", n.name,
                             at.empty() ? "" : fmt::format("{},", fmt::join(at, ",")), at.size(), n.value.dim(at.size()));
    return l.out;
}

std::string format_summary(const Stepper& s, const ShowOptions& o) {
    const Graph& g = s.graph();
    Lines l;
    l.out = fmt::format("backward done after {} steps; loss {} = {:.{}g}\n", s.order().size(), g.node(s.loss()).name,
                        g.node(s.loss()).value.at(0), o.digits);
    for (int id : g.parameters()) l.add(2, "dL/d" + g.node(id).name, tensor_text(g.node(id).grad, o));
    return l.out;
}

// ---- JSON ----

Json step_json(const Stepper& s, const Step& st) {
    const Graph& g = s.graph();
    const Node& n = g.node(st.id);
    Json j;
    j["index"] = st.index;
    j["node"] = n.name;
    j["op"] = n.op->name;
    j["formula"] = n.op->formula;
    j["named_formula"] = node_formula(g, st.id);
    j["inputs"] = names_of(g, n.inputs);
    j["grad_out"] = tensor_to_json(n.grad);
    Json labels = Json::array(), contributions = Json::array();
    const std::vector<LabelledInput> labelled = label_step(g, st);
    for (const LabelledInput* p : display_order(labelled))
        if (p->label)
            labels.push_back({{"number", p->label->number},
                              {"derivative", p->label->derivative},
                              {"formula", p->label->formula},
                              {"local", p->label->local},
                              {"input", g.node(p->input->id).name},
                              {"slot", p->input->slot}});
    for (const LabelledInput& l : labelled) {
        const StepInput& in = *l.input;
        const std::string& name = g.node(in.id).name;
        Json c;
        c["input"] = name;
        c["slot"] = in.slot;
        c["label"] = l.label ? Json(l.label->number) : Json();
        c["contribution"] = in.contribution.empty() ? Json() : tensor_to_json(in.contribution);
        c["grad"] = in.grad.empty() ? Json() : tensor_to_json(in.grad);
        c["first"] = in.first;
        std::string part = node_input_formula(g, st.id, in.slot);
        c["formula"] = part.empty() ? Json() : Json(part);
        c["shapes"] = part.empty() ? Json() : Json(node_input_shapes(g, st.id, in.slot));
        Tensor local = in.contribution.empty() ? Tensor() : local_derivative(g, st.id, in.slot);
        c["local"] = local.empty() ? Json() : tensor_to_json(local);
        c["local_formula"] = local.empty() ? Json() : Json(local_derivative_text(g, st.id, in.slot));
        c["product"] = in.contribution.empty() ? Json()
                       : !local.empty() ? Json(fmt::format("dL/d{} = dL/d{} ⊙ ∂{}/∂{}", name, n.name, n.name, name))
                                        : Json(part);
        if (l.gap)
            c["lecture_gap"] = {{"lecture", tensor_to_json(l.gap->lecture)},
                                {"exact", tensor_to_json(l.gap->exact)},
                                {"norm_lecture", l.gap->norm_lecture},
                                {"norm_exact", l.gap->norm_exact},
                                {"norm_diff", l.gap->norm_diff},
                                {"relative_diff", l.gap->relative_diff}};
        contributions.push_back(std::move(c));
    }
    j["labels"] = labels;
    j["contributions"] = contributions;
    return j;
}


// ---- the model's formulas, one entry explained, wrapping ----

std::string format_nodes(const Stepper& s) {
    const Graph& g = s.graph();
    std::size_t w = 4;
    for (const Node& n : g.nodes()) w = std::max(w, n.name.size());
    std::string out;
    for (std::size_t i = 0; i < g.size(); ++i) {
        const Node& n = g.node(int(i));
        std::string what = n.op ? fmt::format("{}({})", n.op->name, fmt::join(names_of(g, n.inputs), ", "))
                                : std::string(kind_name(n.kind));
        out += fmt::format("  {:<{}}  {:<14} {}\n", n.name, w, what, format_dims(n.value.dims()));
        if (n.op) out += fmt::format("  {:<{}}  {}\n", "", w, node_formula(g, int(i)));
    }
    return out;
}

// ---- how far the walk must go ----

std::optional<std::size_t> complete_after(const Stepper& s, int id) {
    if (id == s.loss()) return 0;
    const Graph& g = s.graph();
    std::optional<std::size_t> last;
    for (std::size_t k = 0; k < s.order().size(); ++k) {
        const std::vector<int>& ins = g.node(s.order()[k]).inputs;
        if (std::find(ins.begin(), ins.end(), id) != ins.end()) last = k + 1;
    }
    return last;
}

std::size_t steps_until(const Stepper& s, const std::string& name) {
    const Graph& g = s.graph();
    const int id = g.find(name);
    if (id >= 0 && g.node(id).kind != NodeKind::op) {
        if (std::optional<std::size_t> k = complete_after(s, id)) return *k;
        throw InputError(fmt::format("'{}' gets no gradient: no step of the backward walk sends it one", name));
    }
    return s.index_of(name) + 1;  // an op node's own step; its message names what is wrong otherwise
}

}  // namespace chainrule::cli
