// curves.svg (render/plot.cpp) and `chainrule plot`: round ticks, the legend, markers, the log
// scale, the final values, NaN losses, and the command's errors.
#define BOOST_TEST_MODULE plot
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <filesystem>
#include <regex>
#include <unistd.h>

#include "core/files.hpp"
#include "render/plot.hpp"
#include "tests/testing.hpp"

using namespace chainrule;
using namespace chainrule::testing;
namespace fs = std::filesystem;

namespace {

// The texts of the <text class="CLS"> elements, in order.
std::vector<std::string> texts(const std::string& svg, const std::string& cls) {
    std::vector<std::string> out;
    const std::regex re("<text class=\"" + cls + "\"[^>]*>([^<]*)</text>");
    for (auto it = std::sregex_iterator(svg.begin(), svg.end(), re); it != std::sregex_iterator(); ++it)
        out.push_back((*it)[1]);
    return out;
}
std::vector<double> numbers(const std::vector<std::string>& t) {
    std::vector<double> v;
    for (const auto& s : t) v.push_back(std::stod(s));
    return v;
}
std::size_t count(const std::string& s, const std::string& part) {
    std::size_t n = 0;
    for (auto p = s.find(part); p != std::string::npos; p = s.find(part, p + 1)) ++n;
    return n;
}

// 1, 2 or 5 times a power of ten.
bool is_round_step(double d) {
    const double m = d / std::pow(10.0, std::floor(std::log10(d) + 1e-9));
    return std::abs(m - 1) < 1e-9 || std::abs(m - 2) < 1e-9 || std::abs(m - 5) < 1e-9;
}

// Evenly spaced by a round step, each a multiple of it, and covering lo..hi.
void check_round_ticks(const std::vector<double>& t, double lo, double hi) {
    BOOST_TEST_REQUIRE(t.size() >= 3u);
    BOOST_TEST(t.size() <= 8u);
    const double d = t[1] - t[0];
    BOOST_TEST(is_round_step(d), "step " << d);
    for (std::size_t i = 1; i < t.size(); ++i) BOOST_TEST(std::abs(t[i] - t[i - 1] - d) < 1e-9 * d);
    for (double v : t) BOOST_TEST(std::abs(v / d - std::round(v / d)) < 1e-6, v << " is not a multiple of " << d);
    BOOST_TEST(t.front() <= lo);
    BOOST_TEST(t.back() >= hi);
}

// Every tag closed, in order: the file is well-formed as far as its elements go.
bool balanced(const std::string& svg) {
    std::vector<std::string> open;
    for (std::size_t p = svg.find('<'); p != std::string::npos; p = svg.find('<', p + 1)) {
        const std::size_t q = svg.find('>', p);
        if (q == std::string::npos) return false;
        const std::string tag = svg.substr(p + 1, q - p - 1);
        if (tag.find('<') != std::string::npos) return false;
        const std::string name = tag.substr(tag[0] == '/', tag.find_first_of(" />", 1) - (tag[0] == '/'));
        if (tag.back() == '/') continue;
        if (tag[0] == '/') {
            if (open.empty() || open.back() != name) return false;
            open.pop_back();
        } else {
            open.push_back(name);
        }
    }
    return open.empty();
}

// Losses falling from 1.37 to 0.2134 (test 0.25), accuracy rising from 0.62 to 0.9333.
std::vector<CurvePoint> run(std::int64_t epochs) {
    std::vector<CurvePoint> h;
    for (std::int64_t e = 1; e <= epochs; ++e) {
        const double f = epochs == 1 ? 1 : double(e - 1) / double(epochs - 1);
        h.push_back({e, 1.37 + (0.2134 - 1.37) * f, 1.2 + (0.25 - 1.2) * f, 0.62 + (0.9333 - 0.62) * f});
    }
    return h;
}

}  // namespace

using chainrule::testing::RemoveScratch;
BOOST_TEST_GLOBAL_FIXTURE(RemoveScratch);

BOOST_AUTO_TEST_CASE(value_ticks_are_round_numbers) {
    const std::string svg = plot_svg(run(15), "iris");
    check_round_ticks(numbers(texts(svg, "ytick-loss")), 0, 1.37);
    BOOST_TEST(texts(svg, "ytick-loss").front() == "0.0");
    const std::vector<double> acc = numbers(texts(svg, "ytick-acc"));
    check_round_ticks(acc, 0, 1);
    BOOST_TEST(acc.front() == 0.0);
    BOOST_TEST(acc.back() == 1.0);
}

BOOST_AUTO_TEST_CASE(zoomed_accuracy_spans_the_data_rounded_out) {
    const std::string svg = plot_svg(run(15), "iris", {.zoom_accuracy = true});
    const std::vector<double> acc = numbers(texts(svg, "ytick-acc"));
    check_round_ticks(acc, 0.62, 0.9333);
    BOOST_TEST(acc.front() == 0.6, acc.front());  // 0.62 .. 0.9333 by 0.05 or 0.1
    BOOST_TEST(acc.back() >= 0.95);
    BOOST_TEST(acc.back() <= 1.0);
    CHECK_HAS(svg, "test accuracy (zoomed)");
}

BOOST_AUTO_TEST_CASE(epoch_ticks_are_round_numbers) {
    for (std::int64_t epochs : {2, 15, 30, 999, 1000}) {
        const std::vector<double> t = numbers(texts(plot_svg(run(epochs), "x"), "xtick"));
        BOOST_TEST_REQUIRE(t.size() >= 2u * 2);  // the same ticks under both panels
        const std::vector<double> one(t.begin(), t.begin() + long(t.size() / 2));
        BOOST_TEST(one.size() <= 10u, epochs << " epochs: " << one.size() << " ticks");
        const double d = one.back() - one[one.size() - 2];
        BOOST_TEST(is_round_step(d), epochs << " epochs: step " << d);
        for (double v : one) {
            BOOST_TEST((v == 1 || std::fmod(v, d) == 0), epochs << " epochs: tick " << v);
            BOOST_TEST(v <= double(epochs));
        }
        BOOST_TEST(one.back() > double(epochs) - d, "the last tick is within a step of the end");
    }
    BOOST_TEST(texts(plot_svg(run(999), "x"), "xtick").front() == "1");
    BOOST_TEST(texts(plot_svg(run(999), "x"), "xtick")[1] == "200");
    BOOST_TEST(texts(plot_svg(run(1), "x"), "xtick") == (std::vector<std::string>{"1", "1"}));
}

BOOST_AUTO_TEST_CASE(legend_has_the_three_series) {
    const std::string svg = plot_svg(run(15), "x");
    BOOST_TEST(texts(svg, "legend") == (std::vector<std::string>{"train loss", "test loss", "test accuracy"}));
    BOOST_TEST(texts(svg, "note").empty());
    CHECK_HAS(svg, "stroke-dasharray=\"7 4\"");  // test loss is dashed, so not told apart by colour alone
}

BOOST_AUTO_TEST_CASE(markers_for_few_epochs_only) {
    BOOST_TEST(count(plot_svg(run(1), "x"), "class=\"marker\"") == 3u + 3);    // the legend's and one per series
    BOOST_TEST(count(plot_svg(run(30), "x"), "class=\"marker\"") == 3u + 90);
    BOOST_TEST(count(plot_svg(run(31), "x"), "class=\"marker\"") == 3u);       // the legend's only
    BOOST_TEST(count(plot_svg(run(999), "x"), "class=\"marker\"") == 3u);
}

BOOST_AUTO_TEST_CASE(log_scale_ticks_are_powers_of_ten) {
    std::vector<CurvePoint> h = run(40);
    h.back().train_loss = 0.004;  // 0.004 .. 1.37: 0.001 to 10
    const std::string svg = plot_svg(h, "x", {.log_loss = true});
    BOOST_TEST(texts(svg, "ytick-loss") == (std::vector<std::string>{"0.001", "0.01", "0.1", "1", "10"}));
    CHECK_HAS(svg, "loss (log scale)");
    // One decade at least, when all losses lie within one.
    BOOST_TEST(texts(plot_svg(run(5), "x", {.log_loss = true}), "ytick-loss") ==
               (std::vector<std::string>{"0.1", "1", "10"}));
}

BOOST_AUTO_TEST_CASE(final_values_are_labelled) {
    BOOST_TEST(texts(plot_svg(run(999), "x"), "final") == (std::vector<std::string>{"0.2134", "0.25", "0.9333"}));
    BOOST_TEST(texts(plot_svg(run(1), "x"), "final") == (std::vector<std::string>{"0.2134", "0.25", "0.9333"}));
}

BOOST_AUTO_TEST_CASE(nan_test_loss_is_skipped_and_said) {
    std::vector<CurvePoint> h = run(20);
    h[4].test_loss = NAN;
    h[10].test_loss = INFINITY;
    h.back().test_loss = NAN;
    const std::string svg = plot_svg(h, "a <b> & 'c'");
    BOOST_TEST(balanced(svg));
    BOOST_TEST(!std::regex_search(svg, std::regex("(points|x|y|cx|cy)=\"[^\"]*(nan|inf)")), "a NaN coordinate");
    BOOST_TEST(texts(svg, "legend") == (std::vector<std::string>{"train loss", "test loss *", "test accuracy"}));
    BOOST_TEST(texts(svg, "note") == (std::vector<std::string>{"* test loss: 3 of 20 epochs not drawn (NaN or infinite)"}));
    CHECK_HAS(svg, "a &lt;b&gt; &amp; &apos;c&apos;");
    // The test loss line breaks at each gap: three pieces, and its label is the last drawn value.
    BOOST_TEST(count(svg, "stroke-dasharray=\"7 4\" points=") == 3u);
    BOOST_TEST(texts(svg, "final")[1] == "0.3");  // epoch 19: 1.2 - 0.95 * 18/19
    // All losses NaN still draws axes.
    for (auto& e : h) e.test_loss = e.train_loss = NAN;
    const std::string none = plot_svg(h, "x");
    BOOST_TEST(balanced(none));
    BOOST_TEST(texts(none, "ytick-loss").size() >= 3u);
    BOOST_TEST(texts(none, "final").size() == 1u);  // accuracy only
}

BOOST_AUTO_TEST_CASE(log_scale_skips_non_positive_losses) {
    std::vector<CurvePoint> h = run(10);
    h[2].train_loss = 0;
    const std::string svg = plot_svg(h, "x", {.log_loss = true});
    BOOST_TEST(balanced(svg));
    BOOST_TEST(texts(svg, "note") ==
               (std::vector<std::string>{"* train loss: 1 of 10 epochs not drawn (NaN, infinite or &lt;= 0)"}));
}

BOOST_AUTO_TEST_CASE(balanced_is_a_real_check) {
    BOOST_TEST(balanced("<svg><text>a</text><line/></svg>"));
    BOOST_TEST(!balanced("<svg><text>a</svg>"));
    BOOST_TEST(!balanced("<svg><text>a <b</text></svg>"));
}

BOOST_AUTO_TEST_CASE(plot_command_redraws_a_run) {
    const fs::path dir = scratch() / "run";
    fs::remove_all(dir);
    const std::string bin = chainrule_binary();
    CommandResult t = run_command(bin + " train " + source_root() + "/models/iris_neuron.json --epochs 4 --out " +
                                  dir.string() + " >/dev/null");
    BOOST_TEST_REQUIRE(t.code == 0, t.err);
    const std::string out = (dir / "log.svg").string();
    CommandResult r = run_command(bin + " plot " + dir.string() + " --log-loss --zoom-accuracy --out " + out);
    BOOST_TEST_REQUIRE(r.code == 0, r.err);
    CHECK_HAS(r.out, "4 epochs");
    const std::string svg = read_text_file(out);
    CHECK_HAS(svg, "loss (log scale)");
    CHECK_HAS(svg, "test accuracy (zoomed)");
    CHECK_HAS(svg, "iris_neuron");
    BOOST_TEST(count(svg, "class=\"marker\"") == 3u + 12);
    // The default is the run's own curves.svg, given the checkpoint file as well as the folder.
    fs::remove(dir / "curves.svg");
    BOOST_TEST(run_command(bin + " plot " + (dir / "checkpoint.ckpt").string()).code == 0);
    BOOST_TEST(fs::exists(dir / "curves.svg"));

    CommandResult missing = run_command(bin + " plot " + (dir / "nope").string());
    BOOST_TEST(missing.code == 2);
    CHECK_HAS(missing.err, (dir / "nope").string() + ": no such run directory or checkpoint file");
    fs::create_directories(dir / "empty");
    CommandResult empty = run_command(bin + " plot " + (dir / "empty").string());
    BOOST_TEST(empty.code == 2);
    CHECK_HAS(empty.err, (dir / "empty" / "checkpoint.ckpt").string() + ": no checkpoint here");
    const std::string bad = (dir / "bad.ckpt").string();
    write_file_atomic(bad, "not a checkpoint");
    CommandResult garbage = run_command(bin + " plot " + bad);
    BOOST_TEST(garbage.code == 2);
    CHECK_HAS(garbage.err, bad);
    fs::remove_all(dir);
}

namespace {

// Every number in an attribute of the picture, e.g. x="12.5" or points="1.0,2.0 3.0,4.0".
std::vector<std::string> attribute_numbers(const std::string& svg) {
    std::vector<std::string> out;
    const std::regex attr(R"re( (?:x|y|x1|x2|y1|y2|cx|cy|width|height|points)="([^"]*)")re");
    const std::regex word(R"re([^ ,]+)re");
    for (auto it = std::sregex_iterator(svg.begin(), svg.end(), attr); it != std::sregex_iterator(); ++it) {
        const std::string value = (*it)[1];
        for (auto w = std::sregex_iterator(value.begin(), value.end(), word); w != std::sregex_iterator(); ++w)
            out.push_back((*w)[0]);
    }
    return out;
}

}  // namespace

// A checkpoint is data: whatever numbers its history holds, the plot's axes are computed in
// a bounded number of steps (an epoch of 2^63 − 1 overflowed the epoch tick loop, values one
// ulp apart made the value tick loop add a step too small to change a double, for ever),
// with at most a dozen ticks and every coordinate a finite number of bounded size (points
// are kept within ±1e6; labels and markers sit a few units off them).
BOOST_AUTO_TEST_CASE(any_history_gives_a_bounded_picture) {
    const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
    const double big = std::numeric_limits<double>::max(), one_ulp = std::nextafter(1.0, 2.0);
    const std::int64_t last = std::numeric_limits<std::int64_t>::max(), first = std::numeric_limits<std::int64_t>::min();
    const std::vector<std::pair<const char*, std::vector<CurvePoint>>> histories = {
        {"an epoch of 2^63-1", {{last, 0.5, 0.4, 0.9}}},
        {"epochs 1 and 2^63-1", {{1, 0.5, 0.4, 0.9}, {last, 0.3, 0.2, 0.95}}},
        {"epochs -2^63 and 2^63-1", {{first, 0.5, 0.4, 0.9}, {last, 0.3, 0.2, 0.95}}},
        {"values one ulp apart", {{1, 1.0, one_ulp, one_ulp}, {2, one_ulp, 1.0, 1.0}}},
        {"±1e30", {{1, 1e30, -1e30, 1e30}, {2, -1e30, 1e30, -1e30}}},
        {"±DBL_MAX", {{1, big, -big, big}, {2, -big, big, 0.5}}},
        {"1e30 and 1e30 plus one ulp", {{1, 1e30, std::nextafter(1e30, inf), 0.5}}},
        {"the smallest numbers", {{1, 5e-324, 1e-310, 5e-324}, {2, 1e-300, 2e-300, 1e-300}}},
        {"nothing finite", {{1, nan, inf, nan}, {2, -inf, nan, inf}}},
        {"decades from 1e-300 to 1e300", {{1, 1e-300, 1e300, 0.5}, {2, 1e300, 1e-300, 0.5}}},
    };
    for (const auto& [what, h] : histories) {
        for (const PlotOptions o : {PlotOptions{}, PlotOptions{true, false}, PlotOptions{false, true}}) {
            const auto start = std::chrono::steady_clock::now();
            const std::string svg = plot_svg(h, what, o);
            const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            BOOST_TEST(seconds < 1.0, what);
            BOOST_TEST(svg.size() < 40000u, what << ": " << svg.size() << " bytes");
            BOOST_TEST(balanced(svg), what);
            BOOST_TEST(texts(svg, "ytick-loss").size() <= 13u, what);
            BOOST_TEST(texts(svg, "ytick-acc").size() <= 13u, what);
            BOOST_TEST(texts(svg, "xtick").size() <= 13u, what);
            for (const std::string& n : attribute_numbers(svg)) {
                char* end = nullptr;
                const double v = std::strtod(n.c_str(), &end);
                BOOST_TEST((*end == '\0' && std::isfinite(v) && std::abs(v) <= 1.1e6), what << ": coordinate " << n);
            }
        }
    }
    // The epoch ticks of the longest possible run are round and in range.
    const std::string svg = plot_svg({{1, 0.5, 0.4, 0.9}, {last, 0.3, 0.2, 0.95}}, "long");
    const std::vector<std::string> ticks = texts(svg, "xtick");
    const std::vector<std::string> round = {"1", "2000000000000000000", "4000000000000000000", "6000000000000000000",
                                            "8000000000000000000"};
    BOOST_REQUIRE(ticks.size() == 2 * round.size());  // under the loss panel and under the accuracy panel
    BOOST_TEST(std::vector<std::string>(ticks.begin(), ticks.begin() + 5) == round, boost::test_tools::per_element());
    // Values one ulp apart are a flat line in the middle of a ±10% axis.
    const double minus_one_less = std::nextafter(-1.0, -2.0);
    const std::vector<double> flat =
        numbers(texts(plot_svg({{1, -1.0, minus_one_less, 0.5}}, "flat"), "ytick-loss"));
    BOOST_TEST_REQUIRE(flat.size() >= 3u);
    BOOST_TEST((flat.front() >= -1.2 && flat.front() <= -1.1 + 1e-12), flat.front());
    BOOST_TEST((flat.back() >= -0.9 - 1e-12 && flat.back() <= -0.8), flat.back());
}

// XML 1.0 cannot hold U+0000–U+001F (but tab and line feed) even as character references:
// a title holding them is written with each made visible as \u0001, and bytes that are not
// UTF-8 as U+FFFD; the rest of the title is kept.
BOOST_AUTO_TEST_CASE(control_characters_in_a_title_are_made_visible) {
    std::string title = "run";
    for (int c = 0; c < 0x20; ++c) title += char(c);
    title += "\xff|\xEF\xBF\xBE|caf\xC3\xA9";
    const std::string svg = plot_svg(run(3), title);
    for (int c = 0; c < 0x20; ++c)
        if (c != '\t' && c != '\n') BOOST_TEST(svg.find(char(c)) == std::string::npos, "raw control character " << c);
    CHECK_HAS(svg, ">run\\u0000\\u0001\\u0002");
    CHECK_HAS(svg, "\\u001f\xEF\xBF\xBD|\\ufffe|caf\xC3\xA9</text>");
}
