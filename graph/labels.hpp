// Inputs that ops read as class indices: an op's labels_input (cross_entropy's labels) given
// as [N] (or [N,T] for logits [N,T,C]: one rank less than the logits) holds, per position,
// the index of one of the C columns of the op's input 0 (its logits);
// an op's ids_input (embedding's ids, any shape) holds indices of rows of its ids_rows_of
// input (the table).
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
    std::int64_t classes = 0;  // the columns of its logits (rows of its table); 0 when symbolic
    bool ids = false;          // the op's ids_input (rows of a table), not its labels_input
};

// The ops that read node `id` as class indices ([N], [N,T]) or as ids; empty when none does
// (a labels input of the logits' shape holds one-hot rows or soft targets, not indices).
std::vector<ClassIndexUse> class_index_uses(const Graph& g, int id);

// "node 'L' (cross_entropy), whose logits 'z' have 3 columns" or "node 'e' (embedding), whose
// table 'W' has 5 rows", for messages.
std::string describe_use(const Graph& g, const ClassIndexUse& use);

// When `values` (node id's value) has an entry that is not a whole number in [0, C) for
// some use: an InputError "{where}[i][j]...: ..." naming the entry (its JSON path, as the
// value is nested: row i, column j of [N,T] labels), its value and the use.
void check_class_indices(const Graph& g, int id, const Tensor& values, const std::string& where);

}  // namespace chainrule
