// `chainrule sample MODEL --weights RUN`: words drawn one character at a time from a model
// trained on text (docs/cli.md). Each word starts from the start token; the logits its loss
// reads give the next character's probabilities (softmax at a temperature), a character is
// drawn from them, and the word grows until the end token comes. The words are drawn side by
// side, as the rows of one batch, each from its own generator, so word k is the same for a
// seed whatever the count.
#include <algorithm>
#include <cmath>
#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "core/error.hpp"
#include "core/random.hpp"
#include "data/kind.hpp"
#include "ops/op.hpp"
#include "train/checkpoint.hpp"
#include "train/model_file.hpp"

namespace chainrule::cli {
namespace {

// Words of a model without a window (a "next" model slides its window along) stop here.
constexpr std::size_t kMaxSampledChars = 100;

struct SampleOptions {
    std::string model, weights;
    std::int64_t count = 20;
    double temperature = 1.0;
    std::uint64_t seed = 0;
};

// What sampling needs of a model trained on text: its token input, its labels input, the
// logits its loss reads, the window and the vocabulary of the run.
struct TextModel {
    int tokens = -1, labels = -1, logits = -1;
    std::int64_t block = 0;
    bool sequence = false;  // a label per position: the whole word is one window
    std::vector<std::string> vocabulary;
};

int fed_input(const Graph& g, const TrainingSpec& spec, const std::string& stream) {
    for (const auto& [input, s] : spec.feed)
        if (s == stream) return g.find(input);
    return -1;
}

TextModel text_model(const ModelFile& f, const std::string& model) {
    if (!f.training)
        throw InputError(fmt::format("{}: the model has no \"training\" block, so nothing says it was trained on "
                                     "text; sample draws words from a model trained on text data (docs/data.md)",
                                     model));
    const TrainingSpec& spec = *f.training;
    const data::DataKind& kind = data::data_kind(spec.data.kind, spec.data.where);
    if (!kind.vocabulary)
        throw InputError(fmt::format("{}.kind: {} data has no vocabulary of characters; sample draws words from a "
                                     "model trained on text data (\"kind\": \"text\", docs/data.md)",
                                     spec.data.where, kind.title));
    const Graph& g = f.model.graph;
    TextModel t;
    t.block = spec.data.block_size;
    t.sequence = spec.data.per_position_labels;
    t.tokens = fed_input(g, spec, kind.streams.front().name);
    t.labels = fed_input(g, spec, data::kLabels);
    if (t.tokens < 0)
        throw InputError(fmt::format("{}: training.feed feeds no input from the \"{}\" stream; sample feeds the "
                                     "words' characters there",
                                     model, kind.streams.front().name));
    if (g.loss() < 0) throw InputError(fmt::format("{}: outputs: the model has no \"loss\" output", model));
    const Node& loss = g.node(g.loss());
    const int labels_at = loss.kind == NodeKind::op ? loss.op->labels_input : -1;
    if (labels_at < 0 || loss.inputs.size() != 2)
        throw InputError(fmt::format("{}: the loss '{}' reads no class labels; sample takes the logits that a "
                                     "cross_entropy loss reads",
                                     model, loss.name));
    t.logits = loss.inputs[labels_at == 0 ? 1 : 0];
    return t;
}

// The next character's id, drawn from softmax(logits / temperature).
std::int32_t draw(const Tensor& logits, std::int64_t offset, std::int64_t classes, double temperature, Rng& rng) {
    double top = -INFINITY;
    for (std::int64_t k = 0; k < classes; ++k) top = std::max(top, logits.at(offset + k));
    std::vector<double> p(static_cast<std::size_t>(classes));
    double sum = 0;
    for (std::int64_t k = 0; k < classes; ++k) sum += p[std::size_t(k)] = std::exp((logits.at(offset + k) - top) / temperature);
    double u = rng.uniform() * sum;
    for (std::int64_t k = 0; k < classes; ++k) {
        u -= p[std::size_t(k)];
        if (u < 0) return std::int32_t(k);
    }
    return std::int32_t(classes - 1);  // rounding left u a hair above 0
}

std::vector<std::string> sample_words(Graph& g, const TextModel& t, const SampleOptions& o) {
    const std::int64_t n = o.count, block = t.block, classes = std::int64_t(t.vocabulary.size());
    Tensor& x = g.input_buffer(t.tokens, {n, block});
    x.fill(0);
    if (t.labels >= 0) g.input_buffer(t.labels, t.sequence ? Dims{n, block} : Dims{n}).fill(0);
    Plan plan = g.plan(Pass::exact());  // every node's value: the logits may be inside a fused chain
    std::vector<Rng> rngs;
    for (std::int64_t r = 0; r < n; ++r) rngs.emplace_back(noise_seed(o.seed, std::uint64_t(r)));
    std::vector<std::vector<std::int32_t>> words(static_cast<std::size_t>(n));
    std::vector<char> done(static_cast<std::size_t>(n), 0);
    const std::size_t longest = t.sequence ? std::size_t(block - 1) : kMaxSampledChars;
    for (std::size_t len = 0; len <= longest; ++len) {
        g.forward(plan);
        const Tensor& logits = g.node(t.logits).value;
        if (logits.dims().back() != classes || logits.numel() != n * classes * (t.sequence ? block : 1))
            throw InputError(fmt::format("the logits '{}' are {} for {} words; expected [{},{}{}] for the run's {} "
                                         "characters",
                                         g.node(t.logits).name, format_dims(logits.dims()), n, n,
                                         t.sequence ? fmt::format("{},", block) : "", classes, classes));
        bool any = false;
        for (std::int64_t r = 0; r < n; ++r) {
            if (done[std::size_t(r)]) continue;
            const std::int64_t at = t.sequence ? (r * block + std::int64_t(len)) * classes : r * classes;
            const std::int32_t id = draw(logits, at, classes, o.temperature, rngs[std::size_t(r)]);
            if (id == 0 || len == longest) {
                done[std::size_t(r)] = 1;
                if (id == 0) continue;
            }
            words[std::size_t(r)].push_back(id);
            if (t.sequence) {
                if (std::int64_t(len) + 1 < block) x.set(r * block + std::int64_t(len) + 1, double(id));
            } else {
                for (std::int64_t k = 0; k + 1 < block; ++k) x.set(r * block + k, x.at(r * block + k + 1));
                x.set(r * block + block - 1, double(id));
            }
            any = any || !done[std::size_t(r)];
        }
        if (!any) break;
    }
    std::vector<std::string> out;
    for (const auto& w : words) {
        std::string s;
        for (std::int32_t id : w) s += t.vocabulary[std::size_t(id)];
        out.push_back(std::move(s));
    }
    return out;
}

void run(const SampleOptions& o) {
    ModelFile f = load_model_file(o.model);
    for (const auto& w : f.model.warnings) fmt::print(stderr, "warning: {}\n", w);
    TextModel t = text_model(f, o.model);
    Graph& g = f.model.graph;
    g.init_parameters(0);
    const LoadedWeights weights = load_weights(g, o.weights);
    t.vocabulary = run_vocabulary(load_checkpoint(weights.file), weights.file);
    if (t.vocabulary.empty())
        throw InputError(fmt::format("--weights {}: {} holds no vocabulary (info.vocabulary), so the run was not "
                                     "trained on text; give a run of `chainrule train {}`",
                                     o.weights, weights.file, o.model));
    for (const std::string& word : sample_words(g, t, o)) fmt::print("{}\n", word);
}

}  // namespace

void add_sample(CLI::App& app) {
    auto o = std::make_shared<SampleOptions>();
    auto* cmd = app.add_subcommand("sample", "Generate words with a model trained on text: one character at a "
                                             "time from the start token to the end token, one word per line");
    cmd->add_option("MODEL", o->model, "model JSON file with a \"training\" block of text data")->required();
    cmd->add_option("--weights", o->weights, "a run directory or a checkpoint file of the model (required)")
        ->required()
        ->option_text("RUN");
    cmd->add_option("--count", o->count, "how many words (default 20)")->check(whole_in(1, 100000))->option_text("N");
    cmd->add_option("--temperature", o->temperature,
                    "divides the logits before the softmax: below 1 likelier characters, above 1 more varied "
                    "(default 1)")
        ->check(finite_at_least(0, true))
        ->option_text("T");
    cmd->add_option("--seed", o->seed, "the draws' seed: the same seed gives the same words (default 0)")
        ->check(unsigned_integer())
        ->option_text("S");
    cmd->callback([o] { run(*o); });
}

}  // namespace chainrule::cli
