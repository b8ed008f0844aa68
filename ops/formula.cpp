#include "ops/formula.hpp"

#include <algorithm>
#include <cctype>

namespace chainrule {
namespace {

bool name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

constexpr std::string_view kTransposed = "ᵀ";

bool is_template_name(const Op& op, const std::string& out, const std::string& t) {
    return t == out || std::find(op.inputs.begin(), op.inputs.end(), t) != op.inputs.end();
}

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == ' ' || s.back() == ',')) s.pop_back();
    while (!s.empty() && s.front() == ' ') s.erase(0, 1);
    return s;
}

}  // namespace

std::string formula_output(const Op& op) {
    const std::string& f = op.formula;
    std::size_t b = 0;
    while (b < f.size() && !name_char(f[b])) ++b;
    std::size_t e = b;
    while (e < f.size() && name_char(f[e])) ++e;
    return f.substr(b, e - b);
}

std::string rename_formula(const Op& op, const std::string& text,
                           const std::function<std::string(const std::string&, bool, bool)>& name_of) {
    const std::string out_name = formula_output(op);
    std::string out;
    std::size_t i = 0;
    while (i < text.size()) {
        if (!name_char(text[i])) {
            out += text[i++];
            continue;
        }
        std::size_t e = i;
        while (e < text.size() && name_char(text[e])) ++e;
        std::string tok = text.substr(i, e - i);
        bool after_name = i > 0 && name_char(text[i - 1]);
        std::string generic;
        bool gradient = false;
        std::size_t end = e;
        // dL/dX: the gradient of X, one name.
        if (tok == "dL" && text.compare(e, 2, "/d") == 0) {
            std::size_t g = e + 2, ge = g;
            while (ge < text.size() && name_char(text[ge])) ++ge;
            std::string x = text.substr(g, ge - g);
            if (is_template_name(op, out_name, x)) generic = x, gradient = true, end = ge;
        }
        if (generic.empty() && !after_name && is_template_name(op, out_name, tok)) generic = tok;
        if (generic.empty()) {
            out += tok;
            i = e;
            continue;
        }
        bool transposed = text.compare(end, kTransposed.size(), kTransposed) == 0;
        std::string name = name_of(generic, transposed, gradient);
        out += name;
        if (transposed && !name.empty() && name.front() == '[') end += kTransposed.size();
        i = end;
    }
    return out;
}

std::string named_formula(const Op& op, const std::string& output, std::span<const std::string> inputs) {
    const std::string out_name = formula_output(op);
    return rename_formula(op, op.formula, [&](const std::string& generic, bool, bool gradient) {
        std::string name = generic;
        if (generic == out_name) name = output;
        for (std::size_t k = 0; k < op.inputs.size() && k < inputs.size(); ++k)
            if (op.inputs[k] == generic && !(op.variadic && k + 1 == op.inputs.size())) name = inputs[k];
        return gradient ? "dL/d" + name : name;
    });
}

std::string input_formula(const Op& op, std::size_t slot) {
    if (op.variadic && !op.inputs.empty()) slot = std::min(slot, op.inputs.size() - 1);  // one formula for them all
    if (slot >= op.inputs.size()) return "";
    const std::string& f = op.formula;
    const std::string want = "dL/d" + op.inputs[slot];
    std::size_t semi = f.find(";  ");
    std::size_t from = semi == std::string::npos ? 0 : semi;
    for (std::size_t at = f.find(want, from); at != std::string::npos; at = f.find(want, at + 1)) {
        std::size_t after = at + want.size();
        if (after < f.size() && name_char(f[after])) continue;
        if (f.compare(after, 3, " = ") != 0 && f.compare(after, 1, "_") != 0) continue;
        std::size_t stop = f.size();
        for (const char* sep : {",  ", ";  "}) stop = std::min(stop, f.find(sep, after));
        return trim(f.substr(at, stop - at));
    }
    return "";
}

std::optional<std::string> local_factor(const Op& op, std::size_t slot) {
    if (!op.elementwise) return std::nullopt;
    std::string part = input_formula(op, slot);
    std::size_t eq = part.find(" = ");
    if (eq == std::string::npos) return std::nullopt;
    std::string rhs = part.substr(eq + 3), sign;
    if (rhs.rfind("−", 0) == 0) sign = "−", rhs = rhs.substr(std::string("−").size());
    const std::string wrap = "sum_to_shape(", wrap_end = ", " + op.inputs[slot] + ")";
    if (rhs.rfind(wrap, 0) == 0 && rhs.size() > wrap.size() + wrap_end.size() &&
        rhs.compare(rhs.size() - wrap_end.size(), wrap_end.size(), wrap_end) == 0)
        rhs = rhs.substr(wrap.size(), rhs.size() - wrap.size() - wrap_end.size());
    const std::string up = "dL/d" + formula_output(op);
    std::string factor;
    if (rhs == up) factor = "1";
    else if (rhs.rfind(up, 0) == 0) {
        std::string rest = rhs.substr(up.size());
        for (const char* times : {" · ", " ⊙ ", "·", "⊙"})
            if (rest.rfind(times, 0) == 0 && factor.empty()) factor = rest.substr(std::string(times).size());
        if (factor.empty() && rest.rfind(" / ", 0) == 0) factor = "1/" + rest.substr(3);
        if (factor.empty() && rest.rfind(" if ", 0) == 0) factor = "1" + rest;
    } else {
        for (const char* times : {" · ", " ⊙ ", "·"}) {
            std::string tail = times + up;
            if (factor.empty() && rhs.size() > tail.size() &&
                rhs.compare(rhs.size() - tail.size(), tail.size(), tail) == 0)
                factor = rhs.substr(0, rhs.size() - tail.size());
        }
    }
    if (factor.empty()) return std::nullopt;
    if (!sign.empty()) factor = factor == "1" ? sign + "1" : sign + "(" + factor + ")";
    return factor;
}

}  // namespace chainrule
