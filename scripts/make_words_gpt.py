#!/usr/bin/env python3
"""Writes models/words_gpt.json: a small GPT over characters (docs/sequence-models.md).

Usage: scripts/make_words_gpt.py [--blocks 2] [--out models/words_gpt.json]

Token and position embeddings, BLOCKS blocks of pre-norm causal self-attention (4 heads) and
a GELU MLP, each with a residual, a final layer norm and a linear head; the loss is the mean
cross-entropy over every position. The model is data: this script only saves writing its
~100 nodes by hand, and the JSON it writes is what chainrule reads (and what
tests/golden/make_gpt_goldens.py runs in PyTorch)."""
import argparse
import json
import os

# Block 24, not 16: the "sequence" rows hold "." + the word, and wamerican's longest lowercase
# word has 22 letters (docs/sequence-models.md).
VOCAB, T, C, HEADS, HIDDEN = 27, 24, 64, 4, 256
D = C // HEADS


def model(blocks):
    params, nodes = {}, []

    def param(name, shape, init, doc=None):
        params[name] = {"shape": shape, "init": init}
        if doc:
            params[name]["doc"] = doc
        return name

    def node(name, op, inputs, attrs=None, doc=None):
        n = {"name": name, "op": op, "inputs": inputs}
        if attrs:
            n["attrs"] = attrs
        if doc:
            n["doc"] = doc
        nodes.append(n)
        return name

    weight = {"normal": {"mean": 0, "std": 0.02}}
    zero, one = {"constant": 0}, {"constant": 1}

    def linear(name, x, fan_in, fan_out, doc=None):
        W = param(f"{name}_W", [fan_in, fan_out], weight)
        b = param(f"{name}_b", [fan_out], zero)
        return node(name, "add", [node(f"{name}_xW", "matmul", [x, W]), b], doc=doc)

    def heads(name, x):  # [N,T,C] -> [N,H,T,D]
        r = node(f"{name}4", "reshape", [x], {"shape": [-1, T, HEADS, D]})
        return node(f"{name}h", "transpose", [r], {"perm": [0, 2, 1, 3]}, doc=f"[N,{HEADS},{T},{D}]")

    tok = param("tok", [VOCAB, C], weight, "token embeddings, a row per character")
    pos = param("pos", [T, C], weight, "position embeddings, a row per position (added to every sequence)")
    x = node("x0", "add", [node("te", "embedding", ["ids", tok], doc=f"[N,{T},{C}]"), pos],
             doc="token + position embedding")
    for b in range(blocks):
        p = f"b{b}_"
        a_in = node(p + "ln1", "layer_norm", [x, param(p + "ln1_g", [C], one), param(p + "ln1_b", [C], zero)])
        q, k, v = (heads(p + w, linear(p + w, a_in, C, C)) for w in "qkv")
        kt = node(p + "kt", "transpose", [k], {"perm": [0, 1, 3, 2]})
        s = node(p + "att_s", "mul", [node(p + "qk", "matmul", [q, kt]), "att_scale"],
                 doc=f"scores q·kᵀ/√{D}, [N,{HEADS},{T},{T}]")
        att = node(p + "att", "softmax", [node(p + "att_m", "causal_mask", [s])], {"axis": -1},
                   doc="attention weights: row t mixes positions 0..t")
        o = node(p + "att_o", "matmul", [att, v])
        o = node(p + "att_c", "reshape", [node(p + "att_ot", "transpose", [o], {"perm": [0, 2, 1, 3]})],
                 {"shape": [-1, T, C]}, doc="the heads side by side again")
        x = node(p + "res1", "add", [x, linear(p + "proj", o, C, C)], doc="residual around attention")
        m_in = node(p + "ln2", "layer_norm", [x, param(p + "ln2_g", [C], one), param(p + "ln2_b", [C], zero)])
        h = node(p + "gelu", "gelu", [linear(p + "fc", m_in, C, HIDDEN)])
        x = node(p + "res2", "add", [x, linear(p + "mlp", h, HIDDEN, C)], doc="residual around the MLP")
    f = node("lnf", "layer_norm", [x, param("lnf_g", [C], one), param("lnf_b", [C], zero)])
    logits = linear("logits", f, C, VOCAB, doc=f"[N,{T},{VOCAB}]: the next character's scores at every position")
    node("L", "cross_entropy", [logits, "targets"], {"ignore_index": -1},
         doc="mean over every position of every word (the padding after its end, -1, left out)")
    return {
        "format": "chainrule-model", "version": 1, "name": "words_gpt",
        "doc": f"A small GPT over characters: token + position embeddings, {blocks} blocks of pre-norm causal "
               f"self-attention ({HEADS} heads of {D}) and a GELU MLP ({HIDDEN}) with residuals, a final layer "
               f"norm; block {T}, {C} channels. Written by scripts/make_words_gpt.py.",
        "dtype": "float32",
        "inputs": {"ids": {"shape": ["N", T], "doc": "characters as ids, '.' (0) first, padded with '.'"},
                   "targets": {"shape": ["N", T], "doc": "the next character at every position, -1 after the end"}},
        "constants": {"att_scale": {"value": 1 / D ** 0.5, "doc": f"1/√{D}"}},
        "parameters": params,
        "nodes": nodes,
        "outputs": {"loss": "L", "prediction": "logits"},
        "training": {
            "data": {"kind": "text", "path": "/usr/share/dict/words", "block_size": T, "target": "sequence",
                     "keep_only": "abcdefghijklmnopqrstuvwxyz", "split": {"train_fraction": 0.9, "seed": 42}},
            "feed": {"ids": "tokens", "targets": "labels"},
            "epochs": 5, "batch_size": 64, "sampling": "shuffle",
            "optimizer": {"adam": {"lr": 0.001}}, "seed": 7, "metrics": ["loss"], "print_every": 1,
        },
    }


def main():
    a = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    a.add_argument("--blocks", type=int, default=2)
    a.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "models", "words_gpt.json"))
    args = a.parse_args()
    with open(args.out, "w") as f:
        json.dump(model(args.blocks), f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
