// The nonzeros of a fed [rows, cols] input batch, kept by the graph beside the input's dense
// buffer (which always holds the batch too), so that a matmul whose left operand it is can
// skip the zeros (ops/sparse_matmul.hpp, docs/performance.md "Sparse first layer").
//
// Two compressed forms of the same entries, values bit for bit those of the dense buffer:
//  - by row: row i's nonzeros at [row_begin[i], row_end[i]) of row_index (their columns, in
//    increasing order) and row_values. Row i's slots start at i·cols, so that rows can be
//    filled in parallel while the batch is converted (data::gather);
//  - by column: column j's nonzeros at [col_offset[j], col_offset[j+1]) of col_index (their
//    rows, in increasing order) and col_values, built from the rows by finish().
// Storage grows only when a batch needs more room than any before: from the second step on,
// filling it allocates nothing.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/tensor.hpp"
#include "core/workers.hpp"

namespace chainrule {

struct SparseRows {
    std::int64_t rows = 0, cols = 0;
    std::vector<std::int64_t> row_begin, row_end;
    std::vector<std::int32_t> row_index;
    std::vector<std::int64_t> col_offset;
    std::vector<std::int32_t> col_index;
    std::vector<float> row_values_f32, col_values_f32;
    std::vector<double> row_values_f64, col_values_f64;
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
    template <class T>
    std::vector<T>& col_values() {
        if constexpr (std::is_same_v<T, float>) return col_values_f32;
        else return col_values_f64;
    }
    template <class T>
    const std::vector<T>& col_values() const {
        if constexpr (std::is_same_v<T, float>) return col_values_f32;
        else return col_values_f64;
    }

    // Room for a [r, c] batch in `dtype`; marks the form stale until finish().
    void reshape(Dtype dtype, std::int64_t r, std::int64_t c) {
        current = false;
        rows = r, cols = c;
        const auto n = std::size_t(r * c);
        row_begin.resize(std::size_t(r));
        row_end.resize(std::size_t(r));
        if (row_index.size() < n) row_index.resize(n), col_index.resize(n);
        col_offset.resize(std::size_t(c + 1));
        dispatch(dtype, [&]<class T>() {
            std::vector<T>& rv = row_values<T>();
            if (rv.size() < n) rv.resize(n), col_values<T>().resize(n);
        });
        for (std::int64_t i = 0; i < r; ++i) row_begin[std::size_t(i)] = row_end[std::size_t(i)] = i * c;
    }

    double density() const { return rows * cols == 0 ? 0.0 : double(nonzeros) / double(rows * cols); }

    // After the rows are filled: counts the nonzeros and, when the density is below
    // `threshold`, builds the column form and marks the form current. Returns current.
    // The column form is a counting sort by column on `workers` (may be null): parts of
    // consecutive rows count their entries per column, a prefix sum gives the columns'
    // starts, and parts of consecutive columns place their entries, visiting the rows in
    // order, so each column's rows increase and the form is the same for any number of parts.
    template <class T>
    bool finish(double threshold, Workers* workers = nullptr) {
        nonzeros = 0;
        for (std::int64_t i = 0; i < rows; ++i) nonzeros += row_end[std::size_t(i)] - row_begin[std::size_t(i)];
        current = density() < threshold;
        if (!current) return false;
        const std::int64_t parts = workers ? workers->threads() : 1;
        part_slot.assign(std::size_t(parts * cols), 0);
        auto part_rows = [&](std::int64_t p) { return std::pair{rows * p / parts, rows * (p + 1) / parts}; };
        auto count = [&](std::int64_t p0, std::int64_t p1) {
            for (std::int64_t p = p0; p < p1; ++p) {
                std::int64_t* n = part_slot.data() + p * cols;
                const auto [r0, r1] = part_rows(p);
                for (std::int64_t i = r0; i < r1; ++i)
                    for (std::int64_t k = row_begin[std::size_t(i)]; k < row_end[std::size_t(i)]; ++k)
                        ++n[row_index[std::size_t(k)]];
            }
        };
        auto prefix = [&] {
            std::int64_t next = 0;
            for (std::int64_t j = 0; j < cols; ++j) {
                col_offset[std::size_t(j)] = next;
                for (std::int64_t p = 0; p < parts; ++p) next += part_slot[std::size_t(p * cols + j)];
            }
            col_offset[std::size_t(cols)] = next;
        };
        std::vector<T>& cv = col_values<T>();
        const std::vector<T>& rv = row_values<T>();
        // Placing goes by columns, not rows: each part then writes into only its share of
        // the columns' runs, which stay in L1 while the rows stream by.
        auto place = [&](std::int64_t p0, std::int64_t p1) {
            const std::int64_t c0 = cols * p0 / parts, c1 = cols * p1 / parts;
            std::int64_t* slot = part_slot.data();
            for (std::int64_t j = c0; j < c1; ++j) slot[j] = col_offset[std::size_t(j)];
            for (std::int64_t i = 0; i < rows; ++i) {
                const std::int32_t* first = row_index.data() + row_begin[std::size_t(i)];
                const std::int32_t* last = row_index.data() + row_end[std::size_t(i)];
                for (const std::int32_t* e = c0 == 0 ? first : std::lower_bound(first, last, std::int32_t(c0));
                     e != last && *e < c1; ++e) {
                    const auto at = std::size_t(slot[*e]++);
                    col_index[at] = std::int32_t(i);
                    cv[at] = rv[std::size_t(e - row_index.data())];
                }
            }
        };
        if (workers) {
            workers->run(parts, count);
            prefix();
            workers->run(parts, place);
        } else {
            count(0, 1);
            prefix();
            place(0, 1);
        }
        return true;
    }

private:
    std::vector<std::int64_t> part_slot;  // [parts, cols]: counts; then [cols]: next free slots
};

}  // namespace chainrule
