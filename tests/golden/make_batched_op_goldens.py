#!/usr/bin/python3
"""Writes tests/golden/batched_ops.json: batched matmul, slice and rank-4 ops computed by PyTorch.

Run with Debian's python3-torch (1.13): /usr/bin/python3 tests/golden/make_batched_op_goldens.py
The tests read the file and do not need PyTorch.

Each case holds the op's inputs and attrs (as a model writes them), a weight r for the loss
L = sum(r * y), and PyTorch's y (torch.matmul(A, B), x.narrow(axis, start, end - start), or
at rank 4 the reshape and transpose of attention heads, softmax, add and mul) and
dL/d(each input), all float64.
"""
import json
import pathlib

import torch

CASES = [
    ("matmul", {"A": [3, 4], "B": [4, 2]}, {}),
    ("matmul", {"A": [2, 5, 3], "B": [3, 4]}, {}),              # [N,T,C]·[C,K]
    ("matmul", {"A": [2, 2, 3, 4], "B": [2, 2, 4, 3]}, {}),     # [N,H,T,D]·[N,H,D,T]
    ("matmul", {"A": [2, 3, 4], "B": [2, 4, 5]}, {}),           # [B,M,K]·[B,K,N]
    ("matmul", {"A": [2, 1, 3, 4], "B": [3, 4, 2]}, {}),        # both operands broadcast
    ("matmul", {"A": [3, 4], "B": [2, 4, 5]}, {}),              # a 2-D A shared by every block
    ("matmul", {"A": [1, 3, 4], "B": [2, 4, 2]}, {}),
    ("matmul", {"A": [2, 3, 4], "B": [1, 4, 2]}, {}),
    ("slice", {"x": [3, 5]}, {"axis": -1, "start": 1, "end": 4}),
    ("slice", {"x": [2, 6, 3]}, {"axis": 1, "start": 2, "end": 5}),
    ("slice", {"x": [2, 3, 4, 5]}, {"axis": -2, "start": 1}),
    ("slice", {"x": [4, 3]}, {"axis": 0, "start": 1, "end": 3}),
    # [N,T,C] -> [N,T,H,D] -> [N,H,T,D]: attention's heads
    ("reshape", {"x": [2, 3, 6]}, {"shape": [-1, 3, 2, 3]}),
    ("transpose", {"x": [2, 3, 2, 4]}, {"perm": [0, 2, 1, 3]}),
    ("transpose", {"x": [2, 2, 3, 4]}, {"perm": [0, 1, 3, 2]}),
    ("softmax", {"x": [2, 2, 3, 4]}, {"axis": -1}),
    ("softmax", {"x": [2, 2, 3, 4]}, {"axis": 1}),
    ("add", {"a": [2, 2, 3, 4], "b": [2, 1, 4]}, {}),
    ("mul", {"a": [2, 1, 3, 4], "b": [2, 3, 1]}, {}),
]


def run(op, ins, attrs):
    if op == "matmul":
        return torch.matmul(ins["A"], ins["B"])
    if op == "reshape":
        return ins["x"].reshape(attrs["shape"])
    if op == "transpose":
        return ins["x"].permute(attrs["perm"])
    if op == "softmax":
        return torch.softmax(ins["x"], attrs["axis"])
    if op == "add":
        return ins["a"] + ins["b"]
    if op == "mul":
        return ins["a"] * ins["b"]
    x = ins["x"]
    axis = attrs.get("axis", -1)
    start = attrs.get("start", 0)
    end = attrs.get("end", x.shape[axis])
    return x.narrow(axis, start, end - start)


def main():
    torch.manual_seed(29)
    out = []
    for op, shapes, attrs in CASES:
        ins = {k: torch.randn(*s, dtype=torch.float64, requires_grad=True) for k, s in shapes.items()}
        y = run(op, ins, attrs)
        r = torch.randn(*y.shape, dtype=torch.float64)
        (y * r).sum().backward()
        out.append({"op": op, "attrs": attrs, "inputs": {k: v.detach().tolist() for k, v in ins.items()},
                    "order": list(shapes), "r": r.tolist(), "y": y.detach().tolist(),
                    "grads": {k: v.grad.tolist() for k, v in ins.items()}})
    path = pathlib.Path(__file__).with_name("batched_ops.json")
    path.write_text(json.dumps({"about": __doc__.splitlines()[0], "torch": torch.__version__, "cases": out}) + "\n")
    print(f"wrote {path.name}: {len(out)} cases")


if __name__ == "__main__":
    main()
