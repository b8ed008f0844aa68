#include "data/csv.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unordered_map>

#include "core/error.hpp"
#include "core/json_io.hpp"

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
    ds.kind = "csv";
    ds.class_names = spec.classes;
    const bool fixed_classes = !spec.classes.empty();
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
        if (it == class_id.end()) {
            if (fixed_classes)
                throw InputError(fmt::format("{}:{}: label '{}' in column {} is not one of the classes ({})", t.file,
                                             line, name, spec.label, fmt::join(ds.class_names, ", ")));
            if (std::int64_t(ds.class_names.size()) >= kMaxCsvClasses)
                throw InputError(fmt::format("{}:{}: label '{}' in column {} would be class {}; without a classes "
                                             "list a label column may hold at most {} distinct names (is column {} "
                                             "really the label?)",
                                             t.file, line, name, spec.label, ds.class_names.size() + 1,
                                             kMaxCsvClasses, spec.label));
            it = class_id.emplace(name, std::int32_t(ds.class_names.size())).first;
            ds.class_names.emplace_back(name);
        }
        labels.push_back(it->second);
    }
    ds.classes = std::int64_t(ds.class_names.size());

    // The lecture's split: per class, in file order, the first round(n * fraction) train.
    const std::int64_t n = end - begin;
    std::vector<char> to_train(std::size_t(n), 1);
    if (spec.label >= 0) {
        std::vector<std::int64_t> per_class(std::size_t(ds.classes), 0), seen(std::size_t(ds.classes), 0);
        for (auto l : labels) ++per_class[std::size_t(l)];
        for (std::int64_t i = 0; i < n; ++i) {
            auto c = std::size_t(labels[std::size_t(i)]);
            to_train[std::size_t(i)] = seen[c]++ < std::llround(double(per_class[c]) * spec.train_fraction);
        }
    } else {
        std::int64_t k = std::llround(double(n) * spec.train_fraction);
        for (std::int64_t i = k; i < n; ++i) to_train[std::size_t(i)] = 0;
    }
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

}  // namespace chainrule::data
