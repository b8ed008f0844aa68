#!/usr/bin/python3
"""Writes the version-2 checkpoints of tests/regression/checkpoints that lie with a valid CRC.

Usage: make_checkpoint_lies.py GOOD_CKPT OUT_DIR
GOOD_CKPT: `chainrule train models/iris_neuron.json --epochs 2 --out DIR`'s DIR/checkpoint.ckpt.
Each case edits the header (or a value) and reseals the file with the right CRC-32, as a
program that writes lies would; the .expect files hold the fragment chainrule must print.
"""
import json, struct, sys, zlib

MAGIC = b"CHAINRULE-CKPT\n\0"


def unseal(b):
    (h,) = struct.unpack_from("<Q", b, 16)
    return json.loads(b[24:24 + h]), bytearray(b[24 + h:-4])


def reseal(header, data):
    h = json.dumps(header, separators=(",", ":")).encode()
    out = MAGIC + struct.pack("<Q", len(h)) + h + bytes(data)
    return out + struct.pack("<I", zlib.crc32(out) & 0xFFFFFFFF)


def cases(header, data):
    def edit(f):
        h, d = json.loads(json.dumps(header)), bytearray(data)
        f(h, d)
        return h, d

    def rename(h, d):
        h["tensors"][1]["name"] = h["tensors"][0]["name"]

    def nan(h, d):
        struct.pack_into("<d", d, h["tensors"][0]["offset"] + 8, float("nan"))

    def extra(h, d):
        end = len(d)
        h["tensors"].append({"name": "w_extra", "shape": [1], "offset": end, "bytes": 8})
        d += struct.pack("<d", 0.5)

    def set_info(key, value):
        return lambda h, d: h["info"].__setitem__(key, value)

    def set_history(i, key, value):
        return lambda h, d: h["info"]["history"][i].__setitem__(key, value)

    yield "v2_tensor_name_twice", edit(rename), "header.tensors[1].name: 'w' is the name of entry 0 too"
    yield "v2_tensor_nan", edit(nan), "header.tensors[0]: tensor 'w' has nan at entry 1"
    yield "v2_parameter_not_in_model", edit(extra), "checkpoint has a parameter 'w_extra' that model 'iris_neuron' does not have"
    yield "v2_history_epoch_huge", edit(set_history(1, "epoch", 2**63 - 1)), \
        "info.history[1].epoch: epoch 9223372036854775807 is not within 2 to 2"
    yield "v2_history_epochs_equal", edit(set_history(1, "epoch", 1)), "info.history[1].epoch: epoch 1 is not within 2 to 2"
    yield "v2_history_accuracy_1e30", edit(set_history(0, "test_accuracy", 1e30)), \
        "info.history[0].test_accuracy: 1e+30 is not an accuracy"
    yield "v2_history_seconds_negative", edit(set_history(0, "seconds", -5)), "info.history[0].seconds: must be >= 0"
    yield "v2_optimizer_steps_huge", edit(set_info("optimizer_steps", 2**63 - 1)), \
        "info.optimizer_steps: 9223372036854775807 is outside 0 to 2"
    yield "v2_lr_negative", edit(set_info("lr", -0.1)), "info.lr: must be > 0, got -0.1"
    yield "v2_sampling_unknown", edit(set_info("sampling", "sorted")), "info.sampling: expected"
    yield "v2_other_model", edit(lambda h, d: h.__setitem__("model", "mnist_mlp")), \
        "the checkpoint was written for model 'mnist_mlp', but this is model 'iris_neuron'"
    yield "v1_with_optimizer_state", edit(lambda h, d: h.__setitem__("version", 1)), \
        "unknown key 'optimizer_state' in a version 1 checkpoint"


def main():
    good, out = sys.argv[1], sys.argv[2]
    header, data = unseal(open(good, "rb").read())
    assert header["version"] == 2 and header["model"] == "iris_neuron" and header["epoch"] == 2
    for name, (h, d), expect in cases(header, data):
        open(f"{out}/{name}.ckpt", "wb").write(reseal(h, d))
        open(f"{out}/{name}.expect", "w").write(expect + "\n")


main()
