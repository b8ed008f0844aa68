#!/usr/bin/python3
"""The step page (`chainrule step MODEL --html PAGE`) in a real, headless Chromium.

    /usr/bin/python3 tests/test_step_page.py SOURCE_ROOT BUILD_ROOT

First the checks that need no browser (sizes, the CSP's hashes, escaping, the message when
Graphviz is missing); then, when Debian's chromium, chromium-driver and python3-selenium are
installed (else exit 77: skipped), the page itself: PAGE#step=K against `step --json`, the
buttons, the keys, the hash, the highlighted node, nothing fetched, no console errors, dark
mode, screenshots that are not blank, and a model whose names try to break the page.
Screenshots go to BUILD_ROOT/tests/step-page/ (docs/images/step-page-*.png are copies).
"""
import base64
import hashlib
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib

SOURCE, BUILD = sys.argv[1], sys.argv[2]
CHAINRULE = os.path.join(BUILD, "cli", "chainrule")
OUT = os.path.join(BUILD, "tests", "step-page")
TMP = tempfile.mkdtemp(prefix="chainrule-page-")
CHECKS = 0


def check(ok, what):
    global CHECKS
    CHECKS += 1
    if not ok:
        print("FAIL:", what, file=sys.stderr)
        sys.exit(1)


def run(*args, env=None):
    # 600 s: mnist_cnn's page under ASan at -O0 took over 120 s on a loaded 2-core CI run.
    return subprocess.run([CHAINRULE, *args], capture_output=True, text=True, env=env, timeout=600)


def model(name):
    return os.path.join(SOURCE, "models", name + ".json")


def make_page(model_path, name, *extra):
    page = os.path.join(TMP, name + ".html")
    r = run("step", model_path, "--html", page, *extra)
    check(r.returncode == 0, f"step --html {model_path}: {r.stderr}")
    return page, r


def start_page(model_path, name, *extra):
    """make_page, started in the background: (page, process) for finish_page."""
    page = os.path.join(TMP, name + ".html")
    cmd = [CHAINRULE, "step", model_path, "--html", page, *extra]
    return page, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_page(started):
    """What make_page returns, for a page begun by start_page."""
    page, p = started
    out, err = p.communicate(timeout=600)
    r = subprocess.CompletedProcess(p.args, p.returncode, out, err)
    check(r.returncode == 0, f"step --html {p.args[2]}: {r.stderr}")
    return page, r


def trace_json(model_path, *extra):
    r = run("step", model_path, "--json", *extra)
    check(r.returncode == 0, r.stderr)
    return json.loads(r.stdout)


def flat(x):
    if isinstance(x, list):
        return [v for item in x for v in flat(item)]
    return [x]


def g6(v):
    return "%.6g" % v


NUMBER = re.compile(r"-?(?:nan|inf|\d+(?:\.\d+)?(?:e[+-]\d+)?)")


def numbers(text):
    return NUMBER.findall(text)


def data_block(html):
    m = re.search(r'<script type="application/json" id="trace">(.*?)</script>', html, re.S)
    check(m is not None, "the page has its data block")
    return json.loads(m.group(1))


# ---- without a browser ----

# The LeNet model's page takes most of this test's time under the sanitizers (scripts/sanitize,
# where this test runs alone): it is written on the second core while the checks below run.
cnn_started = start_page(model("mnist_cnn"), "mnist_cnn")
we_page, we_run = make_page(model("worked_example"), "worked_example")
sm_page, sm_run = make_page(model("slides_mnist"), "slides_mnist")
we_html = open(we_page, encoding="utf-8").read()
sm_html = open(sm_page, encoding="utf-8").read()
check(len(we_html.encode()) <= 150 * 1024, f"worked example page is {len(we_html.encode())} bytes, over 150 KB")
check(len(sm_html.encode()) <= 1536 * 1024, f"slides_mnist page is {len(sm_html.encode())} bytes, over 1.5 MB")
check("wrote " in we_run.stderr and "KB" in we_run.stderr, we_run.stderr)

# Each entry of a small parameter's or input's gradient is explained in the data block with
# the JSON `step --explain --json` prints; a refusal is stored as its message.
we_nodes = {n["name"]: n for n in data_block(we_html)["nodes"]}
for name, n in we_nodes.items():
    if n["kind"] == "op" or not n["wants_grad"]:
        check(n["explain"] is None, f"{name} has no explain data")
        continue
    check(len(n["explain"]) == math.prod(n["shape"]), f"{name}: every entry is explained")
    for i, stored in enumerate(n["explain"]):
        r = run("step", model("worked_example"), "--explain", f"{name}[{i}]", "--json")
        if r.returncode == 0:
            check(stored == json.loads(r.stdout), f"{name}[{i}]: the page's explain data is `step --explain --json`'s")
        else:
            check(stored == {"refused": r.stderr.strip().removeprefix("error: ")}, f"{name}[{i}] refused: {stored} vs {r.stderr}")

# A parameter used twice is not explained; its entries store why, as the terminal says it.
twice_model = os.path.join(TMP, "twice.json")
with open(twice_model, "w", encoding="utf-8") as f:
    json.dump({"format": "chainrule-model", "version": 1, "name": "twice", "dtype": "float64",
               "parameters": {"p": {"shape": [2], "init": {"constant": 0.5}}},
               "nodes": [{"name": "sq", "op": "mul", "inputs": ["p", "p"]}, {"name": "s", "op": "sum", "inputs": ["sq"]}],
               "outputs": {"loss": "s"}}, f)
twice_page, _ = make_page(twice_model, "twice")
twice_p = next(n for n in data_block(open(twice_page, encoding="utf-8").read())["nodes"] if n["name"] == "p")
refusal = run("step", twice_model, "--explain", "p[1]")
check(refusal.returncode == 2 and "p feeds 2 uses on the way to the loss" in refusal.stderr, refusal.stderr)
check(twice_p["explain"][1] == {"refused": refusal.stderr.strip().removeprefix("error: ")},
      f"the stored refusal {twice_p['explain'][1]} vs {refusal.stderr}")

# The CSP names the one script and the one style by their hashes, and forbids everything else.
csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', we_html)
check(csp is not None, "the page has a CSP meta tag")
csp = csp.group(1)
check("default-src 'none'" in csp and "unsafe-inline" not in csp, csp)
script = re.findall(r"<script>(.*?)</script>", we_html, re.S)
style = re.findall(r"<style>(.*?)</style>", we_html, re.S)
check(len(script) == 1 and len(style) == 1, "one inline script and one inline style")
sha = lambda s: base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()
check(f"script-src 'sha256-{sha(script[0])}'" in csp, "the script's hash is in the CSP")
check(f"style-src 'sha256-{sha(style[0])}'" in csp, "the style's hash is in the CSP")
check(not re.search(r'\s(src|href)=', we_html.split("<svg", 1)[0]), "nothing is loaded by the page's head")

# Random inputs are said in the page as on stderr; a fed model says nothing.
sm_data = data_block(sm_html)
check(sm_data["random_inputs"] == ["x [N,784]", "t [N,10]"], sm_data["random_inputs"])
check("drawn at random" in sm_run.stderr, sm_run.stderr)
check(data_block(we_html)["random_inputs"] == [], "the worked example has its own inputs")
# Rows of the model's own data (--rows) are not random either.
iris_page, iris_run = make_page(model("iris_neuron"), "iris_rows", "--rows", "test:0:3")
check(data_block(open(iris_page, encoding="utf-8").read())["random_inputs"] == [], "--rows feeds real rows")
check("from rows 0 to 2 of the test split" in iris_run.stderr, iris_run.stderr)
# The LeNet model's page: every step is there and its [3,8,28,28] tensors are summarised.
cnn_page, _ = finish_page(cnn_started)
cnn_html = open(cnn_page, encoding="utf-8").read()
check(len(cnn_html.encode()) <= 1536 * 1024, f"mnist_cnn page is {len(cnn_html.encode())} bytes")
check(len(data_block(cnn_html)["steps"]) == 11, "mnist_cnn has 11 backward steps")
# c1's bias sums over every position of every image: left to the terminal, by count.
c1 = next(n for n in data_block(cnn_html)["nodes"] if n["name"] == "c1")
check(c1["explain"][0] == {"entry": "c1[0]", "too_many_terms": 3 * 28 * 28, "limit": 256}, str(c1["explain"][0])[:300])

# The lecture's graph on three real digits (data/mnist when fetched, else three drawn ones)
# with untrained and with trained weights: each row's label and prediction in the page.
def mnist_dir():
    real = os.path.join(SOURCE, "data", "mnist")
    if os.path.exists(os.path.join(real, "t10k-labels-idx1-ubyte.gz")):
        import gzip
        with gzip.open(os.path.join(real, "t10k-labels-idx1-ubyte.gz")) as f:
            return real, list(f.read()[8:11])
    d = os.path.join(TMP, "digits")
    os.makedirs(d)
    labels = [7, 2, 1]
    for split, n in (("train", 90), ("t10k", 3)):
        images = bytearray(struct.pack(">IIII", 0x803, n, 28, 28))
        for i in range(n):  # a bar whose place says the class
            c = labels[i % 3]
            images += bytes(200 if 2 * c + 4 <= x < 2 * c + 8 and 4 <= y < 24 else 0 for y in range(28) for x in range(28))
        with open(os.path.join(d, split + "-images-idx3-ubyte"), "wb") as f:
            f.write(images)
        with open(os.path.join(d, split + "-labels-idx1-ubyte"), "wb") as f:
            f.write(struct.pack(">II", 0x801, n) + bytes(labels[i % 3] for i in range(n)))
    return d, labels


MNIST, MNIST_LABELS = mnist_dir()
# A short run of models/mnist_mlp.json (the same network, float32) on that data.
mlp = json.load(open(model("mnist_mlp"), encoding="utf-8"))
mlp["training"].update({"data": {"kind": "idx", "dir": os.path.abspath(MNIST)}, "epochs": 2, "batch_size": 30,
                        "batches_per_epoch": 20})
mlp_model = os.path.join(TMP, "mlp.json")
with open(mlp_model, "w", encoding="utf-8") as f:
    json.dump(mlp, f)
RUN = os.path.join(TMP, "run")
r = run("train", mlp_model, "--out", RUN, "--no-progress")
check(r.returncode == 0, f"train: {r.stderr}")
ROWS = ("--rows", "test:0:3", "--data", MNIST)
mn_page, mn_run = make_page(model("slides_mnist"), "mnist_trained", *ROWS, "--weights", RUN)
mn_untrained_page, _ = make_page(model("slides_mnist"), "mnist_untrained", *ROWS)
mn_data = data_block(open(mn_page, encoding="utf-8").read())
mn_untrained = data_block(open(mn_untrained_page, encoding="utf-8").read())
ckpt = os.path.join(RUN, "checkpoint.ckpt")
check(f"note: parameters from {ckpt} (epoch 2, trained as model 'mnist_mlp', float32 widened to float64)" in mn_run.stderr,
      mn_run.stderr)
check(mn_data["weights"].startswith(ckpt + " (epoch 2") and mn_untrained["weights"] is None, mn_data["weights"])
check(mn_data["data"] == f"x (images), t (labels_one_hot): rows 0 to 2 of the test split of {MNIST}", mn_data["data"])
check(mn_data["random_inputs"] == [], "rows of data are not random")
# --weights puts the run's numbers in the walk: the loss, W1 and every gradient differ.
mn_trace = trace_json(model("slides_mnist"), *ROWS, "--weights", RUN)
mn_untrained_trace = trace_json(model("slides_mnist"), *ROWS)
check(mn_trace["loss"] != mn_untrained_trace["loss"], "the trained loss differs from the untrained one")
check(mn_trace["nodes"]["W1"]["value"] != mn_untrained_trace["nodes"]["W1"]["value"], "W1 is the run's")
check(mn_trace["nodes"]["b2"]["grad"] != mn_untrained_trace["nodes"]["b2"]["grad"], "so are the gradients")
check(g6(mn_data["loss"]) == g6(mn_trace["loss"]), "the page's loss is step --json's")
# Each row: its label from the data, its prediction the largest entry of S.
for trace, page_data in ((mn_trace, mn_data), (mn_untrained_trace, mn_untrained)):
    S = trace["nodes"]["S"]["value"]
    rows = page_data["rows"]
    check([r["row"] for r in rows] == ["test 0", "test 1", "test 2"], rows)
    check([r["label"] for r in rows] == [str(v) for v in MNIST_LABELS], rows)
    check([r["predicted"] for r in rows] == [max(range(10), key=lambda c: s[c]) for s in S], rows)
    check([r["right"] for r in rows] == [str(r["predicted"]) == r["label"] for r in rows], rows)
check(mn_data["row_image"] == {"node": 0, "dims": [28, 28]}, mn_data["row_image"])

# A model whose names and doc try to end the script block, open a comment or end a line.
BAD = "x</script><!--\u2028\u2029&"
esc_model = os.path.join(TMP, "escape.json")
with open(esc_model, "w", encoding="utf-8") as f:
    json.dump({"format": "chainrule-model", "version": 1, "name": "esc</script><!--",
               "doc": "doc </script><script>document.title='broken'</script> <!-- \u2028 end", "dtype": "float64",
               "inputs": {BAD: {"shape": [1, 1]}},
               "parameters": {"w": {"shape": [1, 1], "init": {"constant": 10}},
                              "w2": {"shape": [1, 1], "init": {"constant": 10}}},
               "nodes": [{"name": "z</script>", "op": "matmul", "inputs": [BAD, "w"], "doc": "<!-- z -->"},
                         {"name": "z2", "op": "matmul", "inputs": [BAD, "w2"]},
                         {"name": "L", "op": "mse", "inputs": ["z</script>", "z2"]}],
               "outputs": {"loss": "L"}}, f, ensure_ascii=False)
esc_feed = os.path.join(TMP, "escape_feed.json")
with open(esc_feed, "w", encoding="utf-8") as f:
    json.dump({BAD: [[1e308]]}, f, ensure_ascii=False)  # 1e308 * 10 = inf, inf - inf = nan
esc_page, _ = make_page(esc_model, "escape", "--feed", esc_feed)
esc_html = open(esc_page, encoding="utf-8").read()
check(esc_html.count("</script>") == 2, "only the page's own two script blocks end")
blocks = "".join(re.findall(r"<script[^>]*>(.*?)</script>", esc_html, re.S))
check("\u2028" not in blocks and "\u2029" not in blocks and "\\u2028" in blocks, "U+2028/2029 are escaped")
esc_data = data_block(esc_html)
check(esc_data["nodes"][0]["name"] == BAD, "the name survives as data")
check("NaN" in json.dumps(esc_data["tensors"]) and "Infinity" in json.dumps(esc_data["tensors"]),
      "NaN and Inf travel as strings")

# Without Graphviz: exit 1 and a message that says what to install.
nodot = os.path.join(TMP, "nodot")
os.mkdir(nodot)
r = run("step", model("worked_example"), "--html", os.path.join(TMP, "x.html"), env={"PATH": nodot})
check(r.returncode == 1, f"exit {r.returncode} without dot")
check("needs Graphviz's `dot`" in r.stderr and "apt-get install graphviz" in r.stderr, r.stderr)
check(not os.path.exists(os.path.join(TMP, "x.html")), "no page is left without dot")
r = run("step", model("worked_example"), "--html", os.path.join(TMP, "y.html"), "--json")
check(r.returncode == 2 and "excludes" in r.stderr, r.stderr)

# ---- in the browser ----

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
except ImportError:
    webdriver = None
if webdriver is None or not os.path.exists(CHROMIUM) or not os.path.exists(DRIVER):
    print(f"{CHECKS} checks passed; skipping the browser: needs chromium, chromium-driver and python3-selenium")
    sys.exit(77)


def browser():
    home = os.path.join(TMP, "home")
    os.makedirs(home, exist_ok=True)
    os.environ["HOME"] = home
    o = webdriver.ChromeOptions()
    o.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-background-networking",
              "--user-data-dir=" + os.path.join(TMP, "profile"), "--window-size=1400,1000"):
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(DRIVER), options=o)
    d.set_page_load_timeout(60)
    d.set_script_timeout(30)
    return d


def png_colours(path):
    """Distinct colours of an 8-bit RGB/RGBA PNG (what Chromium's screenshots are)."""
    blob = open(path, "rb").read()
    check(blob[:8] == b"\x89PNG\r\n\x1a\n", "a PNG")
    pos, idat, w = 8, b"", 0
    while pos < len(blob):
        n, kind = struct.unpack(">I4s", blob[pos:pos + 8])
        body = blob[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            check(depth == 8 and ctype in (2, 6), f"PNG depth {depth} type {ctype}")
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, stride, prev, colours = zlib.decompress(idat), w * bpp, bytearray(w * bpp), set()
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        if y % 2 == 0:
            colours.update(bytes(line[i:i + 3]) for i in range(0, stride, bpp * 2))
        prev = line
    return len(colours)


def open_page(d, page, k=None):
    d.get("about:blank")
    d.get("file://" + page + ("" if k is None else f"#step={k}"))


def errors(d):
    return [e for e in d.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]


def current_name(d):
    cur = d.find_elements(By.CSS_SELECTOR, "#graph g.cr-current")
    check(len(cur) == 1, f"{len(cur)} highlighted nodes")
    return cur[0].find_element(By.TAG_NAME, "text").text


def field_text(scope, name):
    return scope.find_element(By.CSS_SELECTOR, f'dd[data-field="{name}"]').text


def field(scope, name):
    return scope.find_element(By.CSS_SELECTOR, f':scope > dl > dd[data-field="{name}"]')


def same_numbers(text, values, what):
    got = numbers(text)
    want = [g6(v) for v in values]
    check(got == want, f"{what}: page {got[:8]}… vs step --json {want[:8]}…")


def same_tensor(dd, value, what, d):
    """The page's view of a tensor against step --json's exact numbers."""
    vals = flat(value)
    if len(vals) <= 64:
        same_numbers(dd.find_element(By.CSS_SELECTOR, ".num").text, vals, what)
        return
    stats = dd.find_element(By.CSS_SELECTOR, ".stats").text
    s = sum(vals)
    want = {"min": min(vals), "max": max(vals), "mean": s / len(vals), "L2": math.sqrt(sum(v * v for v in vals))}
    for k, v in want.items():
        m = re.search(rf"\b{k} (\S+)", stats)
        check(m is not None and m.group(1) == g6(v), f"{what} {k}: page '{stats}' vs {g6(v)}")
    check(dd.find_elements(By.TAG_NAME, "canvas"), f"{what}: a heatmap")


def check_step(d, page, trace, k):
    open_page(d, page, k)
    n = len(trace["steps"])
    check(d.execute_script("return location.hash") == f"#step={k}", "the hash is kept")
    check(d.find_element(By.ID, "slider").get_attribute("value") == str(k), "slider at K")
    if k == 0:
        check(d.find_element(By.ID, "where").text == f"step 0/{n}: after forward", d.find_element(By.ID, "where").text)
        check(not d.find_elements(By.CSS_SELECTOR, "#graph g.cr-current"), "nothing highlighted after forward")
        panel = d.find_element(By.ID, "panel")
        same_numbers(field(panel, "loss").text.split("=")[1], [trace["loss"]], "loss")
        return
    st = trace["steps"][k - 1]
    panel = d.find_element(By.ID, "panel")
    title = panel.find_element(By.ID, "step-title").text
    check(title.startswith(f"step {k}/{n}: {st['node']} = {st['op']}({', '.join(st['inputs'])})"), title)
    check(current_name(d) == st["node"], f"highlighted {current_name(d)} at step {k}, want {st['node']}")
    marked = {e.find_element(By.TAG_NAME, "text").text for e in d.find_elements(By.CSS_SELECTOR, "#graph g.cr-input-of")}
    check(marked == set(st["inputs"]) - {st["node"]}, f"marked inputs {marked}")
    # The formula in the model's names; the op's own (generic names) beside the op.
    check(field(panel, "formula").text == " ".join(st["named_formula"].split()), "formula")
    check(" ".join(st["formula"].split()) in " ".join(field(panel, "op").text.split()), "the op's formula")
    labels = [e.text for e in panel.find_elements(By.CSS_SELECTOR, ":scope dl.fields > dt")]
    check(not any("_" in t for t in labels), f"field labels are words, not JSON keys: {labels}")
    same_tensor(field(panel, "grad_out"), st["grad_out"], f"step {k} upstream gradient", d)
    shown = [b.get_attribute("data-slot") for b in panel.find_elements(By.CSS_SELECTOR, ".input-block")]
    labelled = sorted((l["number"], str(l["slot"])) for l in st["labels"])
    check([s for s in shown if s in {x[1] for x in labelled}] == [x[1] for x in labelled], f"lecture order {shown}")
    for c in st["contributions"]:
        block = panel.find_element(By.CSS_SELECTOR, f'.input-block[data-slot="{c["slot"]}"]')
        check(block.get_attribute("data-input") == c["input"], "input block name")
        if c["contribution"] is None:
            check("no gradient wanted" in field(block, "sends").text, "no gradient wanted")
            continue
        same_tensor(field(block, "sends"), c["contribution"], f"step {k} → {c['input']} sends", d)
        same_tensor(field(block, "grad"), c["grad"], f"step {k} → {c['input']} accumulated", d)
        label = [l for l in st["labels"] if l["input"] == c["input"] and l["slot"] == c["slot"]]
        if label:
            l = label[0]
            want = " ".join(f"({l['number']}) {l['derivative']} = {l['formula']}".split())
            check(block.find_element(By.CSS_SELECTOR, "h3 .label").text == want, f"label {want}")
        if "lecture_gap" in c:
            gap = c["lecture_gap"]
            same_tensor(field(block, "lecture"), gap["lecture"], "lecture's update", d)
            text = field(block, "gap").text
            check(f"‖exact − lecture‖ = {g6(gap['norm_diff'])}" in text and "largest difference at" in text, text)


d = browser()
try:
    we_trace = trace_json(model("worked_example"))
    sm_trace = trace_json(model("slides_mnist"))
    for k in (0, 1, 2, 3, 4):
        check_step(d, we_page, we_trace, k)
    for k in (0, 1, 2, 3, 5, 8):
        check_step(d, sm_page, sm_trace, k)
    # Before any step a gradient is "—", never 0; the loss is seeded with 1.
    open_page(d, we_page, 0)
    cells = {r.get_attribute("data-node"): r.find_element(By.CSS_SELECTOR, '[data-field="grad"]').text
             for r in d.find_elements(By.CSS_SELECTOR, "#nodes tr[data-node]")}
    check(cells["w"] == "—" and cells["z"] == "—" and cells["L"] == "1", cells)
    open_page(d, we_page, 4)
    row = d.find_element(By.CSS_SELECTOR, '#nodes tr[data-node="w"] [data-field="grad"]').text
    same_numbers(row, flat(we_trace["nodes"]["w"]["grad"]), "w's gradient after the walk")
    check(errors(d) == [], f"console: {errors(d)}")

    # Buttons, the hash and the highlight move together.
    open_page(d, we_page, 1)
    d.find_element(By.ID, "next").click()
    check(d.execute_script("return location.hash") == "#step=2", "next moves the hash")
    check(current_name(d) == we_trace["order"][1], "next moves the highlight")
    d.find_element(By.ID, "prev").click()
    check(current_name(d) == we_trace["order"][0], "prev moves back")
    d.find_element(By.ID, "last").click()
    check(d.find_element(By.ID, "next").get_attribute("disabled") is not None, "next is disabled at the end")
    d.find_element(By.ID, "first").click()
    check(d.execute_script("return location.hash") == "#step=0", "first goes to after-forward")
    for b in d.find_elements(By.CSS_SELECTOR, "button"):
        check((b.get_attribute("aria-label") or b.text).strip() != "", "every button has a label")
    # Keys.
    body = d.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.ARROW_RIGHT)
    body.send_keys(Keys.ARROW_RIGHT)
    check(d.execute_script("return location.hash") == "#step=2", "→ steps forward")
    body.send_keys(Keys.ARROW_LEFT)
    check(current_name(d) == we_trace["order"][0], "← steps back")
    body.send_keys(Keys.END)
    check(d.execute_script("return location.hash") == "#step=4", "End goes to the last step")
    body.send_keys(Keys.HOME)
    check(d.execute_script("return location.hash") == "#step=0", "Home goes to after-forward")
    check(d.find_element(By.ID, "play").get_attribute("aria-pressed") in (None, "false"), "it does not play by itself")
    body.send_keys(Keys.SPACE)
    check(d.find_element(By.ID, "play").get_attribute("aria-pressed") == "true", "space plays")
    time.sleep(1.3)
    body.send_keys(Keys.SPACE)
    check(d.find_element(By.ID, "play").get_attribute("aria-pressed") == "false", "space pauses")
    check(d.execute_script("return location.hash") != "#step=0", "playing moved on")
    d.execute_script("location.hash = '#step=3'")
    time.sleep(0.2)
    check(current_name(d) == we_trace["order"][2], "a new hash moves the page")
    # Clicking a node in the graph shows it.
    d.find_element(By.ID, "n2").click()
    inspect = d.find_element(By.ID, "inspect")
    check(inspect.is_displayed() and inspect.find_element(By.TAG_NAME, "h2").text.startswith("w (parameter)"), "inspect")

    # Explain by a click: the entries of a small parameter's gradient are buttons whose
    # write-up is `step --explain --json`'s, formatted as the terminal formats it.
    def explained(entry):
        r = run("step", model("worked_example"), "--explain", entry, "--json")
        check(r.returncode == 0, r.stderr)
        return json.loads(r.stdout)

    def check_explain(x, what):
        box = d.find_element(By.ID, "explain")
        check(box.is_displayed(), f"{what}: the explain panel is shown")
        check(box.find_element(By.TAG_NAME, "h2").text.startswith(f"dL/d{x['entry']} term by term"), what)
        sum_text = box.find_element(By.CSS_SELECTOR, '[data-field="sum"]').text
        want = f"Σ terms = {g6(x['sum'])}; dL/d{x['entry']} from the backward pass = {g6(x['grad'])}"
        check(sum_text == want, f"{what}: '{sum_text}' vs '{want}'")
        rows = box.find_elements(By.CSS_SELECTOR, "table.terms tr[data-term]")
        check([r.get_attribute("data-term") for r in rows] == [t["at"] for t in x["terms"]], f"{what}: the terms' j")
        for r, t in zip(rows, x["terms"]):
            same_numbers(r.text.split(None, 1)[1], t["factors"] + [t["value"]], f"{what}: term {t['at']}")
        formulas = [e.text for e in box.find_elements(By.CSS_SELECTOR, 'td[data-field="formula"]')]
        check(len(formulas) == len(x["factors"]), f"{what}: one row per factor")
        for f, shown in zip(x["factors"], formulas):
            check(f["formula"] in shown, f"{what}: formula {f['formula']} in '{shown}'")
        eq = box.find_element(By.CSS_SELECTOR, '[data-field="equation"]').text
        check(eq.startswith(f"dL/d{x['entry']} = Σ_j " + " · ".join(f["name"] if "[j]" in f["name"] else f["name"] + "[j]"
                                                                    for f in x["factors"])), f"{what}: equation {eq}")
        return box

    w0 = explained("w[0]")
    check(g6(w0["sum"]) == "0.379799" and [g6(t["value"]) for t in w0["terms"]] == ["0.237757", "-0.0813046", "0.223347"],
          f"the lecture's dL/dw0: {w0}")
    open_page(d, we_page, 4)
    w_block = d.find_element(By.CSS_SELECTOR, '#panel .input-block[data-input="w"]')
    field(w_block, "grad").find_element(By.CSS_SELECTOR, 'button[aria-label="explain dL/dw[0,0]"]').click()
    box = check_explain(w0, "a click on dL/dw[0,0]")
    check(box.find_elements(By.CSS_SELECTOR, '[data-field="early"]') == [], "no note at the last step")
    check("(yhat−y)/N" in box.text and "yhat(1−yhat)" in box.text and "xᵀ·dL/dz" in box.text, box.text)
    os.makedirs(OUT, exist_ok=True)
    d.save_screenshot(os.path.join(OUT, "step-page-worked_example-explain.png"))
    check(d.execute_script("return document.activeElement.id") == "explain-title", "the panel takes the focus")
    # Earlier steps say the write-up is of the complete gradient.
    d.find_element(By.TAG_NAME, "body").send_keys(Keys.HOME)
    early = d.find_element(By.CSS_SELECTOR, '#explain [data-field="early"]').text
    check("after the whole backward pass" in early and "complete after step 4/4" in early and "not computed yet" in early, early)
    # Keyboard: a focused entry is explained by Enter, and by Space.
    open_page(d, we_page, 4)
    button = d.find_element(By.CSS_SELECTOR, '#panel button[aria-label="explain dL/dw[1,0]"]')
    d.execute_script("arguments[0].focus()", button)
    webdriver.ActionChains(d).send_keys(Keys.ENTER).perform()
    check_explain(explained("w[1]"), "Enter on dL/dw[1,0]")
    d.find_element(By.CSS_SELECTOR, '#explain button[aria-label="close the explanation"]').click()
    check(not d.find_element(By.ID, "explain").is_displayed(), "close hides the explanation")
    button = d.find_element(By.CSS_SELECTOR, '#panel button[aria-label="explain dL/dx[0,0]"]')
    d.execute_script("arguments[0].focus()", button)
    webdriver.ActionChains(d).send_keys(Keys.SPACE).perform()
    box = check_explain(explained("x[0]"), "Space on dL/dx[0,0]")
    check("(2 more j with ∂z[j]/∂x[0,0] = 0 left out)" in box.text, box.text)
    check(d.find_element(By.ID, "play").get_attribute("aria-pressed") in (None, "false"), "Space on an entry does not play")
    open_page(d, twice_page, 2)
    d.find_element(By.CSS_SELECTOR, '#panel button[aria-label="explain dL/dp[1]"]').click()
    refused = d.find_element(By.CSS_SELECTOR, '#explain [data-field="refused"]').text
    check(refused == twice_p["explain"][1]["refused"], refused)
    # The lecture's graph: b2 [10] is precomputed, W1 [784,100] points to the terminal.
    sm_data = data_block(sm_html)
    by_name = {n["name"]: n for n in sm_data["nodes"]}
    check(len(by_name["b2"]["explain"]) == 10 and by_name["W1"]["explain"] is None, "what the lecture's page precomputes")
    open_page(d, sm_page, 8)
    w1 = d.find_element(By.CSS_SELECTOR, '.input-block[data-input="W1"]')
    check("chainrule step MODEL --explain 'W1[i,j]'" in field(w1, "grad").text, field(w1, "grad").text)
    open_page(d, sm_page, 1 + [st["node"] for st in sm_trace["steps"]].index("a2"))
    b2 = d.find_element(By.CSS_SELECTOR, '#panel .input-block[data-input="b2"]')
    field(b2, "grad").find_element(By.CSS_SELECTOR, 'button[aria-label="explain dL/db2[3]"]').click()
    sm_b2 = run("step", model("slides_mnist"), "--explain", "b2[3]", "--json")
    check(sm_b2.returncode == 0, sm_b2.stderr)
    check_explain(json.loads(sm_b2.stdout), "dL/db2[3] on the lecture's graph")

    # Nothing fetched; a fetch is refused by the CSP, visibly.
    check(errors(d) == [], f"console: {errors(d)}")
    check(d.execute_script("return performance.getEntriesByType('resource').length") == 0, "no resources loaded")
    d.execute_script("fetch('http://127.0.0.1:9/leak').catch(() => {}); return 0")
    time.sleep(0.5)
    logs = errors(d)
    check(any("Content Security Policy" in e["message"] for e in logs), f"the CSP refused the fetch: {logs}")

    # Heatmap: the value under the pointer, a 784-wide row as a 28×28 image.
    open_page(d, sm_page, 8)
    x_block = d.find_element(By.CSS_SELECTOR, '.input-block[data-input="x"]')
    canvas = field(x_block, "sends").find_element(By.TAG_NAME, "canvas")
    webdriver.ActionChains(d).move_to_element_with_offset(canvas, 1, 0).perform()
    hover = field(x_block, "sends").find_element(By.CSS_SELECTOR, ".hover").text
    check(re.match(r"\[1, \d+\] = -?\d", hover) is not None, f"value under the pointer: {hover}")
    check(field(x_block, "sends").find_elements(By.CSS_SELECTOR, ".image28 canvas"), "28×28 image of a row")
    w1 = d.find_element(By.CSS_SELECTOR, '.input-block[data-input="W1"]')
    check("column as 28×28" in field(w1, "sends").text, "28×28 image of a column of W1")

    # Screenshots at the first and last step (and the lecture's gap at step 2), not blank.
    os.makedirs(OUT, exist_ok=True)
    for page, name, ks in ((we_page, "worked_example", (1, 4)), (sm_page, "slides_mnist", (1, 2, 8))):
        for k in ks:
            open_page(d, page, k)
            path = os.path.join(OUT, f"step-page-{name}-{k}.png")
            d.save_screenshot(path)
            colours = png_colours(path)
            check(colours > 40, f"{path} has only {colours} colours")
    check(errors(d) == [], f"console: {errors(d)}")

    # The MNIST page tells its story: where the inputs and weights come from, each row's
    # label and prediction, what can be clicked; nothing makes the page scroll sideways.
    for page, pd in ((mn_page, mn_data), (mn_untrained_page, mn_untrained)):
        open_page(d, page, 0)
        facts = d.find_element(By.ID, "facts")
        check(field_text(facts, "data") == pd["data"], field_text(facts, "data"))
        want = ("trained: " + pd["weights"]) if pd["weights"] else "untrained: drawn by their initializers (seed 0)"
        check(field_text(facts, "weights").startswith(want), field_text(facts, "weights"))
        cards = d.find_elements(By.CSS_SELECTOR, "#rows .row-card")
        check(len(cards) == 3, f"{len(cards)} row cards")
        for card, r in zip(cards, pd["rows"]):
            check(card.get_attribute("data-row") == r["row"], card.get_attribute("data-row"))
            check(card.find_element(By.CSS_SELECTOR, '[data-field="label"]').text == "label " + r["label"], card.text)
            check(card.find_element(By.CSS_SELECTOR, '[data-field="predicted"]').text == "predicted " + r["class"], card.text)
            check(("right" if r["right"] else "wrong") in card.text, card.text)
            check(card.find_elements(By.TAG_NAME, "canvas"), "a picture of the row")
        # The model's doc may say what happens without data; nothing else on the page may.
        body = d.find_element(By.TAG_NAME, "body").text.replace(d.find_element(By.ID, "doc").text, "")
        check("No data" not in body and "drawn at random" not in body, "rows of data are not called missing or random")
        check(not d.find_element(By.ID, "random").is_displayed(), "no banner about inputs drawn at random")
        hint = d.find_element(By.ID, "hint").text
        check("Click a node of the graph" in hint and "click a number of dL/dt, dL/db2" in hint and "term by term" in hint, hint)
    check(d.find_element(By.ID, "doc").text.find("No data") < 0, "the lecture's graph does not say it has no data")
    for width in (1400, 1000):
        d.set_window_size(width, 1000)
        for k in range(len(mn_data["steps"]) + 1):
            open_page(d, mn_page, k)
            wide = d.execute_script("return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
            check(wide[0] <= wide[1], f"width {width}, step {k}: the document scrolls sideways ({wide[0]} > {wide[1]})")
    d.set_window_size(1400, 1000)
    # The graph's labels are readable at the zoom it opens with, and zoom in and out.
    open_page(d, mn_page, 5)
    size = d.execute_script("return document.querySelector('#n6 text').getBoundingClientRect().height")
    check(size >= 10, f"graph labels are {size:.1f} px tall")
    before = d.execute_script("return document.querySelector('#graph-view svg').getBoundingClientRect().width")
    d.find_element(By.ID, "zoom-in").click()
    after = d.execute_script("return document.querySelector('#graph-view svg').getBoundingClientRect().width")
    check(abs(after / before - 1.25) < 0.01, f"zoom in: {before} -> {after}")
    d.find_element(By.TAG_NAME, "body").send_keys("-")
    back = d.execute_script("return document.querySelector('#graph-view svg').getBoundingClientRect().width")
    check(abs(back - before) < 1, f"- zooms out: {back} vs {before}")
    check(d.find_element(By.ID, "zoom-level").text.endswith("%"), "the zoom is shown")
    # The current node is scrolled into the graph's box.
    view = d.execute_script("return document.getElementById('graph-view').getBoundingClientRect()")
    node = d.execute_script("return document.getElementById('n9').getBoundingClientRect()")
    check(view["left"] <= node["left"] and node["right"] <= view["right"] + 1, f"the current node is in view: {node} {view}")
    d.find_element(By.ID, "n3").click()
    check(d.find_element(By.ID, "inspect").find_element(By.TAG_NAME, "h2").text.startswith("b1 (parameter)"), "a click on b1")
    for k in (0, 8):
        open_page(d, mn_page, k)
        path = os.path.join(OUT, f"step-page-mnist-{k}.png")
        d.save_screenshot(path)
        check(png_colours(path) > 40, f"{path} is not blank")
    check(errors(d) == [], f"console: {errors(d)}")

    # Dark mode follows the system.
    open_page(d, we_page, 1)
    light = d.execute_script("return getComputedStyle(document.body).backgroundColor")
    d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    dark = d.execute_script("return getComputedStyle(document.body).backgroundColor")
    check(light != dark, f"dark mode: {light} vs {dark}")
    d.save_screenshot(os.path.join(OUT, "step-page-worked_example-dark.png"))
    d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})

    # The escaping model: names as data, NaN and Inf as such.
    open_page(d, esc_page, 1)
    check(d.title == "chainrule step: esc</script><!--", d.title)
    check(d.execute_script("return document.scripts.length") == 2, "no script was injected")
    check(d.find_element(By.ID, "doc").text.startswith("doc </script><script>"), "the doc is text")
    panel = d.find_element(By.ID, "panel")
    check(field(panel, "value").text == "nan", field(panel, "value").text)
    block = panel.find_element(By.CSS_SELECTOR, '.input-block[data-slot="0"]')
    check(block.get_attribute("data-input") == "z</script>", "the name is shown as it is")
    check(field(block, "input_value").text == "[[inf]]", field(block, "input_value").text)
    check(field(block, "sends").text.startswith("[[nan]]"), field(block, "sends").text)
    open_page(d, esc_page, 3)
    check(current_name(d) == "z</script>", "the escaped node is highlighted")
    check(d.execute_script("return document.querySelectorAll('#nodes tr[data-node]').length") == 6, "six nodes")
    check(errors(d) == [], f"console: {errors(d)}")

    # A tensor of rank 4 (an attention's [N,H,T,T]) is drawn a T×T slice at a time: one number
    # per leading axis chooses it, and the map shows that slice's entries.
    att_page, _ = make_page(os.path.join(SOURCE, "tests", "fixtures", "attention_heads.json"), "attention")
    att = data_block(open(att_page, encoding="utf-8").read())
    p_node = next(n for n in att["nodes"] if n["name"] == "p")
    p_t = att["tensors"][p_node["value"]]
    n_rows, heads, t_len, _ = p_t["shape"]
    p_vals = flat(p_t["data"]) if "data" in p_t else list(struct.unpack(f"<{n_rows * heads * t_len * t_len}f",
                                                                       base64.b64decode(p_t["f32"])))
    open_page(d, att_page, 0)
    d.find_element(By.CSS_SELECTOR, '#nodes tr[data-node="p"]').click()
    value = field(d.find_element(By.ID, "inspect"), "value")
    picks = value.find_elements(By.CSS_SELECTOR, ".slice input")
    check(len(picks) == 2, f"two slice numbers for [N,H,T,T]: {len(picks)}")
    check(f"a {t_len}×{t_len} matrix" in value.find_element(By.CSS_SELECTOR, ".slice").text, value.text)
    canvas = value.find_element(By.CSS_SELECTOR, "canvas.map")
    check(canvas.get_attribute("width") == str(t_len) and canvas.get_attribute("height") == str(t_len),
          f"the map is T×T: {canvas.get_attribute('width')}×{canvas.get_attribute('height')}")
    hover = "const c = arguments[0], r = c.getBoundingClientRect(), n = arguments[1]; c.dispatchEvent(new MouseEvent(" \
            "'mousemove', {clientX: r.left + (arguments[3] + 0.5) * r.width / n, clientY: r.top + (arguments[2] + 0.5) * r.height / n}));"
    for i, h, r, c in ((0, 0, 0, 0), (n_rows - 1, heads - 1, t_len - 1, 0), (1, 0, 2, 1)):
        for pick, v in zip(picks, (i, h)):
            d.execute_script("arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input'));", pick, str(v))
        d.execute_script(hover, canvas, t_len, r, c)
        want = p_vals[((i * heads + h) * t_len + r) * t_len + c]
        got = value.find_element(By.CSS_SELECTOR, ".hover").text
        check(got.startswith(f"[{i}, {h}, {r}, {c}] = {g6(want)}"), f"slice [{i},{h}] cell ({r},{c}): '{got}' vs {g6(want)}")
        check(f"the slice [{i}, {h}, :, :]" in canvas.get_attribute("aria-label"), canvas.get_attribute("aria-label"))
    check(errors(d) == [], f"console: {errors(d)}")

    # Text rows: an attention map [N,T,T] has the row's characters on both axes, and the
    # characters follow the slice; the logits' columns are the vocabulary.
    words_page, _ = make_page(os.path.join(SOURCE, "tests", "fixtures", "words_attention.json"), "words_attention",
                              "--rows", "test:0:2")
    wd = data_block(open(words_page, encoding="utf-8").read())
    words = open(os.path.join(SOURCE, "tests", "fixtures", "words.txt"), encoding="utf-8").read().split()
    toks = wd["row_tokens"]
    check(len(toks) == 2 and all(len(t) == 12 and t[0] == "." and "".join(t).strip(".") in words for t in toks),
          f"row_tokens are '.' + a word of the fixture, padded to 12: {toks}")
    check(wd["vocabulary"][0] == "." and len(wd["vocabulary"]) == 25, f"the vocabulary: {wd['vocabulary']}")
    open_page(d, words_page, 0)
    d.find_element(By.CSS_SELECTOR, '#nodes tr[data-node="att"]').click()
    value = field(d.find_element(By.ID, "inspect"), "value")
    axis_text = lambda cls: [e.text for e in value.find_elements(By.CSS_SELECTOR, f".labelled .{cls} span")]
    pick = value.find_element(By.CSS_SELECTOR, ".slice input")
    canvas = value.find_element(By.CSS_SELECTOR, "canvas.map")
    for row in (1, 0):
        d.execute_script("arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input'));", pick,
                         str(row))
        check(axis_text("axis-top") == toks[row] and axis_text("axis-left") == toks[row],
              f"row {row}'s characters on both axes: {axis_text('axis-top')} / {axis_text('axis-left')}")
        word = "".join(toks[row]).strip(".")
        d.execute_script(hover, canvas, 12, 2, 1)
        got = value.find_element(By.CSS_SELECTOR, ".hover").text
        check(got.startswith(f"[{row}, 2, 1] = ") and f"(row '{word[1]}' 2, column '{word[0]}' 1)" in got,
              f"the hover names the query and key characters of '{word}': '{got}'")
    d.find_element(By.CSS_SELECTOR, '#nodes tr[data-node="logits"]').click()
    value = field(d.find_element(By.ID, "inspect"), "value")
    check(axis_text("axis-top") == wd["vocabulary"], f"the logits' columns are the vocabulary: {axis_text('axis-top')}")
    check(axis_text("axis-left") == toks[0], f"the logits' rows are the positions: {axis_text('axis-left')}")
    check(errors(d) == [], f"console: {errors(d)}")

    # Fields `step --json` may gain later are shown without changing the script.
    data = data_block(we_html)
    data["steps"][1]["local"] = [[0.185, 0.192], [0.193, 0.5]]
    data["steps"][1]["contributions"][0]["second_order"] = "upstream ⊙ local"
    text = json.dumps(data, ensure_ascii=True).replace("<", "\\u003c")
    extra_page = os.path.join(TMP, "extra.html")
    with open(extra_page, "w", encoding="utf-8") as f:
        f.write(re.sub(r'(<script type="application/json" id="trace">).*?(</script>)',
                       lambda m: m.group(1) + text + m.group(2), we_html, count=1, flags=re.S))
    open_page(d, extra_page, 2)
    panel = d.find_element(By.ID, "panel")
    same_numbers(field(panel, "local").text, [0.185, 0.192, 0.193, 0.5], "a new step field")
    block = panel.find_element(By.CSS_SELECTOR, ".input-block")
    check(field(block, "second_order").text == "upstream ⊙ local", "new input field")
    check("second order" in block.text and "second_order" not in block.text, "a new field's key is shown as words")
    check(errors(d) == [], f"console: {errors(d)}")
finally:
    d.quit()
    shutil.rmtree(TMP, ignore_errors=True)
print(f"{CHECKS} checks passed")
