#include "graph/stepper.hpp"

#include "core/text.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <istream>
#include <ostream>

#include "core/error.hpp"
#include "core/print.hpp"

namespace chainrule {

namespace {

// The lecture's nine derivatives, as data: which node's contribution to which input each
// one is. The graph splits x·W + b into matmul and add, so (4)/(5)/(6) and (8)/(9) are
// contributions of different nodes to different inputs.
constexpr LectureLabel kLecture[] = {
    {1, "L", "mse", 0, "S", "∂L/∂S", "(S − t)/N", false},
    {2, "S", "normalize", 0, "y2", "∂S/∂y2",
     "normalize's Jacobian, (g − Σ g·S)/Σ y2 per row; the lecture's hand derivation skips it and passes "
     "g = ∂L/∂S straight through",
     true},
    {3, "y2", "sigmoid", 0, "a2", "∂y2/∂a2", "y2(1 − y2);  δ2 = g ⊙ y2(1 − y2)", false},
    {4, "a2", "add", 1, "b2", "∂a2/∂b″", "1;  ∂L/∂b″ = δ2 summed over the rows", false},
    {5, "y1W2", "matmul", 1, "W2", "∂a2/∂W″", "y1ᵀ·δ2", false},
    {6, "y1W2", "matmul", 0, "y1", "∂a2/∂y1", "δ2·W″ᵀ", false},
    {7, "y1", "sigmoid", 0, "a1", "∂y1/∂a1", "y1(1 − y1);  δ1 = (δ2·W″ᵀ) ⊙ y1(1 − y1)", false},
    {8, "a1", "add", 1, "b1", "∂a1/∂b′", "1;  ∂L/∂b′ = δ1 summed over the rows", false},
    {9, "xW1", "matmul", 1, "W1", "∂a1/∂W′", "xᵀ·δ1", false},
    // models/mnist_lecture.json fuses sigmoid and normalize into the lecture's own update.
    {3, "S", "lecture_sigmoid_normalize", 0, "a2", "∂y2/∂a2",
     "y2(1 − y2) taken at the normalized output S, with (2) skipped: the lecture's update, not the exact gradient",
     false},
};

const LectureLabel* label_for(const Graph& g, int id, std::size_t slot) {
    const Node& n = g.node(id);
    for (const auto& l : kLecture)
        if (n.name == l.node && n.op->name == l.op && slot == l.slot && slot < n.inputs.size() &&
            g.node(n.inputs[slot]).name == l.input)
            return &l;
    return nullptr;
}

LectureGap gap_of(const Tensor& lecture, const Tensor& exact) {
    LectureGap gap{.lecture = lecture, .exact = exact};
    double diff = 0;
    for (std::int64_t i = 0; i < exact.numel(); ++i) {
        double d = exact.at(i) - lecture.at(i);
        diff += d * d;
    }
    gap.norm_lecture = tensor_stats(lecture).norm;
    gap.norm_exact = tensor_stats(exact).norm;
    gap.norm_diff = std::sqrt(diff);
    gap.relative_diff = gap.norm_exact > 0 ? gap.norm_diff / gap.norm_exact : gap.norm_diff > 0 ? INFINITY : 0.0;
    return gap;
}

// Slot order, except that labelled inputs come in the lecture's order among themselves:
// matmul y1W2 sends (6) to slot 0 and (5) to slot 1.
std::vector<const StepInput*> display_order(const Step& st) {
    std::vector<const StepInput*> out, labelled;
    std::vector<std::size_t> where;
    for (const StepInput& in : st.inputs) {
        if (in.label) labelled.push_back(&in), where.push_back(out.size());
        out.push_back(&in);
    }
    std::stable_sort(labelled.begin(), labelled.end(),
                     [](const StepInput* a, const StepInput* b) { return a->label->number < b->label->number; });
    for (std::size_t k = 0; k < where.size(); ++k) out[where[k]] = labelled[k];
    return out;
}

std::vector<std::string> names_of(const Graph& g, const std::vector<int>& ids) {
    std::vector<std::string> out;
    for (int id : ids) out.push_back(g.node(id).name);
    return out;
}

Pass stepping_pass(const Graph& g, int loss) {
    Pass p = Pass::stepping();
    p.loss = loss < 0 ? g.loss() : loss;
    if (p.loss < 0) throw InputError("the model has no \"loss\" output to differentiate");
    return p;
}

// forward() first: backward_order() plans on the values it leaves.
const std::vector<int>& prepare(Graph& g, const Pass& p) {
    g.forward(p);
    return g.backward_order(p);
}

}  // namespace

std::span<const LectureLabel> lecture_labels() { return kLecture; }

Stepper::Stepper(Graph& g, int loss) : g_(g), pass_(stepping_pass(g, loss)), order_(prepare(g, pass_)) {
    g_.backward_begin(pass_);
    reached_.assign(g_.size(), false);
    reached_[pass_.loss] = true;
    for (int id : order_)
        for (std::size_t i = 0; i < g_.node(id).inputs.size(); ++i) labelled_ = labelled_ || label_for(g_, id, i);
    if (order_.empty()) g_.backward_end();  // a loss that is an input: nothing to step
}

const Step& Stepper::next() {
    if (done()) throw std::logic_error("Stepper::next() called after the last step");
    int id = order_[pos_];
    g_.backward_node(id);
    const Node& n = g_.node(id);
    step_.index = pos_;
    step_.id = id;
    step_.inputs.clear();
    for (std::size_t i = 0; i < n.inputs.size(); ++i) {
        int j = n.inputs[i];
        StepInput in{.id = j, .slot = i, .label = label_for(g_, id, i)};
        if (g_.node(j).wants_grad) {
            in.contribution = g_.contribution(id, i);
            in.grad = g_.node(j).grad;
            in.first = !reached_[j];
            reached_[j] = true;
        }
        if (in.label && in.label->lecture_passes_through && !in.contribution.empty() &&
            n.grad.dims() == in.contribution.dims())
            in.gap = gap_of(n.grad, in.contribution);
        step_.inputs.push_back(std::move(in));
    }
    if (++pos_ == order_.size()) g_.backward_end();
    return step_;
}

std::size_t Stepper::index_of(const std::string& name) const {
    auto it = std::find_if(order_.begin(), order_.end(), [&](int id) { return g_.node(id).name == name; });
    if (it != order_.end()) return std::size_t(it - order_.begin());
    std::vector<std::string> steps = names_of(g_, order_);
    int id = g_.find(name);
    if (id >= 0) {
        NodeKind k = g_.node(id).kind;
        throw InputError(fmt::format("'{}' is {}, not a step of the backward walk (the steps are: {})", name,
                                     k == NodeKind::op          ? "an op node the loss does not depend on"
                                     : k == NodeKind::input     ? "an input"
                                     : k == NodeKind::parameter ? "a parameter"
                                                                : "a constant",
                                     fmt::join(steps, ", ")));
    }
    std::vector<std::string> all;
    for (const Node& n : g_.nodes()) all.push_back(n.name);
    std::string guess = closest_name(name, all);
    throw InputError(fmt::format("model '{}' has no node '{}'{}; the steps are: {}", g_.name, name,
                                 guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess),
                                 fmt::join(steps, ", ")));
}

// ---- text ----

namespace {

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
    l.add(2, "formula", n.op->formula);
    for (std::size_t i = 0; i < ins.size(); ++i)
        if (std::find(ins.begin(), ins.begin() + long(i), ins[i]) == ins.begin() + long(i))
            l.add(2, ins[i], tensor_text(g.node(n.inputs[i]).value, o));
    l.add(2, n.name, tensor_text(n.value, o));
    l.add(2, "dL/d" + n.name, tensor_text(n.grad, o) + "   (upstream gradient)");
    for (const StepInput* p : display_order(st)) {
        const StepInput& in = *p;
        const std::string& name = g.node(in.id).name;
        if (in.label)
            l.out += fmt::format("  → {}   ({}) {} = {}\n", name, in.label->number, in.label->derivative,
                                 in.label->formula);
        else
            l.out += fmt::format("  → {}\n", name);
        if (in.contribution.empty()) {
            l.out += "      (no gradient wanted)\n";
            continue;
        }
        l.add(4, "sends", tensor_text(in.contribution, o));
        if (in.gap) {
            l.add(4, "lecture", tensor_text(in.gap->lecture, o) + "   (g passed straight through)");
            l.add(4, "gap", fmt::format("‖exact − lecture‖ = {:.{}g}, ‖exact‖ = {:.{}g}, ‖lecture‖ = {:.{}g}, "
                                        "relative difference {}",
                                        in.gap->norm_diff, o.digits, in.gap->norm_exact, o.digits,
                                        in.gap->norm_lecture, o.digits, pct(in.gap->relative_diff)));
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

std::string format_node(const Stepper& s, int id, const ShowOptions& o) {
    const Graph& g = s.graph();
    const Node& n = g.node(id);
    Lines l;
    l.out = fmt::format("{} ({}{}) {}\n", n.name, kind_name(n.kind), n.op ? " " + n.op->name : "",
                        format_dims(n.value.dims()));
    l.add(2, "value", tensor_text(n.value, o));
    std::string label = "dL/d" + n.name;
    if (!n.wants_grad && id != s.loss())
        l.add(2, label, "(no gradient: nothing trainable or fed depends on it)");
    else if (s.reached(id) || s.done())
        l.add(2, label, tensor_text(n.grad, o) + (s.done() ? "" : "   (so far)"));
    else
        l.add(2, label, "(not reached yet)");
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
    j["inputs"] = names_of(g, n.inputs);
    j["grad_out"] = tensor_to_json(n.grad);
    Json labels = Json::array(), contributions = Json::array();
    for (const StepInput* p : display_order(st))
        if (p->label)
            labels.push_back({{"number", p->label->number},
                              {"derivative", p->label->derivative},
                              {"formula", p->label->formula},
                              {"input", g.node(p->id).name},
                              {"slot", p->slot}});
    for (const StepInput& in : st.inputs) {
        const std::string& name = g.node(in.id).name;
        Json c;
        c["input"] = name;
        c["slot"] = in.slot;
        c["label"] = in.label ? Json(in.label->number) : Json();
        c["contribution"] = in.contribution.empty() ? Json() : tensor_to_json(in.contribution);
        c["grad"] = in.grad.empty() ? Json() : tensor_to_json(in.grad);
        c["first"] = in.first;
        if (in.gap)
            c["lecture_gap"] = {{"lecture", tensor_to_json(in.gap->lecture)},
                                {"exact", tensor_to_json(in.gap->exact)},
                                {"norm_lecture", in.gap->norm_lecture},
                                {"norm_exact", in.gap->norm_exact},
                                {"norm_diff", in.gap->norm_diff},
                                {"relative_diff", in.gap->relative_diff}};
        contributions.push_back(std::move(c));
    }
    j["labels"] = labels;
    j["contributions"] = contributions;
    return j;
}

// ---- the session ----

namespace {

constexpr const char* kHelp =
    "commands:\n"
    "  Enter, n    run the next step\n"
    "  p NAME      print a node's value and gradient so far\n"
    "  b NODE      run until NODE's step is done\n"
    "  c           run to the end\n"
    "  q           quit\n"
    "  help        this list\n";

std::string trim(const std::string& s) {
    auto b = s.find_first_not_of(" \t\r");
    if (b == std::string::npos) return "";
    return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

}  // namespace

void interact(Stepper& s, std::istream& in, std::ostream& out, bool prompt, const ShowOptions& o) {
    const Graph& g = s.graph();
    auto step = [&] {
        out << format_step(s, s.next(), o) << "\n";
        if (s.done()) out << format_summary(s, o) << "the walk is done: p NAME to look, q to quit\n";
    };
    if (s.position() == 0)
        out << fmt::format("forward done: loss {} = {:.{}g}; {} backward steps: Enter runs the next, help lists "
                           "commands\n",
                           g.node(s.loss()).name, g.node(s.loss()).value.at(0), o.digits, s.order().size());
    std::string line;
    while (true) {
        std::string ask = s.done() ? "(done) " : fmt::format("(step {}/{}) ", s.position() + 1, s.order().size());
        if (prompt) out << ask << std::flush;
        if (!std::getline(in, line)) break;
        // Read from a script, the commands are echoed so the output reads as a transcript.
        if (!prompt) out << ask << trim(line) << "\n";
        std::string cmd = trim(line), arg;
        if (auto sp = cmd.find_first_of(" \t"); sp != std::string::npos) {
            arg = trim(cmd.substr(sp + 1));
            cmd = cmd.substr(0, sp);
        }
        if (cmd == "q" || cmd == "quit") break;
        if (cmd.empty() || cmd == "n" || cmd == "next" || cmd == "c" || cmd == "continue") {
            if (s.done()) break;
            do step();
            while ((cmd == "c" || cmd == "continue") && !s.done());
        } else if (cmd == "p" || cmd == "print") {
            int id = g.find(arg);
            if (id >= 0) {
                out << format_node(s, id, o);
                continue;
            }
            std::vector<std::string> all;
            for (const Node& n : g.nodes()) all.push_back(n.name);
            std::string guess = closest_name(arg, all);
            out << (arg.empty() ? std::string("p needs a node name, e.g. p ") + g.node(s.loss()).name
                                : fmt::format("no node '{}'{}", arg,
                                              guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess)))
                << "\n";
        } else if (cmd == "b" || cmd == "break") {
            std::size_t target = 0;
            try {
                target = s.index_of(arg);
            } catch (const InputError& e) {
                out << e.what() << "\n";
                continue;
            }
            if (target < s.position()) {
                out << fmt::format("step {} ({}) is already done\n", target + 1, arg);
                continue;
            }
            while (s.position() <= target) step();
        } else if (cmd == "help" || cmd == "h" || cmd == "?") {
            out << kHelp;
        } else {
            out << fmt::format("unknown command '{}'\n", cmd) << kHelp;
        }
    }
}

}  // namespace chainrule
