// libFuzzer target: checkpoint bytes through decode_checkpoint and restore_parameters
// into the lecture's worked example (as `chainrule eval` and `train --resume` do).
// The first input byte chooses the mode: odd means "append the correct CRC-32 to the rest",
// so the fuzzer also reaches the header and tensor checks behind the CRC.
#include <zlib.h>

#include "format/model_json.hpp"
#include "tests/fuzz/fuzz_common.hpp"
#include "train/checkpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace chainrule;
    if (size == 0) return 0;
    std::string bytes = fuzz::as_text(data + 1, size - 1);
    if (data[0] & 1) {
        auto crc = static_cast<std::uint32_t>(
            crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(bytes.data()), uInt(bytes.size())));
        bytes.append(reinterpret_cast<const char*>(&crc), sizeof crc);
    }
    static const Model model = parse_model(fuzz::kWorkedExample, "worked_example.json");
    try {
        Checkpoint c = decode_checkpoint(bytes, "fuzz.ckpt");
        Model m = model;
        restore_parameters(m.graph, c, "fuzz.ckpt");
    } catch (const InputError&) {
    }
    return 0;
}
