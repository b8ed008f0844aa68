#!/usr/bin/python3
"""PyTorch peer of models/words_bigram.json, models/words_mlp.json and models/words_rnn.json.

Reads the model file for its data block and recipe, makes chainrule's text split (docs/data.md
"Text rules": the kept words shuffled by std::mt19937_64 seeded with split.seed, drawn as
chainrule's Rng::below, the first round(n * train_fraction) train), the same windows and labels,
and trains the same architecture with the same initialisation rule, optimizer, batch size and
epochs (its own draws: the data order and initial values are not chainrule's). Prints the test
loss after every epoch, then one JSON line.

    /usr/bin/python3 bench/peers/words_peer.py models/words_mlp.json [--threads 1]
"""

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

MASK64 = (1 << 64) - 1


class MT19937_64:
    """std::mt19937_64, as chainrule's Rng (core/random.hpp) wraps it."""

    def __init__(self, seed):
        self.mt = [0] * 312
        self.mt[0] = seed & MASK64
        for i in range(1, 312):
            self.mt[i] = (6364136223846793005 * (self.mt[i - 1] ^ (self.mt[i - 1] >> 62)) + i) & MASK64
        self.index = 312

    def _twist(self):
        mt = self.mt
        for i in range(312):
            x = (mt[i] & 0xFFFFFFFF80000000) | (mt[(i + 1) % 312] & 0x7FFFFFFF)
            xa = x >> 1
            if x & 1:
                xa ^= 0xB5026F5AA96619E9
            mt[i] = mt[(i + 156) % 312] ^ xa
        self.index = 0

    def next(self):
        if self.index >= 312:
            self._twist()
        y = self.mt[self.index]
        self.index += 1
        y ^= (y >> 29) & 0x5555555555555555
        y ^= (y << 17) & 0x71D67FFFEDA60000
        y ^= (y << 37) & 0xFFF7EEE000000000
        y ^= y >> 43
        return y & MASK64

    def below(self, n):
        limit = MASK64 - (MASK64 % n)
        while True:
            x = self.next()
            if x < limit:
                return x % n


def text_split(block):
    """The train and test words of a text data block, as chainrule splits them."""
    path = Path(block["path"])
    keep = set(block.get("keep_only", ""))
    words = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and (not keep or set(line) <= keep):
            words.append(line)
    split = block.get("split", {})
    rng = MT19937_64(split.get("seed", 42))
    order = list(range(len(words)))
    for i in range(len(order), 1, -1):
        j = rng.below(i)
        order[i - 1], order[j] = order[j], order[i - 1]
    fraction = split.get("train_fraction", 0.9)
    n_train = int(math.floor(len(words) * fraction + 0.5))
    vocab = ["."] + sorted(set("".join(words)))
    return [words[k] for k in order[:n_train]], [words[k] for k in order[n_train:]], vocab


def windows(words, vocab, block):
    ids = {c: i for i, c in enumerate(vocab)}
    xs, ys = [], []
    for w in words:
        context = [0] * block
        for ch in list(w) + ["."]:
            xs.append(list(context))
            ys.append(ids[ch])
            context = context[1:] + [ids[ch]]
    return xs, ys


def build(model, torch):
    """The model's parameters and a forward function, from its nodes (embedding, reshape,
    linear, tanh, matmul, add, slice: the "next"-window words models)."""
    params = {}
    for name, p in model["parameters"].items():
        t = torch.empty(p["shape"], dtype=torch.float32)
        init = p["init"]
        if "constant" in init:
            t.fill_(init["constant"])
        elif "normal" in init:
            t.normal_(init["normal"]["mean"], init["normal"]["std"])
        elif "uniform" in init:
            t.uniform_(init["uniform"]["low"], init["uniform"]["high"])
        else:
            sys.exit(f"words_peer: init {init} is not handled")
        params[name] = t.requires_grad_()

    def forward(x):
        v = {"x": x}
        for n in model["nodes"]:
            a = [v.get(i, params.get(i)) for i in n["inputs"]]
            op = n["op"]
            if op == "embedding":
                v[n["name"]] = a[1][a[0]]
            elif op == "reshape":
                v[n["name"]] = a[0].reshape(n["attrs"]["shape"])
            elif op == "linear":
                v[n["name"]] = a[0] @ a[1] + a[2]
            elif op == "tanh":
                v[n["name"]] = torch.tanh(a[0])
            elif op == "matmul":
                v[n["name"]] = a[0] @ a[1]
            elif op == "add":
                v[n["name"]] = a[0] + a[1]
            elif op == "slice":
                at = n["attrs"]
                v[n["name"]] = a[0].narrow(at["axis"], at["start"], at["end"] - at["start"])
            elif op in ("softmax", "cross_entropy"):
                continue
            else:
                sys.exit(f"words_peer: op {op} is not handled")
        loss = next(n for n in model["nodes"] if n["name"] == model["outputs"]["loss"])
        return v[loss["inputs"][0]]  # the logits the loss reads

    return params, forward


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = json.loads(args.model.read_text())
    tr = model["training"]
    block = tr["data"]
    train_words, test_words, vocab = text_split(block)
    xtr, ytr = windows(train_words, vocab, block["block_size"])
    xte, yte = windows(test_words, vocab, block["block_size"])
    xtr, ytr = torch.tensor(xtr), torch.tensor(ytr)
    xte, yte = torch.tensor(xte), torch.tensor(yte)
    print(f"{len(train_words)} train words ({len(ytr)} windows), {len(test_words)} test words ({len(yte)} windows), "
          f"vocabulary {len(vocab)}")
    params, forward = build(model, torch)
    (kind, opts), = tr["optimizer"].items()
    if kind != "adam":
        sys.exit(f"words_peer: optimizer {kind} is not handled")
    opt = torch.optim.Adam(params.values(), lr=opts["lr"])
    batch = tr["batch_size"]
    start = time.time()
    test_loss = None
    for epoch in range(1, tr["epochs"] + 1):
        perm = torch.randperm(len(ytr))
        total, steps = 0.0, 0
        for b in range(0, len(ytr), batch):
            rows = perm[b:b + batch]
            loss = F.cross_entropy(forward(xtr[rows]), ytr[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
            steps += 1
        with torch.no_grad():
            test_loss = F.cross_entropy(forward(xte), yte).item()
        print(f"epoch {epoch}  train loss {total / steps:.4f}  test loss {test_loss:.4f}  "
              f"({time.time() - start:.1f} s)")
    print(json.dumps({"model": model["name"], "test_loss": test_loss, "epochs": tr["epochs"],
                      "torch": torch.__version__, "threads": args.threads}))


if __name__ == "__main__":
    main()
