// Strict JSON reading shared by every loader (models, feeds, data specs, checkpoints):
// malformed text reports file:line:column, duplicate keys are errors, and numbers that
// are not finite are errors.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/tensor.hpp"

namespace chainrule {

using Json = nlohmann::ordered_json;

// Parses `text`; `file` names it in messages ("model.json:3:15: malformed JSON: ...").
// A NUL byte anywhere is an error at its line:column (the parser would stop there silently).
Json parse_json_text(const std::string& text, const std::string& file);

// Every input file (model, feed, checkpoint, CSV, IDX) is opened here. A folder, a FIFO, a
// device or a socket where a file belongs is refused at once: a FIFO would block open()
// and /dev/zero would be read until memory runs out. Errors are InputErrors naming the
// path: "cannot open: <reason>" (missing, unreadable, a symlink loop, a name too long),
// "is a directory", "is not a regular file (a FIFO)".
struct FileCloser {
    void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;
// `size` gets the file's size when it was opened (a hint: a file may still grow).
FilePtr open_input_file(const std::string& path, std::uint64_t& size);
// The whole file, refused when it has more than `cap` bytes, counted as they are read
// (not only from the size it claims). `cap_name` ends the message: "... more than the
// {cap_name}".
std::string read_file_capped(const std::string& path, std::uint64_t cap, const std::string& cap_name);
// read_file_capped with the 1 GiB cap for text files (models, feeds, checkpoints).
std::string read_text_file(const std::string& path);
// Reads and parses a file; a missing or unreadable file is an InputError naming it.
Json read_json_file(const std::string& path);

// "nodes[3].inputs[1]" style path building.
std::string json_path(const std::string& parent, const std::string& key);
std::string json_path(const std::string& parent, std::size_t index);

// Throws InputError("{where}: unknown key 'foo' (allowed: a, b, c)") for keys not in `allowed`.
void check_keys(const Json& obj, std::initializer_list<const char*> allowed, const std::string& where);
// `j` as compact JSON for an error message, cut to about 60 characters: a user who put a
// 10 MB array where a string belongs needs to see what is there, not all of it.
std::string json_brief(const Json& j);

// Type-checked accessors; `where` is the full place ("model.json: nodes[2].name").
const Json& require(const Json& obj, const char* key, const std::string& where);
std::string get_string(const Json& j, const std::string& where);
double get_number(const Json& j, const std::string& where);  // finite
std::int64_t get_int(const Json& j, const std::string& where);
const Json& get_object(const Json& j, const std::string& where);
const Json& get_array(const Json& j, const std::string& where);

// A float64 as JSON, which has no NaN or infinity: a number printed with round-trip
// precision, or the string "nan", "inf" or "-inf" (as the metrics history writes them).
// nlohmann would write null, which reads back as nothing.
Json number_json(double v);
// What number_json wrote: a number, or one of its three strings; anything else is an
// InputError naming `where`.
double number_from_json(const Json& j, const std::string& where);

// A nested array of numbers -> float64 tensor (a bare number -> a scalar). Ragged arrays
// and non-numbers are errors naming the exact element; "nan", "inf" and "-inf" read back
// what tensor_to_json wrote.
Tensor tensor_from_json(const Json& j, const std::string& where);
// Nested arrays, every number printed with round-trip precision (number_json).
Json tensor_to_json(const Tensor& t);

// Writes `text` to `path` atomically: temp file in the same folder, fsync, rename.
// A crash leaves either the old file or the new one, never half of one.
void write_file_atomic(const std::string& path, const std::string& text);
// Whether `filename` (no folder) is one of write_file_atomic's temp files, which a write cut
// short by a kill leaves behind: the target's name followed by ".tmp-" and mkstemp's six characters.
bool is_atomic_temp_file(const std::string& filename);

}  // namespace chainrule
