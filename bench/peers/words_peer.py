#!/usr/bin/python3
"""PyTorch peer of models/words_bigram.json, words_mlp.json, words_rnn.json and words_gpt.json.

Reads the model file for its data block and recipe, makes chainrule's text split (docs/data.md
"Text rules": the kept words shuffled by std::mt19937_64 seeded with split.seed, drawn as
chainrule's Rng::below, the first round(n * train_fraction) train), the same windows and labels
(or, for "target": "sequence", the same padded rows with -1 after a word's end), and trains
the same architecture with the same initialisation rule, optimizer, batch size, epochs and
dtype (its own draws: the data order and initial values are not chainrule's). The architecture
is the model's own nodes, run in order with the torch functions of the same names
(F.embedding, F.layer_norm, torch.matmul, F.gelu, F.cross_entropy with its ignore_index, ...),
as tests/golden/make_gpt_goldens.py runs them. Prints the test loss (the mean over every kept
position of the test split) and accuracy after every epoch, then one JSON line; with --json,
bench/peers/compare.py's lines instead (a header, then per epoch its training seconds, CPU
seconds, seconds per step and peak RSS).

    /usr/bin/python3 bench/peers/words_peer.py models/words_mlp.json [--threads 1]
    /usr/bin/python3 bench/peers/words_peer.py models/words_gpt.json --epochs 2 --steps 200 --no-eval --json
"""

import argparse
import json
import math
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


def sequences(words, vocab, block):
    """The text kind's "sequence" rows (docs/data.md): "." and the word padded with "." in,
    the word and "." out, then the padding label -1."""
    ids = {c: i for i, c in enumerate(vocab)}
    xs, ys = [], []
    for w in words:
        word = [ids[ch] for ch in w]
        xs.append(([0] + word + [0] * block)[:block])
        ys.append((word + [0] + [-1] * block)[:block])
    return xs, ys


def loss_ancestors(model):
    """The names of the nodes the loss depends on: only those run (a prediction's softmax
    beside the loss is not part of a training step)."""
    by_name = {n["name"]: n for n in model["nodes"]}
    need, todo = set(), [model["outputs"]["loss"]]
    while todo:
        name = todo.pop()
        if name in need or name not in by_name:
            continue
        need.add(name)
        todo.extend(by_name[name]["inputs"])
    return need


def build(model, torch, dtype):
    """The model's parameters and a function giving its loss node's value and the logits it
    reads, running its nodes in order with the torch functions of the same names."""
    import torch.nn.functional as F
    params = {}
    for name, p in model["parameters"].items():
        t = torch.empty(p["shape"], dtype=dtype)
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
    constants = {name: torch.tensor(c["value"], dtype=dtype) for name, c in model.get("constants", {}).items()}
    need = loss_ancestors(model)
    masks = {}

    def causal_mask(x):
        t = x.shape[-1]
        if t not in masks:
            masks[t] = torch.triu(torch.ones(t, t, dtype=torch.bool), 1)
        return x.masked_fill(masks[t], float("-inf"))

    rules = {
        "embedding": lambda x, a: F.embedding(x[0], x[1]),
        "add": lambda x, a: x[0] + x[1],
        "mul": lambda x, a: x[0] * x[1],
        "matmul": lambda x, a: torch.matmul(x[0], x[1]),
        "linear": lambda x, a: torch.matmul(x[0], x[1]) + x[2],
        "tanh": lambda x, a: torch.tanh(x[0]),
        "gelu": lambda x, a: F.gelu(x[0], approximate=a.get("approximate", "none")),
        "layer_norm": lambda x, a: F.layer_norm(x[0], (x[0].shape[-1],), x[1] if len(x) > 1 else None,
                                                x[2] if len(x) > 2 else None, a.get("eps", 1e-5)),
        "reshape": lambda x, a: x[0].reshape(a["shape"]),
        "slice": lambda x, a: x[0].narrow(a["axis"], a["start"], a["end"] - a["start"]),
        "concat": lambda x, a: torch.cat(x, dim=a.get("axis", -1)),
        "transpose": lambda x, a: x[0].permute(a["perm"]),
        "causal_mask": lambda x, a: causal_mask(x[0]),
        "softmax": lambda x, a: torch.softmax(x[0], dim=a.get("axis", -1)),
        "cross_entropy": lambda x, a: F.cross_entropy(
            x[0].reshape(-1, x[0].shape[-1]), x[1].reshape(-1),
            ignore_index=-100 if a.get("ignore_index") is None else a["ignore_index"]),
    }

    def run(fed):
        """fed: input name -> tensor. The loss and the logits it reads."""
        v = {**params, **constants, **fed}
        for n in model["nodes"]:
            if n["name"] not in need:
                continue
            rule = rules.get(n["op"])
            if rule is None:
                sys.exit(f"words_peer: op {n['op']} is not handled")
            v[n["name"]] = rule([v[i] for i in n["inputs"]], n.get("attrs", {}))
        loss = next(n for n in model["nodes"] if n["name"] == model["outputs"]["loss"])
        return v[loss["name"]], v[loss["inputs"][0]]

    return params, run


def evaluate(run, fed_of, x, y, ignore, torch):
    """Mean loss over every kept position of a split (as one F.cross_entropy over it all)
    and the share of kept positions whose argmax is the label, in chunks of 1000 rows."""
    total, kept, right = 0.0, 0, 0
    with torch.no_grad():
        for b in range(0, len(y), 1000):
            yb = y[b:b + 1000]
            loss, logits = run(fed_of(x[b:b + 1000], yb))
            keep = yb != ignore
            n = int(keep.sum())
            if n:
                total += loss.item() * n
            kept += n
            right += int(((logits.argmax(-1) == yb) & keep).sum())
    return total / kept, right / kept


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=None, help="default: the model's")
    ap.add_argument("--steps", type=int, default=None, help="steps per epoch (default: the whole training split)")
    ap.add_argument("--no-eval", action="store_true", help="skip the test split after each epoch")
    ap.add_argument("--json", action="store_true",
                    help="JSON lines as bench/peers/compare.py reads them: a header, one object per epoch")
    ap.add_argument("--data", help="ignored (compare.py passes it): the model names its data")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import common
    common.setup_threads(1)  # OpenBLAS on one thread; torch's own threads are --threads
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = json.loads(args.model.read_text())
    tr = model["training"]
    block = tr["data"]
    dtype = {"float32": torch.float32, "float64": torch.float64}[model.get("dtype", "float64")]
    train_words, test_words, vocab = text_split(block)
    make_rows = sequences if block.get("target") == "sequence" else windows
    xtr, ytr = (torch.tensor(a) for a in make_rows(train_words, vocab, block["block_size"]))
    xte, yte = (torch.tensor(a) for a in make_rows(test_words, vocab, block["block_size"]))
    feed = {stream: name for name, stream in tr["feed"].items()}
    fed_of = lambda x, y: {feed["tokens"]: x, feed["labels"]: y}  # noqa: E731
    loss_node = next(n for n in model["nodes"] if n["name"] == model["outputs"]["loss"])
    ignore = loss_node.get("attrs", {}).get("ignore_index", -100)
    params, run = build(model, torch, dtype)
    (kind, opts), = tr["optimizer"].items()
    if kind != "adam":
        sys.exit(f"words_peer: optimizer {kind} is not handled")
    opt = torch.optim.Adam(params.values(), lr=opts["lr"])
    batch = tr["batch_size"]
    epochs = args.epochs or tr["epochs"]
    steps = args.steps or (len(ytr) + batch - 1) // batch
    header = {"cpu": common.cpu_model(), "peer": "words_peer", "model": model["name"],
              "dtype": str(dtype).replace("torch.", ""), "threads": args.threads, "torch": torch.__version__,
              "openblas": common.openblas_info(), "env": common.environment_note(), "batch": batch,
              "batches_per_epoch": steps,
              "rows": f"{len(train_words)} train words ({len(ytr)} rows), {len(test_words)} test words "
                      f"({len(yte)} rows), vocabulary {len(vocab)}"}
    reporter = common.Reporter(args.json, header) if args.json else None
    if not args.json:
        print(header["rows"], flush=True)
    start = time.time()
    test_loss = None
    for epoch in range(1, epochs + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        perm = torch.randperm(len(ytr))
        total = 0.0
        for s in range(steps):
            rows = perm[(s * batch) % len(ytr):][:batch]
            loss, _ = run(fed_of(xtr[rows], ytr[rows]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item()
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
        test_loss = test_accuracy = None
        if not args.no_eval:
            test_loss, test_accuracy = evaluate(run, fed_of, xte, yte, ignore, torch)
        if reporter:
            reporter.epoch(epoch, seconds, cpu_seconds, total / steps, test_accuracy, test_loss, steps)
        else:
            print(f"epoch {epoch}  train loss {total / steps:.4f}  test loss {test_loss:.4f}  "
                  f"test accuracy {test_accuracy:.4f}  ({time.time() - start:.1f} s)", flush=True)
    print(json.dumps({"model": model["name"], "test_loss": test_loss, "epochs": epochs,
                      "torch": torch.__version__, "threads": args.threads}))


if __name__ == "__main__":
    main()
