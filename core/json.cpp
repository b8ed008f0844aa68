#include "core/json.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <fmt/format.h>
#include <fstream>
#include <optional>
#include <string_view>
#include <set>
#include <sys/resource.h>
#include <unistd.h>
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
// Memory to hold a parsed document (docs/limits.md): a pre-scan of the text counts it before
// anything is built, and a document that would take more than this many bytes per byte of
// text, plus the slack, or more than the address space left under `ulimit -v`, is refused.
constexpr std::uint64_t kJsonMemoryPerByte = 40;
constexpr std::uint64_t kJsonMemorySlack = std::uint64_t{64} << 20;

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


// What the document will cost in memory, counted from the text before anything is built
// (docs/limits.md, "Memory to read a JSON file"). A `{}` is 3 bytes of text but a slot
// (16 bytes), a heap map (40 with malloc's header) and, when it goes, a place on
// nlohmann's teardown stack; without this count a 60 MB file of them took 2.3 GB and,
// under `ulimit -v`, died of SIGABRT when a teardown allocation failed inside a destructor.
constexpr std::uint64_t kJsonValue = sizeof(Json);                                  // an array's slot
constexpr std::uint64_t kJsonMember = sizeof(std::pair<const std::string, Json>);  // an object's slot
constexpr std::uint64_t kJsonHeap = 16;                                            // malloc's header
constexpr std::uint64_t kJsonContainer = sizeof(std::vector<Json>) + kJsonHeap;     // the map or array itself
constexpr std::uint64_t kJsonKeySeen = 32 + sizeof(std::string) + kJsonHeap;        // JsonBuilder's set node
constexpr std::uint64_t kJsonTeardown = kJsonValue * 3 / 2;  // nlohmann's destroy stack, grown by doubling
constexpr std::uint64_t kJsonSso = 15;                       // longer strings have a heap buffer

std::uint64_t string_heap(std::uint64_t length) { return length > kJsonSso ? length + 1 + kJsonHeap : 0; }

struct JsonCost {
    std::uint64_t bytes = 0;       // the document's heap, with malloc's headers, and its teardown
    std::uint64_t containers = 0;  // objects and arrays
};

// One pass over the text; tolerant of malformed text (the parser names the fault). Each value
// costs its place on the teardown stack, a string its heap object and long buffer, a container
// its heap object and its exact buffer of slots, an object's key its long buffers and the
// duplicate check's set node. With `sizes`, the element count of each container is written
// there in the order they open (JsonBuilder reserves exactly that); it must have room for them.
JsonCost json_cost(const std::string& text, std::uint32_t* sizes = nullptr) {
    struct Open {
        std::uint64_t index;  // the container's number, in the order they open
        std::uint32_t count;  // its elements so far (commas + 1 once a value is seen)
        bool object;
        bool empty;
    };
    JsonCost cost;
    Open open[kMaxJsonDepth + 2];
    std::size_t depth = 0;   // deeper than kMaxJsonDepth + 1 stops the count: the parser refuses it
    bool after_key = false;  // the next string is a key (inside an object, after `{` or `,`)
    auto value = [&] {
        cost.bytes += kJsonTeardown;  // its slot is counted in its container's buffer
        if (depth > 0 && open[depth - 1].empty) open[depth - 1].empty = false, open[depth - 1].count = 1;
    };
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '"') {
            const std::size_t start = ++i;
            for (; i < text.size() && text[i] != '"'; ++i)
                if (text[i] == '\\') ++i;
            const std::uint64_t length = i - start;  // escapes counted as written: an upper bound
            if (after_key) {
                cost.bytes += kJsonKeySeen + 2 * string_heap(length);  // the pair's string and the set's
                after_key = false;
            } else {
                value();
                cost.bytes += sizeof(std::string) + kJsonHeap + string_heap(length);
            }
        } else if (c == '{' || c == '[') {
            value();
            if (depth == kMaxJsonDepth + 2) break;
            cost.bytes += kJsonContainer;
            open[depth++] = {cost.containers++, 0, c == '{', true};
            after_key = c == '{';
        } else if (c == '}' || c == ']') {
            if (depth == 0) break;
            const Open& o = open[--depth];
            if (o.count > 0) cost.bytes += o.count * (o.object ? kJsonMember : kJsonValue) + kJsonHeap;
            if (sizes) sizes[o.index] = o.count;
        } else if (c == ',') {
            if (depth == 0) break;
            ++open[depth - 1].count;
            after_key = open[depth - 1].object;
        } else if (c != ':' && c != ' ' && c != '\n' && c != '\t' && c != '\r') {
            value();  // a number, true, false or null: one value, then the rest of its token
            while (i + 1 < text.size() && std::string_view(",:]}\" \n\t\r").find(text[i + 1]) == std::string_view::npos)
                ++i;
        }
    }
    cost.bytes += cost.containers * sizeof(std::uint32_t);  // the sizes themselves, while parsing
    return cost;
}

// Address space left under `ulimit -v`, or nothing when there is no limit.
std::optional<std::uint64_t> address_space_left() {
    struct rlimit limit {};
    std::uint64_t pages = 0;
    if (getrlimit(RLIMIT_AS, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return std::nullopt;
    if (!(std::ifstream("/proc/self/statm") >> pages)) return std::nullopt;
    const std::uint64_t used = pages * std::uint64_t(sysconf(_SC_PAGESIZE));
    return used >= limit.rlim_cur ? 0 : limit.rlim_cur - used;
}

std::string mib(std::uint64_t bytes) { return fmt::format("{:.1f} MiB", double(bytes) / (1 << 20)); }

// Refuses, naming the file, a document whose memory exceeds kJsonMemoryPerByte bytes per byte of
// text (plus kJsonMemorySlack) or the address space left.
void check_json_cost(const JsonCost& cost, std::size_t text_bytes, const std::string& file) {
    const std::uint64_t cap = kJsonMemoryPerByte * text_bytes + kJsonMemorySlack;
    if (cost.bytes > cap)
        throw InputError(fmt::format("{}: the JSON document would take {} of memory to hold, more than the {} "
                                     "({} bytes for each of its {} bytes, docs/limits.md): chainrule's files do "
                                     "not nest empty or one-element containers this densely",
                                     file, mib(cost.bytes), mib(cap), kJsonMemoryPerByte, text_bytes));
    if (const auto left = address_space_left(); left && cost.bytes > *left)
        throw InputError(fmt::format("{}: the JSON document would take {} of memory to hold, more than the {} of "
                                     "address space left under the limit (ulimit -v); raise the limit",
                                     file, mib(cost.bytes), mib(*left)));
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
    JsonBuilder(const std::string& file, const std::vector<std::uint32_t>& sizes) : file_(file), sizes_(sizes) {}
    JsonBuilder(const JsonBuilder&) = delete;
    JsonBuilder& operator=(const JsonBuilder&) = delete;
    // A document cut short (bad text, or memory ran out) is taken apart here, innermost first,
    // so that nlohmann's destructor, which allocates a stack as large as a container, never
    // runs on a full one: an allocation failing inside a destructor is std::terminate.
    ~JsonBuilder() { take_apart(); }
    void take_apart() noexcept { take_apart(root_); }
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
    static void take_apart(Json& j) noexcept {
        if (j.is_array()) {
            auto& items = j.get_ref<Json::array_t&>();
            while (!items.empty()) take_apart(items.back()), items.pop_back();
        } else if (j.is_object()) {
            auto& pairs = static_cast<std::vector<std::pair<const std::string, Json>>&>(j.get_ref<Json::object_t&>());
            while (!pairs.empty()) take_apart(pairs.back().second), pairs.pop_back();
        }
    }
    bool open(Json empty, bool array) {
        // Deeper nesting has no use in chainrule's files and costs stack and memory.
        if (frames_.size() >= kMaxJsonDepth)
            throw InputError(fmt::format("{}: {}: nesting deeper than {} levels", file_, child_path(frames_), kMaxJsonDepth));
        Frame f;
        f.array = array;
        f.path = child_path(frames_);
        Json* j = place(std::move(empty));
        if (opened_ < sizes_.size()) {  // exactly the elements json_cost counted: no doubling, no copies
            const std::uint32_t n = sizes_[opened_];
            if (array)
                j->get_ref<Json::array_t&>().reserve(n);
            else
                static_cast<std::vector<std::pair<const std::string, Json>>&>(j->get_ref<Json::object_t&>()).reserve(n);
        }
        ++opened_;
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
    const std::vector<std::uint32_t>& sizes_;
    std::size_t opened_ = 0;  // containers opened so far: the index into sizes_
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
    const JsonCost cost = json_cost(text);
    check_json_cost(cost, text.size(), file);
    std::vector<std::uint32_t> sizes(cost.containers);
    json_cost(text, sizes.data());
    JsonBuilder sax(file, sizes);
    try {
        Json::sax_parse(text, &sax);
        return sax.take();
    } catch (const std::bad_alloc&) {
        sax.take_apart();  // memory back before the message is made
        throw InputError(fmt::format("{}: out of memory while reading the JSON document (it takes about {}); raise "
                                     "the limit (ulimit -v) or free memory",
                                     file, mib(cost.bytes)));
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
            out.push_back(number_from_json(node, at));
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

Json number_json(double v) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    return v;
}

double number_from_json(const Json& j, const std::string& where) {
    if (j.is_string()) {
        const std::string& w = j.get_ref<const std::string&>();
        if (w == "nan") return std::numeric_limits<double>::quiet_NaN();
        if (w == "inf") return std::numeric_limits<double>::infinity();
        if (w == "-inf") return -std::numeric_limits<double>::infinity();
    }
    if (!j.is_number())
        throw InputError(fmt::format("{}: expected a number, got {} (a JSON number, or \"nan\", \"inf\" or "
                                     "\"-inf\")",
                                     where, json_brief(j)));
    double v = j.get<double>();
    if (!std::isfinite(v)) throw InputError(fmt::format("{}: expected a finite number", where));
    return v;
}

Json tensor_to_json(const Tensor& t) {
    if (t.rank() == 0) return number_json(t.at(0));
    std::int64_t next = 0;
    auto build = [&](auto&& self, std::size_t depth) -> Json {
        Json arr = Json::array();
        for (std::int64_t i = 0; i < t.dim(depth); ++i) {
            if (depth + 1 == t.rank())
                arr.push_back(number_json(t.at(next++)));
            else
                arr.push_back(self(self, depth + 1));
        }
        return arr;
    };
    return build(build, 0);
}

}  // namespace chainrule
