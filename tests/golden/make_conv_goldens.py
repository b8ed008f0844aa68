#!/usr/bin/python3
"""Writes tests/golden/conv.json: conv2d, max_pool2d and avg_pool2d computed by PyTorch.

Run with Debian's python3-torch (1.13): /usr/bin/python3 tests/golden/make_conv_goldens.py
The tests read the file and do not need PyTorch.

Each case holds the op's inputs and attrs (as a model writes them), a weight r for the loss
L = sum(r * y), and PyTorch's y and dL/d(each input), all float64.
"""
import json
import pathlib

import torch
import torch.nn.functional as F

CASES = [
    ("conv2d", {"x": [2, 3, 6, 5], "w": [4, 3, 3, 3], "b": [4]}, {}),
    ("conv2d", {"x": [1, 2, 7, 6], "w": [3, 2, 2, 3]}, {"stride": [2, 1], "padding": 1}),
    ("conv2d", {"x": [2, 1, 9, 8], "w": [2, 1, 3, 2], "b": [2]}, {"dilation": 2, "padding": [1, 0]}),
    ("conv2d", {"x": [1, 3, 5, 5], "w": [2, 3, 5, 5], "b": [2]}, {"padding": 2, "stride": 2}),
    ("conv2d", {"x": [2, 1, 12, 12], "w": [8, 1, 5, 5], "b": [8]}, {"padding": 2}),
    ("max_pool2d", {"x": [2, 3, 6, 6]}, {"kernel_size": 2}),
    ("max_pool2d", {"x": [1, 2, 7, 5]}, {"kernel_size": [3, 2], "stride": [2, 1], "padding": [1, 1]}),
    ("max_pool2d", {"x": [1, 1, 5, 5]}, {"kernel_size": 3, "stride": 2, "padding": 1}),
    ("avg_pool2d", {"x": [2, 3, 6, 6]}, {"kernel_size": 2}),
    ("avg_pool2d", {"x": [1, 2, 7, 5]}, {"kernel_size": [3, 2], "stride": [2, 1], "padding": [1, 1]}),
    ("avg_pool2d", {"x": [1, 1, 5, 5]}, {"kernel_size": 3, "stride": 2, "padding": 1}),
]


def main():
    torch.manual_seed(7)
    out = []
    for op, shapes, attrs in CASES:
        ins = {k: torch.randn(*s, dtype=torch.float64, requires_grad=True) for k, s in shapes.items()}
        if op == "conv2d":
            y = F.conv2d(ins["x"], ins["w"], ins.get("b"), stride=attrs.get("stride", 1),
                         padding=attrs.get("padding", 0), dilation=attrs.get("dilation", 1))
        else:
            fn = F.max_pool2d if op == "max_pool2d" else F.avg_pool2d
            kw = {"kernel_size": attrs["kernel_size"], "stride": attrs.get("stride", attrs["kernel_size"]),
                  "padding": attrs.get("padding", 0)}
            y = fn(ins["x"], **kw)
        r = torch.randn(*y.shape, dtype=torch.float64)
        (y * r).sum().backward()
        out.append({"op": op, "attrs": attrs, "inputs": {k: v.detach().tolist() for k, v in ins.items()},
                    "order": list(shapes), "r": r.tolist(), "y": y.detach().tolist(),
                    "grads": {k: v.grad.tolist() for k, v in ins.items()}})
    path = pathlib.Path(__file__).with_name("conv.json")
    path.write_text(json.dumps({"about": __doc__.splitlines()[0], "torch": torch.__version__, "cases": out}) + "\n")
    print(f"wrote {path.name}: {len(out)} cases")


if __name__ == "__main__":
    main()
