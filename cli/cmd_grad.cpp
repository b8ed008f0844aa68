// `chainrule grad` and `chainrule gradcheck`.
#include <cmath>
#include <fmt/format.h>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "cli/lecture_labels.hpp"
#include "core/error.hpp"
#include "core/print.hpp"
#include "graph/backward_graph.hpp"
#include "graph/gradcheck.hpp"

namespace chainrule::cli {
namespace {

struct GradOptions {
    std::string model;
    PointOptions point;
    bool json = false;
    std::string backward_graph;
};

void add_grad_options(CLI::App* cmd, GradOptions& o) {
    cmd->add_option("MODEL", o.model, "model JSON file")->required();
    add_point_options(*cmd, o.point);
    cmd->add_flag("--json", o.json, "print a JSON document on stdout");
}

// The model with its backward pass appended as nodes (graph/backward_graph.hpp), every
// parameter's gradient named in outputs.gradients, written to `out`. Steps the lecture
// derives by hand carry its label (1)–(9) in their doc. With --weights the parameters are
// written with their trained values, so the file is the same point.
void write_backward_graph(Model m, const PointOptions& point, const std::string& out) {
    if (!point.weights.empty()) set_point(m, point);
    Graph& g = m.graph;
    if (g.loss() < 0) throw InputError(fmt::format("{}: the model has no loss output to differentiate", m.path));
    const std::size_t forward_nodes = g.size();
    const std::vector<int> params = g.parameters();
    const BackwardGraph bg = append_backward_steps(g, g.loss(), params);
    for (std::size_t k = 0; k < params.size(); ++k)
        g.set_gradient_output(g.node(params[k]).name, g.node(bg.grads[k]).name);
    for (const auto& [step, id] : bg.contributions) {
        const LectureLabel* l = lecture_label(g, step.first, step.second);
        if (!l || std::size_t(id) < forward_nodes) continue;
        g.node(id).doc = fmt::format("({}) {} = {}{}; {}", l->number, l->derivative, l->formula,
                                     *l->local ? fmt::format(" (local derivative {})", l->local) : "", g.node(id).doc);
    }
    if (!g.name.empty()) g.name += "_backward";
    save_model(m, out, !point.weights.empty());
    fmt::print("{}: {} forward and {} backward nodes; the gradients of {} parameters are outputs\n", out,
               forward_nodes, g.size() - forward_nodes, params.size());
}

}  // namespace

void add_grad(CLI::App& app) {
    auto o = std::make_shared<GradOptions>();
    auto* cmd = app.add_subcommand("grad", "Run forward and backward once; print the loss and the gradient of "
                                           "every node");
    add_grad_options(cmd, *o);
    cmd->add_option("--backward-graph", o->backward_graph,
                    "write the model with its backward pass as nodes (each gradient an output) to this JSON file, "
                    "instead of printing gradients");
    cmd->callback([o] {
        if (!o->backward_graph.empty()) {
            write_backward_graph(load(o->model), o->point, o->backward_graph);
            return;
        }
        Model m = load(o->model);
        set_point(m, o->point);
        Graph& g = m.graph;
        Plan plan = g.plan(Pass::inspect());
        g.forward(plan);
        g.backward(plan);
        int loss = g.loss();
        // The numbers are still printed (they show where it went wrong), then exit 1.
        auto check_finite = [&] {
            double l = g.node(loss).value.at(0);
            if (!std::isfinite(l))
                throw RunError(fmt::format("the loss is {} at this point; `chainrule step` or `train --detect-anomaly` "
                                           "shows where it starts",
                                           std::isnan(l) ? "NaN" : "Inf"));
        };
        if (o->json) {
            Json out;
            out["loss"] = number_json(g.node(loss).value.at(0));
            Json nodes = Json::object();
            for (std::size_t id = 0; id < g.size(); ++id) nodes[g.node(int(id)).name] = node_json(g, int(id), true);
            out["nodes"] = nodes;
            std::cout << out.dump(2) << "\n";
            check_finite();
            return;
        }
        fmt::print("loss {} = {:.10g}\n", g.node(loss).name, g.node(loss).value.at(0));
        for (const Node& n : g.nodes()) {
            fmt::print("\n{} ({}{}) {}\n", n.name, kind_name(n.kind), n.op ? " " + n.op->name : "",
                       format_dims(n.value.dims()));
            auto indented = [](std::string s, std::size_t by) {
                for (std::size_t p = s.find('\n'); p != std::string::npos; p = s.find('\n', p + 1))
                    s.insert(p + 1, std::string(by, ' '));
                return s;
            };
            fmt::print("  value  {}\n", indented(format_tensor(n.value), 8));
            std::string label = "dL/d" + n.name;
            if (!n.grad.empty())
                fmt::print("  {}  {}\n", label, indented(format_tensor(n.grad), label.size() + 3));
        }
        check_finite();
    });
}

void add_gradcheck(CLI::App& app) {
    auto o = std::make_shared<GradOptions>();
    auto go = std::make_shared<GradcheckOptions>();
    auto* cmd = app.add_subcommand("gradcheck",
                                   "Compare analytic gradients with central finite differences in float64; exit 1 "
                                   "when any entry is outside the tolerance");
    add_grad_options(cmd, *o);
    cmd->add_option("--max-entries", go->max_entries,
                    "entries checked per tensor, drawn at random (seeded) from larger ones; 0 = all")
        ->capture_default_str()
        ->check(whole_in(0, kMaxElements));
    cmd->add_option("--rtol", go->rtol, "relative tolerance")->capture_default_str()->check(finite_at_least(0, false));
    cmd->add_option("--atol", go->atol, "absolute tolerance")->capture_default_str()->check(finite_at_least(0, false));
    cmd->add_option("--step", go->step, "finite-difference step h (scaled by max(1,|x|))")
        ->capture_default_str()
        ->check(finite_at_least(0, true));
    cmd->add_flag("--inputs", go->inputs, "check the gradients of inputs too (except ids and class-index labels)");
    cmd->callback([o, go] {
        Model m = load(o->model, true);
        set_point(m, o->point);
        go->seed = o->point.seed.value_or(0);
        for (const Node& n : m.graph.nodes())
            if (n.op && !n.op->exact_gradient)
                fmt::print(stderr,
                           "note: node '{}' uses op '{}', whose backward is deliberately not the derivative of its "
                           "forward; expect this check to fail\n",
                           n.name, n.op->name);
        GradcheckReport r = gradcheck(m.graph, *go);
        if (o->json) {
            Json out;
            out["ok"] = r.ok;
            out["vacuous"] = r.vacuous;
            out["loss"] = number_json(r.loss);
            out["rtol"] = go->rtol;
            out["atol"] = go->atol;
            Json ts = Json::object();
            for (const auto& t : r.tensors) {
                Json e = Json::array();
                for (const auto& x : t.entries)
                    e.push_back({{"index", x.index}, {"analytic", number_json(x.analytic)}, {"numeric", number_json(x.numeric)}, {"ok", x.ok}});
                ts[t.name] = {{"ok", t.ok},        {"total", t.total}, {"checked", t.entries.size()},
                              {"max_abs_error", number_json(t.max_abs_error)}, {"max_abs_numeric", number_json(t.max_abs_numeric)},
                              {"entries", e}};
            }
            out["tensors"] = ts;
            Json skipped = Json::object();
            for (const auto& sk : r.skipped) skipped[sk.name] = sk.reason;
            out["skipped"] = skipped;
            std::cout << out.dump(2) << "\n";
        } else {
            fmt::print("loss {:.10g}; pass when |analytic − numeric| <= {:g} + {:g}·max(|analytic|,|numeric|)\n",
                       r.loss, go->atol, go->rtol);
            for (const auto& t : r.tensors) {
                fmt::print("  {:<8} {:>6} of {:<7} entries  max |error| {:.3g}  max |numeric| {:.3g}  {}\n", t.name,
                           t.entries.size(), t.total, t.max_abs_error, t.max_abs_numeric, t.ok ? "ok" : "FAIL");
                for (const auto& e : t.entries)
                    if (!e.ok)
                        fmt::print("      [{}] analytic {:.10g}  numeric {:.10g}\n", e.index, e.analytic, e.numeric);
            }
            for (const auto& sk : r.skipped)
                fmt::print("  {:<8} skipped: it holds the {} (indices, not numbers to nudge)\n", sk.name, sk.reason);
            if (r.vacuous) fmt::print("every numeric gradient is ~0: nothing was really checked\n");
            fmt::print("{}\n", r.ok ? "gradcheck passed" : "gradcheck FAILED");
        }
        if (!r.ok) throw RunError(r.vacuous ? "gradcheck is vacuous: all gradients are ~0"
                                            : "gradcheck failed: analytic and numeric gradients differ");
    });
}

}  // namespace chainrule::cli
