#!/usr/bin/env python3
"""Writes models/words_rnn.json: a vanilla RNN over characters, unrolled (docs/sequence-models.md).

Usage: scripts/make_words_rnn.py [--block 8] [--out models/words_rnn.json]

The last BLOCK characters, each an embedding; one tanh cell applied BLOCK times with the same
weights, h_t = tanh(e_t·Wxh + h_(t-1)·Whh + b), h_0 = tanh(e_0·Wxh + b); the next character's
logits from the last state. The unrolled steps are ordinary nodes (a slice per time step), so
`chainrule step` walks backprop through time one step at a time, and the gradients of Wxh and
Whh are the sums over the steps that use them. The model is data: this script only saves
writing its nodes by hand."""
import argparse
import json
import math
import os

VOCAB, EMBED, HIDDEN = 27, 16, 128


def uniform(fan_in):
    bound = 1 / math.sqrt(fan_in)  # PyTorch's nn.RNN and nn.Linear default
    return {"uniform": {"low": -bound, "high": bound}}


def model(block):
    nodes = []

    def node(name, op, inputs, attrs=None, doc=None):
        n = {"name": name, "op": op, "inputs": inputs}
        if attrs:
            n["attrs"] = attrs
        if doc:
            n["doc"] = doc
        nodes.append(n)
        return name

    e = node("e", "embedding", ["x", "C"], doc=f"[N,{block},{EMBED}]: a row of C per character")
    xw = node("xW", "add", [node("eW", "matmul", [e, "Wxh"]), "bh"],
              doc=f"[N,{block},{HIDDEN}]: every step's input term at once, e_t·Wxh + b")
    h = None
    for t in range(block):
        x_t = node(f"x{t}", "reshape", [node(f"x{t}_", "slice", [xw], {"axis": 1, "start": t, "end": t + 1})],
                   {"shape": [-1, HIDDEN]}, doc=f"step {t}'s input term, [N,{HIDDEN}]")
        if h is None:
            h = node(f"h{t}", "tanh", [x_t], doc="the first state: no earlier state to carry")
        else:
            carried = node(f"hW{t}", "matmul", [h, "Whh"], doc=f"h{t - 1}·Whh: what step {t} carries over")
            h = node(f"h{t}", "tanh", [node(f"z{t}", "add", [x_t, carried])],
                     doc=f"the state after {t + 1} characters")
    logits = node("logits", "add", [node("hWhy", "matmul", [h, "Why"]), "by"], doc="the next character's scores")
    node("p", "softmax", [logits], doc="the next character's probabilities")
    node("L", "cross_entropy", [logits, "y"])
    return {
        "format": "chainrule-model", "version": 1, "name": "words_rnn",
        "doc": f"A vanilla RNN language model unrolled over the last {block} characters: embeddings of {EMBED}, "
               f"one tanh cell of {HIDDEN} applied at every step with the same weights, the next character from "
               f"the last state; PyTorch's default initialisation, Adam 0.003, batches of 256, 5 epochs on the "
               f"lowercase words of Debian's wamerican list. Written by scripts/make_words_rnn.py "
               f"(docs/sequence-models.md).",
        "dtype": "float32",
        "inputs": {"x": {"shape": ["N", block], "doc": f"the last {block} characters' ids ('.' = 0 before the word)"},
                   "y": {"shape": ["N"], "doc": "the next character's id"}},
        "parameters": {
            "C": {"shape": [VOCAB, EMBED], "init": {"normal": {"mean": 0, "std": 1}},
                  "doc": f"a {EMBED}-number embedding per character"},
            "Wxh": {"shape": [EMBED, HIDDEN], "init": uniform(HIDDEN), "doc": "input to state, shared by every step"},
            "Whh": {"shape": [HIDDEN, HIDDEN], "init": uniform(HIDDEN), "doc": "state to state, shared by every step"},
            "bh": {"shape": [HIDDEN], "init": uniform(HIDDEN)},
            "Why": {"shape": [HIDDEN, VOCAB], "init": uniform(HIDDEN), "doc": "state to the next character's scores"},
            "by": {"shape": [VOCAB], "init": uniform(HIDDEN)},
        },
        "nodes": nodes,
        "outputs": {"prediction": "p", "loss": "L"},
        "training": {
            "data": {"kind": "text", "path": "/usr/share/dict/words", "block_size": block, "target": "next",
                     "keep_only": "abcdefghijklmnopqrstuvwxyz", "split": {"train_fraction": 0.9, "seed": 42}},
            "feed": {"x": "tokens", "y": "labels"},
            "epochs": 5, "batch_size": 256, "sampling": "shuffle",
            "optimizer": {"adam": {"lr": 0.003}}, "seed": 7, "metrics": ["loss", "accuracy"], "print_every": 1,
        },
    }


def main():
    a = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    a.add_argument("--block", type=int, default=8)
    a.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "models", "words_rnn.json"))
    args = a.parse_args()
    with open(args.out, "w") as f:
        json.dump(model(args.block), f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
