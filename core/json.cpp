#include "core/json.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <set>
#include <vector>

#include "core/error.hpp"
#include "core/files.hpp"

namespace chainrule {
namespace {

// Where the parser is, so that a duplicate key or a bad number can be named by its path.
struct Frame {
    bool array = false;
    std::size_t index = 0;
    std::set<std::string> keys;
    std::string key;
    std::string path;
};

std::string child_path(const std::vector<Frame>& frames) {
    if (frames.empty()) return "";
    const Frame& top = frames.back();
    return top.array ? json_path(top.path, top.index) : json_path(top.path, top.key);
}

void line_col(const std::string& text, std::size_t byte, std::size_t& line, std::size_t& col) {
    line = 1;
    col = 1;
    for (std::size_t i = 0; i + 1 < byte && i < text.size(); ++i) {
        if (text[i] == '\n') {
            ++line;
            col = 1;
        } else {
            ++col;
        }
    }
}

constexpr std::size_t kMaxJsonDepth = 64;  // docs/limits.md

bool number_char(char c) { return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'; }

// Where `literal` stands as a whole number token outside strings: the parser names an
// out-of-range number but not its place, and the same text inside a doc string must not
// be taken for it. Every earlier token with the same text would have failed first, so the
// first one found is the one.
std::size_t find_number_token(const std::string& text, const std::string& literal) {
    bool in_string = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
            if (c == '\\')
                ++i;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
            continue;
        }
        if (i > 0 && number_char(text[i - 1])) continue;  // inside a token, not at its start
        if (text.compare(i, literal.size(), literal) != 0) continue;
        const std::size_t end = i + literal.size();
        if (end == text.size() || !number_char(text[end])) return i;
    }
    return std::string::npos;
}

}  // namespace

std::string json_path(const std::string& parent, const std::string& key) {
    return parent.empty() ? key : parent + "." + key;
}

std::string json_path(const std::string& parent, std::size_t index) {
    return fmt::format("{}[{}]", parent, index);
}

namespace {

// Builds the document from the parser's events while checking what nlohmann's parser does
// not: duplicate keys, nesting depth, and where each value is (for messages). Linear in the
// text: nlohmann's callback parser rescans an array after every element (quadratic in the
// node count) and ordered_map's insert searches the keys (quadratic in the parameter
// count); keys here are checked with a set and appended without a search.
class JsonBuilder {
public:
    explicit JsonBuilder(const std::string& file) : file_(file) {}
    Json take() { return std::move(root_); }

    bool null() { return put(nullptr); }
    bool boolean(bool v) { return put(v); }
    bool number_integer(Json::number_integer_t v) { return put(v); }
    bool number_unsigned(Json::number_unsigned_t v) { return put(v); }
    bool number_float(Json::number_float_t v, const Json::string_t&) {
        if (!std::isfinite(v))
            throw InputError(fmt::format("{}: {}: number is out of range for a double", file_, child_path(frames_)));
        return put(v);
    }
    bool string(Json::string_t& v) { return put(std::move(v)); }
    bool binary(Json::binary_t& v) { return put(Json::binary(std::move(v))); }
    bool start_object(std::size_t) { return open(Json::object(), false); }
    bool start_array(std::size_t) { return open(Json::array(), true); }
    bool end_object() { return close(); }
    bool end_array() { return close(); }
    bool key(Json::string_t& k) {
        Frame& top = frames_.back();
        if (!top.keys.insert(k).second)
            throw InputError(fmt::format("{}: {}: duplicate key '{}'", file_, top.path.empty() ? "top level" : top.path, k));
        top.key = k;
        // ordered_map is a vector of pairs: append, as the set above already refused a repeat.
        auto& pairs = static_cast<std::vector<std::pair<const std::string, Json>>&>(stack_.back()->get_ref<Json::object_t&>());
        pairs.emplace_back(std::move(k), nullptr);
        slot_ = &pairs.back().second;
        return true;
    }
    template <class Exception>
    bool parse_error(std::size_t, const std::string&, const Exception& e) {
        throw e;
    }

private:
    // Where the next value goes: the root, the end of the open array, or the last key's slot.
    template <class V>
    Json* place(V&& v) {
        if (stack_.empty()) {
            root_ = Json(std::forward<V>(v));
            return &root_;
        }
        if (frames_.back().array) {
            auto& arr = stack_.back()->get_ref<Json::array_t&>();
            arr.emplace_back(std::forward<V>(v));
            ++frames_.back().index;
            return &arr.back();
        }
        *slot_ = Json(std::forward<V>(v));
        return slot_;
    }
    template <class V>
    bool put(V&& v) {
        place(std::forward<V>(v));
        return true;
    }
    bool open(Json empty, bool array) {
        // Deeper nesting has no use in chainrule's files and costs stack and memory.
        if (frames_.size() >= kMaxJsonDepth)
            throw InputError(fmt::format("{}: {}: nesting deeper than {} levels", file_, child_path(frames_), kMaxJsonDepth));
        Frame f;
        f.array = array;
        f.path = child_path(frames_);
        Json* j = place(std::move(empty));
        if (!frames_.empty() && frames_.back().array) --frames_.back().index;  // counted when it closes
        frames_.push_back(std::move(f));
        stack_.push_back(j);
        return true;
    }
    bool close() {
        frames_.pop_back();
        stack_.pop_back();
        if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
        return true;
    }

    const std::string& file_;
    Json root_;
    std::vector<Json*> stack_;
    std::vector<Frame> frames_;
    Json* slot_ = nullptr;
};

}  // namespace

Json parse_json_text(const std::string& text, const std::string& file) {
    // nlohmann's lexer takes a NUL byte for the end of the input and would return what came
    // before it, ignoring the rest.
    if (std::size_t nul = text.find('\0'); nul != std::string::npos) {
        std::size_t line, col;
        line_col(text, nul + 1, line, col);
        throw InputError(fmt::format("{}:{}:{}: NUL byte (is this a binary or UTF-16 file?); JSON text has none",
                                     file, line, col));
    }
    JsonBuilder sax(file);
    try {
        Json::sax_parse(text, &sax);
        return sax.take();
    } catch (const nlohmann::json::parse_error& e) {
        std::size_t line, col;
        line_col(text, e.byte, line, col);
        std::string what = e.what();
        auto pos = what.find(": ");
        std::string detail = pos == std::string::npos ? what : what.substr(pos + 2);
        throw InputError(fmt::format("{}:{}:{}: malformed JSON: {}", file, line, col, detail));
    } catch (const nlohmann::json::out_of_range& e) {  // a number like 1e999
        // nlohmann names the literal but not its place: find it to give line:column.
        std::string what = e.what();
        auto q1 = what.find('\''), q2 = what.rfind('\'');
        std::string literal = q1 != std::string::npos && q2 > q1 ? what.substr(q1 + 1, q2 - q1 - 1) : "";
        std::size_t at = literal.empty() ? std::string::npos : find_number_token(text, literal);
        std::size_t line = 0, col = 0;
        if (at != std::string::npos) line_col(text, at + 1, line, col);
        std::string place = at == std::string::npos ? file : fmt::format("{}:{}:{}", file, line, col);
        throw InputError(fmt::format("{}: number {} is out of range for a double", place, literal));
    }
}

Json read_json_file(const std::string& path) { return parse_json_text(read_text_file(path), path); }

void check_keys(const Json& obj, std::initializer_list<const char*> allowed, const std::string& where) {
    get_object(obj, where);  // an array's items() would be reported as keys "0", "1", ...
    for (auto& [key, v] : obj.items()) {
        bool ok = false;
        for (const char* a : allowed) ok = ok || key == a;
        if (!ok) {
            std::string list;
            for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
            throw InputError(fmt::format("{}: unknown key '{}' (allowed: {})", where, key, list));
        }
    }
}

const Json& require(const Json& obj, const char* key, const std::string& where) {
    if (!obj.is_object()) throw InputError(fmt::format("{}: expected an object, got {}", where, obj.type_name()));
    auto it = obj.find(key);
    if (it == obj.end()) throw InputError(fmt::format("{}: missing required key '{}'", where, key));
    return *it;
}

std::string json_brief(const Json& j) {
    constexpr std::size_t keep = 60;
    std::string text = j.dump();
    if (text.size() <= keep) return text;
    return fmt::format("{}... ({} characters in all)", text.substr(0, keep), text.size());
}

std::string get_string(const Json& j, const std::string& where) {
    if (!j.is_string()) throw InputError(fmt::format("{}: expected a string, got {}", where, json_brief(j)));
    return j.get<std::string>();
}

double get_number(const Json& j, const std::string& where) {
    if (!j.is_number()) throw InputError(fmt::format("{}: expected a number, got {}", where, json_brief(j)));
    double v = j.get<double>();
    if (!std::isfinite(v)) throw InputError(fmt::format("{}: expected a finite number", where));
    return v;
}

std::int64_t get_int(const Json& j, const std::string& where) {
    if (j.is_number_integer()) {
        if (j.is_number_unsigned() && j.get<std::uint64_t>() > std::uint64_t(INT64_MAX))
            throw InputError(fmt::format("{}: integer {} is too large", where, json_brief(j)));
        return j.get<std::int64_t>();
    }
    throw InputError(fmt::format("{}: expected an integer, got {}", where, json_brief(j)));
}

const Json& get_object(const Json& j, const std::string& where) {
    if (!j.is_object()) throw InputError(fmt::format("{}: expected an object, got {}", where, j.type_name()));
    return j;
}

const Json& get_array(const Json& j, const std::string& where) {
    if (!j.is_array()) throw InputError(fmt::format("{}: expected an array, got {}", where, j.type_name()));
    return j;
}

Tensor tensor_from_json(const Json& j, const std::string& where) {
    Dims dims;
    const Json* probe = &j;
    while (probe->is_array()) {
        if (probe->empty()) throw InputError(fmt::format("{}: empty array; every dim must be at least 1", where));
        dims.push_back(static_cast<std::int64_t>(probe->size()));
        probe = &(*probe)[0];
    }
    // Values are collected before the tensor is allocated: the first element of each level
    // sets the shape, and a few bytes of JSON must not claim gigabytes.
    std::vector<double> out;
    // Walk in row-major order, checking every sub-array has the shape of the first.
    auto walk = [&](auto&& self, const Json& node, std::size_t depth, const std::string& at) -> void {
        if (depth == dims.size()) {
            if (!node.is_number())
                throw InputError(fmt::format("{}: expected a number, got {}", at, json_brief(node)));
            double v = node.get<double>();
            if (!std::isfinite(v)) throw InputError(fmt::format("{}: expected a finite number", at));
            out.push_back(v);
            return;
        }
        if (!node.is_array() || static_cast<std::int64_t>(node.size()) != dims[depth])
            throw InputError(fmt::format("{}: expected an array of {} elements (the shape is {}), got {}", at,
                                         dims[depth], format_dims(dims),
                                         node.is_array() ? fmt::format("{} elements", node.size()) : json_brief(node)));
        for (std::size_t i = 0; i < node.size(); ++i) self(self, node[i], depth + 1, json_path(at, i));
    };
    walk(walk, j, 0, where);
    Tensor t(Dtype::f64, dims);
    std::copy(out.begin(), out.end(), t.data<double>());
    return t;
}

Json tensor_to_json(const Tensor& t) {
    if (t.rank() == 0) return t.at(0);
    std::int64_t next = 0;
    auto build = [&](auto&& self, std::size_t depth) -> Json {
        Json arr = Json::array();
        for (std::int64_t i = 0; i < t.dim(depth); ++i) {
            if (depth + 1 == t.rank())
                arr.push_back(t.at(next++));
            else
                arr.push_back(self(self, depth + 1));
        }
        return arr;
    };
    return build(build, 0);
}

}  // namespace chainrule
