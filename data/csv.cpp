#include "data/csv.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unordered_map>

#include "core/error.hpp"
#include "core/text.hpp"
#include "core/files.hpp"
#include "core/json.hpp"
#include "data/kind.hpp"

namespace chainrule::data {
namespace {

std::string read_text(const std::string& path) {
    return read_file_capped(path, std::uint64_t(kMaxCsvBytes), "64 MiB cap for CSV files");
}

bool blank(std::string_view s) { return s.find_first_not_of(" \t") == std::string_view::npos; }

}  // namespace

std::optional<double> parse_number(std::string_view s) {
    if (!s.empty() && s.front() == '+') {
        s.remove_prefix(1);
        // from_chars takes a '-' of its own: "+-5.1" would read as -5.1.
        if (!s.empty() && s.front() == '-') return std::nullopt;
    }
    if (s.empty()) return std::nullopt;
    double v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    // from_chars accepts "nan" and "inf": a data set must not.
    if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
    return v;
}

CsvTable read_csv(const std::string& path) {
    CsvTable t;
    t.file = path;
    t.text = read_text(path);
    std::string_view all(t.text);
    std::size_t pos = all.starts_with("\xEF\xBB\xBF") ? 3 : 0;
    std::int64_t line = 0;
    std::int64_t first_blank = 0;  // an empty line is fine only if nothing follows it
    while (pos < all.size()) {
        std::size_t eol = all.find('\n', pos);
        std::size_t next = eol == std::string_view::npos ? all.size() : eol + 1;
        std::size_t end = eol == std::string_view::npos ? all.size() : eol;
        if (end > pos && all[end - 1] == '\r') --end;
        ++line;
        std::string_view text = all.substr(pos, end - pos);
        if (blank(text)) {
            if (!first_blank) first_blank = line;
            pos = next;
            continue;
        }
        if (first_blank)
            throw InputError(fmt::format("{}:{}: empty line inside the data; only empty lines at the end are allowed",
                                         path, first_blank));
        std::int64_t count = 0;
        std::size_t field_begin = pos;
        while (true) {
            std::size_t comma = all.find(',', field_begin);
            if (comma >= end) comma = std::string_view::npos;
            std::size_t field_end = comma == std::string_view::npos ? end : comma;
            std::size_t b = field_begin, e = field_end;
            while (b < e && (all[b] == ' ' || all[b] == '\t')) ++b;
            while (e > b && (all[e - 1] == ' ' || all[e - 1] == '\t')) --e;
            t.fields.push_back({std::uint32_t(b), std::uint32_t(e - b)});
            ++count;
            if (comma == std::string_view::npos) break;
            field_begin = comma + 1;
        }
        if (t.lines.empty()) {
            t.columns = count;
        } else if (count != t.columns) {
            throw InputError(fmt::format("{}:{}: {} fields, expected {} comma-separated fields as on line {}", path,
                                         line, count, t.columns, t.lines.front()));
        }
        t.lines.push_back(line);
        pos = next;
    }
    if (t.lines.empty())
        throw InputError(fmt::format("{}:1: the file has no data; expected lines of comma-separated values", path));
    return t;
}

namespace {

// The id of a label the classes met so far do not hold: refused when the spec lists the
// classes, when it is not UTF-8 (class names end up in JSON and pictures) or when there
// would be too many; else the next id, its name appended to `names`.
std::int32_t new_class(const CsvTable& t, const DataSpec& spec, std::int64_t line, std::string_view name,
                       std::vector<std::string>& names) {
    if (!is_valid_utf8(std::string(name)))
        throw InputError(fmt::format("{}:{}: label '{}' in column {} is not valid UTF-8 (shown with � for "
                                     "each bad byte); class names must be UTF-8 text: convert the file, e.g. "
                                     "with `iconv -f latin1 -t utf-8`",
                                     t.file, line, visible_text(std::string(name)), spec.label));
    if (!spec.classes.empty())
        throw InputError(fmt::format("{}:{}: label '{}' in column {} is not one of the classes ({})", t.file, line,
                                     name, spec.label, fmt::join(names, ", ")));
    if (std::int64_t(names.size()) >= kMaxCsvClasses)
        throw InputError(fmt::format("{}:{}: label '{}' in column {} would be class {}; without a classes "
                                     "list a label column may hold at most {} distinct names (is column {} "
                                     "really the label?)",
                                     t.file, line, name, spec.label, names.size() + 1, kMaxCsvClasses, spec.label));
    names.emplace_back(name);
    return std::int32_t(names.size() - 1);
}

// The lecture's split of n rows: per class, in file order, the first round(count · fraction)
// train (without labels, the first round(n · fraction) rows). 1 marks a training row.
std::vector<char> lecture_split(const std::vector<std::int32_t>& labels, std::int64_t n, std::int64_t classes,
                                const DataSpec& spec) {
    std::vector<char> to_train(std::size_t(n), 1);
    if (spec.label >= 0) {
        std::vector<std::int64_t> per_class(std::size_t(classes), 0), seen(std::size_t(classes), 0);
        for (auto l : labels) ++per_class[std::size_t(l)];
        for (std::int64_t i = 0; i < n; ++i) {
            auto c = std::size_t(labels[std::size_t(i)]);
            to_train[std::size_t(i)] = seen[c]++ < std::llround(double(per_class[c]) * spec.train_fraction);
        }
    } else {
        std::int64_t k = std::llround(double(n) * spec.train_fraction);
        for (std::int64_t i = k; i < n; ++i) to_train[std::size_t(i)] = 0;
    }
    return to_train;
}

}  // namespace

Dataset csv_dataset(const CsvTable& t, const DataSpec& spec) {
    auto column_error = [&](std::string_view key, std::size_t i, int col) {
        std::string place = i == std::size_t(-1) ? fmt::format("{}.{}", spec.where, key)
                                                 : fmt::format("{}.{}[{}]", spec.where, key, i);
        return InputError(fmt::format("{}: column {} is out of range: {} has {} columns (0 to {})", place, col,
                                      t.file, t.columns, t.columns - 1));
    };
    for (std::size_t i = 0; i < spec.features.size(); ++i)
        if (spec.features[i] >= t.columns) throw column_error("features", i, spec.features[i]);
    if (spec.label >= t.columns) throw column_error("label", std::size_t(-1), spec.label);

    std::int64_t begin = spec.row_begin, end = spec.row_end < 0 ? t.rows() : spec.row_end;
    if (end > t.rows() || begin >= end)
        throw InputError(fmt::format("{}.rows: [{}, {}) does not fit the {} data rows of {}", spec.where, begin, end,
                                     t.rows(), t.file));

    Dataset ds;
    ds.kind = csv_kind().name;
    ds.class_names = spec.classes;
    // Class name -> id. The keys view the spec's names or the table's text, both of which
    // outlive this function (class_names' own strings may move as it grows).
    std::unordered_map<std::string_view, std::int32_t> class_id;
    for (std::size_t i = 0; i < spec.classes.size(); ++i) class_id.emplace(spec.classes[i], std::int32_t(i));
    const std::int64_t nf = std::int64_t(spec.features.size());
    std::vector<double> values;
    std::vector<std::int32_t> labels;
    values.reserve(std::size_t((end - begin) * nf));
    for (std::int64_t r = begin; r < end; ++r) {
        const std::int64_t line = t.lines[std::size_t(r)];
        for (int c : spec.features) {
            std::string_view f = t.at(r, c);
            auto v = parse_number(f);
            if (!v) {
                std::string what = f.empty() ? "is empty" : fmt::format("'{}' is not a finite number", f);
                throw InputError(fmt::format("{}:{}: column {} {}; expected a number (feature column)", t.file,
                                             line, c, what));
            }
            values.push_back(*v);
        }
        if (spec.label < 0) continue;
        std::string_view name = t.at(r, spec.label);
        if (name.empty())
            throw InputError(fmt::format("{}:{}: column {} is empty; expected a class name (label column)", t.file,
                                         line, spec.label));
        auto it = class_id.find(name);
        if (it == class_id.end()) it = class_id.emplace(name, new_class(t, spec, line, name, ds.class_names)).first;
        labels.push_back(it->second);
    }
    ds.classes = std::int64_t(ds.class_names.size());

    const std::int64_t n = end - begin;
    const std::vector<char> to_train = lecture_split(labels, n, ds.classes, spec);
    for (Split* s : {&ds.train, &ds.test}) {
        s->features = nf;
        s->sample_dims = {nf};
    }
    for (std::int64_t i = 0; i < n; ++i) {
        Split& s = to_train[std::size_t(i)] ? ds.train : ds.test;
        std::int64_t limit = &s == &ds.train ? spec.train_limit : spec.test_limit;
        if (limit >= 0 && s.count >= limit) continue;
        s.values.insert(s.values.end(), values.begin() + i * nf, values.begin() + (i + 1) * nf);
        if (spec.label >= 0) s.labels.push_back(labels[std::size_t(i)]);
        s.source_lines.push_back(t.lines[std::size_t(begin + i)]);
        ++s.count;
    }
    if (ds.train.count == 0)
        throw InputError(fmt::format("{}: the split leaves no training rows ({} rows selected from {})", spec.where,
                                     n, t.file));
    if (ds.test.count == 0 && spec.train_fraction < 1)
        throw InputError(fmt::format("{}: the split leaves no test rows ({} rows selected from {}); use more rows "
                                     "or a smaller per_class_train_fraction",
                                     spec.where, n, t.file));
    return ds;
}

// The csv kind (data/kind.hpp).
namespace {

constexpr std::int64_t kMaxColumn = 1'000'000;  // columns beyond any real table are typos
constexpr const char* kColumnRange = "a 0-based column index from 0 to 1000000";

void parse_rows(const Json& j, const std::string& at, DataSpec& s) {
    const Json& rows = get_array(j, at);
    if (rows.size() != 2) throw InputError(fmt::format("{}: expected [start, end], a half-open range of data rows", at));
    s.row_begin = int_in_range(rows[0], 0, INT64_MAX, json_path(at, 0), "a row index >= 0");
    s.row_end = int_in_range(rows[1], 0, INT64_MAX, json_path(at, 1), "a row index >= 0");
    if (s.row_begin >= s.row_end)
        throw InputError(fmt::format("{}: [{}, {}) is empty; expected start < end (half-open, 0-based)", at,
                                     s.row_begin, s.row_end));
}

void parse_split(const Json& j, const std::string& at, DataSpec& s) {
    get_object(j, at);
    check_keys(j, {"per_class_train_fraction"}, at);
    const std::string fraction_at = json_path(at, "per_class_train_fraction");
    s.train_fraction = get_number(require(j, "per_class_train_fraction", at), fraction_at);
    if (!(s.train_fraction > 0 && s.train_fraction < 1))
        throw InputError(fmt::format("{}: {} is out of range; expected a fraction strictly between 0 and 1",
                                     fraction_at, s.train_fraction));
}

void parse_csv_spec(const Json& j, DataSpec& s) {
    const std::string& where = s.where;
    check_keys(j, {"kind", "path", "features", "label", "classes", "rows", "split", "limit"}, where);
    s.path = resolve_data_path(j, "path", s);

    std::string at = json_path(where, "features");
    const Json& features = get_array(require(j, "features", where), at);
    if (features.empty()) throw InputError(fmt::format("{}: expected at least one feature column", at));
    for (std::size_t i = 0; i < features.size(); ++i) {
        std::string col_at = json_path(at, i);
        int c = int(int_in_range(features[i], 0, kMaxColumn, col_at, kColumnRange));
        if (std::find(s.features.begin(), s.features.end(), c) != s.features.end())
            throw InputError(fmt::format("{}: column {} is listed twice", col_at, c));
        s.features.push_back(c);
    }
    at = json_path(where, "label");
    s.label = int(int_in_range(require(j, "label", where), 0, kMaxColumn, at, kColumnRange));
    if (std::find(s.features.begin(), s.features.end(), s.label) != s.features.end())
        throw InputError(fmt::format("{}: column {} is also a feature column", at, s.label));

    if (j.contains("classes")) s.classes = parse_class_names(j["classes"], json_path(where, "classes"));
    if (j.contains("rows")) parse_rows(j["rows"], json_path(where, "rows"), s);
    if (j.contains("split")) parse_split(j["split"], json_path(where, "split"), s);
    if (j.contains("limit")) parse_limit(j["limit"], json_path(where, "limit"), s);
}

void validate_csv_spec(const DataSpec& s) {
    // Only a path with nothing there is reported here; anything else there (a folder, a
    // FIFO, a link loop) the reader names for what it is.
    std::error_code ec;
    const auto st = std::filesystem::symlink_status(s.path, ec);
    if (ec && ec != std::errc::no_such_file_or_directory) return;
    if (std::filesystem::exists(st)) return;
    throw missing_path_error(s, "path", s.path,
                             fmt::format("{}: cannot open: {}; expected a CSV file", s.path,
                                         std::make_error_code(std::errc::no_such_file_or_directory).message()));
}

Dataset load_csv(const DataSpec& s) { return csv_dataset(read_csv(s.path), s); }

std::optional<std::int64_t> feature_count(const DataSpec& s) { return std::int64_t(s.features.size()); }

constexpr std::array<StreamDef, 3> kCsvStreams = {{
    {kFeatures, StreamForm::numbers, feature_count},
    kLabelsStream,
    kLabelsOneHotStream,
}};

std::string csv_source(const DataSpec& s) { return s.path; }

std::string csv_split_note(const DataSpec& s) {
    return fmt::format("rows [{}, {}), features: columns {}, label: column {}; per class the first {:g}% (rounded) "
                       "train, the rest test",
                       s.row_begin, s.row_end < 0 ? std::string("end") : std::to_string(s.row_end),
                       fmt::join(s.features, ","), s.label, s.train_fraction * 100);
}

std::string csv_row_text(const Dataset& ds, const Split& split, std::int64_t i) {
    auto v = std::span(split.values).subspan(std::size_t(i * split.features), std::size_t(split.features));
    std::string label = ds.classes ? " -> " + ds.class_names[std::size_t(split.labels[std::size_t(i)])] : "";
    return fmt::format("line {}: {}{}", split.source_lines[std::size_t(i)], fmt::join(v, ", "), label);
}

std::string header_names(const CsvTable& t) {
    std::vector<std::string_view> names;
    for (std::int64_t c = 0; c < t.columns; ++c) names.push_back(t.at(0, c));
    return fmt::format("{}", fmt::join(names, ", "));
}

}  // namespace

const DataKind& csv_kind() {
    static const DataKind kind{
        .name = "csv",
        .title = "CSV",
        .parse = parse_csv_spec,
        .validate = validate_csv_spec,
        .load = load_csv,
        .streams = kCsvStreams,
        .images = false,
        .stored_as = "float64",
        .source = csv_source,
        .describe = csv_split_note,
        .sample_text = csv_row_text,
        .stream_for_columns = nullptr,
        .vocabulary = false,
    };
    return kind;
}

DataSpec guess_csv_spec(const std::string& path, std::string& note) {
    CsvTable t = read_csv(path);
    auto numeric = [&](std::int64_t r, std::int64_t c) { return parse_number(t.at(r, c)).has_value(); };
    DataSpec s;
    s.kind = csv_kind().name;
    s.path = path;
    s.where = path;
    s.train_fraction = 1;
    bool header = t.rows() >= 2;
    for (std::int64_t c = 0; c < t.columns && header; ++c) header = !numeric(0, c);
    if (header) {
        header = false;
        for (std::int64_t c = 0; c < t.columns; ++c) header = header || numeric(1, c);
    }
    s.row_begin = header ? 1 : 0;
    const std::int64_t last = t.columns - 1;
    bool label = false;
    for (std::int64_t r = s.row_begin; r < t.rows() && !label; ++r) label = !numeric(r, last);
    if (label && t.columns < 2)
        throw InputError(fmt::format("{}: one non-numeric column; expected numeric feature columns", path));
    s.label = label ? int(last) : -1;
    for (std::int64_t c = 0; c < t.columns; ++c)
        if (c != s.label) s.features.push_back(int(c));
    note = fmt::format("{} columns; features: columns {}; label: {}{}; no split (a model's training.data block "
                       "defines one)",
                       t.columns, fmt::join(s.features, ","), label ? fmt::format("column {}", last) : "none",
                       header ? fmt::format("; line 1 is a header: {}", header_names(t)) : "");
    return s;
}

}  // namespace chainrule::data
