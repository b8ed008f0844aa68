// The text data kind (data/text.cpp, docs/data.md "Text rules"): the vocabulary, the windows
// and their labels worked out by hand, the split by word and its seed, every refusal with
// its file:line and exit code 2, the vocabulary kept with a run and read back by eval and
// `chainrule sample` (whose words a seed fixes), and a short training run on a fixture.
#define BOOST_TEST_MODULE text
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <cmath>
#include <set>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/json.hpp"
#include "data/dataset.hpp"
#include "data/kind.hpp"
#include "testing.hpp"
#include "format/model_json.hpp"
#include "train/checkpoint.hpp"
#include "train/trainer.hpp"
#include "train/training.hpp"

using namespace chainrule;
using namespace chainrule::data;
using namespace chainrule::testing;
namespace fs = std::filesystem;

namespace {

std::string write(const std::string& name, const std::string& bytes) {
    const fs::path p = scratch() / name;
    std::ofstream(p, std::ios::binary) << bytes;
    return p.string();
}

std::string fixture_words() { return source_root() + "/tests/fixtures/words.txt"; }

DataSpec spec_of(const std::string& path, const std::string& more = "") {
    Json j = Json::parse(R"({"kind": "text", "block_size": 2)" + more + "}");
    j["path"] = path;
    return parse_data_spec(j, "m.json: training.data", "");
}

std::string input_error(const std::function<void()>& f) { return message_of<InputError>(f); }

// The characters of the sample's ids, "." for 0.
std::string chars(const Dataset& ds, const std::vector<std::int32_t>& ids, std::int64_t from, std::int64_t n) {
    std::string out;
    for (std::int64_t k = from; k < from + n; ++k) {
        const std::int32_t id = ids[std::size_t(k)];
        out += id == -1 ? "_" : ds.class_names[std::size_t(id)];  // the padding label
    }
    return out;
}

// Every sample of both splits as "line: window -> label(s)".
std::multiset<std::string> samples(const Dataset& ds) {
    std::multiset<std::string> out;
    for (const Split* s : {&ds.train, &ds.test})
        for (std::int64_t i = 0; i < s->count; ++i)
            out.insert(std::to_string(s->source_lines[std::size_t(i)]) + ": " +
                       chars(ds, s->tokens, i * s->features, s->features) + " -> " +
                       chars(ds, s->labels, i * ds.labels_per_sample, ds.labels_per_sample));
    return out;
}

std::set<std::int64_t> lines_of(const Split& s) { return {s.source_lines.begin(), s.source_lines.end()}; }

CommandResult cr(const std::string& args) { return run_command(chainrule_binary() + " " + args); }

// A model on the text at `path`: an MLP on windows of 2 ("next") or the bigram table.
std::string model_file(const std::string& name, const std::string& path, const std::string& data_more = "",
                       int epochs = 3) {
    Json m = Json::parse(R"({
      "format": "chainrule-model", "version": 1, "name": "tiny_words", "dtype": "float64",
      "inputs": {"x": {"shape": ["N", 2]}, "y": {"shape": ["N"]}},
      "parameters": {"C": {"shape": [23, 4], "init": {"normal": {"mean": 0, "std": 1}}},
                     "W": {"shape": [8, 23], "init": {"uniform": {"low": -0.3, "high": 0.3}}},
                     "b": {"shape": [23], "init": {"constant": 0}}},
      "nodes": [{"name": "e", "op": "embedding", "inputs": ["x", "C"]},
                {"name": "f", "op": "reshape", "inputs": ["e"], "attrs": {"shape": [-1, 8]}},
                {"name": "logits", "op": "linear", "inputs": ["f", "W", "b"]},
                {"name": "L", "op": "cross_entropy", "inputs": ["logits", "y"]}],
      "outputs": {"prediction": "logits", "loss": "L"},
      "training": {"data": {"kind": "text", "block_size": 2, "keep_only": "abcdefghijklmnopqrstuvwxyz"},
                   "feed": {"x": "tokens", "y": "labels"}, "batch_size": 16, "sampling": "shuffle",
                   "optimizer": {"adam": {"lr": 0.05}}, "seed": 3, "print_every": 1}})");
    m["training"]["data"]["path"] = path;
    m["training"]["epochs"] = epochs;
    if (!data_more.empty()) m["training"]["data"].update(Json::parse(data_more));
    return write(name + ".json", m.dump(1));
}

// The fixture's 28 lowercase words use 22 letters: with ".", the model's 23 classes.
std::string trained_run() {
    static const std::string run = [] {
        const std::string dir = (scratch() / "run").string();
        CommandResult r = cr("train " + model_file("tiny", fixture_words()) + " --out " + dir + " --no-progress");
        BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
        return dir;
    }();
    return run;
}

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(RemoveScratch);

BOOST_AUTO_TEST_CASE(the_kind_is_in_the_table) {
    const DataKind* k = find_data_kind("text");
    BOOST_TEST_REQUIRE(k != nullptr);
    BOOST_TEST(k->vocabulary);
    BOOST_TEST(!find_data_kind("csv")->vocabulary);
    BOOST_TEST(stream_list("text") == "tokens or labels");
    DataSpec next = spec_of("w.txt");
    DataSpec seq = spec_of("w.txt", R"(, "target": "sequence", "block_size": 5)");
    BOOST_TEST(*stream_width_from_spec(next, "tokens") == 2);
    BOOST_TEST(*stream_width_from_spec(next, "labels") == 1);
    BOOST_TEST(*stream_width_from_spec(seq, "tokens") == 5);
    BOOST_TEST(*stream_width_from_spec(seq, "labels") == 5);
    BOOST_TEST(k->describe(next) ==
               "windows of 2 characters, labelled with the next character; words shuffled with seed 42, the first "
               "90% train, the rest test");
}

// "ab", "ba", "c" with windows of 2: vocabulary . a b c; each word's windows from "..",
// ending with the window that predicts "." (worked out by hand).
BOOST_AUTO_TEST_CASE(vocabulary_and_next_character_windows) {
    const std::string path = write("abc.txt", "ab\nba\r\n\nc\n");
    Dataset ds = load_dataset(spec_of(path, R"(, "split": {"train_fraction": 0.5})"));
    BOOST_TEST(ds.class_names == (std::vector<std::string>{".", "a", "b", "c"}), boost::test_tools::per_element());
    BOOST_TEST(ds.classes == 4);
    BOOST_TEST(ds.labels_per_sample == 1);
    const std::multiset<std::string> want = {"1: .. -> a", "1: .a -> b", "1: ab -> .", "2: .. -> b", "2: .b -> a",
                                             "2: ba -> .", "4: .. -> c", "4: .c -> ."};
    BOOST_TEST(samples(ds) == want, boost::test_tools::per_element());
    // round(3 · 0.5) = 2 words train, 1 tests; a word's windows stay together.
    BOOST_TEST(lines_of(ds.train).size() == 2u);
    BOOST_TEST(lines_of(ds.test).size() == 1u);
    BOOST_TEST(ds.train.count + ds.test.count == 8);
    BOOST_TEST(ds.train.sample_dims == (Dims{2}), boost::test_tools::per_element());
    BOOST_TEST(find_data_kind("text")->sample_text(ds, ds.train, 0).find(" -> ") != std::string::npos);
}

// "ab" and "c" with block 3: input "." and the word, padded with "."; target the word, ".",
// then the padding label −1 (shown as _) that cross_entropy's ignore_index leaves out.
BOOST_AUTO_TEST_CASE(sequence_targets_are_the_shifted_word) {
    const std::string path = write("seq.txt", "ab\nc\n");
    Dataset ds = load_dataset(spec_of(path, R"(, "block_size": 3, "target": "sequence", "split": {"train_fraction": 0.5})"));
    BOOST_TEST(ds.labels_per_sample == 3);
    const std::multiset<std::string> want = {"1: .ab -> ab.", "2: .c. -> c._"};
    BOOST_TEST(samples(ds) == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(the_split_is_by_word_and_fixed_by_its_seed) {
    const std::string keep = R"(, "keep_only": "abcdefghijklmnopqrstuvwxyz")";
    Dataset a = load_dataset(spec_of(fixture_words(), keep));
    Dataset b = load_dataset(spec_of(fixture_words(), keep));
    Dataset c = load_dataset(spec_of(fixture_words(), keep + R"(, "split": {"seed": 7})"));
    // 28 of the 30 lines are lowercase words ("Zoe" and "it's" are left out): 25 train, 3 test.
    BOOST_TEST(lines_of(a.train).size() == 25u);
    BOOST_TEST(lines_of(a.test).size() == 3u);
    BOOST_TEST(!lines_of(a.train).count(21));  // Zoe
    BOOST_TEST(!lines_of(a.test).count(22));   // it's
    BOOST_TEST(a.train.tokens == b.train.tokens, boost::test_tools::per_element());
    BOOST_TEST(a.test.source_lines == b.test.source_lines, boost::test_tools::per_element());
    BOOST_TEST(lines_of(a.test) != lines_of(c.test));
    for (std::int64_t line : lines_of(a.test)) BOOST_TEST(!lines_of(a.train).count(line));
    BOOST_TEST(a.class_names.size() == 23u);  // "." and 22 letters: no d, k, q, x
    // The limit counts words.
    Dataset few = load_dataset(spec_of(fixture_words(), keep + R"(, "limit": {"train": 4, "test": 1})"));
    BOOST_TEST(lines_of(few.train).size() == 4u);
    BOOST_TEST(lines_of(few.test).size() == 1u);
}

BOOST_AUTO_TEST_CASE(bad_text_is_named_at_its_line) {
    auto error = [](const std::string& name, const std::string& bytes, const std::string& more = "") {
        const std::string path = write(name, bytes);
        return input_error([&] { load_dataset(spec_of(path, more)); });
    };
    const std::string dir = scratch().string() + "/";
    CHECK_HAS(error("nul.txt", std::string("ab\ncd\0e\n", 8)),
              dir + "nul.txt:2: a NUL byte at column 3: this is a binary file, not text");
    CHECK_HAS(error("latin1.txt", "ab\ncaf\xe9\n"), dir + "latin1.txt:2: 'caf�' is not valid UTF-8");
    CHECK_HAS(error("bell.txt", "ab\nc\x07\n"), dir + "bell.txt:2: control character 0x07 at column 2");
    CHECK_HAS(error("empty.txt", ""), dir + "empty.txt:1: the file is empty; expected one word per line");
    CHECK_HAS(error("blank.txt", "\n\n"), dir + "blank.txt:1: the file has no words");
    CHECK_HAS(error("upper.txt", "Ab\nC\n", R"(, "keep_only": "abc")"),
              dir + "upper.txt:1: the file has no words of only the characters \"abc\"");
    CHECK_HAS(error("dot.txt", "ab\nst.louis\n"),
              dir + "dot.txt:2: 'st.louis' holds '.', the token that starts and ends every word");
    CHECK_HAS(error("long.txt", "ab\nabc\n", R"(, "block_size": 3, "target": "sequence")"),
              dir + "long.txt:2: 'abc' has 3 characters, but with \"target\": \"sequence\" and block_size 3 a word "
                    "may have at most 2");
    // A character the run's vocabulary does not hold.
    DataSpec s = spec_of(write("new.txt", "ab\nbaz\n"));
    s.vocabulary = {".", "a", "b"};
    CHECK_HAS(input_error([&] { load_dataset(s); }),
              dir + "new.txt:2: character 'z' is not in the vocabulary the weights were trained with (3 characters: "
                    ".ab)");
    // The block's keys.
    CHECK_HAS(input_error([] { spec_of("w.txt", R"(, "target": "last")"); }),
              "m.json: training.data.target: 'last' is no target");
    CHECK_HAS(input_error([] { spec_of("w.txt", R"(, "block_size": 0)"); }),
              "m.json: training.data.block_size: 0 is out of range");
    CHECK_HAS(input_error([] { spec_of("w.txt", R"(, "split": {"train_fraction": 1})"); }),
              "m.json: training.data.split.train_fraction: 1 is out of range");
    CHECK_HAS(input_error([] { spec_of("w.txt", R"(, "vocab": 3)"); }), "vocab");
}

// The same refusals from the command line: exit 2, the message on stderr.
BOOST_AUTO_TEST_CASE(bad_text_exits_with_2) {
    const std::string bad = write("cli_nul.txt", std::string("ab\n\0\n", 5));
    CommandResult r = cr("train " + model_file("cli_nul", bad) + " --no-progress");
    BOOST_TEST(r.code == 2);
    CHECK_HAS(r.err, bad + ":2: a NUL byte at column 1");
    const std::string missing = (scratch() / "nothing.txt").string();
    r = cr("train " + model_file("cli_missing", missing) + " --no-progress");
    BOOST_TEST(r.code == 2);
    CHECK_HAS(r.err, "training.data.path: " + missing + ": nothing is there; expected a text file of one word per line");
}

BOOST_AUTO_TEST_CASE(a_run_keeps_its_vocabulary_and_eval_reads_with_it) {
    const std::string run = trained_run();
    const Checkpoint c = load_checkpoint(run + "/checkpoint.ckpt");
    const std::vector<std::string> want = {".", "a", "b", "c", "e", "f", "g", "h", "i", "j", "l", "m",
                                           "n", "o", "p", "r", "s", "t", "u", "v", "w", "y", "z"};
    BOOST_TEST(run_vocabulary(c, "ckpt") == want, boost::test_tools::per_element());
    CommandResult ev = cr("eval " + model_file("tiny", fixture_words()) + " --weights " + run);
    BOOST_REQUIRE_MESSAGE(ev.code == 0, ev.err);
    CHECK_HAS(ev.out, "test loss ");
    // The same model on a file with a character the run never saw: refused at its line.
    const std::string other = write("other.txt", read_text_file(fixture_words()) + "dog\n");
    CommandResult bad = cr("eval " + model_file("tiny_other", other) + " --weights " + run);
    BOOST_TEST(bad.code == 2);
    CHECK_HAS(bad.err, other + ":31: character 'd' is not in the vocabulary the weights were trained with (23 "
                               "characters: .abcefghijlmnoprstuvwyz)");
    // Resuming on data with another vocabulary is another run.
    CommandResult resume = cr("train " + model_file("tiny_resume", other) + " --resume " + run +
                              " --epochs 4 --no-progress --out " + (scratch() / "resumed").string());
    BOOST_TEST(resume.code == 2);
    CHECK_HAS(resume.err, "the checkpoint was trained with vocabulary = [\".\",\"a\",\"b\"");
    // A checkpoint's vocabulary is checked when it is read.
    BOOST_TEST(input_error([] { vocabulary_from_json(Json::parse(R"(["a", "."])"), "f: info.vocabulary"); })
                   .find("f: info.vocabulary: the first entry is \"a\"; expected \".\"") != std::string::npos);
    CHECK_HAS(input_error([] { vocabulary_from_json(Json::parse(R"([".", "ab"])"), "f: info.vocabulary"); }),
              "f: info.vocabulary[1]: expected one character, got \"ab\"");
    CHECK_HAS(input_error([] { vocabulary_from_json(Json::parse(R"([".", "a", "a"])"), "f: info.vocabulary"); }),
              "f: info.vocabulary[2]: 'a' is listed twice");
}

BOOST_AUTO_TEST_CASE(a_short_run_learns) {
    const std::string run = trained_run();
    BOOST_TEST(fs::exists(run + "/metrics.csv"));
    // Three epochs, the training loss falling from about ln 23 = 3.14 (random logits).
    const Checkpoint c = load_checkpoint(run + "/checkpoint.ckpt");
    const auto history = checkpoint_history(c, "ckpt");
    BOOST_TEST_REQUIRE(history.size() == 3u);
    BOOST_TEST(history[0].train_loss < 3.4);
    BOOST_TEST(history[2].train_loss < history[0].train_loss - 0.2);
    BOOST_TEST(history[2].test_loss < 3.14);
}

BOOST_AUTO_TEST_CASE(sample_draws_the_same_words_for_a_seed) {
    const std::string run = trained_run();
    const std::string m = model_file("tiny", fixture_words());
    CommandResult a = cr("sample " + m + " --weights " + run + " --count 12 --seed 5");
    CommandResult b = cr("sample " + m + " --weights " + run + " --count 12 --seed 5");
    CommandResult more = cr("sample " + m + " --weights " + run + " --count 13 --seed 5");
    CommandResult other = cr("sample " + m + " --weights " + run + " --count 12 --seed 6");
    CommandResult cold = cr("sample " + m + " --weights " + run + " --count 12 --seed 5 --temperature 0.0001");
    BOOST_REQUIRE_MESSAGE(a.code == 0, a.err);
    BOOST_TEST(a.out == b.out);
    BOOST_TEST(more.out.starts_with(a.out));  // word k does not depend on the count
    BOOST_TEST(a.out != other.out);
    std::istringstream lines(a.out);
    std::string word;
    int n = 0;
    for (; std::getline(lines, word); ++n)
        for (char ch : word) BOOST_TEST((ch >= 'a' && ch <= 'z' && ch != 'd' && ch != 'k' && ch != 'q' && ch != 'x'), a.out);
    BOOST_TEST(n == 12);
    // Near temperature 0 every word is the likeliest path: all the same.
    std::istringstream cold_lines(cold.out);
    std::set<std::string> distinct;
    while (std::getline(cold_lines, word)) distinct.insert(word);
    BOOST_TEST(distinct.size() == 1u, cold.out);
}

BOOST_AUTO_TEST_CASE(sample_refuses_bad_flags_and_models_not_on_text) {
    const std::string run = trained_run();
    const std::string m = model_file("tiny", fixture_words());
    for (const char* flags : {"--count 0", "--temperature 0", "--temperature nan", "--seed -1", "--count x"}) {
        CommandResult r = cr("sample " + m + " --weights " + run + " " + flags);
        BOOST_TEST(r.code == 2, flags);
        BOOST_TEST(!r.err.empty(), flags);
    }
    CommandResult no_weights = cr("sample " + m);
    BOOST_TEST(no_weights.code == 2);
    CHECK_HAS(no_weights.err, "--weights is required");
    const std::string iris = source_root() + "/models/iris_neuron.json";
    CommandResult csv = cr("sample " + iris + " --weights " + run);
    BOOST_TEST(csv.code == 2);
    CHECK_HAS(csv.err, "training.data.kind: CSV data has no vocabulary of characters; sample draws words from a "
                       "model trained on text data");
    const std::string plain = source_root() + "/models/worked_example.json";
    CommandResult none = cr("sample " + plain + " --weights " + run);
    BOOST_TEST(none.code == 2);
    CHECK_HAS(none.err, "the model has no \"training\" block, so nothing says it was trained on text");
}

// predict on a text model: its windows come as a feed of ids, its classes are the run's characters.
BOOST_AUTO_TEST_CASE(predict_takes_windows_as_a_feed) {
    const std::string run = trained_run();
    const std::string m = model_file("tiny", fixture_words());
    CommandResult rows = cr("predict " + m + " --weights " + run);
    BOOST_TEST(rows.code == 2);
    CHECK_HAS(rows.err, "the model was trained on text; predict takes its windows as --feed FILE (ids)");
    const std::string feed = write("feed.json", R"({"x": [[0, 0], [0, 1]]})");
    CommandResult fed = cr("predict " + m + " --weights " + run + " --feed " + feed + " --json");
    BOOST_REQUIRE_MESSAGE(fed.code == 0, fed.err);
    const Json j = Json::parse(fed.out);
    BOOST_TEST(j["classes"][0] == ".");
    BOOST_TEST(j["classes"][1] == "a");
    BOOST_TEST(j["count"] == 2);
    for (const Json& r : j["rows"]) {
        const std::string name = r["class"].get<std::string>();
        BOOST_TEST(name == j["classes"][r["predicted"].get<std::size_t>()].get<std::string>());
        BOOST_TEST(name.size() == 1u, name);  // a character, not a class number
    }
}

// Accuracy and loss of [N,T,C] logits, per position: a bigram table whose row for the
// character read gives the next one's logits, 0 everywhere but ln 3 at its guess (. → a,
// a → b, b → ., c → c), so every counted position costs ln 2 when the guess is right
// (p = 3/6) and ln 6 when it is wrong (p = 1/6). 1,000 rows ".ab" → "ab." (3 right) and
// one ".c." → "c._" (. → a for c, wrong; c → c for ., wrong; the padding left out): the
// accuracy is 3000/3002 and the loss (3000 ln 2 + 2 ln 6)/3002, a mean over the 3,002 kept
// positions, though the last row falls in a second chunk of the evaluation (1,000 rows each).
BOOST_AUTO_TEST_CASE(accuracy_and_loss_of_a_sequence_count_each_kept_position) {
    const std::string words = write("abc.txt", "ab\nc\n");
    Json m = Json::parse(R"({
      "format": "chainrule-model", "version": 1, "name": "table", "dtype": "float64",
      "inputs": {"x": {"shape": ["N", 3]}, "y": {"shape": ["N", 3]}},
      "parameters": {"W": {"shape": [4, 4], "init": {"value": [[0, 1.0986122886681098, 0, 0],
                                                               [0, 0, 1.0986122886681098, 0],
                                                               [1.0986122886681098, 0, 0, 0],
                                                               [0, 0, 0, 1.0986122886681098]]}}},
      "nodes": [{"name": "logits", "op": "embedding", "inputs": ["x", "W"]},
                {"name": "L", "op": "cross_entropy", "inputs": ["logits", "y"], "attrs": {"ignore_index": -1}}],
      "outputs": {"prediction": "logits", "loss": "L"},
      "training": {"data": {"kind": "text", "block_size": 3, "target": "sequence",
                            "split": {"train_fraction": 0.5}},
                   "feed": {"x": "tokens", "y": "labels"}, "batch_size": 2, "optimizer": {"sgd": {"lr": 0.1}}}})");
    m["training"]["data"]["path"] = words;
    Model model = parse_model(m.dump(), write("table.json", m.dump()));
    model.graph.init_parameters(0);
    const TrainingSpec spec = parse_training(model.training, model.graph, model.path, model.dir);
    Dataset ds = load_dataset(spec.data);
    BOOST_TEST_REQUIRE(ds.class_names == (std::vector<std::string>{".", "a", "b", "c"}),
                       boost::test_tools::per_element());
    Split rows;
    rows.count = 1001;
    rows.features = 3;
    rows.sample_dims = {3};
    for (int i = 0; i < 1000; ++i) {
        rows.tokens.insert(rows.tokens.end(), {0, 1, 2});
        rows.labels.insert(rows.labels.end(), {1, 2, 0});
    }
    rows.tokens.insert(rows.tokens.end(), {0, 3, 0});
    rows.labels.insert(rows.labels.end(), {3, 0, -1});
    const EvalResult r = evaluate(model, spec, ds, rows);
    BOOST_TEST(r.accuracy == 3000.0 / 3002.0, boost::test_tools::tolerance(1e-15));
    BOOST_TEST(r.loss == (3000 * std::log(2.0) + 2 * std::log(6.0)) / 3002, boost::test_tools::tolerance(1e-12));
    // The last row alone: 0 of its 2 kept positions right, each costing ln 6.
    rows.count = 1;
    rows.tokens.erase(rows.tokens.begin(), rows.tokens.end() - 3);
    rows.labels.erase(rows.labels.begin(), rows.labels.end() - 3);
    const EvalResult last = evaluate(model, spec, ds, rows);
    BOOST_TEST(last.accuracy == 0.0);
    BOOST_TEST(last.loss == std::log(6.0), boost::test_tools::tolerance(1e-12));
}
