// "Did you mean ...?" for every name a user can mistype: ops, nodes, keys.
#pragma once

#include <string>
#include <vector>

namespace chainrule {

// Edit distance with adjacent transpositions counting as one edit (optimal string
// alignment), ignoring ASCII case: "reul" is 1 from "relu" and 2 from "mul".
std::size_t edit_distance(const std::string& a, const std::string& b);

// The candidate closest to `name`, or "" when none is within max(2, |name| / 3) edits.
// Ties go to the earlier candidate.
std::string closest_name(const std::string& name, const std::vector<std::string>& candidates);

}  // namespace chainrule
