#!/usr/bin/env python3
"""Goldens for `chainrule hessian` and `chainrule hvp` (tests/test_hessian.cpp): the Hessian of
the loss over all parameters (flattened in model order, row-major each) and one
Hessian-vector product, from torch.autograd.functional.hessian and .hvp in float64, on
  - the lecture's worked example (models/worked_example.json, its own three rows),
  - the lecture's Iris neuron (models/iris_neuron.json at w = b = 0.1, its 80 training rows),
  - a tanh MLP with softmax cross-entropy (tests/fixtures/hessian_tanh_mlp.json, written here),
  - a gradient penalty built on a `grad` node (tests/fixtures/gradient_penalty.json),
  - a small conv net (tests/fixtures/hessian_conv_net.json, written here): while conv2d and
    avg_pool2d have no vjp, the test checks that chainrule refuses its Hessian by name instead.
Writes tests/golden/hessian.json, tests/fixtures/hessian_tanh_mlp.json and
tests/fixtures/hessian_conv_net.json.
Run: /usr/bin/python3 tests/golden/make_hessian_goldens.py (from the source root)."""
import json
import torch
from torch.autograd.functional import hessian, hvp

d = torch.float64
as_list = lambda v: v.detach().tolist()


def mse(y, t):  # chainrule's mse: 1/(2N)·Σ(y − t)²
    return ((y - t) ** 2).sum() / (2 * y.shape[0])


def neuron(x, t):
    return lambda w, b: mse(torch.sigmoid(x @ w + b), t)


def case(name, model, loss, params, feed, seed):
    """params: name -> tensor in model order; loss(*params) -> scalar."""
    names = list(params)
    shapes = [p.shape for p in params.values()]
    sizes = [p.numel() for p in params.values()]
    flat0 = torch.cat([p.reshape(-1) for p in params.values()])

    def f(flat):
        parts = torch.split(flat, sizes)
        return loss(*[p.reshape(s) for p, s in zip(parts, shapes)])

    g = torch.Generator().manual_seed(seed)
    v = torch.randn(flat0.shape, generator=g, dtype=d)
    H = hessian(f, flat0)
    value, hv = hvp(f, flat0, v)
    split = lambda t: {n: as_list(p.reshape(s)) for n, p, s in zip(names, torch.split(t, sizes), shapes)}
    return {"name": name, "model": model, "feed": {k: as_list(t) for k, t in feed.items()},
            "params": [{"name": n, "shape": list(s)} for n, s in zip(names, shapes)],
            "loss": value.item(), "hessian": as_list(H), "v": split(v), "hvp": split(hv)}


cases = []

# The worked example: three rows, every weight and the bias 0.1.
x = torch.tensor([[5.1, 3.5, 1.4, 0.2], [4.9, 3.0, 1.4, 0.2], [4.7, 3.2, 1.3, 0.2]], dtype=d)
t = torch.tensor([[0], [1], [0]], dtype=d)
cases.append(case("worked_example", "models/worked_example.json", neuron(x, t),
                  {"w": torch.full((4, 1), 0.1, dtype=d), "b": torch.full((1,), 0.1, dtype=d)}, {}, 1))

# The Iris neuron: rows 0–99 of iris.data, per class the first 80% train (40 + 40 rows).
rows = [line.split(",") for line in open("data/iris.data").read().split("\n") if line.strip()][:100]
by_class = {"Iris-setosa": [], "Iris-versicolor": []}
for r in rows:
    by_class[r[4]].append(([float(v) for v in r[:4]], 0.0 if r[4] == "Iris-setosa" else 1.0))
train = by_class["Iris-setosa"][:40] + by_class["Iris-versicolor"][:40]
x = torch.tensor([r[0] for r in train], dtype=d)
t = torch.tensor([[r[1]] for r in train], dtype=d)
cases.append(case("iris_neuron", "models/iris_neuron.json", neuron(x, t),
                  {"w": torch.full((4, 1), 0.1, dtype=d), "b": torch.full((1,), 0.1, dtype=d)},
                  {"x": x, "y": t}, 2))

# A tanh MLP with softmax cross-entropy: 5 rows, 3 features, 3 classes.
torch.manual_seed(7)
x = torch.randn(5, 3, dtype=d)
labels = torch.tensor([0, 2, 1, 2, 0])
mlp = {"W1": torch.randn(3, 4, dtype=d), "b1": torch.randn(4, dtype=d),
       "W2": torch.randn(4, 3, dtype=d), "b2": torch.randn(3, dtype=d)}
model = {
    "format": "chainrule-model", "version": 1, "name": "hessian_tanh_mlp", "dtype": "float64",
    "doc": "a tanh MLP with softmax cross-entropy, for the Hessian goldens (tests/golden/make_hessian_goldens.py)",
    "inputs": {"x": {"shape": ["N", 3], "value": as_list(x)},
               "labels": {"shape": ["N"], "value": [float(v) for v in labels.tolist()]}},
    "parameters": {k: {"shape": list(v.shape), "init": {"value": as_list(v)}} for k, v in mlp.items()},
    "nodes": [{"name": "z1", "op": "linear", "inputs": ["x", "W1", "b1"]},
              {"name": "h", "op": "tanh", "inputs": ["z1"]},
              {"name": "z2", "op": "linear", "inputs": ["h", "W2", "b2"]},
              {"name": "L", "op": "cross_entropy", "inputs": ["z2", "labels"]}],
    "outputs": {"prediction": "z2", "loss": "L"},
}
with open("tests/fixtures/hessian_tanh_mlp.json", "w") as f:
    json.dump(model, f, indent=1)
ce = lambda W1, b1, W2, b2: torch.nn.functional.cross_entropy(torch.tanh(x @ W1 + b1) @ W2 + b2, labels)
cases.append(case("tanh_mlp_cross_entropy", "tests/fixtures/hessian_tanh_mlp.json", ce, mlp, {}, 3))

# A loss built on a `grad` node (tests/fixtures/gradient_penalty.json, made by
# make_gradient_penalty_goldens.py): mse + mean((dL0/dx)²), its Hessian a third derivative.
gp = json.load(open("tests/fixtures/gradient_penalty.json"))
x = torch.tensor(gp["inputs"]["x"]["value"], dtype=d)
t = torch.tensor(gp["inputs"]["t"]["value"], dtype=d)
gp_params = {k: torch.tensor(v["init"]["value"], dtype=d) for k, v in gp["parameters"].items()}


def penalty(W1, b1, W2, b2):
    xg = x.clone().requires_grad_(True)
    L0 = mse(torch.tanh(xg @ W1 + b1) @ W2 + b2, t)
    (gx,) = torch.autograd.grad(L0, xg, create_graph=True)
    return L0 + (gx * gx).mean()


cases.append(case("gradient_penalty", "tests/fixtures/gradient_penalty.json", penalty, gp_params, {}, 4))

# A small conv net: conv2d (padding 1, bias), tanh, avg_pool2d, a linear layer and softmax
# cross-entropy (tests/fixtures/hessian_conv_net.json, written here). Its case names the ops
# whose vjps it needs: where they have none, chainrule refuses its Hessian by name and
# tests/test_hessian.cpp checks that refusal instead of the numbers.
torch.manual_seed(11)
x = torch.rand(3, 1, 6, 6, dtype=d)
labels = torch.tensor([2, 0, 1])
conv = {"K": 0.5 * torch.randn(2, 1, 3, 3, dtype=d), "c": 0.1 * torch.randn(2, dtype=d),
        "W": 0.5 * torch.randn(18, 3, dtype=d), "b": 0.1 * torch.randn(3, dtype=d)}
model = {
    "format": "chainrule-model", "version": 1, "name": "hessian_conv_net", "dtype": "float64",
    "doc": "a small conv net for the Hessian goldens (tests/golden/make_hessian_goldens.py)",
    "inputs": {"x": {"shape": ["N", 1, 6, 6], "value": as_list(x)},
               "labels": {"shape": ["N"], "value": [float(v) for v in labels.tolist()]}},
    "parameters": {k: {"shape": list(v.shape), "init": {"value": as_list(v)}} for k, v in conv.items()},
    "nodes": [{"name": "h", "op": "conv2d", "inputs": ["x", "K", "c"], "attrs": {"padding": 1}},
              {"name": "a", "op": "tanh", "inputs": ["h"]},
              {"name": "p", "op": "avg_pool2d", "inputs": ["a"], "attrs": {"kernel_size": 2}},
              {"name": "flat", "op": "reshape", "inputs": ["p"], "attrs": {"shape": [-1, 18]}},
              {"name": "z", "op": "linear", "inputs": ["flat", "W", "b"]},
              {"name": "L", "op": "cross_entropy", "inputs": ["z", "labels"]}],
    "outputs": {"prediction": "z", "loss": "L"},
}
with open("tests/fixtures/hessian_conv_net.json", "w") as f:
    json.dump(model, f, indent=1)
F = torch.nn.functional
net = lambda K, c, W, b: F.cross_entropy(
    F.avg_pool2d(torch.tanh(F.conv2d(x, K, c, padding=1)), 2).reshape(-1, 18) @ W + b, labels)
cases.append(dict(case("conv_net", "tests/fixtures/hessian_conv_net.json", net, conv, {}, 5),
                  needs_vjp=["conv2d", "avg_pool2d"]))

with open("tests/golden/hessian.json", "w") as f:
    json.dump({"cases": cases}, f, indent=1)
