// Data kinds as a table, like the op registry: one entry per value of `training.data.kind`
// ("csv", "idx"), each defined in its kind's own file and listed once in data/kinds.cpp.
// Everything a caller needs to know about a kind is a field here, so no file outside data/
// compares a kind's name (the `data_kind_names` test enforces it). docs/data.md, "A new
// data kind", says how one is added.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/json.hpp"
#include "data/dataset.hpp"

namespace chainrule::data {

// What one value of `training.data.kind` means.
struct DataKind {
    const char* name;   // the value of training.data.kind
    const char* title;  // for prose: "CSV data has none"
    // Reads the block (an object) into `s`, whose kind, where and base_dir are set: first
    // check_keys with the keys the kind allows ("kind" among them), then each key with its
    // checks; every error an InputError at its JSON path ("{where}.KEY: ..."). Reads no file.
    void (*parse)(const Json& block, DataSpec& s);
    // Checks, before anything is read, that what the spec names is there (the file, the
    // folder); a missing one names the model file, the JSON path and the folder relative
    // paths were taken from (missing_path_error).
    void (*validate)(const DataSpec& s);
    // Reads and checks the files into train and test splits; InputError on bad data.
    Dataset (*load)(const DataSpec& s);
    // The streams a `training.feed` can name, the sample stream first.
    std::span<const StreamDef> streams;
    // Samples are uint8 images of sample_dims [rows, cols] in Split::pixels: `chainrule
    // data` draws them as character art and --png writes them.
    bool images;
    const char* stored_as;                        // how samples are kept: "float64"
    std::string (*source)(const DataSpec& s);     // the file or folder the data comes from
    std::string (*describe)(const DataSpec& s);   // how the spec selects and splits; "" if nothing to say
    // A sample as one line of text, for `chainrule data` (kinds without images).
    std::string (*sample_text)(const Dataset& ds, const Split& split, std::int64_t row);
    // For "did you forget ...?" hints: the stream an input of `columns` values per sample
    // likely wants when no stream's width is known from the spec; null: the sample stream.
    const char* (*stream_for_columns)(std::int64_t columns);
    // The class names are a vocabulary built from the data, id 0 the start/end token: a run
    // keeps them in its checkpoint (info.vocabulary) and evaluation and sampling read the
    // data with them (DataSpec::vocabulary), so the ids mean what they meant in training.
    bool vocabulary;
};

// Every kind, in the order messages list them.
std::span<const DataKind* const> data_kinds();
// The kind of that name, or null.
const DataKind* find_data_kind(std::string_view name);
// The kind of that name; InputError "{where}: unknown data kind ..." for another name.
const DataKind& data_kind(std::string_view name, const std::string& where);
// "\"csv\" or \"idx\"", for messages.
std::string data_kind_list();

// The streams a kind with a class per sample offers after its sample stream. Their widths
// come from the Dataset (labels_per_sample, classes); from the spec: 1, and the length of
// its `classes` list when it has one.
inline std::optional<std::int64_t> one_label_per_sample(const DataSpec&) { return 1; }
inline std::optional<std::int64_t> listed_class_count(const DataSpec& s) {
    if (s.classes.empty()) return std::nullopt;
    return std::int64_t(s.classes.size());
}
inline constexpr StreamDef kLabelsStream{kLabels, StreamForm::class_ids, one_label_per_sample};
inline constexpr StreamDef kLabelsOneHotStream{kLabelsOneHot, StreamForm::one_hot, listed_class_count};

// Helpers for the parsers of the kinds.
// A path of the block, resolved against s.base_dir; records the text as written
// (s.written) for the message of validate.
std::string resolve_data_path(const Json& j, const std::string& key, DataSpec& s);
std::int64_t int_in_range(const Json& j, std::int64_t lo, std::int64_t hi, const std::string& where,
                          const char* expected);
// A `classes` list: 1 to 256 distinct, non-empty names.
std::vector<std::string> parse_class_names(const Json& j, const std::string& where);
// A vocabulary as a run keeps it (JSON: a list of 2 to kMaxVocabulary distinct strings of one
// UTF-8 character each); an InputError at `where` otherwise.
inline constexpr std::size_t kMaxVocabulary = 1024;
std::vector<std::string> vocabulary_from_json(const Json& j, const std::string& where);
// `limit`: {"train": N, "test": M}, each at least 1.
void parse_limit(const Json& j, const std::string& where, DataSpec& s);
// The error for a path of the spec that is not there (`key`: "path" or "dir", `resolved`:
// the path it became): "{where}.KEY: {what}", then, for a spec from a model, the rule that
// relative paths start at the model file's folder, which folder that was and what the
// written path became there.
InputError missing_path_error(const DataSpec& s, const std::string& key, const std::string& resolved,
                              const std::string& what);

}  // namespace chainrule::data
