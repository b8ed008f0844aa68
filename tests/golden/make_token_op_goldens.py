#!/usr/bin/python3
"""Writes tests/golden/token_ops.json: gelu, layer_norm, embedding and causal_mask computed by PyTorch.

Run with Debian's python3-torch (1.13): /usr/bin/python3 tests/golden/make_token_op_goldens.py
The tests (tests/test_token_ops.cpp) read the file and do not need PyTorch.

Each case holds the op's inputs in order and attrs (as a model writes them), a weight r for
the loss L = sum(r * y), and PyTorch's y and dL/d(each differentiable input), all float64.
embedding's ids are whole numbers (fed as floats, like class labels) and have no gradient;
causal_mask's -inf outputs are written as null (JSON has no infinities).
"""
import json
import math
import pathlib

import torch
import torch.nn.functional as F


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


def ids(*shape, rows, repeat):
    """Whole-number ids below `rows`; position 0's id is used again at the last position."""
    t = torch.randint(0, rows, shape, dtype=torch.int64)
    flat = t.view(-1)
    if repeat and flat.numel() > 1:
        flat[-1] = flat[0]
    return t


def gelu_case(shape, approximate):
    x = randn(*shape) * 2
    x.retain_grad()
    return "gelu", [("x", x)], {"approximate": approximate}, lambda: F.gelu(x, approximate=approximate)


def layer_norm_case(shape, affine, eps):
    x = randn(*shape)
    c = shape[-1]
    params = [("weight", randn(c)), ("bias", randn(c))][:affine]
    w = params[0][1] if affine >= 1 else None
    b = params[1][1] if affine >= 2 else None
    return "layer_norm", [("x", x)] + params, {"eps": eps}, lambda: F.layer_norm(x, (c,), w, b, eps)


def embedding_case(id_shape, rows, width):
    i = ids(*id_shape, rows=rows, repeat=True)
    table = randn(rows, width)
    return "embedding", [("ids", i), ("table", table)], {}, lambda: F.embedding(i, table)


def causal_mask_case(shape):
    x = randn(*shape)
    t = shape[-1]
    mask = torch.triu(torch.ones(t, t), 1).bool()
    return "causal_mask", [("x", x)], {}, lambda: x.masked_fill(mask, float("-inf"))


def nulls_for_inf(values):
    if isinstance(values, list):
        return [nulls_for_inf(v) for v in values]
    return None if math.isinf(values) else values


def main():
    torch.manual_seed(29)
    cases = [
        gelu_case([3, 4], "none"), gelu_case([2, 3, 5], "tanh"), gelu_case([7], "none"),
        layer_norm_case([2, 3, 5], 2, 1e-5), layer_norm_case([4, 6], 0, 1e-3),
        layer_norm_case([2, 2, 2, 3], 1, 0.5), layer_norm_case([8], 2, 1e-5),
        embedding_case([2, 4], 5, 3), embedding_case([6], 3, 2), embedding_case([2, 2, 3], 4, 5),
        causal_mask_case([4, 4]), causal_mask_case([2, 3, 3]), causal_mask_case([2, 2, 5, 5]),
    ]
    out = []
    for op, inputs, attrs, run in cases:
        y = run()
        r = torch.randn(*y.shape, dtype=torch.float64)
        (y * r).sum().backward()  # -inf for causal_mask; the gradients are finite
        out.append({
            "op": op, "attrs": attrs, "order": [name for name, _ in inputs],
            "inputs": {name: t.detach().double().tolist() for name, t in inputs},
            "r": r.tolist(), "y": nulls_for_inf(y.detach().tolist()),
            "grads": {name: t.grad.tolist() for name, t in inputs if t.dtype == torch.float64},
        })
    path = pathlib.Path(__file__).with_name("token_ops.json")
    path.write_text(json.dumps({"about": __doc__.splitlines()[0], "torch": torch.__version__, "cases": out}) + "\n")
    print(f"wrote {path.name}: {len(out)} cases")


if __name__ == "__main__":
    main()
