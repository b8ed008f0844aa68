#!/usr/bin/env python3
"""scripts/lecture-table: docs/results.md shows data/lecture_figures.json as it is, and the
main job's last screen sets the numbers of real runs beside the lecture's.

Usage: test_lecture_table.py SOURCE_ROOT BUILD_ROOT
"""
import pathlib
import re
import subprocess
import sys
import tempfile

root, build = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
script = root / "scripts" / "lecture-table"
cr = str(build / "cli" / "chainrule")

md = subprocess.run([sys.executable, script, "--markdown"], capture_output=True, text=True, check=True).stdout
results = (root / "docs" / "results.md").read_text()
m = re.search(r"<!-- lecture-figures:begin -->\n(.*?)\n<!-- lecture-figures:end -->", results, re.S)
assert m, "docs/results.md has no lecture-figures block"
assert m.group(1).strip() == md.strip(), "docs/results.md's lecture table differs from data/lecture_figures.json: run scripts/lecture-table --markdown"

with tempfile.TemporaryDirectory() as tmp:
    runs = pathlib.Path(tmp)
    missing = subprocess.run([sys.executable, script, "--runs", str(runs), "--chainrule", cr],
                             capture_output=True, text=True, cwd=root)
    assert missing.returncode == 2 and "run scripts/lecture first" in missing.stderr, missing.stderr
    for name, args in (("iris_neuron_15", ["--epochs", "15"]), ("iris_neuron_15_lr0.52", ["--epochs", "15", "--lr", "0.52"]),
                       ("iris_neuron_999", ["--epochs", "999"])):
        subprocess.run([cr, "train", "models/iris_neuron.json", *args, "--out", str(runs / name)],
                       check=True, capture_output=True, cwd=root)
    out = subprocess.run([sys.executable, script, "--runs", str(runs), "--chainrule", cr],
                         capture_output=True, text=True, check=True, cwd=root).stdout
    def row(label):
        hits = [l for l in out.splitlines() if l.startswith(label)]
        assert hits, f"no row '{label}' in:\n{out}"
        return hits[0]
    assert "0.19169" in row("worked example: L") and "0.196933" in row("worked example: L")
    assert "0.379799" in row("worked example: dL/dw0")
    assert "-0.0899" in row("worked example: w0 after one step")
    assert "-0.058023 at lr 0.1" in row("Iris, 15 epochs: w0")
    gap = float(row("Iris, 15 epochs: largest gap").split()[-1])
    assert gap < 2e-3, f"the lr 0.52 run no longer reproduces the 15-epoch slide: gap {gap}"
    assert "0.0118 (setosa #2)" in row("Iris, 999 epochs: largest gap")
    assert "(not run)" in row("MNIST: test accuracy, exact gradients")
print("lecture table: ok")
