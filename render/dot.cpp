#include "render/dot.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/print.hpp"
#include "core/text.hpp"
#include "render/explain.hpp"

extern char** environ;

namespace chainrule {

namespace {

struct Style {
    const char* shape;
    const char* style;
    const char* fill;
};

constexpr Style kInput{"ellipse", "filled", "#cfe3f7"}, kParameter{"box", "filled", "#fbe7a9"},
    kConstant{"box", "filled,dashed", "#e4e4e4"}, kOp{"box", "rounded,filled", "#ffffff"},
    kLoss{"doubleoctagon", "filled", "#f8c4c4"};

Style style_of(const Graph& g, int id) {
    if (id == g.loss()) return kLoss;
    switch (g.node(id).kind) {
        case NodeKind::input: return kInput;
        case NodeKind::parameter: return kParameter;
        case NodeKind::constant: return kConstant;
        case NodeKind::op: break;
    }
    return kOp;
}

// The legend is a cluster of sample nodes, one per style, so it is drawn with the very
// shapes and colours of the graph; its nodes have ids "legend-…", never "nk".
std::string legend_dot(const DotOptions& o) {
    std::string out = "  subgraph cluster_legend {\n    label=\"legend\"; fontsize=10; style=dashed; color=\"#999999\";\n";
    struct Row {
        const char* id;
        const char* text;
        Style st;
    };
    const Row rows[] = {{"input", "input (fed)", kInput},
                        {"parameter", "parameter (trained)", kParameter},
                        {"constant", "constant", kConstant},
                        {"op", "op node", kOp},
                        {"loss", "loss", kLoss}};
    for (const Row& r : rows)
        out += fmt::format("    legend_{0} [id=\"legend-{0}\", label=\"{1}\", shape={2}, style=\"{3}\", fillcolor=\"{4}\", "
                           "fontsize=9, height=0.3, margin=\"0.06,0.02\"];\n",
                           r.id, r.text, r.st.shape, r.st.style, r.st.fill);
    // One rank keeps the samples packed in a column (LR) or a row (TB).
    out += "    { rank=same; legend_input; legend_parameter; legend_constant; legend_op; legend_loss; legend_note; }\n";
    out += fmt::format("    legend_note [id=\"legend-note\", shape=plaintext, fontsize=9, label=\"bold border: prediction{}\"];\n  }}\n",
                       o.values ? fmt::format("\\nvalues shown up to {} elements", o.small) : "");
    return out;
}

const char* kind_class(const Graph& g, int id) {
    switch (g.node(id).kind) {
        case NodeKind::input: return "cr-input";
        case NodeKind::parameter: return "cr-parameter";
        case NodeKind::constant: return "cr-constant";
        case NodeKind::op: break;
    }
    return "cr-op";
}

std::string shape_text(const Node& n) {
    std::string declared = format_shape(n.shape);
    if (n.value.empty()) return declared;
    std::string actual = format_dims(n.value.dims());
    return actual == declared ? actual : declared + " = " + actual;
}

// A small matrix prints one row per line (DOT centres each line); a column prints on one
// line, or it would make its node tall and thin.
std::string small_tensor(const Tensor& t, const DotOptions& o) {
    std::string s = format_tensor(t, o.small, o.digits);
    bool rows = t.rank() >= 2 && t.dims().back() > 1;
    std::string out;
    for (char c : s) {
        if (c == '\n') {
            out += rows ? '\n' : ' ';
            continue;
        }
        if (c != ' ' || out.empty() || out.back() != '\n') out += c;
    }
    return out;
}

}  // namespace

std::string dot_escape(const std::string& s) {
    std::string out;
    for (char c : visible_text(s)) {
        if (c == '"' || c == '\\') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        // Graphviz reads entities in labels: "&#1;" would put U+0001 into the SVG.
        if (c == '&') {
            out += "&amp;";
            continue;
        }
        out += c;
    }
    return out;
}

std::string to_dot(const Graph& g, const DotOptions& o) {
    std::string out = "digraph chainrule {\n";
    out += fmt::format("  graph [rankdir={}, fontname=\"Helvetica\", label=\"{}\", labelloc=t];\n", o.top_down ? "TB" : "LR",
                       dot_escape(g.name.empty() ? "model" : g.name));
    out += "  node [fontname=\"Helvetica\", fontsize=11];\n  edge [fontname=\"Helvetica\", fontsize=9];\n";
    for (std::size_t i = 0; i < g.size(); ++i) {
        int id = int(i);
        const Node& n = g.node(id);
        std::string label = n.name + "\n";
        // Short docs are the lecture's names (W′, a1 = x·W′ + b′); long ones would swamp the picture.
        if (!n.doc.empty() && n.doc.size() <= 40 && n.doc.find('\n') == std::string::npos) label += n.doc + "\n";
        label += (n.op ? n.op->name : kind_name(n.kind)) + std::string("  ") + shape_text(n);
        if (o.values && !n.value.empty() && n.value.numel() <= o.small) label += "\n= " + small_tensor(n.value, o);
        if (o.grads && !n.grad.empty() && n.grad.numel() <= o.small)
            label += "\n∂L/∂" + n.name + " = " + small_tensor(n.grad, o);
        Style st = style_of(g, id);
        out += fmt::format("  n{0} [id=\"n{0}\", class=\"cr-node {1}{2}\", label=\"{3}\", shape={4}, style=\"{5}\", "
                           "fillcolor=\"{6}\"{7}];\n",
                           id, kind_class(g, id), id == g.loss() ? " cr-loss" : "", dot_escape(label), st.shape,
                           st.style, st.fill, id == g.prediction() ? ", penwidth=2" : "");
    }
    for (std::size_t i = 0; i < g.size(); ++i) {
        const Node& n = g.node(int(i));
        for (std::size_t k = 0; k < n.inputs.size(); ++k) {
            // The gradient this edge carries back, in the model's names: "dL/dw = xᵀ·dL/dz".
            std::string formula = node_input_formula(g, int(i), k);
            std::string attrs = !formula.empty() ? fmt::format(" [label=\"{}\"]", dot_escape(formula))
                                : n.inputs.size() > 1
                                    ? fmt::format(" [label=\"{}\"]", dot_escape(input_name(*n.op, k)))
                                    : "";
            out += fmt::format("  n{} -> n{}{};\n", n.inputs[k], i, attrs);
        }
    }
    if (o.legend) out += legend_dot(o);
    out += "}\n";
    return out;
}

std::string find_program(const std::string& program) {
    const char* path = std::getenv("PATH");
    if (!path) return "";
    std::string p = path;
    for (std::size_t start = 0; start <= p.size();) {
        std::size_t end = p.find(':', start);
        if (end == std::string::npos) end = p.size();
        std::string dir = p.substr(start, end - start);
        std::string full = (dir.empty() ? std::string(".") : dir) + "/" + program;
        if (::access(full.c_str(), X_OK) == 0 && !std::filesystem::is_directory(full)) return full;
        start = end + 1;
    }
    return "";
}

void render_svg(const std::string& dot_text, const std::string& path) {
    write_file_atomic(path, svg_text(dot_text, path));
}

std::string svg_text(const std::string& dot_text, const std::string& writing) {
    std::string dot = find_program("dot");
    if (dot.empty())
        throw RunError("rendering SVG needs Graphviz's `dot`, which is not on PATH; install it with "
                       "`apt-get install graphviz` (or drop --svg to get the DOT text)");
    // The DOT text goes through a temporary file rather than a pipe, so that a `dot` that
    // dies early cannot take this process down with SIGPIPE.
    // dot writes the SVG to a second temporary file, read only when dot succeeded: a dot
    // that fails or is killed never leaves a half-written SVG file.
    struct Remove {
        std::string p;
        ~Remove() {
            std::error_code ec;
            std::filesystem::remove(p, ec);
        }
    };
    auto make_temp = [] {
        std::string name = (std::filesystem::temp_directory_path() / "chainrule-dot-XXXXXX").string();
        int fd = ::mkstemp(name.data());
        if (fd < 0) throw RunError(fmt::format("cannot create a temporary file for dot: {}", std::strerror(errno)));
        ::close(fd);
        return name;
    };
    std::string tmpl = make_temp();
    Remove remove{tmpl};
    std::string svg_tmp = make_temp();
    Remove remove_svg{svg_tmp};
    {
        std::ofstream f(tmpl, std::ios::binary);
        f << dot_text;
        if (!f.flush()) throw RunError(fmt::format("cannot write a temporary file for dot: {}", tmpl));
    }
    std::string out_arg = "-o" + svg_tmp;
    std::vector<char*> argv{dot.data(), const_cast<char*>("-Tsvg"), out_arg.data(), nullptr};
    // On stdin, so that dot's own messages say <stdin> rather than a temporary name.
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_addopen(&actions, 0, tmpl.c_str(), O_RDONLY, 0);
    pid_t pid = 0;
    int err = ::posix_spawn(&pid, dot.c_str(), &actions, nullptr, argv.data(), environ);
    ::posix_spawn_file_actions_destroy(&actions);
    if (err != 0) throw RunError(fmt::format("cannot run {}: {}", dot, std::strerror(err)));
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) throw RunError(fmt::format("waiting for {}: {}", dot, std::strerror(errno)));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw RunError(fmt::format("`dot -Tsvg` failed ({}){}",
                                   WIFEXITED(status) ? fmt::format("exit {}", WEXITSTATUS(status)) : "killed",
                                   writing.empty() ? "" : " writing " + writing));
    return read_text_file(svg_tmp);
}

}  // namespace chainrule
