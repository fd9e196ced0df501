// minidl playground: decoding frames and drawing on canvas. No library: typed arrays and the 2-D context.
"use strict";

const CLASS_COLORS = ["#f59322", "#0877bd", "#2ca02c", "#9467bd", "#d62728", "#8c564b"];
const ORANGE = [245, 147, 34], WHITE = [232, 234, 235], BLUE = [8, 119, 189];
const GRID = 100, THUMB = 25;

function hexRgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}
const CLASS_RGB = CLASS_COLORS.map(hexRgb);

// t in [-1, 1] -> orange .. white .. blue, as TensorFlow Playground colours values
function diverging(t) {
  t = Math.max(-1, Math.min(1, t));
  const [a, b, s] = t < 0 ? [WHITE, ORANGE, -t] : [WHITE, BLUE, t];
  return [a[0] + (b[0] - a[0]) * s, a[1] + (b[1] - a[1]) * s, a[2] + (b[2] - a[2]) * s];
}

// base64 -> Uint8Array
function b64bytes(text) {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// a frame's sections: name -> typed array (views on one buffer)
function decodeSections(header, body) {
  const bytes = b64bytes(body);
  const types = { uint8: Uint8Array, float32: Float32Array, int32: Int32Array };
  const out = {};
  for (const [name, dtype, offset, length] of header.sections) {
    out[name] = new types[dtype](bytes.buffer, offset, length);
  }
  return out;
}

function decodeFloat32(text) {
  const bytes = b64bytes(text);
  return new Float32Array(bytes.buffer, 0, bytes.length / 4);
}

// the output plane as an image: binary (P(class 1)), regression (value), multiclass (class + confidence)
function drawHeatmap(canvas, frame, net, opts) {
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(GRID, GRID);
  const out = frame.sections.output, conf = frame.sections.confidence;
  for (let i = 0; i < GRID * GRID; i++) {
    let rgb;
    if (conf) {
      const c = CLASS_RGB[out[i] % CLASS_RGB.length];
      const a = opts.discretize ? 1 : Math.max(0, (conf[i] / 255 - 1 / net.nClasses) / (1 - 1 / net.nClasses));
      rgb = [WHITE[0] + (c[0] - WHITE[0]) * a * 0.75, WHITE[1] + (c[1] - WHITE[1]) * a * 0.75, WHITE[2] + (c[2] - WHITE[2]) * a * 0.75];
    } else {
      let t = out[i] / 255 * 2 - 1;
      if (opts.discretize) t = t >= 0 ? 1 : -1;
      rgb = diverging(t * 0.8);
    }
    img.data[4 * i] = rgb[0]; img.data[4 * i + 1] = rgb[1]; img.data[4 * i + 2] = rgb[2]; img.data[4 * i + 3] = 255;
  }
  const off = drawHeatmap.off || (drawHeatmap.off = document.createElement("canvas"));
  off.width = GRID; off.height = GRID;
  off.getContext("2d").putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(off, 0, 0, canvas.width, canvas.height);
  drawPoints(ctx, canvas, net, opts);
}

function toCanvas(net, canvas, x1, x2) {
  const e = net.extent;
  return [(x1 + e) / (2 * e) * canvas.width, (e - x2) / (2 * e) * canvas.height];
}

function pointColor(net, target) {
  if (net.regression) {
    const rgb = diverging(target / net.targetScale);
    return `rgb(${rgb[0] | 0},${rgb[1] | 0},${rgb[2] | 0})`;
  }
  return CLASS_COLORS[target % CLASS_COLORS.length];
}

function drawPoints(ctx, canvas, net, opts) {
  for (let i = 0; i < net.n; i++) {
    const train = net.split[i] === 1;
    if (!train && !opts.showTest) continue;
    const [px, py] = toCanvas(net, canvas, net.points[2 * i], net.points[2 * i + 1]);
    ctx.beginPath();
    ctx.arc(px, py, 3, 0, 2 * Math.PI);
    ctx.fillStyle = pointColor(net, net.targets[i]);
    ctx.fill();
    ctx.lineWidth = 1;
    ctx.strokeStyle = train ? "#fff" : "#000";
    ctx.stroke();
  }
  if (opts.selected != null && opts.selected < net.n) {
    const i = opts.selected;
    const [px, py] = toCanvas(net, canvas, net.points[2 * i], net.points[2 * i + 1]);
    ctx.beginPath();
    ctx.arc(px, py, 7, 0, 2 * Math.PI);
    ctx.lineWidth = 2;
    ctx.strokeStyle = "#000";
    ctx.stroke();
  }
}

// one node's thumbnail: bytes v/scale in 0..255 -> a diverging colour of v clipped to [-1, 1]
function drawThumb(canvas, bytes, offset, scale) {
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(THUMB, THUMB);
  for (let i = 0; i < THUMB * THUMB; i++) {
    const v = (bytes[offset + i] - 127.5) / 127.5 * scale;
    const rgb = diverging(v);
    img.data[4 * i] = rgb[0]; img.data[4 * i + 1] = rgb[1]; img.data[4 * i + 2] = rgb[2]; img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

// line chart; series: [{values, color}], log: log10 axis
function drawChart(canvas, series, log) {
  const ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  let lo = Infinity, hi = -Infinity, n = 0;
  const tf = (v) => (log ? (v > 0 ? Math.log10(v) : NaN) : v); // log axis: a zero norm is left out
  for (const s of series) {
    n = Math.max(n, s.values.length);
    for (const v of s.values) if (Number.isFinite(tf(v))) { lo = Math.min(lo, tf(v)); hi = Math.max(hi, tf(v)); }
  }
  if (n < 2 || !Number.isFinite(lo)) return;
  if (!log) lo = Math.min(lo, 0);
  if (hi - lo < 1e-9) hi = lo + 1;
  ctx.font = "10px sans-serif";
  ctx.fillStyle = "#999";
  if (log) {
    ctx.strokeStyle = "#eee";
    for (let d = Math.ceil(lo); d <= Math.floor(hi); d++) {
      const y = h - (d - lo) / (hi - lo) * (h - 4) - 2;
      ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(w, y); ctx.stroke();
      ctx.fillText(`1e${d}`, 2, y - 1);
    }
  }
  for (const s of series) {
    ctx.beginPath();
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 1.5;
    let pen = false;
    s.values.forEach((v, i) => {
      const t = tf(v);
      if (!Number.isFinite(t)) { pen = false; return; }
      const x = i / (n - 1) * w, y = h - (t - lo) / (hi - lo) * (h - 4) - 2;
      if (pen) ctx.lineTo(x, y); else ctx.moveTo(x, y);
      pen = true;
    });
    ctx.stroke();
  }
}
