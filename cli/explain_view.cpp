#include "cli/explain_view.hpp"

#include <algorithm>
#include <fmt/format.h>

namespace chainrule::cli {
namespace {

// Display columns of UTF-8 text, and the byte where column `col` starts.
std::size_t columns(std::string_view s) {
    std::size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}
std::size_t byte_at_column(std::string_view s, std::size_t col) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < s.size(); ++i)
        if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && n++ == col) return i;
    return s.size();
}

// Where a broken line goes on: under its first '[', else under the text after its label.
std::size_t continuation(const std::string& line, std::size_t width) {
    std::size_t lead = line.find_first_not_of(' ');
    if (lead == std::string::npos) return 0;
    std::size_t bracket = line.find('[');
    std::size_t label_end = line.find("  ", lead);
    std::size_t text = label_end == std::string::npos ? std::string::npos : line.find_first_not_of(' ', label_end);
    std::size_t at = std::min(bracket, text == std::string::npos ? lead : text);
    at = columns(std::string_view(line).substr(0, std::min(at, line.size())));
    return at < width / 2 ? at : 0;
}

}  // namespace

namespace {

std::string number(double v, int digits) { return fmt::format("{:.{}g}", v, digits); }

}  // namespace

std::string format_explanation(const Explanation& x, int digits) {
    std::vector<std::string> names, formulas;
    for (const ExplainFactor& f : x.factors) {
        names.push_back(f.name.find("[j]") == std::string::npos ? f.name + "[j]" : f.name);
        if (f.formula != "1") formulas.push_back(f.formula.empty() || &f == &x.factors.back() ? names.back() : f.formula);
    }
    std::string lhs = "dL/d" + x.entry;
    std::string pad(lhs.size(), ' ');
    std::string out = fmt::format("{} = Σ_j {}   (j over the entries of {} that {} reaches)\n", lhs,
                                  fmt::join(names, " · "), x.consumer, x.entry);
    out += fmt::format("{} = Σ_j {}\n", pad, fmt::join(formulas, " · "));
    out += fmt::format("{} = {}\n", pad, number(x.sum, digits));
    out += fmt::format("  chain  {}\n", fmt::join(x.chain, " → "));
    std::size_t w = 0;
    for (const ExplainFactor& f : x.factors) w = std::max(w, f.name.size());
    for (std::size_t k = 0; k < x.factors.size(); ++k) {
        const ExplainFactor& f = x.factors[k];
        std::string what = k + 1 == x.factors.size() ? "   from " + f.formula + " with a one-hot dL/d" + x.consumer
                           : f.formula.empty()    ? "   (its op's backward)"
                                                  : " = " + f.formula;
        out += fmt::format("  {:<6} {}{}{}\n", k == 0 ? "where" : "", f.name, what,
                           f.op.empty() ? "" : fmt::format("   ({})", f.op));
    }
    // The terms, one row per j.
    std::vector<std::string> head = {"j"};
    for (const ExplainFactor& f : x.factors) head.push_back(f.name);
    head.push_back("term");
    std::vector<std::vector<std::string>> rows;
    for (const ExplainTerm& t : x.terms) {
        std::vector<std::string> r = {t.at};
        for (double f : t.factors) r.push_back(number(f, digits));
        r.push_back(number(t.value, digits));
        rows.push_back(std::move(r));
    }
    std::vector<std::size_t> width(head.size());
    auto cols = [](const std::string& s) { return columns(s); };
    for (std::size_t c = 0; c < head.size(); ++c) {
        width[c] = cols(head[c]);
        for (const auto& r : rows) width[c] = std::max(width[c], cols(r[c]));
    }
    auto line = [&](const std::vector<std::string>& r) {
        std::string l = " ";
        for (std::size_t c = 0; c < r.size(); ++c) l += " " + r[c] + std::string(width[c] - cols(r[c]) + 1, ' ');
        while (!l.empty() && l.back() == ' ') l.pop_back();
        return l + "\n";
    };
    out += line(head);
    for (const auto& r : rows) out += line(r);
    if (x.zero_terms > 0)
        out += fmt::format("  ({} more j with {} = 0 left out)\n", x.zero_terms, x.factors.back().name);
    out += fmt::format("  Σ terms = {}; {} from the backward pass = {}\n", number(x.sum, digits), lhs,
                       number(x.grad, digits));
    return out;
}

Json explanation_json(const Explanation& x) {
    Json factors = Json::array(), terms = Json::array();
    for (const ExplainFactor& f : x.factors) factors.push_back({{"name", f.name}, {"formula", f.formula}, {"op", f.op}});
    for (const ExplainTerm& t : x.terms) {
        Json factors_of_t = Json::array();
        for (double f : t.factors) factors_of_t.push_back(number_json(f));
        terms.push_back({{"at", t.at}, {"factors", factors_of_t}, {"value", number_json(t.value)}});
    }
    return {{"entry", x.entry}, {"node", x.node},       {"consumer", x.consumer}, {"chain", x.chain},
            {"factors", factors}, {"terms", terms},     {"zero_terms", x.zero_terms}, {"sum", number_json(x.sum)},
            {"grad", number_json(x.grad)}};
}


std::string wrap_lines(const std::string& text, std::size_t width) {
    std::string out;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find('\n', start);
        std::string line = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
        start = end == std::string::npos ? text.size() : end + 1;
        std::size_t indent = continuation(line, width);
        bool first = true;
        while (columns(line) > width) {
            std::size_t cut = line.rfind(", ", byte_at_column(line, width - 1));
            std::size_t keep = first ? 0 : indent + 1;
            if (cut == std::string::npos || cut <= keep) break;  // nowhere to cut but inside a number
            out += line.substr(0, cut + 1) + "\n";
            line = std::string(indent + 1, ' ') + line.substr(cut + 2);
            first = false;
        }
        out += line;
        if (end != std::string::npos) out += "\n";
    }
    return out;
}

}  // namespace chainrule::cli
