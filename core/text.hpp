// "Did you mean ...?" for every name a user can mistype: ops, nodes, keys.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace chainrule {

// Edit distance with adjacent transpositions counting as one edit (optimal string
// alignment), ignoring ASCII case: "reul" is 1 from "relu" and 2 from "mul".
std::size_t edit_distance(const std::string& a, const std::string& b);
// The same when it is at most `limit`, else limit + 1; costs O(min(|a|, |b|) · limit)
// steps, and none when the lengths differ by more than `limit`.
std::size_t edit_distance_within(const std::string& a, const std::string& b, std::size_t limit);

// A suggestion is at most this many edits away, however long the name: a name 100
// characters long with 30 edits is not a typo, and the bound keeps the search linear in
// the candidates' total length (a 20,000-character name is compared in a thin band).
inline constexpr std::size_t kMaxSuggestionEdits = 10;
// How far a suggestion for `name` may be: |name| / 3 edits, at least 2, at most 10.
std::size_t suggestion_edits(const std::string& name);

// The candidate closest to `name`, or "" when none is within suggestion_edits(name) edits.
// Ties go to the earlier candidate.
std::string closest_name(const std::string& name, const std::vector<std::string>& candidates);

}  // namespace chainrule

namespace chainrule {

// `text` made fit for any file chainrule writes (XML, SVG, DOT, JSON): valid UTF-8, in which
// every control character but tab and line feed (U+0000 to U+001F, which XML 1.0 cannot
// hold even escaped) and the non-characters U+FFFE and U+FFFF are written visibly as the
// six characters `\u0001`, and every byte that is not part of valid UTF-8 as U+FFFD (�).
// Text that needs none of this comes back unchanged.
std::string visible_text(const std::string& text);
// Whether `text` is valid UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool is_valid_utf8(const std::string& text);

}  // namespace chainrule
