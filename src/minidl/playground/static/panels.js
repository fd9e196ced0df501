// minidl playground: the network diagram (nodes, edges, hover cards), the inspector, confusion, export.
"use strict";

// -- the network diagram -----------------------------------------------------------------------
function buildNetwork() {
  const net = S.net, s = S.setup, box = document.getElementById("layers");
  box.innerHTML = "";
  net.nodeEls = [];
  // input column: every feature, the chosen ones on (click toggles)
  const inputs = column(box, "<span>FEATURES</span><small>click to toggle</small>");
  let k = 0;
  FEATURE_KEYS.forEach((key, i) => {
    const on = s.features.includes(key);
    const node = makeNode(inputs, on);
    const label = document.createElement("span");
    label.className = "feature";
    label.textContent = FEATURE_LABELS[i];
    node.appendChild(label);
    node.onclick = () => {
      const next = on ? s.features.filter((f) => f !== key) : [...s.features, key];
      if (next.length === 0) { showError("features: keep at least one input feature"); return; }
      change({ features: next });
    };
    node.dataset.feature = key;
    if (on) net.nodeEls.push({ el: node, layer: 0, index: k++ });
  });
  s.layers.forEach((n, l) => {
    const head = document.createElement("div");
    const plus = document.createElement("button"), minus = document.createElement("button");
    plus.textContent = "+"; minus.textContent = "−";
    plus.title = "Add a neuron"; minus.title = "Remove a neuron";
    plus.onclick = () => resize(l, +1);
    minus.onclick = () => resize(l, -1);
    const sel = document.createElement("select");
    for (const a of ACTS) sel.add(new Option(a, a));
    sel.value = s.acts[l];
    sel.title = "Activation of this layer";
    sel.onchange = () => { const acts = [...s.acts]; acts[l] = sel.value; change({ acts }); };
    const row = document.createElement("span");
    row.append(plus, minus);
    const count = document.createElement("span");
    count.textContent = `${n} neuron${n > 1 ? "s" : ""}`;
    head.append(row, count, sel);
    const col = column(box, head);
    for (let j = 0; j < n; j++) net.nodeEls.push({ el: makeNode(col, true, l + 1, j), layer: l + 1, index: j });
  });
  const outs = column(box, "<span>OUTPUT</span>");
  const nOut = net.nodes[net.nodes.length - 1];
  for (let j = 0; j < nOut; j++) net.nodeEls.push({ el: makeNode(outs, true, net.nodes.length - 1, j), layer: net.nodes.length - 1, index: j });
  requestAnimationFrame(buildEdges);
}

function column(box, head) {
  const col = document.createElement("div");
  col.className = "layer";
  const h = document.createElement("div");
  h.className = "layer-head";
  if (typeof head === "string") h.innerHTML = head; else h.appendChild(head);
  col.appendChild(h);
  box.appendChild(col);
  return col;
}

function makeNode(col, on, layer, index) {
  const node = document.createElement("div");
  node.className = "node" + (on ? "" : " off");
  const c = document.createElement("canvas");
  c.width = THUMB; c.height = THUMB;
  node.appendChild(c);
  if (layer) { // a bias square: hover shows it, click edits it
    const b = document.createElement("div");
    b.className = "bias";
    b.addEventListener("mouseenter", (e) => hoverCard(e, layer - 1, index, -1));
    b.addEventListener("mouseleave", hideCardSoon);
    b.addEventListener("click", (e) => { e.stopPropagation(); editCard(e, layer - 1, index, -1); });
    node.appendChild(b);
  }
  col.appendChild(node);
  return node;
}

function resize(l, delta) {
  const layers = [...S.setup.layers];
  layers[l] += delta;
  if (layers[l] < 1) { showError("a hidden layer needs at least 1 neuron; remove the layer instead"); return; }
  change({ layers, acts: S.setup.acts });
}

// weight [row, col] of Linear k, or its bias (col = -1), from the frame's weights section
function weightAt(k, row, col) {
  const nodes = S.net.nodes;
  let offset = 0;
  for (let i = 0; i < k; i++) offset += nodes[i + 1] * nodes[i] + nodes[i + 1];
  const w = S.frame.sections.weights;
  return col < 0 ? w[offset + nodes[k + 1] * nodes[k] + row] : w[offset + row * nodes[k] + col];
}

function buildEdges() {
  const svg = document.getElementById("edges"), net = S.net;
  svg.innerHTML = "";
  const base = document.getElementById("network").getBoundingClientRect();
  const pos = net.nodeEls.map(({ el }) => {
    const r = el.querySelector("canvas").getBoundingClientRect();
    return { x0: r.left - base.left, x1: r.right - base.left, y: r.top - base.top + r.height / 2 };
  });
  net.edges = [];
  for (let k = 0; k < net.nodes.length - 1; k++) {
    const from = net.nodeEls.map((n, i) => [n, i]).filter(([n]) => n.layer === k);
    const to = net.nodeEls.map((n, i) => [n, i]).filter(([n]) => n.layer === k + 1);
    for (const [b, ib] of to) {
      for (const [a, ia] of from) {
        const line = document.createElementNS("http://www.w3.org/2000/svg", "line");
        line.setAttribute("x1", pos[ia].x1); line.setAttribute("y1", pos[ia].y);
        line.setAttribute("x2", pos[ib].x0); line.setAttribute("y2", pos[ib].y);
        const edge = { line, k, row: b.index, col: a.index };
        line.addEventListener("mouseenter", (e) => hoverCard(e, k, edge.row, edge.col));
        line.addEventListener("mouseleave", hideCardSoon);
        line.addEventListener("click", (e) => editCard(e, k, edge.row, edge.col));
        svg.appendChild(line);
        net.edges.push(edge);
      }
    }
  }
  if (S.frame) drawEdges();
}

function drawEdges() {
  if (!S.net.edges || !S.frame) return;
  for (const e of S.net.edges) {
    const w = weightAt(e.k, e.row, e.col);
    e.line.setAttribute("stroke", w >= 0 ? "#0877bd" : "#f59322");
    e.line.setAttribute("stroke-width", Math.min(5, 1 + Math.abs(w) * 1.2).toFixed(2));
    e.line.setAttribute("stroke-opacity", Math.min(0.9, 0.2 + Math.abs(w) * 0.5).toFixed(2));
  }
}

function drawNodes() {
  const f = S.frame, nodes = f.sections.nodes, scales = f.sections.scales;
  S.net.nodeEls.forEach(({ el }, i) => {
    drawThumb(el.querySelector("canvas"), nodes, i * THUMB * THUMB, scales[i]);
  });
  S.net.nodeEls.forEach(({ el, layer, index }) => {
    const b = el.querySelector(".bias");
    if (b) { const v = weightAt(layer - 1, index, -1); b.style.background = v >= 0 ? "#0877bd" : "#f59322"; }
  });
}

// -- hover card and weight editing ------------------------------------------------------------
function describe(k, row, col) {
  const to = k + 1 === S.net.nodes.length - 1 ? `output ${row}` : `layer ${k + 1} neuron ${row}`;
  if (col < 0) return `bias of ${to}`;
  const from = k === 0 ? S.net.features[col] : `layer ${k} neuron ${col}`;
  return `weight ${from} → ${to}`;
}

function hoverCard(e, k, row, col) {
  if (!S.frame) return;
  const card = document.getElementById("card");
  if (card.dataset.editing === "1") return;
  clearTimeout(hideCardSoon.timer);
  card.textContent = `${describe(k, row, col)}: ${weightAt(k, row, col).toFixed(4)} (click to edit)`;
  card.style.left = `${e.clientX + 12}px`; card.style.top = `${e.clientY + 12}px`;
  card.hidden = false;
}

function hideCardSoon() {
  const card = document.getElementById("card");
  if (card.dataset.editing === "1") return;
  hideCardSoon.timer = setTimeout(() => { card.hidden = true; }, 300);
}

function editCard(e, k, row, col) {
  const card = document.getElementById("card");
  card.innerHTML = "";
  card.dataset.editing = "1";
  const label = document.createElement("div");
  label.textContent = describe(k, row, col);
  const input = document.createElement("input");
  input.value = weightAt(k, row, col).toFixed(4);
  const ok = document.createElement("button");
  ok.textContent = "set";
  const close = () => { card.dataset.editing = "0"; card.hidden = true; };
  const submit = async () => {
    const r = await api(`/api/s/${S.sid}/weight`, { layer: k, row, col, value: input.value });
    if (r) close();
  };
  ok.onclick = submit;
  input.addEventListener("keydown", (ev) => { if (ev.key === "Enter") submit(); if (ev.key === "Escape") close(); });
  card.append(label, input, ok);
  card.style.left = `${e.clientX + 12}px`; card.style.top = `${e.clientY + 12}px`;
  card.hidden = false;
  input.focus();
  input.select();
}

// -- backprop inspector ----------------------------------------------------------------------
async function inspectPoint() {
  if (S.selected == null) return;
  S.inspectedAt = performance.now();
  const r = await api(`/api/s/${S.sid}/inspect`, { index: S.selected });
  if (!r) return;
  S.inspection = r;
  renderInspector(r);
  if (S.frame) draw();
}

function afterFrame(h) {
  if (S.selected == null || !S.inspection || S.inspection.step === h.step) return;
  if (!h.playing || performance.now() - S.inspectedAt > 1000) inspectPoint();
}

const fmt = (v) => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(1) : v.toFixed(4));

function table(rows) {
  const t = document.createElement("table");
  for (const [name, values] of rows) {
    const tr = t.insertRow();
    const th = tr.insertCell();
    th.className = "k";
    th.textContent = name;
    for (const v of [].concat(values)) {
      const td = tr.insertCell();
      td.textContent = fmt(v);
      td.className = v > 0 ? "pos" : v < 0 ? "neg" : "";
    }
  }
  return t;
}

function matrix(name, m) {
  return table(m.map((row, i) => [`${name}[${i}]`, row]));
}

function renderInspector(r) {
  const body = document.getElementById("inspect-body");
  body.innerHTML = "";
  const head = document.createElement("p");
  head.textContent = `Point ${r.index} (${r.split} set) at (${r.raw.map((v) => v.toFixed(2)).join(", ")}), after step ${r.step}: ` +
    `loss ${fmt(r.loss)}. Forward in eval mode, top to bottom; backward from the loss, bottom to top. g = dL/d(output of the layer). ` +
    `"update" is the change ${r.optimizer} would make if it stepped on this sample's gradient alone.`;
  body.appendChild(head);
  const wrap = document.createElement("div");
  wrap.className = "insp-layers";
  const first = panel(wrap, "Input", "", "");
  first.appendChild(table([["features", r.features], ["x (model input)", r.input]]));
  for (const layer of r.layers) {
    const p = panel(wrap, layer.module, layer.forward, layer.backward);
    p.appendChild(table([["output y", layer.output], ["g = dL/dy", layer.grad_output], ["dL/dx", layer.grad_input]]));
    for (const [name, q] of Object.entries(layer.params)) {
      const two = Array.isArray(q.value[0]);
      const size = two ? `${q.value.length}×${q.value[0].length}` : `${q.value.length}`;
      const box = document.createElement("details");
      box.open = two ? q.value.length * q.value[0].length <= 16 : true; // big matrices start folded
      const h = document.createElement("summary");
      h.textContent = `${name} (${size}): value, dL/d${name}, update Δ${name}`;
      box.appendChild(h);
      box.appendChild(two ? matrix(name, q.value) : table([[name, q.value]]));
      box.appendChild(two ? matrix(`dL/d${name}`, q.grad) : table([[`dL/d${name}`, q.grad]]));
      box.appendChild(two ? matrix(`Δ${name}`, q.update) : table([[`Δ${name}`, q.update]]));
      p.appendChild(box);
    }
  }
  const last = panel(wrap, r.loss_kind, r.loss_forward, r.loss_backward);
  last.appendChild(table([["target t", r.target], ["loss L", [r.loss]], ["dL/dŷ", r.grad_loss]]));
  body.appendChild(wrap);
}

function panel(wrap, title, forward, backward) {
  const p = document.createElement("div");
  p.className = "insp";
  const h = document.createElement("h4");
  h.textContent = title;
  p.appendChild(h);
  if (forward) { const f = document.createElement("div"); f.className = "f"; f.textContent = "forward: " + forward; p.appendChild(f); }
  if (backward) { const b = document.createElement("div"); b.className = "b"; b.textContent = "backward: " + backward; p.appendChild(b); }
  wrap.appendChild(p);
  return p;
}

// -- confusion matrix, legend, export ------------------------------------------------------------
function renderConfusion() {
  const box = document.getElementById("confusion"), c = S.frame.sections.confusion;
  const legend = document.getElementById("legend");
  const names = S.net.classes.length ? S.net.classes : ["0", "1"];
  if (!c) { box.innerHTML = ""; legend.textContent = "regression: orange −1 … blue +1"; return; }
  const k = Math.round(Math.sqrt(c.length));
  const key = `${S.net.version}:${Array.from(c).join(",")}`;
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  const t = document.createElement("table");
  const head = t.insertRow();
  head.insertCell().textContent = "true \\ predicted";
  for (let j = 0; j < k; j++) head.insertCell().textContent = names[j];
  for (let i = 0; i < k; i++) {
    const tr = t.insertRow();
    tr.insertCell().textContent = names[i];
    for (let j = 0; j < k; j++) tr.insertCell().textContent = c[i * k + j];
  }
  box.innerHTML = "<small>Test confusion matrix</small>";
  box.appendChild(t);
  legend.innerHTML = "";
  names.forEach((n, i) => {
    const s = document.createElement("span");
    const sw = document.createElement("i");
    sw.style.background = CLASS_COLORS[i % CLASS_COLORS.length];
    s.append(sw, `class ${n}`);
    legend.appendChild(s);
  });
}

function renderExports() {
  const box = document.getElementById("exports");
  box.innerHTML = "";
  for (const name of ["playground.zip", "config.toml", "data.csv", "model.safetensors", "train.py"]) {
    const a = document.createElement("a");
    a.href = `/api/s/${S.sid}/export/${name}`;
    a.textContent = name;
    a.setAttribute("download", name);
    box.appendChild(a);
  }
  const p = document.createElement("p");
  p.className = "hint";
  p.textContent = "In a folder with config.toml and data.csv: minidl train --config config.toml trains the same weights (the notes at its top say when it cannot).";
  box.appendChild(p);
}
