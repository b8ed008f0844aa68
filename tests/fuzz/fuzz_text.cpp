// libFuzzer target: a word list through the text kind's loader (data/text.cpp), with windows
// of 3 and the next character, and again as whole words with a label per position.
#include "data/dataset.hpp"
#include "tests/fuzz/fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace chainrule;
    const std::string file = fuzz::as_file(data, size, ".txt");
    for (bool sequence : {false, true}) {
        try {
            data::DataSpec spec;
            spec.kind = "text";
            spec.path = file;
            spec.where = "fuzz.json: training.data";
            spec.block_size = sequence ? 8 : 3;
            spec.per_position_labels = sequence;
            spec.train_fraction = 0.5;
            data::Dataset ds = data::load_dataset(spec);
            // Every id is a character of the vocabulary, and every sample has its labels.
            for (const data::Split* s : {&ds.train, &ds.test}) {
                if (std::int64_t(s->tokens.size()) != s->count * spec.block_size) std::abort();
                if (std::int64_t(s->labels.size()) != s->count * ds.labels_per_sample) std::abort();
                for (auto id : s->tokens)
                    if (id < 0 || id >= ds.classes) std::abort();
                for (auto id : s->labels)
                    if (id < 0 || id >= ds.classes) std::abort();
            }
        } catch (const InputError&) {
        }
    }
    return 0;
}
