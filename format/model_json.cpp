#include "format/model_json.hpp"

#include <filesystem>
#include <fmt/format.h>
#include <functional>
#include <map>
#include <set>

#include "core/error.hpp"
#include "core/files.hpp"
#include "graph/backward_graph.hpp"
#include "graph/labels.hpp"

namespace chainrule {
namespace {

// {"name": "gx", "op": "grad", "inputs": ["L", "x"]}: dL/dx as nodes (graph/backward_graph),
// its last one copied under the node's name, so anything can be built on it.
int grad_node(Graph& g, const std::string& name, const std::vector<std::string>& inputs, const std::string& at) {
    if (inputs.size() != 2)
        throw InputError(fmt::format("{}: a grad node takes two inputs, [\"L\", \"x\"] for dL/dx (L a scalar node), got {}",
                                     at, inputs.size()));
    std::vector<int> grads;
    try {
        grads = append_backward(g, g.id(inputs[0]), {g.id(inputs[1])}, inputs[0]);
    } catch (const InputError& e) {
        throw InputError(fmt::format("{}: grad of {} with respect to {}: {}", at, inputs[0], inputs[1], e.what()));
    }
    const int id = g.op(name, "scale", {g.node(grads[0]).name}, {{"factor", 1.0}}, at);
    g.node(id).gradient = true;
    return id;
}

}  // namespace
namespace {

// "FILE: JSON.PATH" — the prefix of every message about a place in a model.
struct At {
    const std::string& file;
    std::string path;
    At operator[](const std::string& key) const { return {file, json_path(path, key)}; }
    At operator[](std::size_t i) const { return {file, json_path(path, i)}; }
    std::string str() const { return path.empty() ? file : file + ": " + path; }
};

// Longer symbols are refused (docs/limits.md): a name, not a payload.
constexpr std::size_t kMaxSymbolLength = 64;

// A name like "N" or "batch_size". A loop, not std::regex: regex_match recurses once per
// character and overflows the stack on a 30,000-character symbol.
bool is_symbol(const std::string& s) {
    auto letter = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; };
    if (s.empty() || s.size() > kMaxSymbolLength || !letter(s[0])) return false;
    for (char c : s)
        if (!letter(c) && !(c >= '0' && c <= '9')) return false;
    return true;
}

Shape parse_shape(const Json& j, const At& at) {
    get_array(j, at.str());
    Shape s;
    for (std::size_t i = 0; i < j.size(); ++i) {
        const Json& d = j[i];
        if (d.is_string()) {
            std::string sym = d.get<std::string>();
            if (!is_symbol(sym))
                throw InputError(fmt::format("{}: symbolic dim {} must be a name like \"N\" (letters, digits and _, "
                                             "at most {} characters)",
                                             at[i].str(), json_brief(d), kMaxSymbolLength));
            s.push_back(Dim{1, sym});
        } else if (d.is_number_integer()) {
            std::int64_t v = get_int(d, at[i].str());
            if (v <= 0)
                throw InputError(fmt::format("{}: dim {} must be at least 1 (or a symbol such as \"N\")",
                                             at[i].str(), v));
            s.push_back(Dim{v, {}});
        } else {
            throw InputError(fmt::format("{}: expected a positive integer or a symbol such as \"N\", got {}",
                                         at[i].str(), json_brief(d)));
        }
    }
    return s;
}

Init parse_init(const Json& j, const At& at) {
    get_object(j, at.str());
    if (j.size() != 1)
        throw InputError(fmt::format("{}: expected exactly one of constant, normal, uniform, xavier_uniform, "
                                     "he_normal, value; got {} keys",
                                     at.str(), j.size()));
    const std::string kind = j.begin().key();
    const Json& v = j.begin().value();
    At vat = at[kind];
    if (kind == "constant") return Init::constant(get_number(v, vat.str()));
    if (kind == "normal") {
        get_object(v, vat.str());
        check_keys(v, {"mean", "std"}, vat.str());
        double mean = v.contains("mean") ? get_number(v["mean"], vat["mean"].str()) : 0.0;
        double std = get_number(require(v, "std", vat.str()), vat["std"].str());
        if (std < 0) throw InputError(fmt::format("{}: std must be >= 0, got {}", vat["std"].str(), std));
        return Init::normal(mean, std);
    }
    if (kind == "uniform") {
        get_object(v, vat.str());
        check_keys(v, {"low", "high"}, vat.str());
        double low = get_number(require(v, "low", vat.str()), vat["low"].str());
        double high = get_number(require(v, "high", vat.str()), vat["high"].str());
        if (!(low <= high)) throw InputError(fmt::format("{}: low {} must be <= high {}", vat.str(), low, high));
        return Init::uniform(low, high);
    }
    if (kind == "xavier_uniform" || kind == "he_normal") {
        get_object(v, vat.str());
        check_keys(v, {}, vat.str());
        return kind == "he_normal" ? Init::he_normal() : Init::xavier_uniform();
    }
    if (kind == "value") return Init::values(tensor_from_json(v, vat.str()));
    throw InputError(fmt::format("{}: unknown init '{}' (expected constant, normal, uniform, xavier_uniform, "
                                 "he_normal or value)",
                                 at.str(), kind));
}

Json init_to_json(const Init& in) {
    switch (in.kind) {
        case Init::Kind::constant: return {{"constant", in.a}};
        case Init::Kind::normal: return {{"normal", {{"mean", in.a}, {"std", in.b}}}};
        case Init::Kind::uniform: return {{"uniform", {{"low", in.a}, {"high", in.b}}}};
        case Init::Kind::xavier_uniform: return {{"xavier_uniform", Json::object()}};
        case Init::Kind::he_normal: return {{"he_normal", Json::object()}};
        case Init::Kind::value: return {{"value", tensor_to_json(in.value)}};
    }
    return nullptr;
}

Json shape_to_json(const Shape& s) {
    Json out = Json::array();
    for (const auto& d : s) {
        if (d.symbolic())
            out.push_back(d.symbol);
        else
            out.push_back(d.size);
    }
    return out;
}

// A reference to a name defined later: explain whether it is a cycle or just the order.
[[noreturn]] void bad_reference(const Json& nodes, std::size_t from, const std::string& target, const At& at) {
    std::map<std::string, std::size_t> index;
    for (std::size_t i = 0; i < nodes.size(); ++i)
        if (nodes[i].is_object() && nodes[i].contains("name") && nodes[i]["name"].is_string())
            index.emplace(nodes[i]["name"].get<std::string>(), i);
    auto it = index.find(target);
    if (it == index.end())
        throw InputError(fmt::format("{}: '{}' names no input, parameter, constant or node", at.str(), target));
    std::string self = nodes[from]["name"].get<std::string>();
    // Depth-first search from target back to self through inputs, with an explicit stack:
    // a recursive walk overflows the stack on a cycle through tens of thousands of nodes.
    auto inputs_of = [&](const std::string& n) -> const Json* {
        auto k = index.find(n);
        if (k == index.end() || !nodes[k->second].contains("inputs") || !nodes[k->second]["inputs"].is_array())
            return nullptr;
        return &nodes[k->second]["inputs"];
    };
    std::set<std::string> seen{target};
    std::vector<std::pair<std::string, std::size_t>> stack{{target, 0}};  // node, next input to try
    bool found = target == self;
    while (!found && !stack.empty()) {
        auto& [n, next] = stack.back();
        const Json* ins = inputs_of(n);
        if (!ins || next >= ins->size()) {
            stack.pop_back();
            continue;
        }
        const Json& in = (*ins)[next++];
        if (!in.is_string()) continue;
        std::string child = in.get<std::string>();
        if (child == self) {
            stack.emplace_back(child, 0);
            found = true;
        } else if (seen.insert(child).second) {
            stack.emplace_back(child, 0);
        }
    }
    if (found) {
        // A long cycle is shown by its first and last ten steps.
        std::string cycle = self;
        for (std::size_t k = 0; k < stack.size(); ++k) {
            if (stack.size() > 20 && k == 10) cycle += fmt::format(" -> ... ({} more) ...", stack.size() - 20);
            if (stack.size() > 20 && k >= 10 && k < stack.size() - 10) continue;
            cycle += " -> " + stack[k].first;
        }
        throw InputError(fmt::format("{}: the nodes form a cycle: {}", at.str(), cycle));
    }
    throw InputError(fmt::format("{}: '{}' is defined later (nodes[{}]); a node's inputs must be defined before "
                                 "it — move nodes[{}] up",
                                 at.str(), target, it->second, it->second));
}

// Default values must agree on every symbol, as a feed must: check says so, not forward().
void check_default_symbols(const Graph& g, const At& root) {
    std::map<std::string, std::pair<std::int64_t, std::string>> symbols;  // symbol -> size, where
    for (const Node& n : g.nodes()) {
        if (n.kind != NodeKind::input || n.default_value.empty()) continue;
        const Dims& d = n.default_value.dims();
        std::string where = root["inputs"][n.name]["value"].path;
        for (std::size_t i = 0; i < n.shape.size() && i < d.size(); ++i) {
            if (!n.shape[i].symbolic()) continue;
            auto [it, fresh] = symbols.try_emplace(n.shape[i].symbol, d[i], where);
            if (!fresh && it->second.first != d[i])
                throw InputError(fmt::format("{}: symbol {} is {} here but {} in {}", root["inputs"][n.name]["value"].str(),
                                             n.shape[i].symbol, d[i], it->second.first, it->second.second));
        }
    }
}

// The format, its version and the dtype (float64 unless the file says float32).
Dtype read_header(const Json& j, const At& root, const std::string& file) {
    std::string format = get_string(require(j, "format", file), root["format"].str());
    if (format != "chainrule-model")
        throw InputError(fmt::format("{}: expected \"chainrule-model\", got \"{}\"", root["format"].str(), format));
    const Json& version = require(j, "version", file);
    if (!version.is_number_integer() || version.get<std::int64_t>() != 1)
        throw InputError(fmt::format("{}: this chainrule reads format version 1, got {}", root["version"].str(),
                                     json_brief(version)));

    Dtype dtype = Dtype::f64;
    if (j.contains("dtype")) {
        std::string d = get_string(j["dtype"], root["dtype"].str());
        if (d == "float32")
            dtype = Dtype::f32;
        else if (d != "float64")
            throw InputError(fmt::format("{}: expected \"float32\" or \"float64\", got \"{}\"", root["dtype"].str(), d));
    }
    return dtype;
}

// What a model may hold but probably should not: unused nodes, probabilities given to an op
// that takes logits.
void add_warnings(Model& m) {
    const Graph& g = m.graph;
    for (int id : g.unused()) {
        const Node& n = g.node(id);
        m.warnings.push_back(fmt::format("{}: {} '{}' is not used by any node or output", n.place,
                                         kind_name(n.kind), n.name));
    }
    // An op that takes logits applies log-softmax itself: probabilities in are a softmax taken twice.
    for (const Node& n : g.nodes()) {
        if (n.kind != NodeKind::op || !n.op->takes_logits) continue;
        const Node& in = g.node(n.inputs[0]);
        if (in.kind == NodeKind::op && in.op->gives_probabilities)
            m.warnings.push_back(fmt::format("{}: {} takes logits and applies log-softmax itself, but "
                                             "'{}' is a {} output (probabilities); feed it '{}''s input instead",
                                             n.place, n.op->name, in.name, in.op->name, in.name));
    }
}

}  // namespace

Model parse_model(const std::string& text, const std::string& file) {
    Json j = parse_json_text(text, file);
    At root{file, ""};
    if (!j.is_object()) throw InputError(fmt::format("{}: a model must be a JSON object", file));
    check_keys(j,
               {"format", "version", "name", "doc", "dtype", "inputs", "parameters", "constants", "nodes", "outputs",
                "training"},
               file);
    const Dtype dtype = read_header(j, root, file);
    Model m{.graph = Graph(dtype)};
    m.path = file;
    m.dir = std::filesystem::path(file).parent_path().string();
    Graph& g = m.graph;
    if (j.contains("name")) g.name = get_string(j["name"], root["name"].str());
    if (j.contains("doc")) g.doc = get_string(j["doc"], root["doc"].str());

    auto set_doc = [&](int id, const Json& spec, const At& at) {
        if (spec.contains("doc")) g.node(id).doc = get_string(spec["doc"], at["doc"].str());
    };
    try {
        if (j.contains("inputs")) {
            for (auto& [name, spec] : get_object(j["inputs"], root["inputs"].str()).items()) {
                At at = root["inputs"][name];
                get_object(spec, at.str());
                check_keys(spec, {"shape", "value", "doc"}, at.str());
                Shape shape = parse_shape(require(spec, "shape", at.str()), at["shape"]);
                Tensor value = spec.contains("value") ? tensor_from_json(spec["value"], at["value"].str()) : Tensor();
                set_doc(g.input(name, shape, std::move(value), at.str()), spec, at);
            }
            check_default_symbols(g, root);
        }
        if (j.contains("parameters")) {
            for (auto& [name, spec] : get_object(j["parameters"], root["parameters"].str()).items()) {
                At at = root["parameters"][name];
                get_object(spec, at.str());
                check_keys(spec, {"shape", "init", "doc"}, at.str());
                Shape shape = parse_shape(require(spec, "shape", at.str()), at["shape"]);
                Init init = parse_init(require(spec, "init", at.str()), at["init"]);
                set_doc(g.parameter(name, shape, std::move(init), at.str()), spec, at);
            }
        }
        if (j.contains("constants")) {
            for (auto& [name, spec] : get_object(j["constants"], root["constants"].str()).items()) {
                At at = root["constants"][name];
                get_object(spec, at.str());
                check_keys(spec, {"value", "doc"}, at.str());
                set_doc(g.constant(name, tensor_from_json(require(spec, "value", at.str()), at["value"].str()), at.str()),
                        spec, at);
            }
        }
        const Json& nodes = get_array(require(j, "nodes", file), root["nodes"].str());
        for (std::size_t i = 0; i < nodes.size(); ++i) {
            At at = root["nodes"][i];
            const Json& spec = get_object(nodes[i], at.str());
            check_keys(spec, {"name", "op", "inputs", "attrs", "doc"}, at.str());
            std::string name = get_string(require(spec, "name", at.str()), at["name"].str());
            std::string op = get_string(require(spec, "op", at.str()), at["op"].str());
            const Json& ins = get_array(require(spec, "inputs", at.str()), at["inputs"].str());
            std::vector<std::string> inputs, places;
            for (std::size_t k = 0; k < ins.size(); ++k) {
                std::string in = get_string(ins[k], at["inputs"][k].str());
                if (g.find(in) < 0) bad_reference(nodes, i, in, at["inputs"][k]);
                inputs.push_back(in);
                places.push_back(at["inputs"][k].str());
            }
            Attrs attrs = spec.contains("attrs") ? get_object(spec["attrs"], at["attrs"].str()) : Attrs::object();
            if (op == "grad") {
                set_doc(grad_node(g, name, inputs, at.str()), spec, at);
                continue;
            }
            set_doc(g.op(name, op, inputs, attrs, at.str(), places), spec, at);
        }
        // Once every op is there: a default value an op reads as class indices must hold them.
        for (const Node& n : g.nodes())
            if (n.kind == NodeKind::input && !n.default_value.empty())
                check_class_indices(g, g.id(n.name), n.default_value, root["inputs"][n.name]["value"].str());
        const Json& outputs = get_object(require(j, "outputs", file), root["outputs"].str());
        check_keys(outputs, {"prediction", "loss", "gradients"}, root["outputs"].str());
        for (auto& [role, name] : outputs.items()) {
            if (role == "gradients") continue;
            g.set_output(role, get_string(name, root["outputs"][role].str()), root["outputs"][role].str());
        }
        if (outputs.contains("gradients")) {
            const auto at = root["outputs"]["gradients"];
            for (auto& [of, name] : get_object(outputs["gradients"], at.str()).items())
                g.set_gradient_output(of, get_string(name, at[of].str()), at[of].str());
        }
    } catch (const InputError& e) {
        std::string what = e.what();
        // Graph messages name the JSON place but not the file.
        if (what.rfind(file, 0) != 0) throw InputError(file + ": " + what);
        throw;
    }
    if (j.contains("training")) m.training = get_object(j["training"], root["training"].str());
    add_warnings(m);
    return m;
}

Model load_model(const std::string& path) {
    return parse_model(read_text_file(path), path);
}

Json model_to_json(const Model& m, bool trained) {
    const Graph& g = m.graph;
    Json j;
    j["format"] = "chainrule-model";
    j["version"] = 1;
    if (!g.name.empty()) j["name"] = g.name;
    if (!g.doc.empty()) j["doc"] = g.doc;
    j["dtype"] = dtype_name(g.dtype());
    Json inputs = Json::object(), params = Json::object(), consts = Json::object(), nodes = Json::array();
    for (const Node& n : g.nodes()) {
        Json spec = Json::object();
        switch (n.kind) {
            case NodeKind::input:
                spec["shape"] = shape_to_json(n.shape);
                if (!n.default_value.empty()) spec["value"] = tensor_to_json(n.default_value);
                break;
            case NodeKind::parameter:
                spec["shape"] = shape_to_json(n.shape);
                spec["init"] = trained && !n.value.empty() ? Json{{"value", tensor_to_json(n.value)}} : init_to_json(n.init);
                break;
            case NodeKind::constant: spec["value"] = tensor_to_json(n.default_value); break;
            case NodeKind::op: {
                spec["name"] = n.name;
                spec["op"] = n.op->name;
                Json ins = Json::array();
                for (int i : n.inputs) ins.push_back(g.node(i).name);
                spec["inputs"] = ins;
                Json attrs = Json::object();
                for (auto& [k, v] : n.attrs.items())
                    if (v != n.op->attrs[k]) attrs[k] = v;
                if (!attrs.empty()) spec["attrs"] = attrs;
                break;
            }
        }
        if (!n.doc.empty()) spec["doc"] = n.doc;
        switch (n.kind) {
            case NodeKind::input: inputs[n.name] = spec; break;
            case NodeKind::parameter: params[n.name] = spec; break;
            case NodeKind::constant: consts[n.name] = spec; break;
            case NodeKind::op: nodes.push_back(spec); break;
        }
    }
    if (!inputs.empty()) j["inputs"] = inputs;
    if (!params.empty()) j["parameters"] = params;
    if (!consts.empty()) j["constants"] = consts;
    j["nodes"] = nodes;
    Json outputs = Json::object();
    for (const auto& [role, id] : g.outputs()) outputs[role] = g.node(id).name;
    if (!g.gradient_outputs().empty()) {
        Json grads = Json::object();
        for (const auto& [of, id] : g.gradient_outputs()) grads[g.node(of).name] = g.node(id).name;
        outputs["gradients"] = grads;
    }
    j["outputs"] = outputs;
    if (!m.training.is_null()) j["training"] = m.training;
    return j;
}

void save_model(const Model& m, const std::string& path, bool trained) {
    write_file_atomic(path, model_to_json(m, trained).dump(2) + "\n");
}

void apply_feed(Graph& g, const Json& feed, const std::string& file) {
    if (!feed.is_object())
        throw InputError(fmt::format("{}: a feed must be a JSON object mapping input and parameter names to arrays",
                                     file));
    for (auto& [name, value] : feed.items()) {
        std::string at = fmt::format("{}: {}", file, name);
        int id = g.find(name);
        if (id < 0) {
            std::vector<std::string> names;
            for (const Node& n : g.nodes())
                if (n.kind == NodeKind::input || n.kind == NodeKind::parameter) names.push_back(n.name);
            throw InputError(fmt::format("{}: '{}' names no input or parameter of the model (these can be fed: {})",
                                         at, name, fmt::join(names, ", ")));
        }
        const Node& n = g.node(id);
        if (n.kind == NodeKind::op || n.kind == NodeKind::constant)
            throw InputError(fmt::format("{}: '{}' is {} node; a feed may only set inputs and parameters", at, name,
                                         n.kind == NodeKind::op ? "an op" : "a constant"));
        Tensor t = tensor_from_json(value, at);
        try {
            g.set_value(name, t);
        } catch (const InputError& e) {
            throw InputError(fmt::format("{}: {}", file, e.what()));
        }
        check_class_indices(g, id, t, at);
    }
    // A feed fixes the point completely: an input it leaves out must have a default, and
    // the symbols must agree, both said here with the feed's name (forward() would say it
    // later, without the file).
    std::map<std::string, std::pair<std::int64_t, std::string>> symbols;  // symbol -> size, where
    for (const Node& n : g.nodes()) {
        if (n.kind != NodeKind::input) continue;
        bool fed = feed.contains(n.name);
        if (!fed && n.default_value.empty())
            throw InputError(fmt::format("{}: input '{}' {} is not in {}; give it, or declare a default \"value\" "
                                         "for it in the model",
                                         file, n.name, format_shape(n.shape), file));
        std::string source = fed ? fmt::format("input '{}' of {}", n.name, file)
                                 : fmt::format("the default value of input '{}'", n.name);
        const Dims& d = n.value.dims();
        for (std::size_t i = 0; i < n.shape.size() && i < d.size(); ++i) {
            if (!n.shape[i].symbolic()) continue;
            auto [it, fresh] = symbols.try_emplace(n.shape[i].symbol, d[i], source);
            if (!fresh && it->second.first != d[i])
                throw InputError(fmt::format("{}: {}: symbol {} is {} here but {} in {}", file,
                                             fed ? n.name : "inputs." + n.name + ".value", n.shape[i].symbol, d[i],
                                             it->second.first, it->second.second));
        }
    }
}

void apply_feed_file(Graph& g, const std::string& path) { apply_feed(g, read_json_file(path), path); }

}  // namespace chainrule
