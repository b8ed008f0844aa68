// The nonzeros of a fed [rows, cols] input batch, kept by the graph beside the input's dense
// buffer (which always holds the batch too), so that a matmul whose left operand it is can
// skip the zeros (ops/sparse_matmul.hpp, docs/performance.md "Sparse first layer").
//
// The row form: row i's nonzeros at [row_begin[i], row_end[i]) of row_index (their columns,
// in increasing order) and row_values, values bit for bit those of the dense buffer. There is
// room for every pixel, so rows can be filled in parallel while the batch is converted: a
// part of the batch starting at row i packs its rows one after another from slot i·cols
// (data::gather). Each row is also indexed by blocks of kBlock columns: block_end[i·blocks + b]
// is where row i's entries in columns below (b + 1)·kBlock end; data::gather writes it while
// it compacts the row, any other filler calls index_row(i). With it the weight
// gradient xᵀ·δ reads the row form a band of columns at a time (ops/sparse_matmul.cpp), so
// no transposed copy of the batch is built.
// Storage grows only when a batch needs more room than any before: from the second step on,
// filling it allocates nothing.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/tensor.hpp"

namespace chainrule {

struct SparseRows {
    std::int64_t rows = 0, cols = 0;
    std::vector<std::int64_t> row_begin, row_end;
    std::vector<std::int32_t> row_index;
    static constexpr std::int64_t kBlock = 32;
    std::int64_t blocks = 0;  // ⌈cols / kBlock⌉
    std::vector<std::int64_t> block_end;  // [rows, blocks]
    std::vector<float> row_values_f32;
    std::vector<double> row_values_f64;
    std::int64_t nonzeros = 0;
    // Set by finish() when the form holds the input's current batch; cleared whenever the
    // input's value changes by any other way.
    bool current = false;

    template <class T>
    std::vector<T>& row_values() {
        if constexpr (std::is_same_v<T, float>) return row_values_f32;
        else return row_values_f64;
    }
    template <class T>
    const std::vector<T>& row_values() const {
        if constexpr (std::is_same_v<T, float>) return row_values_f32;
        else return row_values_f64;
    }
    // Room for a [r, c] batch in `dtype`; marks the form stale until finish().
    void reshape(Dtype dtype, std::int64_t r, std::int64_t c) {
        current = false;
        rows = r, cols = c;
        const auto n = std::size_t(r * c);
        row_begin.resize(std::size_t(r));
        row_end.resize(std::size_t(r));
        blocks = (c + kBlock - 1) / kBlock;
        block_end.resize(std::size_t(r * blocks));
        if (row_index.size() < n) row_index.resize(n);
        dispatch(dtype, [&]<class T>() {
            std::vector<T>& rv = row_values<T>();
            if (rv.size() < n) rv.resize(n);
        });
        for (std::int64_t i = 0; i < r; ++i) row_begin[std::size_t(i)] = row_end[std::size_t(i)] = i * c;
    }

    // Where row i's entries in column blocks from b on start.
    std::int64_t block_begin(std::int64_t i, std::int64_t b) const {
        return b == 0 ? row_begin[std::size_t(i)] : block_end[std::size_t(i * blocks + b - 1)];
    }

    double density() const { return rows * cols == 0 ? 0.0 : double(nonzeros) / double(rows * cols); }

    // After the rows and their block index are filled: counts the nonzeros and marks the form
    // current when the density is below `threshold`. Returns current.
    bool finish(double threshold) {
        nonzeros = 0;
        for (std::int64_t i = 0; i < rows; ++i) nonzeros += row_end[std::size_t(i)] - row_begin[std::size_t(i)];
        current = density() < threshold;
        return current;
    }

    // Row i's block index from its entries. Branch-free: each entry marks its block's end
    // (the last one in a block wins), and a running maximum then gives blocks without
    // entries the end of the block before.
    void index_row(std::int64_t i) {
        std::int64_t* end = block_end.data() + i * blocks;
        const std::int32_t* index = row_index.data();
        std::fill(end, end + blocks, 0);
        const std::int64_t first = row_begin[std::size_t(i)], last = row_end[std::size_t(i)];
        for (std::int64_t k = first; k < last; ++k) end[index[k] / kBlock] = k + 1;
        std::int64_t reached = first;
        for (std::int64_t b = 0; b < blocks; ++b) end[b] = reached = std::max(reached, end[b]);
    }
};

}  // namespace chainrule
