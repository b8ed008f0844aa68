#include "core/text.hpp"

#include <algorithm>
#include <cctype>
#include <fmt/format.h>

namespace chainrule {

std::size_t edit_distance_within(const std::string& a, const std::string& b, std::size_t limit) {
    const std::size_t over = limit + 1, la = a.size(), lb = b.size();
    // Each edit changes the length by at most one.
    if ((la > lb ? la - lb : lb - la) > limit) return over;
    auto same = [](char x, char y) {
        return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
    };
    // Three rows (a transposition looks two rows back); only the band |i − j| <= limit is
    // computed, since a cell outside it is more than `limit` edits. Each row also writes
    // the cells just outside its band as `over`, so no row reads a stale cell.
    std::vector<std::size_t> before(lb + 1, over), prev(lb + 1, over), row(lb + 1, over);
    for (std::size_t j = 0; j <= std::min(lb, limit); ++j) prev[j] = j;
    for (std::size_t i = 1; i <= la; ++i) {
        const std::size_t lo = i > limit ? i - limit : 1, hi = std::min(lb, i + limit);
        row[0] = i <= limit ? i : over;
        if (lo > 1) row[lo - 1] = over;
        std::size_t best = row[0];
        for (std::size_t j = lo; j <= hi; ++j) {
            std::size_t d = std::min({prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (same(a[i - 1], b[j - 1]) ? 0 : 1)});
            if (i > 1 && j > 1 && same(a[i - 1], b[j - 2]) && same(a[i - 2], b[j - 1])) d = std::min(d, before[j - 2] + 1);
            row[j] = std::min(d, over);
            best = std::min(best, row[j]);
        }
        if (hi < lb) row[hi + 1] = over;
        if (best > limit) return over;  // every later row is at least as far
        std::swap(before, prev);
        std::swap(prev, row);
    }
    return std::min(prev[lb], over);
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
    return edit_distance_within(a, b, std::max(a.size(), b.size()));
}

std::string closest_name(const std::string& name, const std::vector<std::string>& candidates) {
    std::string best;
    std::size_t best_d = suggestion_edits(name) + 1;
    for (const auto& c : candidates) {
        const std::size_t d = edit_distance_within(name, c, best_d - 1);
        if (d < best_d) best_d = d, best = c;
    }
    return best;
}

std::size_t suggestion_edits(const std::string& name) {
    return std::clamp<std::size_t>(name.size() / 3, 2, kMaxSuggestionEdits);
}

}  // namespace chainrule

namespace chainrule {
namespace {

// The length of the valid UTF-8 sequence at text[i], or 0 when there is none.
std::size_t utf8_length(const std::string& text, std::size_t i) {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned char c = byte(i);
    if (c < 0x80) return 1;
    std::size_t n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (n == 0 || i + n > text.size()) return 0;
    for (std::size_t k = 1; k < n; ++k)
        if ((byte(i + k) & 0xC0) != 0x80) return 0;
    const unsigned char d = byte(i + 1);
    if ((c == 0xE0 && d < 0xA0) || (c == 0xED && d > 0x9F) || (c == 0xF0 && d < 0x90) || (c == 0xF4 && d > 0x8F))
        return 0;  // overlong, a surrogate, or past U+10FFFF
    return n;
}

}  // namespace

bool is_valid_utf8(const std::string& text) {
    for (std::size_t i = 0; i < text.size();) {
        const std::size_t n = utf8_length(text, i);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

std::string visible_text(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        const std::size_t n = utf8_length(text, i);
        const auto c = static_cast<unsigned char>(text[i]);
        if (n == 0) {
            out += "\xEF\xBF\xBD";  // U+FFFD
            ++i;
            continue;
        }
        if (n == 1 && c < 0x20 && c != '\t' && c != '\n') {
            out += fmt::format("\\u{:04x}", c);
        } else if (n == 3 && c == 0xEF && text[i + 1] == '\xBF' && (text[i + 2] == '\xBE' || text[i + 2] == '\xBF')) {
            out += text[i + 2] == '\xBE' ? "\\ufffe" : "\\uffff";
        } else {
            out.append(text, i, n);
        }
        i += n;
    }
    return out;
}

}  // namespace chainrule
