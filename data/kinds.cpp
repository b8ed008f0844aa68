// The table of data kinds (data/kind.hpp) and the helpers their parsers share.
#include "data/kind.hpp"

#include <algorithm>
#include <array>
#include <filesystem>
#include <fmt/format.h>

#include "core/error.hpp"
#include "data/csv.hpp"
#include "data/idx.hpp"

namespace chainrule::data {

// Each kind's file defines the function that returns its entry (csv and idx declare theirs
// in their headers; a kind without a header declares it here) and adds its line below.
const DataKind& text_kind();  // data/text.cpp

std::span<const DataKind* const> data_kinds() {
    static const std::array<const DataKind*, 3> kinds = {
        &csv_kind(),
        &idx_kind(),
        &text_kind(),
    };
    return kinds;
}

const DataKind* find_data_kind(std::string_view name) {
    for (const DataKind* k : data_kinds())
        if (name == k->name) return k;
    return nullptr;
}

std::string data_kind_list() {
    std::string out;
    const auto kinds = data_kinds();
    for (std::size_t i = 0; i < kinds.size(); ++i)
        out += fmt::format("{}\"{}\"", i == 0 ? "" : i + 1 == kinds.size() ? " or " : ", ", kinds[i]->name);
    return out;
}

const DataKind& data_kind(std::string_view name, const std::string& where) {
    if (const DataKind* k = find_data_kind(name)) return *k;
    throw InputError(fmt::format("{}: unknown data kind '{}'; expected {}", where, name, data_kind_list()));
}

namespace {

// Class lists far beyond any real one are typos, not data.
constexpr std::size_t kMaxClasses = 256;  // idx labels are bytes

}  // namespace

std::string resolve_data_path(const Json& j, const std::string& key, DataSpec& s) {
    const std::string where = json_path(s.where, key);
    s.written = get_string(require(j, key.c_str(), s.where), where);
    s.written_key = key;
    if (s.written.empty()) throw InputError(fmt::format("{}: empty path", where));
    std::filesystem::path path(s.written);
    if (path.is_relative() && !s.base_dir.empty()) path = std::filesystem::path(s.base_dir) / path;
    return path.lexically_normal().string();
}

std::int64_t int_in_range(const Json& j, std::int64_t lo, std::int64_t hi, const std::string& where,
                          const char* expected) {
    std::int64_t v = get_int(j, where);
    if (v < lo || v > hi) throw InputError(fmt::format("{}: {} is out of range; expected {}", where, v, expected));
    return v;
}

std::vector<std::string> parse_class_names(const Json& j, const std::string& where) {
    const Json& arr = get_array(j, where);
    if (arr.empty() || arr.size() > kMaxClasses)
        throw InputError(fmt::format("{}: expected 1 to {} class names, got {}", where, kMaxClasses, arr.size()));
    std::vector<std::string> names;
    for (std::size_t i = 0; i < arr.size(); ++i) {
        std::string at = json_path(where, i);
        std::string name = get_string(arr[i], at);
        if (name.empty()) throw InputError(fmt::format("{}: empty class name", at));
        auto dup = std::find(names.begin(), names.end(), name);
        if (dup != names.end())
            throw InputError(fmt::format("{}: duplicate class name '{}' (also at index {})", at, name,
                                         dup - names.begin()));
        names.push_back(std::move(name));
    }
    return names;
}

void parse_limit(const Json& j, const std::string& where, DataSpec& s) {
    get_object(j, where);
    check_keys(j, {"train", "test"}, where);
    if (j.contains("train"))
        s.train_limit = int_in_range(j["train"], 1, INT64_MAX, json_path(where, "train"), "a count >= 1");
    if (j.contains("test"))
        s.test_limit = int_in_range(j["test"], 1, INT64_MAX, json_path(where, "test"), "a count >= 1");
}

InputError missing_path_error(const DataSpec& s, const std::string& key, const std::string& resolved,
                              const std::string& what) {
    std::string msg = fmt::format("{}: {}", json_path(s.where, key), what);
    if (s.written.empty()) return InputError(msg);  // a path from the command line, not from a model
    // The rule behind the most common cause: a path written as if from the working directory.
    const std::string folder = s.base_dir.empty() || s.base_dir == "." ? "the working directory ('.')"
                                                                       : "'" + s.base_dir + "'";
    if (std::filesystem::path(s.written).is_relative())
        msg += fmt::format("; a relative path in a model is taken from the model file's folder, here {}, so \"{}\" "
                           "names {}",
                           folder, s.written, resolved);
    else
        msg += fmt::format("; \"{}\" is absolute (a relative path would be taken from the model file's folder, "
                           "here {})",
                           s.written, folder);
    return InputError(msg);
}

}  // namespace chainrule::data
