// The step page's script (cli/step_page.cpp writes the page; docs/step-page.md shows it).
// Reads the walk from the JSON block #trace and shows step K of it: K = 0 is after
// forward, K = 1 … N the backward steps as `chainrule step` numbers them. Nothing is
// fetched: the page's Content-Security-Policy forbids it.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("trace").textContent);
  const nodes = data.nodes, steps = data.steps, N = steps.length;
  const $ = (id) => document.getElementById(id);
  const state = { k: 0, timer: null, picked: -1, explain: null };

  // ---- numbers, as the terminal prints them ({:.6g}) ----
  const special = { NaN: NaN, Infinity: Infinity, "-Infinity": -Infinity, nan: NaN, inf: Infinity, "-inf": -Infinity };
  const num = (v) => (typeof v === "string" && v in special ? special[v] : v);
  function strip(s) {
    return s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s;
  }
  function g(v, digits = 6) {
    v = num(v);
    if (v === null || v === undefined) return "—";
    if (Number.isNaN(v)) return "nan";
    if (v === Infinity) return "inf";
    if (v === -Infinity) return "-inf";
    if (v === 0) return Object.is(v, -0) ? "-0" : "0";
    const [m, x] = v.toExponential(digits - 1).split("e");
    const e = Number(x);
    if (e < -4 || e >= digits) return strip(m) + "e" + (e < 0 ? "-" : "+") + String(Math.abs(e)).padStart(2, "0");
    return strip(v.toFixed(digits - 1 - e));
  }

  // ---- tensors: small ones exact, large ones float32 (statistics exact, from the writer) ----
  const cache = new Map();
  function tensor(i) {
    if (i === null || i === undefined) return null;
    if (cache.has(i)) return cache.get(i);
    const t = data.tensors[i];
    let values;
    if (t.data) {
      values = Float64Array.from(t.data, num);
    } else {
      const bin = atob(t.f32), bytes = new Uint8Array(bin.length);
      for (let j = 0; j < bin.length; ++j) bytes[j] = bin.charCodeAt(j);
      values = new Float32Array(bytes.buffer);
    }
    const out = { shape: t.shape, values, stats: t.stats, exact: !!t.data };
    cache.set(i, out);
    return out;
  }
  // A tensor from a nested JSON array (fields added to `step --json` later).
  function fromNested(a) {
    const shape = [], flat = [];
    for (let x = a; Array.isArray(x); x = x[0]) shape.push(x.length);
    (function walk(x) { if (Array.isArray(x)) x.forEach(walk); else flat.push(num(x)); })(a);
    let lo = Infinity, hi = -Infinity, sum = 0, sq = 0, big = -1, at = -1, fin = 0;
    flat.forEach((v, j) => {
      if (!Number.isFinite(v)) return;
      ++fin; lo = Math.min(lo, v); hi = Math.max(hi, v); sum += v; sq += v * v;
      if (Math.abs(v) > big) { big = Math.abs(v); at = j; }
    });
    const stats = { min: fin ? lo : null, max: fin ? hi : null, mean: fin ? sum / fin : null, l2: Math.sqrt(sq),
      nonfinite: flat.length - fin, largest: at, largest_value: at >= 0 ? flat[at] : null };
    return { shape, values: Float64Array.from(flat), stats, exact: true };
  }
  const count = (shape) => shape.reduce((a, b) => a * b, 1);
  const shapeText = (shape) => "[" + shape.join(", ") + "]";
  function indexText(shape, flat) {
    const idx = [];
    for (let d = shape.length - 1; d >= 0; --d) { idx.unshift(flat % shape[d]); flat = Math.floor(flat / shape[d]); }
    return "[" + idx.join(", ") + "]";
  }
  // "[[0.753989], [0.740775]]": rows of a matrix on their own lines, a column on one line.
  function nestedText(t) {
    const s = t.shape, v = t.values;
    if (s.length === 0) return g(v[0]);
    let next = 0;
    function level(d) {
      const parts = [];
      for (let j = 0; j < s[d]; ++j) parts.push(d + 1 === s.length ? g(v[next++]) : level(d + 1));
      const column = d + 2 === s.length && s[s.length - 1] === 1;
      const sep = d + 1 === s.length || column ? ", " : ",\n" + " ".repeat(d + 1);
      return "[" + parts.join(sep) + "]";
    }
    return level(0);
  }
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") e.textContent = v;
      else if (k === "class") e.className = v;
      else e.setAttribute(k, v);
    }
    for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid);
    return e;
  }
  function statsText(t) {
    const s = t.stats;
    let text = "shape " + shapeText(t.shape) + "  min " + g(s.min) + "  max " + g(s.max) + "  mean " + g(s.mean) +
      "  L2 " + g(s.l2);
    if (s.largest >= 0) text += "  largest |entry| " + indexText(t.shape, s.largest) + " = " + g(s.largest_value);
    if (s.nonfinite) text += "  non-finite entries " + s.nonfinite;
    return text;
  }

  // Blue–white–orange, a diverging palette readable with the common colour-vision deficiencies.
  const stops = [[33, 102, 172], [146, 197, 222], [247, 247, 247], [253, 184, 99], [179, 88, 6]];
  function colour(x) {  // x in [-1, 1]
    if (!Number.isFinite(x)) return [0, 0, 0];
    const p = (Math.max(-1, Math.min(1, x)) + 1) * 2, j = Math.min(3, Math.floor(p)), f = p - j;
    return stops[j].map((c, k) => Math.round(c + (stops[j + 1][k] - c) * f));
  }
  // A pixel's grey for an image row of the data (pixels / 255: 0 white, 1 black, as ink).
  const ink = (x) => { const v = Number.isFinite(x) ? Math.round(255 * (1 - Math.max(0, Math.min(1, x)))) : 0; return [v, v, v]; };
  function paint(canvas, w, h, at, scale, palette = colour) {
    canvas.width = w; canvas.height = h;
    const ctx = canvas.getContext("2d"), img = ctx.createImageData(w, h);
    for (let r = 0; r < h; ++r)
      for (let c = 0; c < w; ++c) {
        const [R, G, B] = palette(at(r, c) / scale), o = 4 * (r * w + c);
        img.data[o] = R; img.data[o + 1] = G; img.data[o + 2] = B; img.data[o + 3] = 255;
      }
    ctx.putImageData(img, 0, 0);
  }
  function heatmap(t) {
    const s = t.shape, cols = s.length ? s[s.length - 1] : 1, v = t.values;
    // A tensor of rank 3 or more ([N,T,C], an attention's [N,H,T,T]) is drawn one matrix of its
    // last two axes at a time, the slice chosen by a number per leading axis; the colour scale
    // is the whole tensor's, so slices compare.
    const lead = s.length >= 3 ? s.slice(0, s.length - 2) : [];
    const rows = lead.length ? s[s.length - 2] : count(s) / cols;
    const at = lead.map(() => 0);
    const base = () => at.reduce((o, j, a) => o * lead[a] + j, 0) * rows * cols;
    const scale = Math.max(Math.abs(num(t.stats.min) || 0), Math.abs(num(t.stats.max) || 0)) || 1;
    const box = el("div", { class: "heat" });
    const canvas = el("canvas", { class: "map", role: "img" });
    // Text rows (`step --rows` of a text model): an axis of T positions is labelled with the
    // characters of the row the first axis picks, an axis as long as the vocabulary with the
    // vocabulary, so an attention map [N,H,T,T] reads query character by key character.
    const toks = data.row_tokens || [], T = toks.length ? toks[0].length : 0, vocab = data.vocabulary || [];
    const labelsFor = (n) => {
      if (T && lead.length && lead[0] === toks.length && n === T) return () => toks[at[0]];
      if (toks.length && vocab.length && n === vocab.length) return () => vocab;
      return null;
    };
    const rowLabels = labelsFor(rows), colLabels = labelsFor(cols);
    const top = el("div", { class: "axis-top" }), left = el("div", { class: "axis-left" });
    const label = (list, k) => (list ? " '" + list()[k] + "'" : "");
    const draw = () => {
      const o = base();
      canvas.setAttribute("aria-label", "heatmap of " + count(s) + " entries, shape " + shapeText(s) +
        (lead.length ? ", the slice [" + at.join(", ") + ", :, :]" : "") +
        (rowLabels ? ", rows " + rowLabels().join("") : "") + (colLabels ? ", columns " + colLabels().join("") : ""));
      paint(canvas, cols, rows, (r, c) => v[o + r * cols + c], scale);
      if (colLabels) top.replaceChildren(...colLabels().map((ch) => el("span", { text: ch })));
      if (rowLabels) left.replaceChildren(...rowLabels().map((ch) => el("span", { text: ch })));
    };
    draw();
    // Square cells when they fit; a few long rows (x fed 3 rows of 784) stay tall enough to
    // see. The width is at most its box's (page.css): a wide map narrows its cells, and
    // never makes the page scroll sideways. Labelled axes get cells a character wide.
    const zx = Math.max(colLabels ? 14 : 0, Math.min(8, 520 / cols));
    const zy = Math.max(rowLabels ? 14 : 0, Math.min(Math.max(zx, 4), 420 / rows));
    canvas.style.width = cols * zx + "px";
    canvas.style.height = rows * zy + "px";
    top.style.gridTemplateColumns = "repeat(" + cols + ", " + zx + "px)";
    left.style.gridTemplateRows = "repeat(" + rows + ", " + zy + "px)";
    const hover = el("div", { class: "hover", text: "point at a cell for its value" });
    canvas.addEventListener("mousemove", (e) => {
      const rect = canvas.getBoundingClientRect();
      const c = Math.min(cols - 1, Math.floor((e.clientX - rect.left) / rect.width * cols));
      const r = Math.min(rows - 1, Math.floor((e.clientY - rect.top) / rect.height * rows));
      const j = base() + r * cols + c;
      hover.textContent = indexText(s, j) + " = " + g(v[j]) + (t.exact ? "" : " (float32)") +
        (rowLabels || colLabels ? " (row" + label(rowLabels, r) + " " + r + ", column" + label(colLabels, c) + " " + c + ")" : "");
    });
    const legend = el("div", { class: "legend" });
    const bar = el("canvas", { role: "img", "aria-label": "colour scale from " + g(-scale) + " to " + g(scale) });
    paint(bar, 160, 1, (r, c) => (c / 159) * 2 - 1, 1);
    bar.style.width = "160px"; bar.style.height = "12px";
    legend.append(bar, el("span", { text: g(-scale) }), el("span", { text: "0" }), el("span", { text: g(scale) }),
      el("div", { text: "symmetric scale; black: NaN or Inf" }));
    const map = rowLabels || colLabels
      ? el("div", { class: "labelled" }, el("span", {}), colLabels ? top : el("span", {}), rowLabels ? left : el("span", {}), canvas)
      : canvas;
    box.append(map, el("div", {}, legend, hover));
    const wrap = el("div", {}, el("div", { class: "stats", text: statsText(t) }));
    if (lead.length) {
      const pickers = el("div", { class: "slice" }, el("span", { text: "slice [" }));
      lead.forEach((n, a) => {
        const pick = el("input", { type: "number", min: "0", max: String(n - 1), value: "0",
          "aria-label": "index on axis " + a + " (0 to " + (n - 1) + ")" });
        pick.addEventListener("input", () => { at[a] = Math.max(0, Math.min(n - 1, Math.floor(Number(pick.value)) || 0)); draw(); });
        pickers.append(pick, el("span", { text: ", " }));
      });
      pickers.append(el("span", { text: ":, :] of " + shapeText(s) + " — a " + rows + "×" + cols + " matrix" }));
      wrap.append(pickers);
    }
    wrap.append(box);
    // A 784-wide row, or a 784-tall column, is an MNIST image: up to 8 side by side, more
    // one at a time with a number to choose it.
    const image = (label, n, at) => {
      if (n <= 8) {
        const all = el("div", { class: "image28 strip" }, el("div", { class: "none", text: label + "s as 28×28 images:" }));
        for (let j = 0; j < n; ++j) {
          const pic = el("canvas", { role: "img", "aria-label": label + " " + j + " as a 28×28 image" });
          pic.style.width = "84px"; pic.style.height = "84px";
          paint(pic, 28, 28, (r, c) => at(j, r * 28 + c), scale);
          all.append(el("figure", {}, pic, el("figcaption", { text: label + " " + j })));
        }
        return all;
      }
      const pic = el("canvas", { role: "img", "aria-label": label + " as a 28×28 image" });
      pic.style.width = "168px"; pic.style.height = "168px";
      const pick = el("input", { type: "number", min: "0", max: String(n - 1), value: "0", "aria-label": label });
      const draw = () => {
        const j = Math.max(0, Math.min(n - 1, Number(pick.value) || 0));
        paint(pic, 28, 28, (r, c) => at(j, r * 28 + c), scale);
      };
      pick.addEventListener("input", draw);
      draw();
      return el("div", { class: "image28" }, el("label", { text: label + " as 28×28: " }, pick), el("div", {}, pic));
    };
    if (lead.length) return wrap;
    if (cols === 784) wrap.append(image("row", rows, (j, p) => v[j * 784 + p]));
    else if (s.length === 2 && s[0] === 784) wrap.append(image("column", cols, (j, p) => v[p * cols + j]));
    return wrap;
  }
  // Up to 64 entries as numbers, more as a heatmap; null is "not computed yet".
  function show(t, none = "—") {
    if (!t) return el("span", { class: "none", text: none });
    if (t.exact && count(t.shape) <= data.printed_limit) return el("div", { class: "num", text: nestedText(t) });
    return heatmap(t);
  }
  // ---- explain: one gradient entry term by term, precomputed by the writer for small
  // parameters and inputs (the JSON of `step --explain --json`, after the whole walk) ----
  const entryText = (shape, flat) => indexText(shape, flat).replace(/, /g, ",");
  // The step after which node id's gradient is complete: its last contribution.
  const completeAt = nodes.map(() => 0);
  steps.forEach((st, j) => { for (const c of st.contributions) if (c.grad !== null) completeAt[c.input] = j + 1; });
  // Like nestedText, each number a button that explains its entry.
  function explainable(t, id) {
    const s = t.shape, v = t.values, name = nodes[id].name, box = el("div", { class: "num" });
    let next = 0;
    const button = () => {
      const flat = next++, b = el("button", { type: "button", class: "entry", text: g(v[flat]),
        "aria-label": "explain dL/d" + name + entryText(s, flat) });
      b.addEventListener("click", () => { state.explain = { id, flat }; render(); focusExplain(); });
      return b;
    };
    function level(d, into) {
      if (d === s.length) { into.append(button()); return; }
      into.append("[");
      for (let j = 0; j < s[d]; ++j) {
        if (j) into.append(d + 1 === s.length || (d + 2 === s.length && s[s.length - 1] === 1) ? ", " : ",\n" + " ".repeat(d + 1));
        level(d + 1, into);
      }
      into.append("]");
    }
    level(0, box);
    return box;
  }
  // A node's gradient in a panel: its entries clickable when explained, else a pointer to
  // the terminal for a parameter or input too big to precompute.
  function gradView(t, id, none) {
    const n = nodes[id];
    if (t && n.explain && t.exact && count(t.shape) <= data.printed_limit) return explainable(t, id);
    const shown = show(t, none);
    if (!t || n.explain || n.kind === "op" || n.kind === "constant") return shown;
    const index = n.shape.length ? "[" + n.shape.map((_, d) => "ijklmn"[d] || "i" + d).join(",") + "]" : "[0]";
    return el("div", {}, shown, el("div", { class: "none hint", text: "explain an entry in a terminal: chainrule step MODEL --explain '" +
      n.name + index + "'" }));
  }
  function explainPanel() {
    const box = $("explain");
    if (!state.explain) { box.hidden = true; return; }
    const { id, flat } = state.explain, n = nodes[id], x = n.explain[flat];
    const close = el("button", { type: "button", "aria-label": "close the explanation", text: "close" });
    close.addEventListener("click", () => { state.explain = null; render(); });
    box.hidden = false;
    const entry = x.entry || n.name + entryText(n.shape, flat), lhs = "dL/d" + entry;
    box.replaceChildren(el("h2", { id: "explain-title", tabindex: "-1", text: lhs + " term by term  " }, close));
    const k = state.k, done = completeAt[id];
    if (k < done) {
      const now = tensor(gradsAt(k)[id]);
      box.append(el("p", { class: "warn", "data-field": "early", text: "This is " + lhs + " after the whole backward pass " +
        "(complete after step " + done + "/" + N + "); at step " + k + " it is " +
        (now ? g(now.values[flat]) + ", not all of its contributions in yet" : "not computed yet") + "." }));
    }
    if (x.refused) { box.append(el("p", { "data-field": "refused", text: x.refused })); return; }
    if (x.too_many_terms) {
      box.append(el("p", { "data-field": "refused", text: lhs + " is a sum of " + x.too_many_terms + " terms, more than the " +
        x.limit + " this page writes out; in a terminal: chainrule step MODEL --explain '" + x.entry + "'" }));
      return;
    }
    const names = x.factors.map((f) => (f.name.includes("[j]") ? f.name : f.name + "[j]"));
    const formulas = [];
    x.factors.forEach((f, j) => {
      if (f.formula !== "1") formulas.push(f.formula === "" || j + 1 === x.factors.length ? names[j] : f.formula);
    });
    const pad = " ".repeat(lhs.length);
    box.append(el("div", { class: "num", "data-field": "equation", text: lhs + " = Σ_j " + names.join(" · ") +
      "   (j over the entries of " + x.consumer + " that " + x.entry + " reaches)\n" + pad + " = Σ_j " +
      formulas.join(" · ") + "\n" + pad + " = " + g(x.sum) }));
    const where = el("tbody");
    x.factors.forEach((f, j) => {
      const last = j + 1 === x.factors.length;
      where.append(el("tr", {}, el("td", { text: f.name }), el("td", { "data-field": "formula", text: last
        ? "from " + f.formula + " with a one-hot dL/d" + x.consumer : f.formula === "" ? "(its op's backward)" : "= " + f.formula }),
        el("td", { text: f.op })));
    });
    box.append(fields([["chain", el("span", { text: x.chain.join(" → ") }), "chain"],
      ["where", el("table", { class: "factors" }, el("thead", {}, el("tr", {}, ...["factor", "formula", "op"].map((h) =>
        el("th", { text: h })))), where), "factors"]]));
    const body = el("tbody");
    for (const t of x.terms)
      body.append(el("tr", { "data-term": t.at }, el("td", { text: t.at }), ...t.factors.map((f) => el("td", { class: "num", text: g(f) })),
        el("td", { class: "num", "data-field": "term", text: g(t.value) })));
    box.append(el("table", { class: "terms", "aria-label": "one row per term" }, el("thead", {}, el("tr", {},
      ...["j", ...x.factors.map((f) => f.name), "term"].map((h) => el("th", { text: h })))), body));
    if (x.zero_terms > 0)
      box.append(el("p", { class: "none", text: "(" + x.zero_terms + " more j with " + x.factors[x.factors.length - 1].name +
        " = 0 left out)" }));
    box.append(el("p", { class: "num", "data-field": "sum", text: "Σ terms = " + g(x.sum) + "; " + lhs +
      " from the backward pass = " + g(x.grad) }));
  }
  function focusExplain() {
    const h = $("explain-title");
    if (h) { h.focus({ preventScroll: true }); $("explain").scrollIntoView({ block: "nearest" }); }
  }

  // A field this script does not know (added to `step --json` later): shown as what it is.
  function showAny(v) {
    if (v === null || v === undefined) return el("span", { class: "none", text: "—" });
    if (typeof v === "number" || (typeof v === "string" && v in special)) return el("span", { class: "num", text: g(v) });
    if (typeof v === "string") return el("span", { text: v });
    if (Array.isArray(v) && v.length && (Array.isArray(v[0]) || typeof v[0] === "number")) return show(fromNested(v));
    return el("div", { class: "num", text: JSON.stringify(v, null, 1) });
  }
  function fields(rows) {
    const dl = el("dl", { class: "fields" });
    for (const [label, content, field] of rows)
      dl.append(el("dt", { text: label }), el("dd", field ? { "data-field": field } : {}, content));
    return dl;
  }
  // A field this script does not know is shown under its key, read as words ("lecture_gap": "lecture gap").
  const extras = (obj, known) => Object.keys(obj).filter((k) => !known.includes(k))
    .map((k) => [k.replace(/_/g, " "), showAny(obj[k]), k]);

  // ---- the walk ----
  // Each node's gradient as known after k steps (tensor index), or null: not reached yet.
  function gradsAt(k) {
    const out = new Array(nodes.length).fill(null);
    if (N) out[data.loss_node] = steps[0].node === data.loss_node ? steps[0].grad_out : null;
    for (let j = 0; j < k; ++j) {
      out[steps[j].node] = steps[j].grad_out;
      for (const c of steps[j].contributions) if (c.grad !== null) out[c.input] = c.grad;
    }
    return out;
  }
  const stepKnown = ["index", "node", "op", "inputs", "grad_out", "labels", "contributions", "formula", "named_formula"];
  const inputKnown = ["input", "slot", "label", "contribution", "grad", "first", "lecture_gap", "formula", "shapes", "local",
    "local_formula", "product"];
  function stepPanel(k) {
    const panel = $("panel");
    panel.replaceChildren();
    if (k === 0) {
      panel.append(el("h2", { text: "after forward, before backward" }),
        fields([["loss", el("span", { class: "num", text: nodes[data.loss_node].name + " = " + g(data.loss) }), "loss"],
          ["backward", el("span", { text: N + " steps in reverse topological order: " +
            data.order.map((id) => nodes[id].name).join(", ") })],
          ["seed", el("span", { class: "num", text: "dL/d" + nodes[data.loss_node].name + " = 1" })]]),
        el("p", { text: "Press → or next to run the first step." }));
      return;
    }
    const st = steps[k - 1], n = nodes[st.node];
    const names = st.inputs.map((id) => nodes[id].name);
    panel.append(el("h2", { id: "step-title", text: "step " + k + "/" + N + ": " + n.name + " = " + st.op + "(" +
      names.join(", ") + ")   shape " + shapeText(n.shape) }));
    // The formula in this model's names (as the terminal prints it); the op's own, in its
    // generic names (A, B, C), beside the op.
    const rows = [["node", el("span", { text: n.name + (n.doc ? " — " + n.doc : "") }), "node"],
      ["op", el("span", {}, st.op, st.formula && st.named_formula
        ? el("span", { class: "none", text: " — in the op's own names: " + st.formula }) : null), "op"]];
    if (st.named_formula || st.formula) rows.push(["formula", el("span", { text: st.named_formula || st.formula }), "formula"]);
    rows.push(...extras(st, stepKnown));
    rows.push([n.name, show(tensor(n.value)), "value"],
      ["dL/d" + n.name, el("div", {}, show(tensor(st.grad_out)), el("span", { class: "none", text: "upstream gradient" })),
        "grad_out"]);
    panel.append(fields(rows));
    // Slot order, except that labelled inputs come in the lecture's order among themselves,
    // as the terminal shows them: matmul y1W2 shows (5) for slot 1 before (6) for slot 0.
    const labelOf = (c) => st.labels.find((l) => l.input === nodes[c.input].name && l.slot === c.slot);
    const shown = st.contributions.slice();
    const where = shown.map((c, j) => (labelOf(c) ? j : -1)).filter((j) => j >= 0);
    const byNumber = where.map((j) => shown[j]).sort((a, b) => labelOf(a).number - labelOf(b).number);
    where.forEach((j, m) => { shown[j] = byNumber[m]; });
    for (const c of shown) {
      const name = nodes[c.input].name;
      const label = labelOf(c);
      const head = el("h3", { text: "→ " + name });
      if (label) head.append("   ", el("span", { class: "label", text: "(" + label.number + ") " + label.derivative + " = " +
        label.formula }));
      const block = el("div", { class: "input-block", "data-input": name, "data-slot": String(c.slot) }, head);
      const r = [[name, show(tensor(nodes[c.input].value)), "input_value"]];
      if (c.contribution === null) {
        r.push(["sends", el("span", { class: "none", text: "(no gradient wanted)" }), "sends"]);
      } else {
        // How this step computes what it sends, as the terminal says it: an elementwise op's
        // local derivative and the product, or the rule of a matmul, a sum, a broadcast.
        if (c.local !== undefined && c.local !== null) {
          r.push(["local derivative", el("div", {}, el("div", { class: "num", text: c.local_formula || "" }),
            show(fromNested(c.local))), "local"]);
          if (c.product) r.push(["product", el("div", {}, el("span", { class: "num", text: c.product }),
            el("span", { class: "none", text: "   (upstream ⊙ local)" })), "product"]);
        } else if (c.formula) {
          r.push(["rule", el("div", {}, el("span", { class: "num", text: c.formula }),
            c.shapes ? el("span", { class: "none", text: "   shapes " + c.shapes }) : null), "rule"]);
        }
        r.push(["sends", show(tensor(c.contribution)), "sends"]);
        if (c.lecture_gap) {
          const gap = c.lecture_gap, big = gap.largest;
          r.push(["lecture", el("div", {}, show(tensor(gap.lecture)),
            el("span", { class: "none", text: "the lecture's hand update (g passed straight through)" })), "lecture"]);
          r.push(["gap", el("span", { class: "num", text: "‖exact − lecture‖ = " + g(gap.norm_diff) + ", ‖exact‖ = " +
            g(gap.norm_exact) + ", ‖lecture‖ = " + g(gap.norm_lecture) + ", relative difference " +
            g(100 * num(gap.relative_diff), 3) + "%" + (big ? "; largest difference at " +
            indexText(tensor(gap.exact).shape, big.index) + ": exact " + g(big.exact) + ", lecture " + g(big.lecture) +
            " (" + g(big.difference) + ")" : "") }), "gap"]);
        }
        r.push(...extras(c, inputKnown));
        r.push(["dL/d" + name, el("div", {}, gradView(tensor(c.grad), c.input), el("span", { class: "none", text: c.first
          ? "its first contribution: = sends" : "accumulated: earlier contributions + sends" })), "grad"]);
      }
      block.append(fields(r));
      panel.append(block);
    }
  }
  function shortGrad(t, n) {
    if (!n.wants_grad) return el("span", { class: "none", text: "— (no gradient wanted)" });
    if (!t) return el("span", { class: "none", text: "—", title: "not computed yet" });
    if (t.exact && count(t.shape) <= 8) return el("span", { class: "num", text: nestedText(t) });
    return el("span", { class: "stats", text: "L2 " + g(t.stats.l2) + ", min " + g(t.stats.min) + ", max " + g(t.stats.max) });
  }
  function nodesTable(k, grads, current, inputs) {
    const body = el("tbody");
    nodes.forEach((n, id) => {
      const tr = el("tr", { "data-node": n.name, class: id === current ? "current" : inputs.has(id) ? "input-of" : "" },
        el("td", { text: n.name }), el("td", { text: n.kind === "op" ? n.op : n.kind }), el("td", { text: shapeText(n.shape) }),
        el("td", { "data-field": "grad" }, shortGrad(tensor(grads[id]), n)));
      tr.addEventListener("click", () => pick(id));
      body.append(tr);
    });
    $("nodes").replaceChildren(el("h2", { text: "every node after step " + k + " (— : not computed yet)" }),
      el("table", {}, el("thead", {}, el("tr", {}, ...["node", "op", "shape", "dL/dnode so far"].map((h) => el("th", { text: h })))), body));
  }
  function inspectPanel(grads) {
    const box = $("inspect");
    if (state.picked < 0) { box.hidden = true; return; }
    const n = nodes[state.picked], close = el("button", { type: "button", "aria-label": "close", text: "close" });
    close.addEventListener("click", () => pick(-1));
    box.hidden = false;
    box.replaceChildren(el("h2", { text: n.name + " (" + (n.kind === "op" ? "op " + n.op : n.kind) + ")  " }, close),
      fields([["value", show(tensor(n.value)), "value"],
        ["dL/d" + n.name, n.wants_grad ? gradView(tensor(grads[state.picked]), state.picked, "— (not computed yet)")
          : el("span", { class: "none", text: "— (no gradient wanted)" }), "grad"]]));
  }
  function pick(id) { state.picked = id; render(); }

  function render() {
    const k = state.k, current = k ? steps[k - 1].node : -1;
    const inputs = new Set(k ? steps[k - 1].inputs : []);
    const done = new Set(steps.slice(0, k).map((s) => s.node));
    nodes.forEach((n, id) => {
      const e = document.getElementById("n" + id);
      if (!e) return;
      e.classList.toggle("cr-current", id === current);
      e.classList.toggle("cr-input-of", inputs.has(id) && id !== current);
      e.classList.toggle("cr-done", done.has(id));
      e.classList.toggle("cr-picked", id === state.picked);
    });
    const grads = gradsAt(k);
    stepPanel(k);
    nodesTable(k, grads, current, inputs);
    inspectPanel(grads);
    explainPanel();
    $("slider").value = String(k);
    $("where").textContent = k ? "step " + k + "/" + N + ": " + nodes[current].name : "step 0/" + N + ": after forward";
    $("first").disabled = $("prev").disabled = k === 0;
    $("next").disabled = $("last").disabled = k === N;
  }
  function go(k) {
    k = Math.max(0, Math.min(N, k));
    if (k === N) stop();
    state.k = k;
    render();
    showCurrent();
    if (location.hash !== "#step=" + k) history.replaceState(null, "", "#step=" + k);
  }
  function stop() {
    if (state.timer === null) return;
    clearInterval(state.timer);
    state.timer = null;
    const b = $("play");
    b.textContent = "▶ play"; b.setAttribute("aria-label", "play (space)"); b.setAttribute("aria-pressed", "false");
  }
  function play() {
    if (state.timer !== null) return stop();
    if (state.k === N) go(0);
    state.timer = setInterval(() => go(state.k + 1), 1000);
    const b = $("play");
    b.textContent = "⏸ pause"; b.setAttribute("aria-label", "pause (space)"); b.setAttribute("aria-pressed", "true");
  }
  function fromHash() {
    const m = /^#step=(\d+)$/.exec(location.hash);
    return m ? Number(m[1]) : 0;
  }

  // ---- the header: where the numbers come from, each row's label and prediction ----
  function facts() {
    const inputs = data.data ? data.data : data.random_inputs.length ? "drawn at random (above)" : "the model's own values";
    const params = data.weights ? "trained: " + data.weights
      : "untrained: drawn by their initializers (seed " + data.seed + "); --weights RUN loads a training run's";
    $("facts").replaceChildren(...[["inputs", inputs, "data"], ["parameters", params, "weights"]].flatMap(([k, v, f]) =>
      [el("dt", { text: k }), el("dd", { "data-field": f, text: v })]));
  }
  function rowsSection() {
    const rows = data.rows, box = $("rows");
    if (!rows.length) return;
    box.hidden = false;
    const pred = nodes[data.prediction].name, shown = rows.slice(0, 24);
    const img = data.row_image, pixels = img ? tensor(nodes[img.node].value) : null;
    const head = el("h2", { text: "each row: its label and the prediction " + pred + (rows[0].outputs.length === 1
      ? " (class 1 when it is at least 0.5)" : " (the class of the largest output)") });
    const cards = el("div", { class: "cards" });
    shown.forEach((r, j) => {
      const card = el("figure", { class: "row-card" + (r.label === undefined ? "" : r.right ? " right" : " wrong"),
        "data-row": r.row });
      if (pixels && img.dims.length === 2) {
        const [h, w] = img.dims, pic = el("canvas", { role: "img", "aria-label": r.row + " as an image" });
        pic.style.width = 2 * w + "px"; pic.style.height = 2 * h + "px";
        paint(pic, w, h, (y, x) => pixels.values[j * w * h + y * w + x], 1, ink);
        card.append(pic);
      }
      const score = pred + (r.outputs.length === 1 ? "" : "[" + r.predicted + "]") + " = " + g(r.score, 3);
      card.append(el("figcaption", {}, el("div", { class: "row-name", text: r.row }),
        r.label === undefined ? null : el("div", { "data-field": "label", text: "label " + r.label }),
        el("div", { "data-field": "predicted", text: "predicted " + r["class"] }),
        el("div", { class: "none", text: score + (r.label === undefined ? "" : r.right ? " · right" : " · wrong") })));
      card.title = pred + " = [" + r.outputs.map((v) => g(v, 3)).join(", ") + "]";
      cards.append(card);
    });
    box.replaceChildren(head, cards);
    if (rows.length > shown.length)
      box.append(el("p", { class: "none", text: "… and " + (rows.length - shown.length) + " more rows: `chainrule step` " +
        "without --html lists them all" }));
  }
  // What can be clicked, said once: nodes of the graph, and the entries of the gradients
  // that are explained term by term (small parameters and inputs).
  function hint() {
    const explained = nodes.filter((n) => n.explain).map((n) => "dL/d" + n.name);
    const some = explained.length > 4 ? explained.slice(0, 4).join(", ") + ", …" : explained.join(", ");
    $("hint").textContent = "Click a node of the graph to see its value and gradient" + (explained.length
      ? "; click a number of " + some + " in the panel to see it term by term" : "") +
      ". Keys: ← → step, Home / End, Space plays; + − 0 zoom the graph.";
  }

  // ---- the graph: zoom, and the current node kept in view ----
  const view = $("graph-view"), svg = view.querySelector("svg");
  const natural = svg ? { w: svg.width.baseVal.value, h: svg.height.baseVal.value } : { w: 1, h: 1 };
  // Labels of 11 pt read well down to about 0.75 of their size: the fitted zoom goes no lower,
  // and a wide graph then scrolls in its own box.
  const fitZoom = () => Math.max(0.75, Math.min(1.5, (view.clientWidth - 12) / natural.w));
  let zoom = 0;
  function setZoom(z) {
    if (!svg) return;
    zoom = Math.max(0.25, Math.min(4, z));
    svg.style.width = natural.w * zoom + "px";
    svg.style.height = natural.h * zoom + "px";
    $("zoom-level").textContent = Math.round(zoom * 100) + "%";
  }
  function showCurrent() {
    const e = state.k ? document.getElementById("n" + steps[state.k - 1].node) : null;
    if (!e) return;
    const box = e.getBoundingClientRect(), v = view.getBoundingClientRect();
    if (box.left < v.left || box.right > v.right) view.scrollLeft += box.left - v.left - (v.width - box.width) / 2;
    if (box.top < v.top || box.bottom > v.bottom) view.scrollTop += box.top - v.top - (v.height - box.height) / 2;
  }

  // ---- start ----
  $("title").textContent = "chainrule step: " + (data.model || "model");
  $("doc").textContent = data.doc;
  if (data.random_inputs.length) {
    const r = $("random");
    r.hidden = false;
    r.textContent = "Inputs drawn at random (uniform(0,1), class labels where an op reads labels, every symbol = 3): " +
      data.random_inputs.join(", ") + ". These are not the model's data: give real values with --feed FILE" +
      " or rows of a data set with --rows.";
  }
  facts();
  rowsSection();
  hint();
  setZoom(fitZoom());
  $("zoom-in").addEventListener("click", () => setZoom(zoom * 1.25));
  $("zoom-out").addEventListener("click", () => setZoom(zoom / 1.25));
  $("zoom-fit").addEventListener("click", () => setZoom(fitZoom()));
  $("slider").max = String(N);
  $("first").addEventListener("click", () => go(0));
  $("prev").addEventListener("click", () => go(state.k - 1));
  $("next").addEventListener("click", () => go(state.k + 1));
  $("last").addEventListener("click", () => go(N));
  $("play").addEventListener("click", play);
  $("slider").addEventListener("input", () => go(Number($("slider").value)));
  window.addEventListener("hashchange", () => go(fromHash()));
  document.addEventListener("keydown", (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey || (e.target instanceof HTMLInputElement && e.target.type === "number")) return;
    const keys = { ArrowRight: () => go(state.k + 1), ArrowLeft: () => go(state.k - 1), Home: () => go(0), End: () => go(N),
      " ": play, "+": () => setZoom(zoom * 1.25), "=": () => setZoom(zoom * 1.25), "-": () => setZoom(zoom / 1.25),
      "0": () => setZoom(fitZoom()) };
    if (!(e.key in keys) || (e.key === " " && e.target instanceof HTMLButtonElement)) return;
    e.preventDefault();
    if (e.key === "ArrowRight" || e.key === "ArrowLeft" || e.key === "Home" || e.key === "End") stop();
    keys[e.key]();
  });
  for (const e of document.querySelectorAll("#graph .cr-node")) {
    const m = /^n(\d+)$/.exec(e.id);
    if (m) e.addEventListener("click", () => pick(state.picked === Number(m[1]) ? -1 : Number(m[1])));
  }
  go(fromHash());
})();
