// `chainrule dot`: the graph as Graphviz DOT, or rendered to SVG.
#include <fmt/format.h>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "render/dot.hpp"

namespace chainrule::cli {
namespace {

struct DotCommand {
    std::string model, svg, rankdir = "LR";
    PointOptions point;
    DotOptions dot;
};

}  // namespace

void add_dot(CLI::App& app) {
    auto o = std::make_shared<DotCommand>();
    auto* cmd = app.add_subcommand("dot", "Print the graph as Graphviz DOT: each node's op and shape, and its value "
                                          "(and gradient, with --grads) when it has at most --limit elements (8)");
    cmd->add_option("MODEL", o->model, "model JSON file")->required();
    add_point_options(*cmd, o->point);
    cmd->add_flag("--grads", o->dot.grads, "run backward at the point and show small gradients too");
    cmd->add_option("--limit", o->dot.small, "show values (and gradients) of tensors with at most this many elements")
        ->capture_default_str()
        ->check(CLI::Range(std::int64_t{0}, std::int64_t{4096}));
    cmd->add_option("--rankdir", o->rankdir, "layout direction: LR (inputs on the left) or TB (inputs on top)")
        ->capture_default_str()
        ->check(CLI::IsMember({"LR", "TB"}));
    cmd->add_flag("--legend", o->dot.legend, "add a legend saying what each node shape and colour means");
    cmd->add_option("--svg", o->svg, "render to this SVG file with Graphviz's `dot` instead of printing DOT");
    cmd->callback([o] {
        o->dot.top_down = o->rankdir == "TB";
        Model m = load(o->model);
        set_point(m, o->point);
        Graph& g = m.graph;
        Plan pass = g.plan(o->dot.grads ? Pass::inspect() : Pass::exact());
        g.forward(pass);
        if (o->dot.grads) g.backward(pass);
        std::string text = to_dot(g, o->dot);
        if (o->svg.empty()) {
            std::cout << text;
            return;
        }
        render_svg(text, o->svg);
        fmt::print(stderr, "wrote {}\n", o->svg);
    });
}

}  // namespace chainrule::cli
