#include "render/plot.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

#include "core/text.hpp"

namespace chainrule {
namespace {

// Okabe-Ito colours: told apart with every common colour-vision deficiency, and the
// line styles and markers differ too, so a grey print still shows which line is which.
constexpr const char* kTrainColour = "#0072B2";  // blue
constexpr const char* kTestColour = "#D55E00";   // vermillion
constexpr const char* kAccColour = "#009E73";    // bluish green

// The axes must stay bounded whatever a history holds (a checkpoint is data): values are
// clamped to ±kPlotMagnitude, a span too small for float64 to step through is widened like
// a flat line, and tick loops count integers, never add a step to a double or an epoch.
constexpr double kPlotMagnitude = 1e300;
constexpr int kMaxTicks = 12;

// The smallest of 1, 2, 5 times a power of ten that cuts `span` (finite, > 0) into at most `parts`.
double nice_step(double span, int parts) {
    const double raw = span / parts;
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    for (double m : {1.0, 2.0, 5.0})
        if (m * mag >= raw * (1 - 1e-9)) return m * mag;
    return 10 * mag;
}

struct Axis {
    double lo = 0, hi = 1;
    bool log = false;
    std::vector<double> ticks;
    int digits = 0;  // decimals of the tick labels; -1: the shortest form ({:g}), for huge or tiny steps
    double t(double v) const { return log ? std::log10(v) : v; }
    std::string label(double v) const {
        return log || digits < 0 ? fmt::format("{:g}", v) : fmt::format("{:.{}f}", v, digits);
    }
};

// lo..hi rounded out to a round step, about five ticks.
Axis linear_axis(double lo, double hi) {
    if (std::isnan(lo) || std::isnan(hi)) lo = 0, hi = 1;
    lo = std::clamp(lo, -kPlotMagnitude, kPlotMagnitude), hi = std::clamp(hi, -kPlotMagnitude, kPlotMagnitude);
    // Values equal to about nine digits (or one ulp apart) are a flat line.
    const double magnitude = std::max(std::abs(lo), std::abs(hi));
    if (!(hi - lo > 1e-9 * magnitude)) {
        const double mid = lo / 2 + hi / 2, d = mid == 0 ? 1 : std::abs(mid) * 0.1;
        lo = mid - d, hi = mid + d;
    }
    const double step = nice_step(hi - lo, 5);
    const double k0 = std::floor(lo / step + 1e-9), k1 = std::ceil(hi / step - 1e-9);
    const int decimals = int(-std::floor(std::log10(step) + 1e-9));
    Axis a{k0 * step, k1 * step, false, {}, step >= 1e9 || decimals > 9 ? -1 : std::max(0, decimals)};
    const int count = int(std::min(k1 - k0, double(kMaxTicks)));
    for (int k = 0; k <= count; ++k) a.ticks.push_back((k0 + k) * step);
    return a;
}

// Whole decades around lo..hi (both > 0), a tick at each power of ten, or at every few
// when the decades are many (a few within 1e-300 to 1e300).
Axis log_axis(double lo, double hi) {
    const int a = std::clamp(int(std::floor(std::log10(lo) + 1e-9)), -300, 299);
    int b = std::clamp(int(std::ceil(std::log10(hi) - 1e-9)), -300, 300);
    if (b <= a) b = a + 1;
    Axis axis{std::pow(10.0, a), std::pow(10.0, b), true, {}, 0};
    const int every = (b - a + kMaxTicks - 1) / kMaxTicks;
    for (int k = a; k <= b; k += every) axis.ticks.push_back(std::pow(10.0, k));
    return axis;
}

// A coordinate far outside the picture is still a number an SVG reader takes.
double on_canvas(double x) { return std::isfinite(x) ? std::clamp(x, -1e6, 1e6) : 0; }

struct Panel {
    double x0, y0, w, h;
    Axis y;
    std::int64_t epochs;
    double px(std::int64_t e) const {
        return on_canvas(x0 + w * (epochs <= 1 ? 0.5 : (double(e) - 1) / (double(epochs) - 1)));
    }
    double py(double v) const {
        v = std::clamp(v, y.log ? 1e-300 : -kPlotMagnitude, kPlotMagnitude);
        return on_canvas(y0 + h - h * (y.t(v) - y.t(y.lo)) / (y.t(y.hi) - y.t(y.lo)));
    }
};

// Round epoch numbers: multiples of a 1-2-5 step, and 1 when the step leaves room for it.
// Counted without overflow up to an epoch of 2^63 − 1.
std::vector<std::int64_t> epoch_ticks(std::int64_t epochs) {
    if (epochs <= 1) return {1};
    const auto step = std::max<std::int64_t>(1, std::llround(nice_step(double(epochs - 1), 8)));
    std::vector<std::int64_t> ticks;
    if (step == 1 || step >= 5) ticks.push_back(1);
    for (std::int64_t k = 1; k <= epochs / step; ++k)
        if (k * step > 1) ticks.push_back(k * step);
    return ticks;
}

struct Series {
    std::string name;
    double CurvePoint::*field;
    const char* colour;
    const char* dash;    // "" for a solid line
    const char* marker;  // circle, square or diamond
};

std::string marker(const Series& s, double x, double y) {
    const std::string style = fmt::format("class=\"marker\" fill=\"{}\" stroke=\"white\" stroke-width=\"0.8\"", s.colour);
    if (std::string(s.marker) == "circle") return fmt::format("<circle {} cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"4\"/>", style, x, y);
    if (std::string(s.marker) == "square")
        return fmt::format("<rect {} x=\"{:.1f}\" y=\"{:.1f}\" width=\"7\" height=\"7\"/>", style, x - 3.5, y - 3.5);
    return fmt::format("<polygon {} points=\"{:.1f},{:.1f} {:.1f},{:.1f} {:.1f},{:.1f} {:.1f},{:.1f}\"/>", style, x,
                       y - 5, x + 5, y, x, y + 5, x - 5, y);
}

std::string line_style(const Series& s) {
    return fmt::format("fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{}", s.colour,
                       *s.dash ? fmt::format(" stroke-dasharray=\"{}\"", s.dash) : "");
}

bool drawable(const Panel& p, double v) { return std::isfinite(v) && (!p.y.log || v > 0); }

// The series as lines broken where a point cannot be drawn, with markers when asked.
std::string draw(const Panel& p, const std::vector<CurvePoint>& hist, const Series& s, bool markers) {
    std::string out, pts;
    auto flush = [&] {
        if (!pts.empty()) out += fmt::format("<polyline {} points=\"{}\"/>\n", line_style(s), pts);
        pts.clear();
    };
    for (const auto& e : hist) {
        if (!drawable(p, e.*s.field)) {
            flush();
            continue;
        }
        pts += fmt::format("{:.1f},{:.1f} ", p.px(e.epoch), p.py(e.*s.field));
    }
    flush();
    if (markers)
        for (const auto& e : hist)
            if (drawable(p, e.*s.field)) out += marker(s, p.px(e.epoch), p.py(e.*s.field)) + "\n";
    return out;
}

std::string axes(const Panel& p, const std::string& label, const char* tick_class) {
    std::string out = fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#888\"/>\n"
        "<text x=\"{}\" y=\"{}\" font-size=\"13\" font-weight=\"bold\">{}</text>\n",
        p.x0, p.y0, p.w, p.h, p.x0, p.y0 - 8, label);
    for (double v : p.y.ticks) {
        const double y = p.py(v);
        out += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#e4e4e4\"/>\n", p.x0, y,
                           p.x0 + p.w, y);
        out += fmt::format("<text class=\"{}\" x=\"{}\" y=\"{:.1f}\" font-size=\"11\" text-anchor=\"end\">{}</text>\n",
                           tick_class, p.x0 - 5, y + 4, p.y.label(v));
    }
    for (std::int64_t e : epoch_ticks(p.epochs)) {
        const double x = p.px(e);
        out += fmt::format("<line x1=\"{:.1f}\" y1=\"{}\" x2=\"{:.1f}\" y2=\"{}\" stroke=\"#888\"/>\n", x, p.y0 + p.h, x,
                           p.y0 + p.h + 4);
        out += fmt::format("<text class=\"xtick\" x=\"{:.1f}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{}</text>\n",
                           x, p.y0 + p.h + 16, e);
    }
    out += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">epoch</text>\n",
                       p.x0 + p.w / 2, p.y0 + p.h + 30);
    return out;
}

// The last drawable value of the series, or NaN.
double last_value(const Panel& p, const std::vector<CurvePoint>& hist, double CurvePoint::*field,
                  std::int64_t& epoch) {
    for (auto it = hist.rbegin(); it != hist.rend(); ++it)
        if (drawable(p, (*it).*field)) return epoch = it->epoch, (*it).*field;
    return NAN;
}

// The title is the model's name, which may hold any character: markup in it must stay text.
std::string xml_escaped(const std::string& text) {
    std::string out;
    for (char c : visible_text(text)) {  // XML 1.0 cannot hold most control characters at all
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

std::string plot_svg(const std::vector<CurvePoint>& hist, const std::string& title, PlotOptions options) {
    const std::int64_t epochs = hist.empty() ? 1 : std::max<std::int64_t>(1, hist.back().epoch);
    const bool markers = hist.size() <= kPlotMarkerEpochs;

    double lo = INFINITY, hi = -INFINITY, alo = INFINITY, ahi = -INFINITY;
    for (const auto& e : hist) {
        for (double v : {e.train_loss, e.test_loss})
            if (std::isfinite(v) && (!options.log_loss || v > 0)) lo = std::min(lo, v), hi = std::max(hi, v);
        if (std::isfinite(e.test_accuracy) && e.test_accuracy >= 0)
            alo = std::min(alo, e.test_accuracy), ahi = std::max(ahi, e.test_accuracy);
    }
    if (!std::isfinite(lo)) lo = options.log_loss ? 0.1 : 0, hi = 1;
    const Axis loss_axis = options.log_loss ? log_axis(lo, hi) : linear_axis(std::min(lo, 0.0), hi);
    Axis acc_axis = linear_axis(0, 1);
    if (options.zoom_accuracy && std::isfinite(alo)) {
        acc_axis = linear_axis(alo, ahi);
        if (acc_axis.lo < 0 || acc_axis.hi > 1) acc_axis = linear_axis(std::max(acc_axis.lo, 0.0), std::min(acc_axis.hi, 1.0));
    }
    const Panel loss{70, 90, 520, 180, loss_axis, epochs};
    const Panel acc{70, 340, 520, 150, acc_axis, epochs};

    const Series series[] = {{"train loss", &CurvePoint::train_loss, kTrainColour, "", "circle"},
                             {"test loss", &CurvePoint::test_loss, kTestColour, "7 4", "square"},
                             {"test accuracy", &CurvePoint::test_accuracy, kAccColour, "", "diamond"}};
    const Panel* panel_of[] = {&loss, &loss, &acc};

    std::string svg = fmt::format(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"700\" height=\"550\" viewBox=\"0 0 700 550\" "
        "font-family=\"sans-serif\">\n"
        "<rect width=\"700\" height=\"550\" fill=\"white\"/>\n"
        "<text x=\"70\" y=\"24\" font-size=\"16\" font-weight=\"bold\">{}</text>\n",
        xml_escaped(title));
    svg += axes(loss, options.log_loss ? "loss (log scale)" : "loss", "ytick-loss");
    svg += axes(acc, options.zoom_accuracy ? "test accuracy (zoomed)" : "test accuracy", "ytick-acc");

    // The legend: one row under the title, each entry its line style and marker.
    double lx = 70;
    std::string notes;
    double final_x[3] = {}, final_y[3] = {NAN, NAN, NAN}, final_v[3] = {};
    for (int i = 0; i < 3; ++i) {
        const Series& s = series[i];
        const Panel& p = *panel_of[i];
        std::int64_t skipped = 0, measured = 0;
        for (const auto& e : hist) {
            const double v = e.*s.field;
            if (i == 2 && v < 0) continue;  // accuracy not measured
            ++measured;
            if (!drawable(p, v)) ++skipped;
        }
        std::string name = s.name;
        if (i == 2 && measured == 0 && !hist.empty()) name += " (not measured)";
        // What was left out goes in a note under the legend, so that the legend stays one row.
        if (skipped > 0) {
            name += " *";
            notes += fmt::format("{}* {}: {} of {} epochs not drawn ({})", notes.empty() ? "" : ";  ", s.name, skipped,
                                 measured, p.y.log && i < 2 ? "NaN, infinite or <= 0" : "NaN or infinite");
        }
        svg += fmt::format("<line x1=\"{}\" y1=\"44\" x2=\"{}\" y2=\"44\" {}/>\n", lx, lx + 28, line_style(s));
        svg += marker(s, lx + 14, 44) + "\n";
        svg += fmt::format("<text class=\"legend\" x=\"{}\" y=\"48\" font-size=\"12\">{}</text>\n", lx + 34,
                           xml_escaped(name));
        lx += 34 + 7.0 * double(name.size()) + 22;

        svg += draw(p, hist, s, markers);
        std::int64_t at = 0;
        final_v[i] = last_value(p, hist, s.field, at);
        if (std::isfinite(final_v[i])) final_x[i] = p.px(at) + 9, final_y[i] = p.py(final_v[i]);
    }
    if (!notes.empty())
        svg += fmt::format("<text class=\"note\" x=\"70\" y=\"64\" font-size=\"11\" fill=\"#444\">{}</text>\n",
                           xml_escaped(notes));
    // Final values to the right of the line ends; the two losses pushed apart when close.
    if (std::isfinite(final_y[0]) && std::isfinite(final_y[1]) && std::abs(final_y[0] - final_y[1]) < 13 &&
        std::abs(final_x[0] - final_x[1]) < 60) {
        const double mid = (final_y[0] + final_y[1]) / 2, d = final_y[0] <= final_y[1] ? -6.5 : 6.5;
        final_y[0] = mid + d, final_y[1] = mid - d;
    }
    for (int i = 0; i < 3; ++i) {
        if (!std::isfinite(final_y[i])) continue;
        // Accuracy as training prints it (4 decimals); losses in 4 significant digits.
        svg += fmt::format("<text class=\"final\" x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"11\" fill=\"{}\">{}</text>\n",
                           final_x[i], final_y[i] + 4, series[i].colour,
                           i == 2 ? fmt::format("{:.4f}", final_v[i]) : fmt::format("{:.4g}", final_v[i]));
    }
    svg += "</svg>\n";
    return svg;
}

}  // namespace chainrule
