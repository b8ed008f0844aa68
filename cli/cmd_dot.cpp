// `chainrule dot`: the graph as Graphviz DOT, or rendered to SVG.
#include <fmt/format.h>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "graph/dot.hpp"

namespace chainrule::cli {
namespace {

struct DotCommand {
    std::string model, svg;
    PointOptions point;
    DotOptions dot;
};

}  // namespace

void add_dot(CLI::App& app) {
    auto o = std::make_shared<DotCommand>();
    auto* cmd = app.add_subcommand("dot", "Print the graph as Graphviz DOT: each node's op and shape, and its value "
                                          "(and gradient, with --grads) when it has at most 8 elements");
    cmd->add_option("MODEL", o->model, "model JSON file")->required();
    add_point_options(*cmd, o->point);
    cmd->add_flag("--grads", o->dot.grads, "run backward at the point and show small gradients too");
    cmd->add_option("--svg", o->svg, "render to this SVG file with Graphviz's `dot` instead of printing DOT");
    cmd->callback([o] {
        Model m = load(o->model);
        set_point(m, o->point);
        Graph& g = m.graph;
        const Pass pass = o->dot.grads ? Pass::inspect() : Pass::exact();
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
