#include "train/plot.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

#include "train/metrics.hpp"

namespace chainrule {
namespace {

struct Panel {
    double x0, y0, w, h;  // pixel box
    double lo, hi;        // value range
    std::int64_t epochs;
    double px(std::int64_t e) const { return x0 + w * (epochs <= 1 ? 0.5 : double(e - 1) / double(epochs - 1)); }
    double py(double v) const { return y0 + h - h * (hi > lo ? (v - lo) / (hi - lo) : 0.5); }
};

std::string polyline(const Panel& p, const std::vector<EpochMetrics>& hist, double EpochMetrics::*field,
                     const char* colour) {
    std::string pts;
    for (const auto& e : hist) {
        double v = e.*field;
        if (!std::isfinite(v)) continue;
        pts += fmt::format("{:.1f},{:.1f} ", p.px(e.epoch), p.py(v));
    }
    return fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>\n", colour, pts);
}

std::string axes(const Panel& p, const std::string& label, int digits) {
    std::string out = fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>\n"
        "<text x=\"{}\" y=\"{}\" font-size=\"13\">{}</text>\n",
        p.x0, p.y0, p.w, p.h, p.x0, p.y0 - 8, label);
    for (int k = 0; k <= 4; ++k) {
        double v = p.lo + (p.hi - p.lo) * k / 4.0;
        out += fmt::format("<text x=\"{}\" y=\"{:.1f}\" font-size=\"10\" text-anchor=\"end\">{:.{}f}</text>\n",
                           p.x0 - 4, p.py(v) + 3, v, digits);
    }
    out += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"10\">1</text>\n", p.x0, p.y0 + p.h + 14);
    out += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">epoch {}</text>\n", p.x0 + p.w,
                       p.y0 + p.h + 14, p.epochs);
    return out;
}

// The title is the model's name, which may hold any character: markup in it must stay text.
std::string xml_escaped(const std::string& text) {
    std::string out;
    for (char c : text) {
        switch (c) {
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '&': out += "&amp;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&apos;"; break;
            default: out += c;
        }
    }
    return out;
}

}  // namespace

std::string plot_svg(const std::vector<EpochMetrics>& hist, const std::string& title) {
    std::int64_t epochs = hist.empty() ? 1 : hist.back().epoch;
    double lo = INFINITY, hi = -INFINITY;
    for (const auto& e : hist)
        for (double v : {e.train_loss, e.test_loss})
            if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    if (!std::isfinite(lo)) lo = 0, hi = 1;
    lo = std::min(lo, 0.0);
    Panel loss{60, 40, 520, 200, lo, hi, epochs};
    Panel acc{60, 300, 520, 200, 0, 1, epochs};
    std::string svg = fmt::format(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"620\" height=\"540\" font-family=\"sans-serif\">\n"
        "<rect width=\"620\" height=\"540\" fill=\"white\"/>\n"
        "<text x=\"60\" y=\"18\" font-size=\"15\">{}</text>\n",
        xml_escaped(title));
    svg += axes(loss, "loss per epoch (blue: train, orange: test)", 3);
    svg += polyline(loss, hist, &EpochMetrics::train_loss, "#1f77b4");
    svg += polyline(loss, hist, &EpochMetrics::test_loss, "#ff7f0e");
    svg += axes(acc, "test accuracy per epoch", 2);
    svg += polyline(acc, hist, &EpochMetrics::test_accuracy, "#2ca02c");
    svg += "</svg>\n";
    return svg;
}

}  // namespace chainrule
