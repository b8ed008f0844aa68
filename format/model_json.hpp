// Model JSON, format version 1 (docs/model-format.md): load, validate, save.
#pragma once

#include <string>
#include <vector>

#include "graph/graph.hpp"
#include "core/json.hpp"

namespace chainrule {

struct Model {
    std::string path;        // the file it came from; "" when built in C++
    std::string dir;         // its folder: relative paths in the model are resolved from here
    Graph graph;
    Json training;           // the "training" block as written (null when absent)
    std::vector<std::string> warnings;  // e.g. unused nodes
};

// Every problem is an InputError "FILE: JSON.PATH: what was expected".
Model load_model(const std::string& path);
Model parse_model(const std::string& text, const std::string& file);

// The model as JSON. With trained = true, parameters are written with
// {"init": {"value": ...}} holding their current values.
Json model_to_json(const Model& m, bool trained = false);
void save_model(const Model& m, const std::string& path, bool trained = false);

// A feed file: {"name": nested array, ...} for inputs and parameters.
void apply_feed(Graph& g, const Json& feed, const std::string& file);
void apply_feed_file(Graph& g, const std::string& path);

}  // namespace chainrule
