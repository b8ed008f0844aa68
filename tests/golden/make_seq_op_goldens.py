#!/usr/bin/python3
"""Writes tests/golden/seq_ops.json: concat, cross_entropy over [..., C] logits and dot computed by PyTorch.

Run with Debian's python3-torch (1.13): /usr/bin/python3 tests/golden/make_seq_op_goldens.py
The tests (tests/test_token_ops.cpp) read the file and do not need PyTorch.

The format of token_ops.json: each case holds the op's inputs in order and attrs (as a model
writes them), a weight r for the loss L = sum(r * y), and PyTorch's y and dL/d(each
differentiable input), all float64. cross_entropy's class indices are whole numbers (fed as
floats) and have no gradient; its soft targets do. concat's inputs are named x0, x1, ...
"""
import json
import pathlib

import torch
import torch.nn.functional as F


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


def concat_case(shapes, axis):
    xs = [(f"x{i}", randn(*s)) for i, s in enumerate(shapes)]
    return "concat", xs, {"axis": axis}, lambda: torch.cat([x for _, x in xs], axis)


def cross_entropy_case(shape, soft):
    """F.cross_entropy(logits.reshape(-1, C), labels.reshape(-1)): the mean over every position."""
    c = shape[-1]
    logits = randn(*shape)
    if soft:  # probabilities per position, differentiable
        labels = torch.softmax(torch.randn(*shape, dtype=torch.float64), -1).requires_grad_()
        run = lambda: F.cross_entropy(logits.reshape(-1, c), labels.reshape(-1, c))
    else:
        labels = torch.randint(0, c, shape[:-1], dtype=torch.int64)
        run = lambda: F.cross_entropy(logits.reshape(-1, c), labels.reshape(-1))
    return "cross_entropy", [("logits", logits), ("labels", labels)], {}, run


def cross_entropy_ignoring_case(shape, ignored):
    """F.cross_entropy(..., ignore_index=-1) with `ignored` of the positions' labels -1: the
    mean over the others (a sequence's padding after its end)."""
    c = shape[-1]
    logits = randn(*shape)
    labels = torch.randint(0, c, shape[:-1], dtype=torch.int64)
    labels.view(-1)[torch.randperm(labels.numel())[:ignored]] = -1
    run = lambda: F.cross_entropy(logits.reshape(-1, c), labels.reshape(-1), ignore_index=-1)
    return "cross_entropy", [("logits", logits), ("labels", labels)], {"ignore_index": -1}, run


def dot_case(shapes):
    """dot(x0, x1, x2, ...): sum((a * b).sum() for each pair), the product HessianGraph takes."""
    xs = [(f"x{i}", randn(*shapes[i // 2])) for i in range(2 * len(shapes))]
    return "dot", xs, {}, lambda: sum((xs[k][1] * xs[k + 1][1]).sum() for k in range(0, len(xs), 2))


def main():
    torch.manual_seed(29)
    cases = [
        concat_case([[3, 2], [3, 4]], -1), concat_case([[2, 3], [1, 3], [4, 3]], 0),
        concat_case([[2, 3, 2, 5], [2, 1, 2, 5], [2, 2, 2, 5], [2, 3, 2, 5]], 1), concat_case([[4, 3]], -2),
        concat_case([[2, 3, 4], [2, 3, 1]], 2),
        cross_entropy_case([5, 4], False), cross_entropy_case([3, 4, 5], False),
        cross_entropy_case([2, 2, 3, 4], False), cross_entropy_case([3, 4, 5], True),
        cross_entropy_case([4, 3], True),
        cross_entropy_ignoring_case([3, 5, 4], 6), cross_entropy_ignoring_case([4, 3], 1),
    ]
    # Drawn after the others, so their cases keep their numbers.
    cases += [dot_case([[3, 4]]), dot_case([[2, 2], [3], [1]]), dot_case([[2, 1, 3], [5]])]
    out = []
    for op, inputs, attrs, run in cases:
        y = run()
        r = torch.randn(y.shape, dtype=torch.float64)  # a scalar for cross_entropy
        (y * r).sum().backward()
        out.append({
            "op": op, "attrs": attrs, "order": [name for name, _ in inputs],
            "inputs": {name: t.detach().double().tolist() for name, t in inputs},
            "r": r.tolist(), "y": y.detach().tolist(),
            "grads": {name: t.grad.tolist() for name, t in inputs if t.dtype == torch.float64},
        })
    path = pathlib.Path(__file__).with_name("seq_ops.json")
    path.write_text(json.dumps({"about": __doc__.splitlines()[0], "torch": torch.__version__, "cases": out}) + "\n")
    print(f"wrote {path.name}: {len(out)} cases")


if __name__ == "__main__":
    main()
