// libFuzzer target: a CSV file through read_csv and the lecture's per-class split, with
// every column but the last as features and the last as the label.
#include "data/csv.hpp"
#include "tests/fuzz/fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace chainrule;
    try {
        data::CsvTable t = data::read_csv(fuzz::as_file(data, size, ".csv"));
        data::DataSpec spec;
        spec.kind = "csv";
        spec.path = t.file;
        spec.where = "fuzz.json: training.data";
        for (int c = 0; c + 1 < t.columns; ++c) spec.features.push_back(c);
        spec.label = int(t.columns) - 1;
        data::Dataset ds = data::csv_dataset(t, spec);
        if (ds.train.count + ds.test.count > t.rows()) std::abort();
    } catch (const InputError&) {
    }
    return 0;
}
