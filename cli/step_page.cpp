#include "cli/step_page.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <set>
#include <unordered_map>

#include "cli/explain_view.hpp"
#include "cli/lecture_labels.hpp"
#include "cli/step_view.hpp"
#include "core/error.hpp"
#include "core/json.hpp"
#include "render/dot.hpp"
#include "page_assets.hpp"

namespace chainrule::cli {

std::string base64(const void* data, std::size_t size) {
    static constexpr char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const auto* p = static_cast<const unsigned char*>(data);
    std::string out;
    out.reserve((size + 2) / 3 * 4);
    for (std::size_t i = 0; i < size; i += 3) {
        std::uint32_t v = std::uint32_t(p[i]) << 16;
        if (i + 1 < size) v |= std::uint32_t(p[i + 1]) << 8;
        if (i + 2 < size) v |= p[i + 2];
        out += digits[(v >> 18) & 63];
        out += digits[(v >> 12) & 63];
        out += i + 1 < size ? digits[(v >> 6) & 63] : '=';
        out += i + 2 < size ? digits[v & 63] : '=';
    }
    return out;
}

std::string script_safe_json(const std::string& json_text) {
    std::string out;
    out.reserve(json_text.size());
    for (std::size_t i = 0; i < json_text.size(); ++i) {
        char c = json_text[i];
        if (c == '<') out += "\\u003c";
        else if (c == '>') out += "\\u003e";
        else if (c == '&') out += "\\u0026";
        // U+2028 and U+2029 are E2 80 A8 / E2 80 A9 in UTF-8.
        else if (c == '\xE2' && i + 2 < json_text.size() && json_text[i + 1] == '\x80' &&
                 (json_text[i + 2] == '\xA8' || json_text[i + 2] == '\xA9')) {
            out += json_text[i + 2] == '\xA8' ? "\\u2028" : "\\u2029";
            i += 2;
        } else out += c;
    }
    return out;
}

namespace {

// Tensors of at most this many elements are shown (and stored) as exact numbers.
constexpr std::int64_t kPrinted = 64;
// An explained entry with more terms than this (a conv bias sums over every position of
// every image) is left to the terminal: written out, it would outweigh the rest of the page.
constexpr std::size_t kExplainedTerms = 256;

std::string html_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '&': out += "&amp;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

// JSON has no NaN or Inf: they travel as the strings the script reads back.
Json number(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
    return v;
}

// Every tensor the page shows, stored once however many steps show it: a step refers to
// tensors by index. Large ones are float32 in base64 (about 5.3 bytes an element, against
// about 20 as JSON text), with statistics computed here from the exact values.
class TensorTable {
public:
    Json ref(const Tensor& t) {
        if (t.empty()) return nullptr;
        std::string key(reinterpret_cast<const char*>(t.dims().data()), t.rank() * sizeof(std::int64_t));
        key += '|';
        for (std::int64_t i = 0; i < t.numel(); ++i) {
            double v = t.at(i);
            key.append(reinterpret_cast<const char*>(&v), sizeof v);
        }
        auto [it, fresh] = index_.try_emplace(std::move(key), int(list_.size()));
        if (fresh) list_.push_back(encode(t));
        return it->second;
    }
    Json take() { return std::move(list_); }

private:
    static Json encode(const Tensor& t) {
        Json j;
        j["shape"] = t.dims();
        double lo = INFINITY, hi = -INFINITY, sum = 0, sq = 0, big = -1;
        std::int64_t finite = 0, at = -1;
        for (std::int64_t i = 0; i < t.numel(); ++i) {
            double v = t.at(i);
            if (!std::isfinite(v)) continue;
            ++finite, lo = std::min(lo, v), hi = std::max(hi, v), sum += v, sq += v * v;
            if (std::abs(v) > big) big = std::abs(v), at = i;
        }
        j["stats"] = {{"min", finite ? number(lo) : Json()},
                      {"max", finite ? number(hi) : Json()},
                      {"mean", finite ? number(sum / double(finite)) : Json()},
                      {"l2", number(std::sqrt(sq))},
                      {"nonfinite", t.numel() - finite},
                      {"largest", at},
                      {"largest_value", at >= 0 ? number(t.at(at)) : Json()}};
        if (t.numel() <= kPrinted) {
            Json data = Json::array();
            for (std::int64_t i = 0; i < t.numel(); ++i) data.push_back(number(t.at(i)));
            j["data"] = std::move(data);
        } else {
            std::vector<float> f(std::size_t(t.numel()));
            for (std::int64_t i = 0; i < t.numel(); ++i) f[std::size_t(i)] = float(t.at(i));
            j["f32"] = base64(f.data(), f.size() * sizeof(float));
        }
        return j;
    }
    std::unordered_map<std::string, int> index_;
    Json list_ = Json::array();
};

// Where the exact gradient and the lecture's differ most, as {index, exact, lecture}.
Json largest_difference(const LectureGap& gap) {
    std::int64_t at = -1;
    double worst = -1;
    for (std::int64_t i = 0; i < gap.exact.numel() && i < gap.lecture.numel(); ++i) {
        double d = std::abs(gap.exact.at(i) - gap.lecture.at(i));
        if (d > worst) worst = d, at = i;
    }
    if (at < 0) return nullptr;
    return {{"index", at}, {"exact", number(gap.exact.at(at))}, {"lecture", number(gap.lecture.at(at))},
            {"difference", number(worst)}};
}

// Fields step_json has that this page writes itself; any others (added to `step --json`
// later) are copied through, and the script shows them after the ones it knows.
const std::set<std::string> kStepFields = {"index", "node", "op", "inputs", "grad_out", "contributions", "labels"};
const std::set<std::string> kInputFields = {"input", "slot", "label", "contribution", "grad", "first", "lecture_gap"};

Json page_step(const Stepper& s, const Step& st, TensorTable& tensors) {
    const Graph& g = s.graph();
    const Node& n = g.node(st.id);
    Json from_json = step_json(s, st);
    Json j;
    j["index"] = st.index;
    j["node"] = st.id;
    j["op"] = n.op->name;
    j["inputs"] = n.inputs;
    j["grad_out"] = tensors.ref(n.grad);
    j["labels"] = from_json["labels"];
    for (auto& [key, value] : from_json.items())
        if (!kStepFields.count(key)) j[key] = value;
    Json contributions = Json::array();
    const std::vector<LabelledInput> labelled = label_step(g, st);
    const Json& their = from_json["contributions"];
    for (std::size_t k = 0; k < labelled.size(); ++k) {
        const StepInput& in = *labelled[k].input;
        Json c;
        c["input"] = in.id;
        c["slot"] = in.slot;
        c["label"] = labelled[k].label ? Json(labelled[k].label->number) : Json();
        c["contribution"] = tensors.ref(in.contribution);
        c["grad"] = tensors.ref(in.grad);
        // mul(x, x) sends x two contributions in one step; the snapshot holds their sum.
        bool alone = std::count_if(st.inputs.begin(), st.inputs.end(), [&](const StepInput& o) {
                         return o.id == in.id;
                     }) == 1;
        c["first"] = in.first && alone;
        if (const auto& gap = labelled[k].gap)
            c["lecture_gap"] = {{"lecture", tensors.ref(gap->lecture)}, {"exact", tensors.ref(gap->exact)},
                                {"norm_lecture", number(gap->norm_lecture)}, {"norm_exact", number(gap->norm_exact)},
                                {"norm_diff", number(gap->norm_diff)}, {"relative_diff", number(gap->relative_diff)},
                                {"largest", largest_difference(*gap)}};
        if (k < their.size())
            for (auto& [key, value] : their[k].items())
                if (!kInputFields.count(key)) c[key] = value;
        contributions.push_back(std::move(c));
    }
    j["contributions"] = std::move(contributions);
    return j;
}

// Graphviz's SVG without its XML prolog and doctype, ready to sit inside HTML.
std::string graph_svg(const Graph& g) {
    if (find_program("dot").empty())
        throw RunError("the step page needs Graphviz's `dot` to draw the graph, and it is not on PATH; install it "
                       "with `apt-get install graphviz`");
    DotOptions o;
    o.values = false;  // the panel shows them
    o.legend = false;  // the page's own key, above the graph: the graph keeps its width for the nodes
    o.top_down = true;  // a tall chain fits the column beside the panel
    std::string svg = svg_text(to_dot(g, o));
    std::size_t at = svg.find("<svg");
    if (at == std::string::npos) throw RunError("`dot -Tsvg` wrote no <svg> element");
    return svg.substr(at);
}

// Each entry of a small parameter's or input's gradient written out term by term (the JSON
// of `step --explain --json`), or {"refused": why} where explain cannot (a node with two
// consumers), {"too_many_terms": n} where it has more than kExplainedTerms; null for nodes
// too big to precompute. The page points to the terminal for those.
// Needs the walk to be complete: explain describes the gradient after the whole backward pass.
Json explain_entries(const Graph& g, const Plan& plan, int id) {
    const Node& n = g.node(id);
    if (n.kind == NodeKind::op || n.kind == NodeKind::constant || !plan.wants_grad(id) || n.value.numel() > kPrinted)
        return nullptr;
    Json entries = Json::array();
    for (std::int64_t i = 0; i < n.value.numel(); ++i) {
        try {
            Explanation x = explain_entry(g, plan, n.name + "[" + std::to_string(i) + "]");
            entries.push_back(x.terms.size() > kExplainedTerms
                                  ? Json{{"entry", x.entry}, {"too_many_terms", x.terms.size()}, {"limit", kExplainedTerms}}
                                  : explanation_json(x));
        } catch (const InputError& e) {
            entries.push_back({{"refused", e.what()}});
        }
    }
    return entries;
}

}  // namespace

std::string step_page(Stepper& s, const PageOptions& o) {
    const Graph& g = s.graph();
    TensorTable tensors;
    Json data;
    data["format"] = "chainrule-step-page";
    data["model"] = g.name;
    data["doc"] = g.doc;
    data["loss_node"] = s.loss();
    data["loss"] = number(g.node(s.loss()).value.at(0));
    data["random_inputs"] = o.point.random_inputs;
    data["data"] = o.point.data.empty() ? Json() : Json(o.point.data);
    data["weights"] = o.point.weights.empty() ? Json() : Json(o.point.weights);
    data["seed"] = o.point.seed;
    data["prediction"] = g.prediction();
    data["rows"] = row_predictions_json(o.rows);
    const int image = o.point.image_input.empty() ? -1 : g.find(o.point.image_input);
    data["row_image"] = image >= 0 && o.point.image_dims.size() == 2
                            ? Json{{"node", image}, {"dims", o.point.image_dims}}
                            : Json();
    // Text rows: the characters at every position, and the vocabulary, to label a sequence's axes.
    data["row_tokens"] = o.point.row_tokens;
    data["vocabulary"] = o.point.row_tokens.empty() ? Json::array() : Json(o.point.class_names);
    data["printed_limit"] = kPrinted;
    Json nodes = Json::array();
    for (std::size_t i = 0; i < g.size(); ++i) {
        const Node& n = g.node(int(i));
        nodes.push_back({{"name", n.name},
                         {"kind", kind_name(n.kind)},
                         {"op", n.op ? n.op->name : kind_name(n.kind)},
                         {"doc", n.doc},
                         {"shape", n.value.dims()},
                         {"value", tensors.ref(n.value)},
                         {"wants_grad", s.plan().wants_grad(int(i)) || int(i) == s.loss()}});
    }
    data["nodes"] = std::move(nodes);
    data["order"] = s.order();
    Json steps = Json::array();
    while (!s.done()) steps.push_back(page_step(s, s.next(), tensors));
    data["steps"] = std::move(steps);
    for (std::size_t i = 0; i < g.size(); ++i)
        data["nodes"][i]["explain"] = explain_entries(g, s.plan(), int(i));
    data["tensors"] = tensors.take();

    std::string svg = graph_svg(g);
    std::string title = html_escape("chainrule step: " + (g.name.empty() ? std::string("model") : g.name));
    std::string json = script_safe_json(data.dump(-1, ' ', true, Json::error_handler_t::replace));
    std::string out;
    out.reserve(json.size() + svg.size() + page_assets::script_size + page_assets::style_size + 4096);
    out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
    // Nothing may be fetched: no scripts, styles, images, fonts or connections but the two
    // inline blocks below, named by their hashes.
    out += fmt::format("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                       "script-src 'sha256-{}'; style-src 'sha256-{}'; base-uri 'none'; form-action 'none'\">\n",
                       page_assets::script_sha256, page_assets::style_sha256);
    out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
    out += "<meta name=\"color-scheme\" content=\"light dark\">\n";
    out += "<title>" + title + "</title>\n<style>";
    out.append(page_assets::style, page_assets::style_size);
    out += "</style>\n</head>\n<body>\n";
    out += "<header><h1 id=\"title\">" + title + "</h1><p id=\"doc\"></p><p id=\"random\" class=\"warn\" hidden></p>"
           "<dl id=\"facts\"></dl><section id=\"rows\" aria-label=\"each row's label and prediction\" hidden>"
           "</section><p id=\"hint\" class=\"hint\"></p></header>\n";
    out += R"html(<nav id="controls" aria-label="step controls">
<button id="first" type="button" aria-label="first step (Home)" title="first step (Home)">|&#x25C0; first</button>
<button id="prev" type="button" aria-label="previous step (left arrow)" title="previous step (&#x2190;)">&#x25C0; prev</button>
<button id="play" type="button" aria-label="play (space)" title="play / pause (space)">&#x25B6; play</button>
<button id="next" type="button" aria-label="next step (right arrow)" title="next step (&#x2192;)">next &#x25B6;</button>
<button id="last" type="button" aria-label="last step (End)" title="last step (End)">last &#x25B6;|</button>
<input id="slider" type="range" min="0" max="0" value="0" aria-label="step">
<output id="where" for="slider" aria-live="polite"></output>
</nav>
<main>
<section id="graph" aria-label="the graph; the current node is outlined">
<div id="graph-tools">
<button id="zoom-out" type="button" aria-label="zoom the graph out (-)" title="zoom out (-)">&#x2212;</button>
<button id="zoom-fit" type="button" aria-label="fit the graph to its box (0)" title="fit (0)">fit</button>
<button id="zoom-in" type="button" aria-label="zoom the graph in (+)" title="zoom in (+)">+</button>
<output id="zoom-level" aria-live="polite"></output>
<span class="key"><span class="chip cr-input">input (fed)</span><span class="chip cr-parameter">parameter (trained)</span><span class="chip cr-constant">constant</span><span class="chip cr-op">op</span><span class="chip cr-loss">loss</span><span class="chip cr-prediction">prediction</span></span>
</div>
<div id="graph-view">
)html";
    out += svg;
    out += "</div>\n</section>\n<div id=\"side\">\n<section id=\"panel\" aria-label=\"the current step\"></section>\n";
    out += "<section id=\"explain\" aria-label=\"one gradient entry term by term\" hidden></section>\n</div>\n</main>\n";
    out += "<section id=\"inspect\" aria-label=\"a node chosen in the graph\" hidden></section>\n";
    out += "<section id=\"nodes\" aria-label=\"every node's gradient so far\"></section>\n";
    out += "<noscript>This page needs JavaScript to step through the walk.</noscript>\n";
    out += "<script type=\"application/json\" id=\"trace\">" + json + "</script>\n<script>";
    out.append(page_assets::script, page_assets::script_size);
    out += "</script>\n</body>\n</html>\n";
    return out;
}

}  // namespace chainrule::cli
