#include "train/feeder.hpp"

#include <fmt/format.h>

#include "core/error.hpp"
#include "graph/labels.hpp"
#include "ops/sparse_matmul.hpp"

namespace chainrule {
namespace {

// Class ids fed to an op that reads them as indices must select one of its logits' columns.
// (A `classes` list was checked with the block; the data's own count is known only now.)
void check_data_classes(const Graph& g, int id, const std::string& stream, const data::Dataset& ds,
                        const std::string& where) {
    if (stream != data::kLabels) return;
    for (const ClassIndexUse& use : class_index_uses(g, id))
        if (use.classes > 0 && ds.classes > use.classes)
            throw InputError(fmt::format("{}: the data has {} classes, but input '{}' holds class indices for {}: "
                                         "labels up to {} would fall outside them",
                                         where, ds.classes, g.node(id).name, describe_use(g, use), ds.classes - 1));
}

}  // namespace

bool feeds_sparse_product(const Graph& g, int id) {
    for (const Node& n : g.nodes())
        if (n.kind == NodeKind::op && sparse_form(*n.op) && n.inputs[0] == id)
            return true;
    return false;
}

Feeder::Feeder(Graph& g, const TrainingSpec& spec, const data::Dataset& ds, Workers* workers, double sparse_threshold)
    : g_(g), ds_(ds), sparse_threshold_(sparse_threshold) {
    for (const auto& [name, stream] : spec.feed) {
        int id = g.id(name);
        const Node& n = g.node(id);
        std::int64_t width = data::stream_width(ds, stream);
        check_feed_fits(n, stream, width, spec.data.where);
        check_data_classes(g, id, stream, ds, spec.data.where);
        Dims dims = n.shape.size() == 2 ? Dims{0, width} : Dims{0};
        const bool sparse = spec.sparse_inputs && stream == data::kImages && dims.size() == 2 && feeds_sparse_product(g, id);
        inputs_.push_back({id, &stream, std::move(dims), sparse ? &forms_.emplace_back() : nullptr});
        has_images_ = has_images_ || stream == data::kImages;
    }
    // The images, by far the most bytes of a batch, are converted on all workers at once:
    // that pass is bound by memory, and two cores fetch and write more than one.
    if (workers && workers->threads() >= 2) {
        workers_ = workers;
        on_workers_ = [workers](std::int64_t count, const std::function<void(std::int64_t, std::int64_t)>& part) {
            auto run_part = [&part](std::int64_t b, std::int64_t e) { part(b, e); };
            workers->run(count, run_part);
        };
    }
}

Feeder::~Feeder() {
    if (workers_) workers_->wait();
}

bool Feeder::sparse_enough(const data::Split& split) {
    for (const auto& [seen, enough] : sparse_splits_)
        if (seen == &split) return enough;
    sparse_splits_.emplace_back(&split, data::pixel_density(split) < sparse_threshold_);
    return sparse_splits_.back().second;
}

void Feeder::feed(const data::Split& split, std::span<const std::int64_t> rows) {
    for (Input& in : inputs_) {
        in.dims[0] = std::int64_t(rows.size());
        Tensor& buffer = g_.input_buffer(in.id, in.dims);
        SparseRows* sparse = in.sparse;
        if (sparse && !sparse_enough(split)) {
            sparse->current = false;  // the form of an earlier batch must not stand for this one
            sparse = nullptr;
        }
        data::gather(ds_, split, *in.stream, rows, buffer, on_workers_, sparse);
        if (sparse) sparse->finish(sparse_threshold_);
    }
}

std::vector<std::pair<int, const SparseRows*>> Feeder::sparse_inputs() const {
    std::vector<std::pair<int, const SparseRows*>> out;
    for (const Input& in : inputs_)
        if (in.sparse) out.emplace_back(in.id, in.sparse);
    return out;
}

void Feeder::Touch::operator()(std::int64_t begin, std::int64_t end) const {
    for (std::int64_t i = begin; i < end; ++i) {
        const std::uint8_t* row = pixels + rows[i] * width;
        for (std::int64_t k = 0; k < width; k += 64) __builtin_prefetch(row + k);
        __builtin_prefetch(row + width - 1);
    }
}

void Feeder::prefetch(const data::Split& split, std::span<const std::int64_t> rows) {
    if (!workers_ || !has_images_ || split.pixels.empty() || rows.empty()) return;
    touch_ = {split.pixels.data(), split.features, rows.data()};
    workers_->start(std::int64_t(rows.size()), touch_);
}

}  // namespace chainrule
