// libFuzzer target: one IDX file, raw or gzipped (read_idx, as `chainrule data` and
// training read each of the four MNIST files).
#include "data/idx.hpp"
#include "tests/fuzz/fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace chainrule;
    try {
        data::IdxFile f = data::read_idx(fuzz::as_file(data, size, ".idx"));
        std::int64_t count = 1;
        for (auto d : f.dims) count *= d;
        // The reader promises exactly product(dims) bytes.
        if (f.data.size() != std::size_t(count)) std::abort();
    } catch (const InputError&) {
    }
    return 0;
}
