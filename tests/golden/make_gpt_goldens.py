#!/usr/bin/python3
"""Writes tests/golden/gpt.json and gpt_grads.bin: models/words_gpt.json run by PyTorch in float64.

Run with Debian's python3-torch (1.13): /usr/bin/python3 tests/golden/make_gpt_goldens.py
tests/test_gpt.cpp reads both files and does not need PyTorch.

The model is read from its JSON and run node by node with the torch functions of the same
names (F.embedding, F.layer_norm, torch.matmul, F.gelu, F.cross_entropy, ...), so the
reference is PyTorch's, not a second transcription of the model. The weights follow a rule
both sides compute: entry i of the k-th parameter (in the file's order) is
offset + amplitude·sin(0.37·i + 1.3·k + 0.1), with (offset, amplitude) from the parameter's
init: (1, 0.1) for a constant 1 (layer-norm gains), (0, 0.05) for a constant 0 (biases), and
(0, 10·std) for a normal init — large enough that attention is far from uniform.
gpt.json holds the rule, a batch (ids, targets), the loss, and per parameter its name, shape
and the offset of its gradient in gpt_grads.bin (little-endian float64, row-major).
"""
import json
import math
import pathlib
import struct

import torch
import torch.nn.functional as F

ROOT = pathlib.Path(__file__).resolve().parents[2]
HERE = pathlib.Path(__file__).resolve().parent


def rule(init):
    if "constant" in init:
        return (1.0, 0.1) if init["constant"] == 1 else (float(init["constant"]), 0.05)
    return 0.0, 10 * init["normal"]["std"]


def weights(spec):
    out = {}
    for k, (name, p) in enumerate(spec.items()):
        offset, amplitude = rule(p["init"])
        n = math.prod(p["shape"])
        i = torch.arange(n, dtype=torch.float64)
        w = offset + amplitude * torch.sin(0.37 * i + 1.3 * k + 0.1)
        out[name] = w.reshape(p["shape"]).requires_grad_(True)
    return out


def run(model, values):
    """Every node of the model in torch, in order: the loss node's value."""
    v = dict(values)
    for n in model["nodes"]:
        x = [v[i] for i in n["inputs"]]
        a = n.get("attrs", {})
        op = n["op"]
        if op == "embedding":
            y = F.embedding(x[0].long(), x[1])
        elif op == "add":
            y = x[0] + x[1]
        elif op == "mul":
            y = x[0] * x[1]
        elif op == "matmul":
            y = torch.matmul(x[0], x[1])
        elif op == "layer_norm":
            y = F.layer_norm(x[0], (x[0].shape[-1],), x[1] if len(x) > 1 else None, x[2] if len(x) > 2 else None,
                             a.get("eps", 1e-5))
        elif op == "reshape":
            y = x[0].reshape(a["shape"])
        elif op == "transpose":
            y = x[0].permute(a["perm"])
        elif op == "causal_mask":
            t = x[0].shape[-1]
            y = x[0].masked_fill(torch.triu(torch.ones(t, t), 1).bool(), float("-inf"))
        elif op == "softmax":
            y = torch.softmax(x[0], dim=a.get("axis", -1))
        elif op == "gelu":
            y = F.gelu(x[0], approximate=a.get("approximate", "none"))
        elif op == "cross_entropy":
            c = x[0].shape[-1]
            y = F.cross_entropy(x[0].reshape(-1, c), x[1].reshape(-1).long(),
                                ignore_index=-100 if a.get("ignore_index") is None else a["ignore_index"])
        else:
            raise SystemExit(f"make_gpt_goldens.py: no torch rule for op {op}")
        v[n["name"]] = y
    return v[model["outputs"]["loss"]]


def main():
    model = json.loads((ROOT / "models" / "words_gpt.json").read_text())
    torch.manual_seed(29)
    t = model["inputs"]["ids"]["shape"][1]
    vocab = model["parameters"]["tok"]["shape"][0]
    ids = torch.randint(0, vocab, (3, t), dtype=torch.float64)
    targets = torch.randint(0, vocab, (3, t), dtype=torch.float64)
    targets[:, t // 2:] = -1  # a word's padding: left out of the loss by ignore_index
    w = weights(model["parameters"])
    values = {"ids": ids, "targets": targets, **w}
    for name, c in model.get("constants", {}).items():
        values[name] = torch.tensor(c["value"], dtype=torch.float64)
    loss = run(model, values)
    loss.backward()
    blob, params = b"", []
    for name, p in w.items():
        params.append({"name": name, "shape": list(p.shape), "offset": len(blob) // 8})
        blob += struct.pack(f"<{p.numel()}d", *p.grad.reshape(-1).tolist())
    (HERE / "gpt_grads.bin").write_bytes(blob)
    out = {"about": __doc__.split("\n")[0], "torch": torch.__version__,
           "rule": "offset + amplitude*sin(0.37*i + 1.3*k + 0.1); (1, 0.1) constant 1, (c, 0.05) constant c, "
                   "(0, 10*std) normal",
           "ids": ids.tolist(), "targets": targets.tolist(), "loss": loss.item(), "params": params}
    (HERE / "gpt.json").write_text(json.dumps(out, indent=1) + "\n")
    print(f"loss {loss.item():.12g}; {len(params)} parameters, {len(blob) // 8} gradient entries")


if __name__ == "__main__":
    main()
