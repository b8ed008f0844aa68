#include "cli/row_predictions.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "train/trainer.hpp"

namespace chainrule::cli {
namespace {

// The labels of the rows as the loss reads them, when the loss compares the prediction with
// an input holding labels: class ids ([N], whole numbers), one-hot rows ([N,C]) or 0/1
// ([N,1]). Empty when there is no such input or its values are not labels (say uniform(0,1)).
std::vector<std::int32_t> labels_from_target(const Graph& g, std::int64_t rows, std::int64_t width) {
    const int loss = g.loss();
    if (loss < 0 || g.node(loss).kind != NodeKind::op) return {};
    const Node& l = g.node(loss);
    int target = -1;
    for (std::size_t k = 0; k < l.inputs.size(); ++k) {
        const Node& in = g.node(l.inputs[k]);
        if (in.kind == NodeKind::input && (l.op->labels_input == int(k) || l.inputs[k] != g.prediction())) target = l.inputs[k];
    }
    if (target < 0) return {};
    const Tensor& t = g.node(target).value;
    if (t.rank() == 0 || t.dims()[0] != rows) return {};
    const std::int64_t cols = t.numel() / rows;
    std::vector<std::int32_t> out;
    for (std::int64_t r = 0; r < rows; ++r) {
        if (t.rank() == 1) {  // class ids
            double v = t.at(r);
            if (v != std::floor(v) || v < 0 || v >= double(std::max<std::int64_t>(width, 2))) return {};
            out.push_back(std::int32_t(v));
        } else if (cols == 1) {  // 0 or 1, beside a one-output prediction
            double v = t.at(r);
            if (width != 1 || (v != 0 && v != 1)) return {};
            out.push_back(std::int32_t(v));
        } else {  // one-hot
            std::int64_t hot = -1;
            for (std::int64_t c = 0; c < cols; ++c) {
                double v = t.at(r * cols + c);
                if (v == 1 && hot < 0) hot = c;
                else if (v != 0) return {};
            }
            if (hot < 0 || cols != width) return {};
            out.push_back(std::int32_t(hot));
        }
    }
    return out;
}

}  // namespace

std::vector<RowPrediction> row_predictions(const Graph& g, const std::vector<std::string>& row_names,
                                           const std::vector<std::int32_t>& labels,
                                           const std::vector<std::string>& class_names, bool read_target) {
    std::vector<RowPrediction> out;
    const int pred = g.prediction();
    if (pred < 0) return out;
    const Node& p = g.node(pred);
    // A prediction without a batch dim (a parameter, a scalar) has no rows to speak of.
    if (p.value.rank() == 0 || p.shape.empty() || !p.shape[0].symbolic()) return out;
    const std::int64_t rows = p.value.dims()[0];
    if (rows <= 0) return out;
    const std::int64_t width = p.value.numel() / rows;
    const std::vector<std::int32_t> target = labels.empty() && read_target ? labels_from_target(g, rows, width) : labels;
    auto name = [&](std::int64_t k) {
        return k >= 0 && std::size_t(k) < class_names.size() ? class_names[std::size_t(k)] : std::to_string(k);
    };
    for (std::int64_t r = 0; r < rows; ++r) {
        RowPrediction row;
        const std::size_t u = std::size_t(r);
        row.row = u < row_names.size() ? row_names[u] : std::to_string(r);
        row.predicted = predicted_class(p.value, r, width);
        row.predicted_name = name(row.predicted);
        row.score = p.value.at(r * width + (width == 1 ? 0 : row.predicted));
        for (std::int64_t k = 0; k < width; ++k) row.outputs.push_back(p.value.at(r * width + k));
        if (u < target.size() && target[u] >= 0) {
            row.label = name(target[u]);
            row.right = target[u] == row.predicted;
        }
        out.push_back(std::move(row));
    }
    return out;
}

std::string format_row_predictions(const Graph& g, const std::vector<RowPrediction>& rows, std::size_t limit,
                                   bool all_outputs) {
    if (rows.empty()) return "";
    const std::string& pred = g.node(g.prediction()).name;
    std::size_t row_w = 0, label_w = 0, class_w = 0;
    bool labelled = false;
    for (const RowPrediction& r : rows) {
        row_w = std::max(row_w, r.row.size());
        label_w = std::max(label_w, r.label.size());
        class_w = std::max(class_w, r.predicted_name.size());
        labelled = labelled || !r.label.empty();
    }
    const bool one = !rows.empty() && rows[0].outputs.size() == 1;
    std::string out = fmt::format("prediction {} per row{}:\n", pred,
                                  one ? " (class 1 when it is at least 0.5)" : " (the class of the largest output)");
    std::size_t shown = 0;
    for (const RowPrediction& r : rows) {
        if (shown++ == limit) {
            out += fmt::format("  … {} more rows\n", rows.size() - limit);
            break;
        }
        out += fmt::format("  {:<{}}", r.row, row_w);
        if (labelled) out += fmt::format("  label {:<{}}", r.label.empty() ? "-" : r.label, label_w);
        out += fmt::format("  predicted {:<{}}", r.predicted_name, class_w);
        if (!r.label.empty()) out += r.right ? "  right" : "  wrong";
        else if (labelled) out += "       ";
        if (all_outputs && !one) {
            std::vector<std::string> each;
            for (double v : r.outputs) each.push_back(fmt::format("{:.4g}", v));
            out += fmt::format("  {} = [{}]\n", pred, fmt::join(each, ", "));
        } else {
            out += one ? fmt::format("  {} = {:.4g}\n", pred, r.score)
                       : fmt::format("  {}[{}] = {:.4g}\n", pred, r.predicted, r.score);
        }
    }
    return out;
}

Json row_predictions_json(const std::vector<RowPrediction>& rows) {
    // JSON has no NaN or Inf: a non-finite output is null (docs/cli.md).
    auto number = [](double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); };
    Json list = Json::array();
    for (const RowPrediction& r : rows) {
        Json j;
        j["row"] = r.row;
        if (!r.label.empty()) j["label"] = r.label;
        j["predicted"] = r.predicted;
        j["class"] = r.predicted_name;
        j["score"] = number(r.score);
        if (!r.label.empty()) j["right"] = r.right;
        Json o = Json::array();
        for (double v : r.outputs) o.push_back(number(v));
        j["outputs"] = std::move(o);
        list.push_back(std::move(j));
    }
    return list;
}

}  // namespace chainrule::cli
