// CSV reading (docs/data.md): comma-separated, no quoting, one sample per line. The table
// keeps the text and the place of each field, so every error can name file:line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "data/dataset.hpp"

namespace chainrule::data {

// Larger files are refused before they are read: CSV is for small tables like Iris.
inline constexpr std::int64_t kMaxCsvBytes = std::int64_t{64} << 20;
// Distinct labels of a CSV without a `classes` list, the same cap as for such a list: more
// is a column of names or ids, not of classes (and a one-hot row per sample that wide).
inline constexpr std::int64_t kMaxCsvClasses = 256;

struct CsvTable {
    std::string file;
    std::int64_t columns = 0;
    std::string text;
    struct Field {
        std::uint32_t begin = 0, size = 0;
    };
    std::vector<Field> fields;         // rows * columns, trimmed of spaces and tabs
    std::vector<std::int64_t> lines;   // 1-based line of each row

    std::int64_t rows() const { return std::int64_t(lines.size()); }
    std::string_view at(std::int64_t row, std::int64_t col) const {
        const Field& f = fields[std::size_t(row * columns + col)];
        return std::string_view(text).substr(f.begin, f.size);
    }
};

// Every line must have as many fields as the first; CRLF, a UTF-8 byte order mark and
// empty lines at the end are accepted. Missing, empty or oversized files are InputErrors.
CsvTable read_csv(const std::string& path);

// The whole field as a finite number ("+1.5", "2e3"); nullopt for anything else
// ("+-5.1": one sign only).
std::optional<double> parse_number(std::string_view field);

// A spec for a CSV file given without a model (`chainrule data FILE`): numeric columns are
// features; a last column that is not numeric is the label; a first line with no numbers
// over numeric data is a header; no split. `note` says what was guessed.
DataSpec guess_csv_spec(const std::string& path, std::string& note);

// Builds the train and test splits of `spec` (kind csv) from a table: rows
// [row_begin, row_end), then per class, in file order, the first round(n * fraction) rows
// train and the rest test. Values and labels are checked on the selected rows only.
Dataset csv_dataset(const CsvTable& table, const DataSpec& spec);

struct DataKind;
// The csv kind's entry of the kind table (data/kind.hpp).
const DataKind& csv_kind();

}  // namespace chainrule::data
