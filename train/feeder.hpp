// Puts the rows of a batch into the graph's fed inputs, in one pass per input from the data
// set. Each input's node, stream and batch dims are resolved once, when the feeder is made,
// so that feeding a batch allocates nothing.
//
// An image input that an op with a sparse form (matmul, linear: ops/sparse_matmul.hpp) reads
// as its left operand also gets its nonzeros, built in the same pass (data::gather) into the
// feeder's own SparseRows and marked current when the batch's density is below
// kSparseDensityThreshold. The feeder lends them to a training plan (sparse_inputs()), whose
// steps then skip the zeros (docs/performance.md, "Sparse first layer"). A split whose pixels
// as a whole are that dense or denser gets no form at all, so a dense data set does not pay
// for building one. "sparse_inputs": "off" turns this off.
#pragma once

#include <deque>
#include <span>
#include <utility>
#include <vector>

#include "data/dataset.hpp"
#include "graph/graph.hpp"
#include "train/training.hpp"
#include "cpu/workers.hpp"

namespace chainrule {

// Below this fraction of nonzero pixels the sparse products beat the dense GEMMs on the
// lecture's MNIST net: measured crossover about 0.33 on random pixels (bench/mnist_epoch
// --synthetic N --pixel-density D, docs/performance.md), kept a little below it.
inline constexpr double kSparseDensityThreshold = 0.3;

// Whether input `id` is read as input 0 by an op with a sparse form (where its nonzeros can help).
bool feeds_sparse_product(const Graph& g, int id);

class Feeder {
public:
    // An input whose declared shape does not fit its stream is an InputError. With
    // `workers`, the images are converted on all of them (spec and ds must outlive it).
    Feeder(Graph& g, const TrainingSpec& spec, const data::Dataset& ds, Workers* workers = nullptr,
           double sparse_threshold = kSparseDensityThreshold);
    ~Feeder();  // waits for a prefetch still running: it reads the feeder
    Feeder(const Feeder&) = delete;
    Feeder& operator=(const Feeder&) = delete;
    void feed(const data::Split& split, std::span<const std::int64_t> rows);
    // The nonzeros this feeder builds, per input, for a training plan to lend (Pass::sparse_inputs).
    std::vector<std::pair<int, const SparseRows*>> sparse_inputs() const;
    // Brings the pixels of a later batch's rows into cache on the helpers, in the background,
    // while the caller computes alone (the first, single-threaded part of backward): the rows are drawn
    // at random from tens of MB, and their fetch is a good part of feeding them. The rows
    // must stay as they are until the next feed. Does nothing without helpers or images.
    void prefetch(const data::Split& split, std::span<const std::int64_t> rows);

private:
    struct Input {
        int id = -1;
        const std::string* stream = nullptr;
        Dims dims;
        SparseRows* sparse = nullptr;  // the input's nonzeros, built too; null: none
    };
    Graph& g_;
    const data::Dataset& ds_;
    std::vector<Input> inputs_;
    std::deque<SparseRows> forms_;  // the inputs' nonzeros (a deque: their addresses stay put)
    data::RowSplitter on_workers_;  // data::gather uses it for images (and their row form) only
    Workers* workers_ = nullptr;
    bool has_images_ = false;
    // What prefetch hands the helpers: a member, so that it outlives the call.
    struct Touch {
        const std::uint8_t* pixels = nullptr;
        std::int64_t width = 0;
        const std::int64_t* rows = nullptr;
        void operator()(std::int64_t begin, std::int64_t end) const;
    } touch_;
    double sparse_threshold_;
    // The splits seen so far and whether each is sparse enough to build forms for.
    std::vector<std::pair<const data::Split*, bool>> sparse_splits_;
    bool sparse_enough(const data::Split& split);
};

}  // namespace chainrule
