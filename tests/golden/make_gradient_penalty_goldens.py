#!/usr/bin/env python3
"""Goldens for a model with a `grad` node (tests/test_backward_graph.cpp): a tanh MLP whose
loss is mse + mean((dL0/dx)²), an input-gradient penalty, in float64 with PyTorch's
create_graph=True. Writes tests/fixtures/gradient_penalty.json (the model) and
tests/golden/gradient_penalty.json (loss and parameter gradients).
Run: /usr/bin/python3 tests/golden/make_gradient_penalty_goldens.py (from the source root)."""
import json
import torch

torch.manual_seed(3)
d = torch.float64
x = torch.randn(4, 3, dtype=d)
t = torch.randn(4, 1, dtype=d)
W1 = torch.randn(3, 5, dtype=d)
b1 = torch.randn(5, dtype=d)
W2 = torch.randn(5, 1, dtype=d)
b2 = torch.randn(1, dtype=d)
params = {"W1": W1, "b1": b1, "W2": W2, "b2": b2}
for p in params.values():
    p.requires_grad_(True)
xg = x.clone().requires_grad_(True)

yhat = torch.tanh(xg @ W1 + b1) @ W2 + b2
L0 = ((yhat - t) ** 2).sum() / (2 * x.shape[0])  # chainrule's mse: 1/(2N)·Σ(y−t)²
(gx,) = torch.autograd.grad(L0, xg, create_graph=True)
loss = L0 + (gx * gx).mean()
grads = torch.autograd.grad(loss, list(params.values()))

as_list = lambda v: v.detach().tolist()
model = {
    "format": "chainrule-model", "version": 1, "name": "gradient_penalty", "dtype": "float64",
    "doc": "a tanh MLP whose loss is mse + mean((dL0/dx)²): a grad node, and a loss built on it",
    "inputs": {"x": {"shape": ["N", 3], "value": as_list(x)}, "t": {"shape": ["N", 1], "value": as_list(t)}},
    "parameters": {k: {"shape": list(v.shape), "init": {"value": as_list(v)}} for k, v in params.items()},
    "nodes": [
        {"name": "z1", "op": "linear", "inputs": ["x", "W1", "b1"]},
        {"name": "h", "op": "tanh", "inputs": ["z1"]},
        {"name": "z2", "op": "matmul", "inputs": ["h", "W2"]},
        {"name": "yhat", "op": "add", "inputs": ["z2", "b2"]},
        {"name": "L0", "op": "mse", "inputs": ["yhat", "t"]},
        {"name": "gx", "op": "grad", "inputs": ["L0", "x"]},
        {"name": "gx2", "op": "mul", "inputs": ["gx", "gx"]},
        {"name": "penalty", "op": "mean", "inputs": ["gx2"]},
        {"name": "L", "op": "add", "inputs": ["L0", "penalty"]},
    ],
    "outputs": {"prediction": "yhat", "loss": "L"},
}
with open("tests/fixtures/gradient_penalty.json", "w") as f:
    json.dump(model, f, indent=1)
golden = {"loss": loss.item(), "L0": L0.item(), "gx": as_list(gx),
          "grads": {k: as_list(g) for k, g in zip(params, grads)}}
with open("tests/golden/gradient_penalty.json", "w") as f:
    json.dump(golden, f, indent=1)
