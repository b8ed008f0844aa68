// Inputs that ops read as class indices: an op's labels_input (cross_entropy's labels) given
// as [N] holds, per row, the index of one of the C columns of the op's input 0 (its logits).
// A value outside [0, C) is bad input wherever it comes from, so each place that gives an
// input its values (a default value, a feed file, a data set) checks them against these
// uses and names itself, rather than leaving the op to fail in the middle of a pass.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "graph/graph.hpp"

namespace chainrule {

struct ClassIndexUse {
    int op = -1;               // the node that reads the input as class indices
    std::int64_t classes = 0;  // the columns of its logits; 0 when they are symbolic
};

// The ops that read node `id` as class indices [N]; empty when none does (or it is [N, C]).
std::vector<ClassIndexUse> class_index_uses(const Graph& g, int id);

// "node 'L' (cross_entropy), whose logits 'z' have 3 columns", for messages.
std::string describe_use(const Graph& g, const ClassIndexUse& use);

// When `values` (node id's value) has an entry that is not a whole number in [0, C) for
// some use: an InputError "{where}[i]: ..." naming the entry, its value and the use.
void check_class_indices(const Graph& g, int id, const Tensor& values, const std::string& where);

}  // namespace chainrule
