#!/usr/bin/python3
"""Every file chainrule writes is valid for its format, whatever the names (issue 28, item 6).

    python3 tests/test_output_files.py SOURCE_ROOT BUILD_ROOT

A model whose name and node names hold every control character U+0001 to U+001F (and
U+0000, U+FFFE, U+FFFF, markup and a character reference, "&#1;") is drawn with `dot`,
`dot --svg` and trained, and each file is parsed: the SVGs and curves.svg with an XML
parser, the DOT text by Graphviz itself, model.json with a strict JSON parser and by
`chainrule check`. `grad --json` of a loss of −inf must be strict JSON whose values read
back as a feed and give the same document. A CSV whose class names are not UTF-8 is bad
input (exit 2 at its line), never an "internal error".
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

SOURCE, BUILD = sys.argv[1], sys.argv[2]
CHAINRULE = os.path.join(BUILD, "cli", "chainrule")
TMP = tempfile.mkdtemp(prefix="chainrule-output-")
CHECKS = 0


def check(ok, what):
    global CHECKS
    CHECKS += 1
    if not ok:
        print("FAIL:", what, file=sys.stderr)
        sys.exit(1)


def run(*args, expect=0):
    r = subprocess.run([CHAINRULE, *args], capture_output=True, timeout=120)
    check(r.returncode == expect,
          f"chainrule {' '.join(args)}: exit {r.returncode}, expected {expect}\n{r.stderr.decode(errors='replace')}")
    check(b"internal error" not in r.stderr, f"chainrule {' '.join(args)}: internal error")
    return r


def strict_json(data, what):
    """JSON as RFC 8259 has it: no NaN, Infinity or -Infinity literals, UTF-8 only."""
    def refuse(word):
        raise ValueError(f"{word} is not JSON")
    try:
        return json.loads(data.decode("utf-8"), parse_constant=refuse)
    except ValueError as e:
        check(False, f"{what} is not strict JSON: {e}")


def well_formed_xml(path):
    try:
        ET.parse(path)
    except ET.ParseError as e:
        check(False, f"{path} is not well-formed XML: {e}")
    check(True, path)


# Every character XML 1.0 cannot hold, and text that tries to become markup or a character reference.
BAD = "".join(chr(c) for c in range(0x20) if c not in (0x09, 0x0A)) + "\ufffe\uffff"
MODEL_NAME = "model" + BAD + "<&#1;>"
NAMES = ["a" + BAD[:11], "b" + BAD[11:] + "<&#1;&#x0;>", 'c"\\&amp;\t\n']


def model(name, nodes_prefix, data_path):
    p = nodes_prefix
    return {
        "format": "chainrule-model", "version": 1, "name": name,
        "inputs": {"x": {"shape": ["N", 4]}, "y": {"shape": ["N", 1]}},
        "parameters": {p[0]: {"shape": [4, 1], "init": {"constant": 0.1}},
                       p[1]: {"shape": [1], "init": {"constant": 0.1}}},
        "nodes": [{"name": "z" + p[2], "op": "matmul", "inputs": ["x", p[0]]},
                  {"name": "a", "op": "add", "inputs": ["z" + p[2], p[1]]},
                  {"name": "yhat", "op": "sigmoid", "inputs": ["a"]},
                  {"name": "L", "op": "mse", "inputs": ["yhat", "y"]}],
        "outputs": {"prediction": "yhat", "loss": "L"},
        "training": {"data": {"kind": "csv", "path": data_path, "features": [0, 1, 2, 3], "label": 4,
                              "classes": ["Iris-setosa", "Iris-versicolor"], "rows": [0, 100],
                              "split": {"per_class_train_fraction": 0.8}},
                     "feed": {"x": "features", "y": "labels"}, "epochs": 2, "optimizer": {"sgd": {"lr": 0.1}},
                     "seed": 0, "metrics": ["loss", "accuracy"]}}


def names_in_pictures():
    iris = os.path.join(SOURCE, "data", "iris.data")
    m = os.path.join(TMP, "names.json")
    with open(m, "w") as f:
        json.dump(model(MODEL_NAME, NAMES, iris), f)  # json.dump writes \u0001 escapes
    dot_text = run("dot", m, "--grads").stdout
    # The DOT text has no control character left, and Graphviz reads it into well-formed SVG.
    check(not any(c < 0x20 and c not in (0x09, 0x0A) for c in dot_text), "a control character in the DOT text")
    with open(os.path.join(TMP, "names.dot"), "wb") as f:
        f.write(dot_text)
    if shutil.which("dot"):
        r = subprocess.run(["dot", "-Tsvg", os.path.join(TMP, "names.dot"), "-o", os.path.join(TMP, "graphviz.svg")],
                           capture_output=True, timeout=60)
        check(r.returncode == 0, f"Graphviz refused chainrule's DOT: {r.stderr.decode(errors='replace')}")
        well_formed_xml(os.path.join(TMP, "graphviz.svg"))
        svg = os.path.join(TMP, "dot.svg")
        run("dot", m, "--legend", "--svg", svg)
        well_formed_xml(svg)
        text = open(svg, encoding="utf-8").read()
        # Shown visibly, as the six characters \u0001, not dropped.
        check("\\u0001" in text and "\\u001f" in text and "\\ufffe" in text, "control characters not shown in dot.svg")
        check("&amp;#1;" in text, "a character reference in a name was not kept as text")
    else:
        print("note: Graphviz's dot is not installed; the SVG of `dot --svg` was not checked")
    run_dir = os.path.join(TMP, "run")
    run("train", m, "--out", run_dir, "--no-progress")
    curves = os.path.join(run_dir, "curves.svg")
    well_formed_xml(curves)
    check("\\u0001" in open(curves, encoding="utf-8").read(), "the title of curves.svg lost its \\u0001")
    plot = os.path.join(TMP, "plot.svg")
    run("plot", run_dir, "--out", plot)
    well_formed_xml(plot)
    saved = strict_json(open(os.path.join(run_dir, "model.json"), "rb").read(), "model.json")
    check(saved["name"] == MODEL_NAME, "model.json changed the model's name")
    check(NAMES[0] in saved["parameters"], "model.json changed a parameter's name")
    run("check", os.path.join(run_dir, "model.json"))
    for cmd in (["grad", m, "--json"], ["step", m, "--json"]):
        doc = strict_json(run(*cmd).stdout, " ".join(cmd[:1] + cmd[2:]))
        check("nodes" in doc and NAMES[0] in doc["nodes"], f"{cmd[0]} --json lost a node's name")


def infinities_round_trip():
    # L = Σ log(w): w = [0, 1] gives L = −inf and dL/dw = [inf, 1]; −w gives NaN at log(−1).
    m = os.path.join(TMP, "inf.json")
    with open(m, "w") as f:
        json.dump({"format": "chainrule-model", "version": 1, "name": "inf",
                   "parameters": {"w": {"shape": [3], "init": {"value": [0.0, 1.0, 2.0]}}},
                   "nodes": [{"name": "n", "op": "neg", "inputs": ["w"]},
                             {"name": "l", "op": "log", "inputs": ["w"]},
                             {"name": "L", "op": "sum", "inputs": ["l"]}],
                   "outputs": {"loss": "L"}}, f)
    out = run("grad", m, "--json", expect=1).stdout  # exit 1: the loss is not finite, the numbers are printed
    doc = strict_json(out, "grad --json")
    check(doc["loss"] == "-inf", f"loss written as {doc['loss']!r}, expected \"-inf\"")
    check(doc["nodes"]["l"]["value"] == ["-inf", 0.0, 0.6931471805599453], f"log(w) written as {doc['nodes']['l']['value']}")
    check(doc["nodes"]["w"]["grad"][0] == "inf", f"dL/dw[0] written as {doc['nodes']['w']['grad'][0]!r}")
    # What grad wrote reads back: w = [-inf, 0, 0.69…] as a feed gives log(−inf) = NaN, written "nan".
    feed = os.path.join(TMP, "feed.json")
    with open(feed, "w") as f:
        json.dump({"w": doc["nodes"]["l"]["value"]}, f)
    again = strict_json(run("grad", m, "--feed", feed, "--json", expect=1).stdout, "grad --json of the fed point")
    check(again["nodes"]["w"]["value"] == doc["nodes"]["l"]["value"], "the fed values did not read back")
    check(again["loss"] == "nan" and again["nodes"]["l"]["value"][0] == "nan", f"log(-inf) written as {again['loss']!r}")
    # The same strings in a model's own values load too; other strings are still refused, located.
    with open(feed, "w") as f:
        json.dump({"w": ["inf", "banana", 1]}, f)
    err = run("grad", m, "--feed", feed, expect=2).stderr.decode()
    check('w[1]: expected a number, got "banana"' in err, f"a bad string in a feed: {err}")


def class_names_not_utf8():
    csv = os.path.join(TMP, "latin1.csv")
    with open(csv, "wb") as f:
        f.write(b"5.1,3.5,1.4,0.2,caf\xe9\n4.9,3.0,1.4,0.2,th\xe9\n4.7,3.2,1.3,0.2,caf\xe9\n")
    err = run("data", csv, expect=2).stderr.decode("utf-8")
    check(f"{csv}:1: label 'caf\ufffd' in column 4 is not valid UTF-8" in err, f"the message was: {err}")
    m = os.path.join(TMP, "latin1.json")
    with open(m, "w") as f:
        spec = model(MODEL_NAME, NAMES, "latin1.csv")  # the run of names_in_pictures() fits it
        spec["training"]["data"].pop("classes")
        spec["training"]["data"].pop("rows")
        spec["training"]["data"]["split"] = {"per_class_train_fraction": 0.5}
        json.dump(spec, f)
    err = run("eval", m, "--weights", os.path.join(TMP, "run"), "--json", expect=2).stderr.decode("utf-8")
    check("latin1.csv:1:" in run("train", m, expect=2).stderr.decode("utf-8"), "train on a latin-1 CSV")
    check("is not valid UTF-8" in err and "latin1.csv:1:" in err, f"eval --json on a latin-1 CSV said: {err}")


names_in_pictures()
infinities_round_trip()
class_names_not_utf8()
shutil.rmtree(TMP)
print(f"{CHECKS} checks passed")
