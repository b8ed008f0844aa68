// Strict JSON shared by every loader (models, feeds, data specs, checkpoints): malformed
// text reports file:line:column, duplicate keys are errors, numbers that are not finite are
// errors; typed getters whose messages name the JSON path; tensors to and from nested arrays.
// Opening and writing files is core/files.hpp.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "core/tensor.hpp"

namespace chainrule {

using Json = nlohmann::ordered_json;

// Parses `text`; `file` names it in messages ("model.json:3:15: malformed JSON: ...").
// A NUL byte anywhere is an error at its line:column (the parser would stop there silently).
Json parse_json_text(const std::string& text, const std::string& file);

// Reads (read_text_file, core/files.hpp) and parses a file; a missing or unreadable file is
// an InputError naming it.
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

}  // namespace chainrule
