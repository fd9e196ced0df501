// minidl playground: the page's state, the server connection (fetch POSTs, Server-Sent Events), controls.
// The page never computes the network: every number it draws comes from the server's frames.
"use strict";

const $ = (id) => document.getElementById(id);
const S = { sid: null, setup: null, net: null, frame: null, frames: 0, lossHist: [], gradHist: [],
  selected: null, es: null, errors: [] };
window.playground = S; // tests read the state from here

const DATASETS = [["circle", "Circle"], ["xor", "XOR"], ["gauss", "Gaussian"], ["spiral", "Spiral"],
  ["blobs", "Blobs (3)"], ["spiral3", "3 spirals"], ["plane", "Plane"], ["multigauss", "Multi-Gauss"], ["custom", "Own data"]];
const LOSSES = { classification: ["mse", "bce", "bce-logits", "cross-entropy"], regression: ["mse", "mae", "huber"] };
const ACTS = ["tanh", "relu", "sigmoid", "leaky_relu", "elu", "gelu", "softplus", "silu", "linear"];
const FEATURE_KEYS = ["x1", "x2", "x1sq", "x2sq", "x1x2", "sinx1", "sinx2"];
const FEATURE_LABELS = ["X1", "X2", "X1²", "X2²", "X1·X2", "sin X1", "sin X2"];

function showError(message) {
  const el = $("error");
  el.textContent = message;
  el.hidden = false;
  S.errors.push(message);
  clearTimeout(showError.timer);
  showError.timer = setTimeout(() => { el.hidden = true; }, 8000);
}

async function api(path, body, raw) {
  const init = { method: "POST", headers: { "Content-Type": raw ? "text/csv" : "application/json" },
    body: raw ? body : JSON.stringify(body || {}) };
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    showError(`the server did not answer (${e.message})`);
    return null;
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    showError(data.error || `${path}: HTTP ${response.status}`);
    return null;
  }
  return data;
}

// -- the URL holds the whole setup -----------------------------------------------------------
function setupFromHash() {
  const values = {};
  for (const [k, v] of new URLSearchParams(location.hash.slice(1))) values[k] = v;
  return values;
}

function writeHash(query) {
  history.replaceState(null, "", "#" + query);
}

async function change(values) {
  const r = await api(`/api/s/${S.sid}/setup`, values);
  if (r) { S.setup = r.setup; writeHash(r.query); }
  syncControls(true); // a refused value: the control shows the value in force again
  return r;
}

// -- start -----------------------------------------------------------------------------------
async function start() {
  buildStaticControls();
  let r = await api("/api/session", { setup: setupFromHash() });
  if (!r) r = await api("/api/session", { setup: {} }); // a bad link: the defaults, with the error shown
  if (!r) return;
  S.sid = r.sid;
  S.setup = r.setup;
  const es = new EventSource(`/api/s/${S.sid}/events`);
  S.es = es;
  es.addEventListener("net", (e) => onNet(JSON.parse(e.data)));
  es.addEventListener("frame", (e) => onFrame(JSON.parse(e.data)));
  es.addEventListener("notice", (e) => { showError(e.data); setPlaying(false); });
  es.onerror = () => { if (es.readyState === EventSource.CLOSED) showError("lost the connection to the server; reload the page"); };
  renderExports();
  window.addEventListener("pagehide", () => navigator.sendBeacon(`/api/s/${S.sid}/close`));
}

function onNet(net) {
  const points = decodeFloat32(net.points), targets = decodeFloat32(net.targets), split = b64bytes(net.split);
  let scale = 1e-6;
  for (const t of targets) scale = Math.max(scale, Math.abs(t));
  S.net = { ...net, points, targets, split, n: targets.length, regression: net.setup.problem === "regression",
    nClasses: Math.max(2, net.classes.length), targetScale: scale };
  S.setup = net.setup;
  writeHash(net.query);
  S.lossHist = []; S.gradHist = []; S.selected = null;
  $("inspect-body").textContent = "";
  buildNetwork();
  syncControls();
  const legend = $("grad-legend");
  legend.innerHTML = "";
  const n = net.nodes.length - 1;
  for (let l = 0; l < n; l++) {
    const item = document.createElement("span"), swatch = document.createElement("i");
    swatch.style.background = layerColor(l, n);
    item.append(swatch, `${l + 1 < n ? "layer " + (l + 1) : "output"} (${net.nodes[l + 1]}×${net.nodes[l]})`);
    legend.appendChild(item);
  }
}

function onFrame(msg) {
  if (!S.net || msg.h.version !== S.net.version) return; // a frame of the network before a rebuild
  S.frame = { header: msg.h, sections: decodeSections(msg.h, msg.b) };
  S.frames++;
  const h = msg.h;
  S.lossHist.push([h.train_loss, h.test_loss]);
  S.gradHist.push(Array.from(S.frame.sections.grad_norms));
  if (S.lossHist.length > 1500) { S.lossHist.splice(0, 500); S.gradHist.splice(0, 500); }
  setPlaying(h.playing);
  draw();
  afterFrame(h);
}

function draw() {
  const f = S.frame, net = S.net, h = f.header;
  $("epoch").textContent = String(h.epoch).padStart(6, "0");
  $("global-step").textContent = h.step;
  $("test-loss").textContent = h.test_loss.toFixed(3);
  $("train-loss").textContent = h.train_loss.toFixed(3);
  $("acc").textContent = h.test_acc == null ? "" : `Test accuracy ${(100 * h.test_acc).toFixed(1)}%`;
  drawHeatmap($("heatmap"), f, net, { showTest: $("show-test").checked, discretize: $("discretize").checked, selected: S.selected });
  drawChart($("loss-chart"), [{ values: S.lossHist.map((v) => v[0]), color: "#999" }, { values: S.lossHist.map((v) => v[1]), color: "#000" }], false);
  const layers = S.gradHist.length ? S.gradHist[0].length : 0;
  const series = [];
  for (let l = 0; l < layers; l++) series.push({ values: S.gradHist.map((g) => g[l]), color: layerColor(l, layers) });
  drawChart($("grad-chart"), series, true);
  drawNodes();
  drawEdges();
  renderConfusion();
}

function layerColor(l, n) {
  return `hsl(${Math.round(220 - 200 * (n > 1 ? l / (n - 1) : 0))}, 70%, 45%)`;
}

function setPlaying(on) {
  S.playing = on;
  $("play").classList.toggle("playing", on);
  $("play").innerHTML = on ? "&#10074;&#10074;" : "&#x25B6;";
}

// -- controls --------------------------------------------------------------------------------
function buildStaticControls() {
  const box = $("datasets");
  for (const [key, label] of DATASETS) {
    const b = document.createElement("button");
    b.textContent = label;
    b.dataset.dataset = key;
    b.onclick = () => change({ dataset: key });
    box.appendChild(b);
  }
  for (const el of document.querySelectorAll("[data-key]")) {
    const key = el.dataset.key;
    const send = () => {
      let value = el.type === "checkbox" ? el.checked : el.value;
      if (el.type === "range") value = Number(value);
      const values = { [key]: value };
      if (key === "problem") { values.dataset = value === "regression" ? "plane" : "circle"; }
      change(values);
    };
    el.addEventListener("change", send);
    if (el.type === "range") el.addEventListener("input", () => { $(`${key}-v`).textContent = el.value; });
  }
  $("play").onclick = () => api(`/api/s/${S.sid}/control`, { action: S.playing ? "pause" : "play" });
  $("step").onclick = () => api(`/api/s/${S.sid}/control`, { action: "step" });
  $("epoch-step").onclick = () => api(`/api/s/${S.sid}/control`, { action: "epoch" });
  $("reset").onclick = () => api(`/api/s/${S.sid}/control`, { action: "reset" });
  $("regenerate").onclick = () => change({ dseed: (S.setup.dseed + 1) % 2147483647 });
  $("add-layer").onclick = () => { if (S.setup.layers.length < 6) change({ layers: [...S.setup.layers, 2] }); else showError("at most 6 hidden layers"); };
  $("remove-layer").onclick = () => change({ layers: S.setup.layers.slice(0, -1), acts: S.setup.acts.slice(0, -1) });
  $("show-test").onchange = () => S.frame && draw();
  $("discretize").onchange = () => S.frame && draw();
  $("heatmap").addEventListener("click", onHeatmapClick);
  $("upload").addEventListener("change", onUpload);
  $("clear-points").onclick = () => api(`/api/s/${S.sid}/points`, { clear: true });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") $("card").hidden = true; });
}

function syncControls(force) {
  const s = S.setup;
  if (!s) return;
  for (const el of document.querySelectorAll("[data-key]")) {
    const key = el.dataset.key;
    if (key === "loss") {
      el.innerHTML = "";
      for (const name of LOSSES[s.problem]) el.add(new Option(name, name));
    }
    if (el.type === "checkbox") el.checked = !!s[key];
    else if (force || document.activeElement !== el || el.tagName === "SELECT") el.value = s[key];
    const shown = $(`${key}-v`);
    if (shown) shown.textContent = s[key];
  }
  for (const b of $("datasets").children) b.classList.toggle("on", b.dataset.dataset === s.dataset);
  $("layer-count").textContent = s.layers.length;
  const classes = $("draw-class");
  const n = S.net ? Math.max(2, S.net.nClasses) : 2;
  if (classes.options.length !== n) {
    classes.innerHTML = "";
    for (let c = 0; c < n; c++) classes.add(new Option(S.net && S.net.classes[c] ? S.net.classes[c] : String(c), c));
  }
  $("draw-value-l").hidden = s.problem !== "regression";
  classes.parentElement.hidden = s.problem === "regression";
}

async function onHeatmapClick(e) {
  const canvas = $("heatmap"), rect = canvas.getBoundingClientRect(), net = S.net;
  const px = (e.clientX - rect.left) * canvas.width / rect.width, py = (e.clientY - rect.top) * canvas.height / rect.height;
  const x1 = px / canvas.width * 2 * net.extent - net.extent, x2 = net.extent - py / canvas.height * 2 * net.extent;
  if ($("draw-mode").checked) {
    let label;
    if (net.regression) label = Number($("draw-value").value);
    else label = (Number($("draw-class").value) + (e.shiftKey ? 1 : 0)) % net.nClasses;
    const r = await api(`/api/s/${S.sid}/points`, { x: x1, y: x2, label });
    if (r && r.count < 4) showError(`own data: ${r.count} point(s); add at least 4`);
    return;
  }
  let best = -1, bestD = 64;
  for (let i = 0; i < net.n; i++) {
    if (net.split[i] !== 1 && !$("show-test").checked) continue;
    const [qx, qy] = toCanvas(net, canvas, net.points[2 * i], net.points[2 * i + 1]);
    const d = (qx - px) ** 2 + (qy - py) ** 2;
    if (d < bestD) { bestD = d; best = i; }
  }
  if (best >= 0) { S.selected = best; inspectPoint(); }
}

async function onUpload(e) {
  const file = e.target.files[0];
  e.target.value = "";
  if (!file) return;
  if (file.size > 256 * 1024) { showError(`upload: the file is ${file.size} bytes; at most 262144`); return; }
  const r = await api(`/api/s/${S.sid}/upload`, await file.text(), true);
  if (r) { S.setup = r.setup; writeHash(r.query); }
}

document.addEventListener("DOMContentLoaded", start);
