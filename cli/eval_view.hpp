// What `chainrule eval` shows: one line per row (label, predicted class, right/wrong,
// outputs), the confusion matrix of a classifier, and the same as one JSON document.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json.hpp"
#include "data/dataset.hpp"
#include "train/trainer.hpp"

namespace chainrule::cli {

// counts[true class][predicted class] over a split, from EvalResult::predicted.
struct Confusion {
    std::vector<std::string> names;                 // class names, "0", "1", ... when the data has none
    std::vector<std::vector<std::int64_t>> counts;  // names.size() x names.size()
    std::int64_t total() const;
    std::int64_t right() const;                     // the diagonal
};

// Classes above this are left out of the printed matrix (MNIST has 10, a CSV may have thousands).
inline constexpr std::size_t kMaxPrintedClasses = 20;

Confusion confusion_matrix(const EvalResult& r, const data::Dataset& ds, const data::Split& split);

// "row   3  line  45  label Iris-setosa      predicted Iris-setosa      right  0.054012"
std::string prediction_line(const EvalResult& r, const Confusion& c, const data::Split& split, std::int64_t row);

// The table: rows = true class, columns = predicted, with totals and per-class recall.
std::string format_confusion(const Confusion& c);

// The whole result as JSON (docs/cli.md, "eval"); rows only when `rows` (all, or the wrong ones).
Json eval_json(const EvalResult& r, const Confusion& c, const data::Split& split, bool rows, bool only_wrong);

}  // namespace chainrule::cli
