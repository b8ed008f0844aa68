// What a model predicts for each row at a point, beside the row's label when it came from
// data: `step` prints it after forward, the step page shows it in its header, and
// `chainrule predict` prints it for new rows.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json.hpp"
#include "graph/graph.hpp"

namespace chainrule::cli {

struct RowPrediction {
    std::string row;        // "test 0" (rows of data), "line 3" (a CSV), "0" (a feed)
    std::string label;      // its class's name; "" when not known
    std::int64_t predicted = -1;
    std::string predicted_name;
    double score = 0;       // the prediction output at the predicted class (one output: the output)
    std::vector<double> outputs;
    bool right = false;     // predicted == label (meaningful only with a label)
};

// The prediction output's rows after forward: the class of each (train/trainer.hpp's
// predicted_class: the largest output, or output >= 0.5 for one output), named from
// `class_names` ("0", "1", … past its end). `row_names` and `labels` (-1: none) may be
// shorter than the rows; without `labels` and with `read_target`, the labels are read from
// the input the loss compares the prediction with, when it holds labels (class ids, one-hot
// rows, 0/1) — not when that input holds numbers made up (drawn at random, zeros).
// Empty when the graph has no prediction output with a batch dim.
std::vector<RowPrediction> row_predictions(const Graph& g, const std::vector<std::string>& row_names,
                                           const std::vector<std::int32_t>& labels,
                                           const std::vector<std::string>& class_names, bool read_target = true);

// "  test 0  label 7  predicted 7  right  S[7] = 0.412" per row (at most `limit`), with a
// first line naming the prediction output; "" for no rows. With `all_outputs`, each line
// ends with every output instead ("S = [0.001, …, 0.412, …]").
std::string format_row_predictions(const Graph& g, const std::vector<RowPrediction>& rows, std::size_t limit = 32,
                                   bool all_outputs = false);

// [{"row", "label"?, "predicted", "class", "score", "right"?, "outputs"}], numbers round-trip.
Json row_predictions_json(const std::vector<RowPrediction>& rows);

}  // namespace chainrule::cli
