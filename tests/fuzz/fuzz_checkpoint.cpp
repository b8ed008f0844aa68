// libFuzzer target: checkpoint bytes through decode_checkpoint and restore_parameters
// into the lecture's worked example (as `chainrule eval` and `train --resume` do).
// The first input byte chooses the mode: odd means "append the correct CRC-32 to the rest",
// so the fuzzer also reaches the header and tensor checks behind the CRC.
#include <zlib.h>

#include "graph/checkpoint.hpp"
#include "graph/model_json.hpp"
#include "tests/fuzz/fuzz_common.hpp"

namespace {

constexpr const char* kModel = R"({
  "format": "chainrule-model", "version": 1, "name": "worked_example",
  "inputs": {"x": {"shape": ["N", 4]}, "y": {"shape": ["N", 1]}},
  "parameters": {"w": {"shape": [4, 1], "init": {"constant": 0.1}}, "b": {"shape": [1], "init": {"constant": 0.1}}},
  "nodes": [
    {"name": "z", "op": "matmul", "inputs": ["x", "w"]},
    {"name": "a", "op": "add", "inputs": ["z", "b"]},
    {"name": "yhat", "op": "sigmoid", "inputs": ["a"]},
    {"name": "L", "op": "mse", "inputs": ["yhat", "y"]}
  ],
  "outputs": {"prediction": "yhat", "loss": "L"}
})";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace chainrule;
    if (size == 0) return 0;
    std::string bytes = fuzz::as_text(data + 1, size - 1);
    if (data[0] & 1) {
        auto crc = static_cast<std::uint32_t>(
            crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(bytes.data()), uInt(bytes.size())));
        bytes.append(reinterpret_cast<const char*>(&crc), sizeof crc);
    }
    static const Model model = parse_model(kModel, "worked_example.json");
    try {
        Checkpoint c = decode_checkpoint(bytes, "fuzz.ckpt");
        Model m = model;
        restore_parameters(m.graph, c, "fuzz.ckpt");
    } catch (const InputError&) {
    }
    return 0;
}
