// The text kind (data/kind.hpp, docs/data.md "Text rules"): makemore's data. One word per
// line, its characters as tokens, "." (id 0) the token that starts and ends a word, the
// other ids the file's characters in code point order. A window of `block_size` ids is a
// sample; its label is the next character ("next") or, for a transformer, the next character
// at every position ("sequence"). The words are shuffled with a seed and split, so a word's
// windows are all in one split.
#include <algorithm>
#include <array>
#include <filesystem>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <map>
#include <numeric>
#include <string_view>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/random.hpp"
#include "core/text.hpp"
#include "data/kind.hpp"

namespace chainrule::data {

const DataKind& text_kind();

namespace {

constexpr std::int64_t kMaxTextBytes = std::int64_t{64} << 20;  // as CSV: a word list, not a corpus
constexpr std::int64_t kMaxBlock = 1024;
constexpr const char* kStartEnd = ".";  // id 0: before the first character and after the last
constexpr std::int32_t kPaddingLabel = -1;  // "sequence" targets after the end (docs/data.md)

// The bytes of the UTF-8 character that starts with byte `lead` (the text is valid UTF-8).
std::size_t char_bytes(unsigned char lead) { return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4; }

std::vector<std::string> characters(std::string_view s) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t n = char_bytes(static_cast<unsigned char>(s[i]));
        out.emplace_back(s.substr(i, n));
        i += n;
    }
    return out;
}

struct Word {
    std::int64_t line;
    std::vector<std::string> chars;
};

// The bytes a text file may not hold, named at file:line: a NUL (a binary file), bytes that
// are not UTF-8, other control characters.
void check_line_bytes(std::string_view line, const std::string& file, std::int64_t at) {
    for (std::size_t i = 0; i < line.size(); ++i) {
        const auto c = static_cast<unsigned char>(line[i]);
        if (c == 0)
            throw InputError(fmt::format("{}:{}: a NUL byte at column {}: this is a binary file, not text; expected "
                                         "one word per line",
                                         file, at, i + 1));
        if (c < 0x20 || c == 0x7F)
            throw InputError(fmt::format("{}:{}: control character 0x{:02X} at column {}; expected printable "
                                         "characters, one word per line",
                                         file, at, c, i + 1));
    }
    if (!is_valid_utf8(std::string(line)))
        throw InputError(fmt::format("{}:{}: '{}' is not valid UTF-8 (shown with � for each bad byte); expected "
                                     "UTF-8 text, one word per line: convert the file, e.g. with `iconv -f latin1 "
                                     "-t utf-8`",
                                     file, at, visible_text(std::string(line))));
}

// The file's words, in file order: empty lines skipped, lines with a character outside
// `keep_only` (when given) left out.
std::vector<Word> read_words(const DataSpec& s) {
    const std::string text = read_file_capped(s.path, std::uint64_t(kMaxTextBytes), "64 MiB cap for text files");
    if (text.empty()) throw InputError(fmt::format("{}:1: the file is empty; expected one word per line", s.path));
    const std::vector<std::string> keep = characters(s.keep_only);
    std::vector<Word> words;
    std::string_view all(text);
    std::size_t pos = all.starts_with("\xEF\xBB\xBF") ? 3 : 0;
    for (std::int64_t line = 1; pos < all.size(); ++line) {
        std::size_t eol = all.find('\n', pos);
        std::size_t next = eol == std::string_view::npos ? all.size() : eol + 1;
        std::size_t end = eol == std::string_view::npos ? all.size() : eol;
        if (end > pos && all[end - 1] == '\r') --end;
        std::string_view w = all.substr(pos, end - pos);
        pos = next;
        check_line_bytes(w, s.path, line);
        if (w.empty()) continue;
        Word word{line, characters(w)};
        if (!keep.empty() && std::any_of(word.chars.begin(), word.chars.end(), [&](const std::string& c) {
                return std::find(keep.begin(), keep.end(), c) == keep.end();
            }))
            continue;
        if (std::find(word.chars.begin(), word.chars.end(), kStartEnd) != word.chars.end())
            throw InputError(fmt::format("{}:{}: '{}' holds '{}', the token that starts and ends every word; leave "
                                         "such lines out with \"keep_only\"",
                                         s.path, line, w, kStartEnd));
        if (s.per_position_labels && std::int64_t(word.chars.size()) >= s.block_size)
            throw InputError(fmt::format("{}:{}: '{}' has {} characters, but with \"target\": \"sequence\" and "
                                         "block_size {} a word may have at most {} (the input is '{}' and the "
                                         "word, the target the word and '{}'); take a larger block_size",
                                         s.path, line, w, word.chars.size(), s.block_size, s.block_size - 1,
                                         kStartEnd, kStartEnd));
        words.push_back(std::move(word));
    }
    if (words.empty())
        throw InputError(fmt::format("{}:1: the file has no words{}; expected one word per line", s.path,
                                     keep.empty() ? "" : fmt::format(" of only the characters \"{}\"", s.keep_only)));
    return words;
}

// "." and the words' characters in code point order (UTF-8's byte order is code point order).
std::vector<std::string> build_vocabulary(const std::vector<Word>& words, const DataSpec& s) {
    std::vector<std::string> chars;
    for (const Word& w : words) chars.insert(chars.end(), w.chars.begin(), w.chars.end());
    std::sort(chars.begin(), chars.end());
    chars.erase(std::unique(chars.begin(), chars.end()), chars.end());
    if (chars.size() + 1 > kMaxVocabulary)
        throw InputError(fmt::format("{}: {} distinct characters; a vocabulary holds at most {} (is it a word list?)",
                                     s.path, chars.size(), kMaxVocabulary - 1));
    chars.insert(chars.begin(), kStartEnd);
    return chars;
}

// The words' order for the split: a Fisher-Yates shuffle drawn from the split's seed.
std::vector<std::size_t> shuffled(std::size_t n, std::uint64_t seed) {
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t{0});
    Rng rng(seed);
    for (std::size_t i = n; i > 1; --i) std::swap(order[i - 1], order[std::size_t(rng.below(i))]);
    return order;
}

// A word's samples appended to a split: with "next", a window per character and one for the
// end, each labelled with the character that follows it; with "sequence", one window.
void add_samples(const std::vector<std::int32_t>& ids, std::int64_t line, const DataSpec& s, Split& split) {
    const auto block = std::size_t(s.block_size);
    if (s.per_position_labels) {
        // Targets after the end's "." are kPaddingLabel: cross_entropy's ignore_index leaves
        // them out, so the loss counts the word's own predictions only (makemore's −1).
        std::vector<std::int32_t> x(block, 0), y(block, kPaddingLabel);
        for (std::size_t i = 0; i < ids.size(); ++i) x[i + 1] = y[i] = ids[i];
        y[ids.size()] = 0;
        split.tokens.insert(split.tokens.end(), x.begin(), x.end());
        split.labels.insert(split.labels.end(), y.begin(), y.end());
        split.source_lines.push_back(line);
        ++split.count;
        return;
    }
    std::vector<std::int32_t> context(block, 0);
    for (std::size_t i = 0; i <= ids.size(); ++i) {
        const std::int32_t next = i < ids.size() ? ids[i] : 0;
        split.tokens.insert(split.tokens.end(), context.begin(), context.end());
        split.labels.push_back(next);
        split.source_lines.push_back(line);
        ++split.count;
        context.erase(context.begin());
        context.push_back(next);
    }
}

Dataset load_text(const DataSpec& s) {
    const std::vector<Word> words = read_words(s);
    Dataset ds;
    ds.kind = text_kind().name;
    ds.class_names = s.vocabulary.empty() ? build_vocabulary(words, s) : s.vocabulary;
    ds.classes = std::int64_t(ds.class_names.size());
    ds.labels_per_sample = s.per_position_labels ? s.block_size : 1;
    std::map<std::string, std::int32_t> id;
    for (std::size_t i = 0; i < ds.class_names.size(); ++i) id.emplace(ds.class_names[i], std::int32_t(i));

    // Every word's ids first: a character the run's vocabulary lacks is named wherever it is.
    std::vector<std::vector<std::int32_t>> ids(words.size());
    for (std::size_t k = 0; k < words.size(); ++k)
        for (const std::string& c : words[k].chars) {
            auto it = id.find(c);
            if (it == id.end())
                throw InputError(fmt::format("{}:{}: character '{}' is not in the vocabulary the weights were "
                                             "trained with ({} characters: {}); the file is not the text they were "
                                             "trained on",
                                             s.path, words[k].line, c, ds.class_names.size(),
                                             fmt::join(ds.class_names, "")));
            ids[k].push_back(it->second);
        }
    const std::vector<std::size_t> order = shuffled(words.size(), s.split_seed);
    const auto train_words = std::size_t(std::llround(double(words.size()) * s.train_fraction));
    if (train_words == 0 || train_words == words.size())
        throw InputError(fmt::format("{}: the split of {} words leaves no {} words; use more words or another "
                                     "train_fraction",
                                     s.where, words.size(), train_words == 0 ? "training" : "test"));
    for (Split* split : {&ds.train, &ds.test}) {
        split->features = s.block_size;
        split->sample_dims = {s.block_size};
    }
    std::int64_t kept[2] = {0, 0};
    for (std::size_t k = 0; k < order.size(); ++k) {
        const Word& w = words[order[k]];
        const bool train = k < train_words;
        const std::int64_t limit = train ? s.train_limit : s.test_limit;
        if (limit >= 0 && kept[train] >= limit) continue;
        ++kept[train];
        add_samples(ids[order[k]], w.line, s, train ? ds.train : ds.test);
    }
    return ds;
}

void parse_target(const Json& j, const std::string& at, DataSpec& s) {
    const std::string target = get_string(j, at);
    if (target != "next" && target != "sequence")
        throw InputError(fmt::format("{}: '{}' is no target; expected \"next\" (the character after a window) or "
                                     "\"sequence\" (the next character at every position)",
                                     at, target));
    s.per_position_labels = target == "sequence";
}

void parse_text_split(const Json& j, const std::string& at, DataSpec& s) {
    get_object(j, at);
    check_keys(j, {"train_fraction", "seed"}, at);
    if (j.contains("train_fraction")) {
        const std::string fraction_at = json_path(at, "train_fraction");
        s.train_fraction = get_number(j["train_fraction"], fraction_at);
        if (!(s.train_fraction > 0 && s.train_fraction < 1))
            throw InputError(fmt::format("{}: {} is out of range; expected a fraction strictly between 0 and 1",
                                         fraction_at, s.train_fraction));
    }
    if (j.contains("seed"))
        s.split_seed = std::uint64_t(int_in_range(j["seed"], 0, INT64_MAX, json_path(at, "seed"), "a seed >= 0"));
}

void parse_text_spec(const Json& j, DataSpec& s) {
    check_keys(j, {"kind", "path", "block_size", "target", "split", "keep_only", "limit"}, s.where);
    s.path = resolve_data_path(j, "path", s);
    s.block_size = int_in_range(require(j, "block_size", s.where), 1, kMaxBlock, json_path(s.where, "block_size"),
                                "a window of 1 to 1024 characters");
    s.train_fraction = 0.9;
    if (j.contains("target")) parse_target(j["target"], json_path(s.where, "target"), s);
    if (s.per_position_labels && s.block_size < 2)
        throw InputError(fmt::format("{}: 1 is too small for \"target\": \"sequence\"; expected at least 2 (the "
                                     "start token and one character)",
                                     json_path(s.where, "block_size")));
    if (j.contains("split")) parse_text_split(j["split"], json_path(s.where, "split"), s);
    if (j.contains("keep_only")) {
        const std::string at = json_path(s.where, "keep_only");
        s.keep_only = get_string(j["keep_only"], at);
        if (s.keep_only.empty() || !is_valid_utf8(s.keep_only))
            throw InputError(fmt::format("{}: expected the characters a kept line may hold, e.g. "
                                         "\"abcdefghijklmnopqrstuvwxyz\"",
                                         at));
    }
    if (j.contains("limit")) parse_limit(j["limit"], json_path(s.where, "limit"), s);
}

void validate_text_spec(const DataSpec& s) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(s.path, ec)) return;
    const bool nothing = !std::filesystem::exists(std::filesystem::symlink_status(s.path, ec));
    throw missing_path_error(s, "path", s.path,
                             fmt::format("{}: {}; expected a text file of one word per line", s.path,
                                         nothing ? "nothing is there" : "not a file"));
}

std::optional<std::int64_t> block_width(const DataSpec& s) { return s.block_size; }
std::optional<std::int64_t> label_width(const DataSpec& s) { return s.per_position_labels ? s.block_size : 1; }

constexpr std::array<StreamDef, 2> kTextStreams = {{
    {kTokens, StreamForm::tokens, block_width},
    {kLabels, StreamForm::class_ids, label_width},
}};

std::string text_source(const DataSpec& s) { return s.path; }

std::string text_note(const DataSpec& s) {
    return fmt::format("windows of {} characters, labelled with {}; {}words shuffled with seed {}, the first {:g}% "
                       "train, the rest test",
                       s.block_size, s.per_position_labels ? "the next character at each position" : "the next character",
                       s.keep_only.empty() ? "" : fmt::format("lines of only \"{}\"; ", s.keep_only), s.split_seed,
                       s.train_fraction * 100);
}

std::string text_sample(const Dataset& ds, const Split& split, std::int64_t i) {
    auto chars = [&](const std::vector<std::int32_t>& ids, std::int64_t from, std::int64_t n) {
        std::string out;
        for (std::int64_t k = from; k < from + n; ++k) {
            const std::int32_t id = ids[std::size_t(k)];
            out += id == kPaddingLabel ? "_" : ds.class_names[std::size_t(id)];
        }
        return out;
    };
    return fmt::format("line {}: {} -> {}", split.source_lines[std::size_t(i)],
                       chars(split.tokens, i * split.features, split.features),
                       chars(split.labels, i * ds.labels_per_sample, ds.labels_per_sample));
}

}  // namespace

std::vector<std::string> vocabulary_from_json(const Json& j, const std::string& where) {
    const Json& arr = get_array(j, where);
    if (arr.size() < 2 || arr.size() > kMaxVocabulary)
        throw InputError(fmt::format("{}: expected 2 to {} characters, got {}", where, kMaxVocabulary, arr.size()));
    std::vector<std::string> v;
    for (std::size_t i = 0; i < arr.size(); ++i) {
        const std::string at = json_path(where, i);
        std::string c = get_string(arr[i], at);
        if (c.empty() || !is_valid_utf8(c) || characters(c).size() != 1)
            throw InputError(fmt::format("{}: expected one character, got {}", at, arr[i].dump()));
        if (std::find(v.begin(), v.end(), c) != v.end())
            throw InputError(fmt::format("{}: '{}' is listed twice", at, c));
        v.push_back(std::move(c));
    }
    if (v.front() != kStartEnd)
        throw InputError(fmt::format("{}: the first entry is {}; expected \"{}\", the start/end token", where,
                                     arr[0].dump(), kStartEnd));
    return v;
}

const DataKind& text_kind() {
    static const DataKind kind{
        .name = "text",
        .title = "Text",
        .parse = parse_text_spec,
        .validate = validate_text_spec,
        .load = load_text,
        .streams = kTextStreams,
        .images = false,
        .stored_as = "int32 token ids",
        .source = text_source,
        .describe = text_note,
        .sample_text = text_sample,
        .stream_for_columns = nullptr,
        .vocabulary = true,
    };
    return kind;
}

}  // namespace chainrule::data
