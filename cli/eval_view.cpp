#include "cli/eval_view.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

namespace chainrule::cli {
namespace {

std::int64_t width_of(const EvalResult& r) {
    return r.predictions.empty() ? 0 : r.predictions.numel() / std::max<std::int64_t>(1, r.count);
}

std::string name_of(const Confusion& c, std::int64_t k) {
    return k >= 0 && std::size_t(k) < c.names.size() ? c.names[std::size_t(k)] : std::to_string(k);
}

std::size_t longest_name(const Confusion& c) {
    std::size_t n = 5;  // "total"
    for (const auto& s : c.names) n = std::max(n, s.size());
    return n;
}

// Recall of class k: the share of its rows predicted as k; NaN when it has none.
double recall(const Confusion& c, std::size_t k) {
    std::int64_t row = 0;
    for (auto v : c.counts[k]) row += v;
    return row ? double(c.counts[k][k]) / double(row) : NAN;
}

}  // namespace

std::int64_t Confusion::total() const {
    std::int64_t t = 0;
    for (const auto& row : counts)
        for (auto v : row) t += v;
    return t;
}

std::int64_t Confusion::right() const {
    std::int64_t t = 0;
    for (std::size_t k = 0; k < counts.size(); ++k) t += counts[k][k];
    return t;
}

Confusion confusion_matrix(const EvalResult& r, const data::Dataset& ds, const data::Split& split) {
    Confusion c;
    if (r.predicted.empty()) return c;
    // A model may have more outputs than the data has classes (or a 1-output model, two).
    std::int64_t n = std::max<std::int64_t>(ds.classes, std::int64_t(ds.class_names.size()));
    for (std::size_t i = 0; i < r.predicted.size(); ++i)
        n = std::max<std::int64_t>({n, std::int64_t(r.predicted[i]) + 1, std::int64_t(split.labels[i]) + 1});
    for (std::int64_t k = 0; k < n; ++k)
        c.names.push_back(std::size_t(k) < ds.class_names.size() ? ds.class_names[std::size_t(k)] : std::to_string(k));
    c.counts.assign(std::size_t(n), std::vector<std::int64_t>(std::size_t(n), 0));
    for (std::size_t i = 0; i < r.predicted.size(); ++i)
        if (split.labels[i] >= 0) ++c.counts[std::size_t(split.labels[i])][std::size_t(r.predicted[i])];
    return c;
}

std::string prediction_line(const EvalResult& r, const Confusion& c, const data::Split& split, std::int64_t row) {
    const std::size_t i = std::size_t(row), w = longest_name(c);
    std::string where = fmt::format("row {:>{}}", row, std::to_string(std::max<std::int64_t>(0, r.count - 1)).size());
    if (i < split.source_lines.size()) where += fmt::format("  line {:>4}", split.source_lines[i]);
    std::int32_t label = split.labels[i];
    std::string outputs;
    for (std::int64_t k = 0, width = width_of(r); k < width; ++k)
        outputs += fmt::format("{}{:.6f}", k ? " " : "", r.predictions.at(row * width + k));
    if (r.predicted.empty()) return fmt::format("{}  label {:<{}}  output {}", where, name_of(c, label), w, outputs);
    std::int32_t guess = r.predicted[i];
    return fmt::format("{}  label {:<{}}  predicted {:<{}}  {}  {}", where, name_of(c, label), w, name_of(c, guess), w,
                       guess == label ? "right" : "wrong", outputs);
}

std::string format_confusion(const Confusion& c) {
    const std::size_t n = c.names.size(), w = longest_name(c);
    std::vector<std::size_t> col(n);
    for (std::size_t k = 0; k < n; ++k) col[k] = std::max<std::size_t>(c.names[k].size(), 5);
    std::string s = "confusion matrix (rows: true class, columns: predicted class)\n";
    s += fmt::format("  {:<{}}", "", w);
    for (std::size_t k = 0; k < n; ++k) s += fmt::format("  {:>{}}", c.names[k], col[k]);
    s += "  total  recall\n";
    std::vector<std::int64_t> column_total(n, 0);
    for (std::size_t t = 0; t < n; ++t) {
        s += fmt::format("  {:<{}}", c.names[t], w);
        std::int64_t row_total = 0;
        for (std::size_t k = 0; k < n; ++k) {
            s += fmt::format("  {:>{}}", c.counts[t][k], col[k]);
            row_total += c.counts[t][k];
            column_total[k] += c.counts[t][k];
        }
        double rc = recall(c, t);
        s += fmt::format("  {:>5}  {}\n", row_total, std::isnan(rc) ? std::string("-") : fmt::format("{:.4f}", rc));
    }
    s += fmt::format("  {:<{}}", "total", w);
    for (std::size_t k = 0; k < n; ++k) s += fmt::format("  {:>{}}", column_total[k], col[k]);
    s += fmt::format("  {:>5}  {} right\n", c.total(), c.right());
    return s;
}

Json eval_json(const EvalResult& r, const Confusion& c, const data::Split& split, bool rows, bool only_wrong) {
    Json j;
    j["count"] = r.count;
    j["loss"] = std::isfinite(r.loss) ? Json(r.loss) : Json(nullptr);
    j["accuracy"] = r.accuracy >= 0 ? Json(r.accuracy) : Json(nullptr);
    if (!c.names.empty()) {
        j["classes"] = c.names;
        j["confusion"] = c.counts;
        Json rec = Json::array();
        for (std::size_t k = 0; k < c.names.size(); ++k) {
            double v = recall(c, k);
            rec.push_back(std::isnan(v) ? Json(nullptr) : Json(v));
        }
        j["recall"] = rec;
    }
    if (!rows) return j;
    Json list = Json::array();
    const std::int64_t width = width_of(r);
    for (std::int64_t i = 0; i < r.count; ++i) {
        const std::size_t u = std::size_t(i);
        bool right = !r.predicted.empty() && r.predicted[u] == split.labels[u];
        if (only_wrong && right) continue;
        Json p;
        p["row"] = i;
        if (u < split.source_lines.size()) p["line"] = split.source_lines[u];
        p["label"] = split.labels[u];
        if (!r.predicted.empty()) {
            p["predicted"] = r.predicted[u];
            p["right"] = right;
        }
        Json out = Json::array();
        for (std::int64_t k = 0; k < width; ++k) {
            double v = r.predictions.at(i * width + k);
            out.push_back(std::isfinite(v) ? Json(v) : Json(nullptr));
        }
        p["outputs"] = out;
        list.push_back(p);
    }
    j["predictions"] = list;
    return j;
}

}  // namespace chainrule::cli
