// Puts the rows of a batch into the graph's fed inputs, in one pass per input from the data
// set. Each input's node, stream and batch dims are resolved once, when the feeder is made,
// so that feeding a batch allocates nothing.
#pragma once

#include <span>
#include <vector>

#include "data/dataset.hpp"
#include "graph/graph.hpp"
#include "train/training.hpp"
#include "core/workers.hpp"

namespace chainrule {

class Feeder {
public:
    // An input whose declared shape does not fit its stream is an InputError. With
    // `workers`, the images are converted on all of them (spec and ds must outlive it).
    Feeder(Graph& g, const TrainingSpec& spec, const data::Dataset& ds, Workers* workers = nullptr);
    void feed(const data::Split& split, std::span<const std::int64_t> rows);

private:
    struct Input {
        int id = -1;
        const std::string* stream = nullptr;
        Dims dims;
    };
    Graph& g_;
    const data::Dataset& ds_;
    std::vector<Input> inputs_;
    data::RowSplitter on_workers_;  // data::gather uses it for images only
};

}  // namespace chainrule
