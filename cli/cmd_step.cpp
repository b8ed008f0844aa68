// `chainrule step`: the backward pass one op node at a time (docs/backprop-walkthrough.md).
#include <filesystem>
#include <fmt/format.h>
#include <iostream>
#include <unistd.h>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "cli/line_editor.hpp"
#include "cli/repl.hpp"
#include "cli/row_predictions.hpp"
#include "cli/step_page.hpp"
#include "cli/step_view.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "core/print.hpp"

namespace chainrule::cli {
namespace {

struct StepOptions {
    std::string model, until, html, explain;
    PointOptions point;
    bool all = false, json = false, interactive = false;
    ShowOptions show;
};

Json trace_json(const Stepper& s, Json steps) {
    const Graph& g = s.graph();
    Json out;
    out["model"] = g.name;
    out["loss"] = number_json(g.node(s.loss()).value.at(0));
    out["loss_node"] = g.node(s.loss()).name;
    Json nodes = Json::object();
    for (std::size_t i = 0; i < g.size(); ++i) {
        int id = int(i);
        Json n = node_json(g, id, true);
        // A gradient the walk has not reached yet holds nothing meaningful.
        if (!s.done() && !s.reached(id)) n["grad"] = nullptr;
        nodes[g.node(id).name] = std::move(n);
    }
    out["nodes"] = nodes;
    Json order = Json::array();
    for (int id : s.order()) order.push_back(g.node(id).name);
    out["order"] = order;
    out["complete"] = s.done();
    out["steps"] = std::move(steps);
    return out;
}

// The rows' predictions after forward (the stepper's constructor ran it).
std::vector<RowPrediction> predictions(const Stepper& s, const Point& p) {
    // A target drawn at random holds no one's labels.
    return row_predictions(s.graph(), p.row_names, p.labels, p.class_names, p.random_inputs.empty());
}

void write_page(Model& m, const StepOptions& o) {
    PageOptions page;
    page.point = set_point(m, o.point);
    Stepper s(m.graph);
    page.rows = predictions(s, page.point);
    std::string html = step_page(s, page);
    write_file_atomic(o.html, html);
    fmt::print(stderr, "wrote {} ({} steps, {} KB); open it in a browser: file://{}\n", o.html, s.order().size(),
               (html.size() + 1023) / 1024, std::filesystem::absolute(o.html).string());
}

void run(const StepOptions& o) {
    Model m = load(o.model);
    if (!o.html.empty()) return write_page(m, o);
    const Point point = set_point(m, o.point);
    Stepper s(m.graph);
    const Graph& g = s.graph();
    std::size_t stop = s.order().size();
    if (!o.until.empty()) {
        try {
            stop = steps_until(s, o.until);
        } catch (const InputError& e) {
            throw InputError(fmt::format("--until: {}", e.what()));
        }
    }
    if (!o.explain.empty()) {  // the whole walk, then one entry term by term
        while (!s.done()) s.next();
        Explanation x = explain_entry(g, s.plan(), o.explain);
        if (o.json) std::cout << explanation_json(x).dump() << "\n";
        else fmt::print("{}", format_explanation(x, o.show.digits));
        return;
    }
    if (o.json) {
        Json steps = Json::array();
        while (s.position() < stop) steps.push_back(step_json(s, s.next()));
        std::cout << trace_json(s, std::move(steps)).dump() << "\n";
        return;
    }
    bool interactive = !o.all && (o.interactive || (::isatty(0) && ::isatty(1)));
    if (!interactive || !o.until.empty()) {
        fmt::print("forward done: loss {} = {:.{}g}; {} backward steps in reverse topological order: {}\n\n",
                   g.node(s.loss()).name, g.node(s.loss()).value.at(0), o.show.digits, s.order().size(),
                   fmt::join([&] {
                       std::vector<std::string> names;
                       for (int id : s.order()) names.push_back(g.node(id).name);
                       return names;
                   }(), ", "));
        if (std::string rows = format_row_predictions(g, predictions(s, point)); !rows.empty()) fmt::print("{}\n", rows);
        while (s.position() < stop) fmt::print("{}\n", format_step(s, s.next(), o.show));
        if (s.done()) fmt::print("{}", format_summary(s, o.show));
        else fmt::print("stopped after step {}/{} ({})\n", s.position(), s.order().size(), o.until);
        std::fflush(stdout);
    }
    if (!interactive) return;
    const std::string intro = format_row_predictions(g, predictions(s, point));
    if (::isatty(0) && ::isatty(1)) {  // typed: editing and history
        LineEditor editor;
        interact(s, editor.source(), std::cout, o.show, intro);
    } else {
        interact(s, std::cin, std::cout, ::isatty(0), o.show, intro);
    }
}

}  // namespace

void add_step(CLI::App& app) {
    auto o = std::make_shared<StepOptions>();
    auto* cmd = app.add_subcommand(
        "step", "Run forward, then backward one op node at a time, showing each node's upstream gradient, what it "
                "sends to each input and the gradients accumulated so far. Interactive on a terminal (type help)");
    cmd->add_option("MODEL", o->model, "model JSON file")->required();
    add_point_options(*cmd, o->point);
    auto* until = cmd->add_option("--until", o->until, "stop after this op node's step, or when this parameter's or input's gradient is complete (interactive: then prompt)");
    auto* explain = cmd->add_option("--explain", o->explain,
                                    "after the walk, write one gradient entry term by term, e.g. --explain 'w[0]' "
                                    "(with --json: as JSON)");
    auto* all = cmd->add_flag("--all", o->all, "print every step without asking, even on a terminal");
    auto* json = cmd->add_flag("--json", o->json, "print the whole trace as one JSON document on stdout");
    auto* html = cmd->add_option("--html", o->html, "write the whole walk as one offline web page PAGE to step "
                                                    "through in a browser (docs/step-page.md)")
                     ->excludes(all)
                     ->excludes(json)
                     ->excludes(until)
                     ->excludes(explain)
                     ->option_text("PAGE");
    cmd->add_flag("--interactive", o->interactive,
                  "read commands from stdin even when it is not a terminal (for scripts and tests)")
        ->excludes(all)
        ->excludes(json)
        ->excludes(html);
    cmd->add_option("--digits", o->show.digits, "significant digits in printed numbers")
        ->capture_default_str()
        ->check(CLI::Range(1, 17));
    cmd->add_option("--limit", o->show.limit, "print tensors up to this many elements whole, larger ones as "
                                              "statistics")
        ->capture_default_str()
        ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 20));
    cmd->callback([o] { run(*o); });
}

}  // namespace chainrule::cli
