// chainrule playground: the page. Plain JavaScript, no build step, nothing fetched but our own API.
// The server holds the network (one session per tab); the page sends settings and commands over HTTP
// and draws the state the session streams over a websocket.
"use strict";

const OPTIONS = {
  lr: [0.00001, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10],
  activation: [["tanh", "Tanh"], ["sigmoid", "Sigmoid"], ["relu", "ReLU"], ["leaky_relu", "Leaky ReLU"],
    ["prelu", "PReLU"], ["maxout", "Maxout"], ["elu", "ELU"], ["linear", "Linear"]],
  loss: [["cross_entropy", "Softmax cross-entropy"], ["bce", "Binary cross-entropy"], ["mse", "MSE"],
    ["l1", "L1"], ["hinge", "Hinge"]],
  optimizer: [["sgd", "SGD"], ["gd", "GD (full batch)"], ["momentum", "Momentum"], ["adam", "Adam"],
    ["lbfgs", "L-BFGS"]],
  regularization: [["none", "None"], ["l1", "L1"], ["l2", "L2"]],
  reg_rate: [0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10],
  problem: [["classification", "Classification"], ["regression", "Regression"]],
  dataset: [["circle", "Circle"], ["xor", "Exclusive or"], ["gauss", "Gaussian"], ["spiral", "Spiral"],
    ["plane", "Plane (regression)"], ["multigauss", "Multi Gaussian (regression)"], ["csv", "Your CSV"]],
  classes: [2, 3, 4, 5],
};
const FEATURES = [["x1", "X1"], ["x2", "X2"], ["x1sq", "X1²"], ["x2sq", "X2²"], ["x1x2", "X1X2"],
  ["sinx1", "sin(X1)"], ["sinx2", "sin(X2)"]];
const CLASSIFICATION = ["circle", "xor", "gauss", "spiral"];
const REGRESSION = ["plane", "multigauss"];
const MULTICLASS = ["gauss", "spiral"];
const URL_KEYS = ["dataset", "problem", "classes", "noise", "train_ratio", "batch_size", "seed", "features",
  "layers", "activation", "loss", "optimizer", "lr", "regularization", "reg_rate"];
const CLASS_COLORS = [[245, 147, 34], [8, 119, 189], [76, 175, 80], [156, 39, 176], [229, 57, 53]];
const LAYER_COLORS = ["#0877bd", "#f59322", "#4caf50", "#9c27b0", "#e53935", "#795548", "#607d8b"];

const $ = (id) => document.getElementById(id);
let session = null;   // the id
let state = null;     // the last snapshot
let points = null;    // {train, test}
let graphData = null; // the last graph
let selectedNode = null;
let animating = false;
let hidden = new Set(); // classroom mode: controls hidden
let socket = null;

// ---- small helpers --------------------------------------------------------------------------------
function fmt(v) {
  if (v === null || v === undefined) return "nan";
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
}
function fmtArray(a, limit = 4) {
  if (a.length === 1) return fmt(a[0]);
  const head = a.slice(0, limit).map(fmt).join(", ");
  return "[" + head + (a.length > limit ? ", …" : "") + "]";
}
function svgEl(tag, attrs, text) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}
function decode(b64) {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
// v in [-1, 1] (as a byte 0..255): orange (negative) - white - blue (positive), as TensorFlow Playground
function diverging(byte) {
  const v = byte / 127.5 - 1;
  const c = v < 0 ? CLASS_COLORS[0] : CLASS_COLORS[1];
  const t = Math.min(1, Math.abs(v));
  return [255 + (c[0] - 255) * t, 255 + (c[1] - 255) * t, 255 + (c[2] - 255) * t];
}
function drawMap(canvas, bytes, n, colour) {
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(n, n);
  for (let i = 0; i < n * n; i++) {
    const [r, g, b] = colour(i);
    img.data[4 * i] = r; img.data[4 * i + 1] = g; img.data[4 * i + 2] = b; img.data[4 * i + 3] = 255;
  }
  const tmp = document.createElement("canvas");
  tmp.width = n; tmp.height = n;
  tmp.getContext("2d").putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(tmp, 0, 0, canvas.width, canvas.height);
}

// ---- talking to the server ------------------------------------------------------------------------
async function api(path, body, raw) {
  const options = { method: body === undefined ? "GET" : "POST", headers: {} };
  if (raw) {
    options.body = raw.data;
    options.headers["Content-Type"] = "text/csv";
    options.headers["X-Filename"] = raw.name;
  } else if (body !== undefined) {
    options.body = JSON.stringify(body);
    options.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(session ? `/api/session/${session}${path}` : path, options);
  const data = await response.json().catch(() => ({ error: `the server answered ${response.status}` }));
  if (!response.ok) {
    showError(data.error || `request failed (${response.status})`);
    if (data.stopped) render(Object.assign({}, state, { error: data.stopped, playing: false }));
    throw new Error(data.error);
  }
  return data;
}
// Commands run one after another: a change is computed from the state its predecessor left
// (``body`` may be a function of the state), so quick clicks never work on a stale network.
let queue = Promise.resolve();
function command(path, body = {}, raw) {
  const run = () => send(path, typeof body === "function" ? body(state) : body, raw);
  queue = queue.then(run, run);
  return queue;
}
async function send(path, body, raw) {
  if (body === null) return null; // the change was refused on the page
  try {
    const snap = await api(path, body, raw);
    showError(state && state.error ? state.error.message : "");
    if (snap.version !== undefined) render(snap);
    return snap;
  } catch (e) {
    return null;
  }
}
function connect() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const known = state ? `?version=${state.version}&data=${state.data_version}` : "";
  socket = new WebSocket(`${proto}://${location.host}/api/session/${session}/ws${known}`);
  socket.onmessage = (event) => render(JSON.parse(event.data));
  socket.onclose = () => {
    socket = null;
    setTimeout(() => { if (!socket) connect(); }, 1000);
  };
}
setInterval(() => { if (socket && socket.readyState === 1) socket.send("ping"); }, 20000);

// ---- the URL holds the whole setup ----------------------------------------------------------------
function settingsFromUrl() {
  const params = new URLSearchParams(location.hash.slice(1));
  const out = {};
  for (const key of URL_KEYS) {
    if (!params.has(key)) continue;
    const v = params.get(key);
    if (key === "features") out[key] = v ? v.split(",") : [];
    else if (key === "layers") out[key] = v ? v.split(",").map(Number) : [];
    else if (["classes", "noise", "train_ratio", "batch_size", "seed", "lr", "reg_rate"].includes(key)) out[key] = Number(v);
    else out[key] = v;
  }
  if (out.dataset === "csv") delete out.dataset; // the file itself is not in the link
  hidden = new Set((params.get("hide") || "").split(",").filter(Boolean));
  return out;
}
function writeUrl(config) {
  const params = new URLSearchParams();
  for (const key of URL_KEYS) {
    const v = config[key];
    params.set(key, Array.isArray(v) ? v.join(",") : String(v));
  }
  if (hidden.size) params.set("hide", [...hidden].join(","));
  const hash = "#" + params.toString();
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

// ---- drawing a snapshot ---------------------------------------------------------------------------
function render(snap) {
  if (!snap || (state && snap.version < state.version && snap.id === state.id)) return;
  state = snap;
  if (snap.points) points = snap.points;
  const c = snap.config;
  for (const key of ["lr", "activation", "loss", "optimizer", "regularization", "reg_rate", "problem", "dataset", "classes"]) {
    const el = $(key);
    if (document.activeElement !== el) el.value = String(c[key]);
  }
  for (const key of ["train_ratio", "noise", "batch_size", "seed"]) {
    const el = $(key);
    if (document.activeElement !== el) el.value = c[key];
    const text = $(key + "-text");
    if (text) text.textContent = c[key];
  }
  $("classes").disabled = !(MULTICLASS.includes(c.dataset));
  $("batch_size").disabled = c.optimizer === "gd" || c.optimizer === "lbfgs";
  $("epoch").textContent = snap.epoch;
  $("steps").textContent = snap.steps;
  $("loss-train").textContent = snap.loss_train === null ? "nan" : snap.loss_train.toFixed(3);
  $("loss-test").textContent = snap.loss_test === null ? "nan" : snap.loss_test.toFixed(3);
  $("play").innerHTML = snap.playing ? "&#10074;&#10074; Pause" : "&#x25b6; Play";
  $("play").classList.toggle("playing", snap.playing);
  $("layer-count").textContent = c.layers.length;
  $("csv-name").textContent = snap.csv_name ? `Loaded ${snap.csv_name}.` : "";
  $("export-code").href = `/api/session/${session}/export/code`;
  $("export-checkpoint").href = `/api/session/${session}/export/checkpoint`;
  if (snap.error) showError(snap.error.message);
  writeUrl(c);
  drawNetwork(snap);
  drawOutput(snap);
  drawLossChart(snap.history);
  drawGradChart(snap.diagnostics);
  if (snap.graph && !animating) drawGraph(snap.graph);
}

function drawOutput(snap) {
  const canvas = $("output");
  const h = snap.heatmaps;
  const out = h.output;
  const values = decode(out.values);
  if (out.kind === "multiclass") {
    const classes = decode(out.classes);
    drawMap(canvas, values, h.grid, (i) => {
      const c = CLASS_COLORS[Math.round(classes[i] / 127.5) % CLASS_COLORS.length];
      const t = 0.25 + 0.6 * (values[i] / 255);
      return [255 + (c[0] - 255) * t, 255 + (c[1] - 255) * t, 255 + (c[2] - 255) * t];
    });
  } else {
    drawMap(canvas, values, h.grid, (i) => diverging(values[i]));
  }
  if (!points) return;
  const ctx = canvas.getContext("2d");
  const [x0, x1, y0, y1] = h.bounds;
  const px = (x) => ((x - x0) / (x1 - x0)) * canvas.width;
  const py = (y) => ((y1 - y) / (y1 - y0)) * canvas.height;
  const regression = snap.config.problem === "regression";
  const lo = out.lo, hi = out.hi;
  const colour = (label) => {
    if (!regression) return CLASS_COLORS[label % CLASS_COLORS.length];
    return diverging(Math.round(((label - lo) / Math.max(hi - lo, 1e-9)) * 255));
  };
  const dot = (p, stroke) => {
    const [r, g, b] = colour(p[2]);
    ctx.beginPath();
    ctx.arc(px(p[0]), py(p[1]), 3, 0, 2 * Math.PI);
    ctx.fillStyle = `rgb(${r},${g},${b})`;
    ctx.fill();
    ctx.strokeStyle = stroke;
    ctx.lineWidth = 1;
    ctx.stroke();
  };
  for (const p of points.train) dot(p, "white");
  if ($("show-test").checked) for (const p of points.test) dot(p, "black");
  const s = points.train[snap.sample];
  if (s) {
    ctx.beginPath();
    ctx.arc(px(s[0]), py(s[1]), 7, 0, 2 * Math.PI);
    ctx.strokeStyle = "black";
    ctx.lineWidth = 2;
    ctx.stroke();
  }
}

// The network: feature nodes, hidden neurons with their heat maps, links drawn by weight.
const NODE = 36, COL = 110, ROW = 48, TOP = 34, LEFT = 70;
function drawNetwork(snap) {
  const net = $("network");
  const links = $("links");
  const cfg = snap.config;
  const layers = snap.network.layers;
  const hm = snap.heatmaps;
  // columns: all features (active ones used), each hidden layer, the output
  const active = cfg.features;
  const sizes = [active.length, ...cfg.layers];
  const width = LEFT + COL * (cfg.layers.length + 1) + 70;
  const height = TOP + ROW * Math.max(FEATURES.length, ...cfg.layers, 1) + 10;
  net.style.width = width + "px";
  net.style.height = height + "px";
  links.setAttribute("width", width);
  links.setAttribute("height", height);
  // positions of the units of each column (column 0: the active features among all seven)
  const pos = [];
  pos.push(active.map((f) => [LEFT, TOP + ROW * FEATURES.findIndex((x) => x[0] === f)]));
  cfg.layers.forEach((n, l) => {
    const col = [];
    for (let j = 0; j < n; j++) col.push([LEFT + COL * (l + 1), TOP + ROW * j]);
    pos.push(col);
  });
  const outX = LEFT + COL * (cfg.layers.length + 1);
  pos.push([[outX, TOP]]);
  const key = JSON.stringify([cfg.features, cfg.layers, cfg.activation]);
  if (net.dataset.key !== key) {
    net.dataset.key = key;
    for (const e of [...net.querySelectorAll(".unit, .layer-buttons")]) e.remove();
    FEATURES.forEach(([f, text], i) => {
      const on = active.includes(f);
      const unit = makeUnit(LEFT, TOP + ROW * i, on ? "feature" : "feature off", `feature-${f}`);
      unit.title = `${text}: click to ${on ? "remove" : "add"} this input`;
      const label = document.createElement("span");
      label.className = "unit-label";
      label.textContent = text;
      unit.appendChild(label);
      unit.onclick = () => toggleFeature(f);
      net.appendChild(unit);
    });
    cfg.layers.forEach((n, l) => {
      for (let j = 0; j < n; j++) {
        const unit = makeUnit(LEFT + COL * (l + 1), TOP + ROW * j, "neuron", `neuron-${l}-${j}`);
        unit.title = `hidden layer ${l + 1}, neuron ${j + 1}`;
        net.appendChild(unit);
      }
      const buttons = document.createElement("div");
      buttons.className = "layer-buttons ctl";
      buttons.dataset.ctl = "layers";
      buttons.style.left = (LEFT + COL * (l + 1) - 12) + "px";
      buttons.style.top = "0px";
      buttons.innerHTML = `<button data-testid="add-neuron-${l}" title="Add a neuron">+</button>` +
        `<button data-testid="remove-neuron-${l}" title="Remove a neuron">&minus;</button> <small>${n}</small>`;
      const [plus, minus] = buttons.querySelectorAll("button");
      plus.onclick = () => changeNeurons(l, +1);
      minus.onclick = () => changeNeurons(l, -1);
      net.appendChild(buttons);
    });
    const out = makeUnit(outX, TOP, "neuron output", "neuron-output");
    out.title = "the output";
    net.appendChild(out);
    applyHidden();
  }
  // heat maps of the units
  const small = hm.small;
  active.forEach((f, i) => {
    const canvas = net.querySelector(`[data-testid="feature-${f}"] canvas`);
    const bytes = decode(hm.neurons[0][i]);
    drawMap(canvas, bytes, small, (k) => diverging(bytes[k]));
  });
  cfg.layers.forEach((n, l) => {
    for (let j = 0; j < n; j++) {
      const unit = net.querySelector(`[data-testid="neuron-${l}-${j}"]`);
      const health = snap.units && snap.units[l] ? snap.units[l][j] : null;
      unit.classList.toggle("dead", health === "dead");
      unit.classList.toggle("saturated", health === "saturated");
      unit.title = `hidden layer ${l + 1}, neuron ${j + 1}` + (health ? ` (${health} on the training data)` : "");
      const canvas = unit.querySelector("canvas");
      const bytes = decode(hm.neurons[l + 1][j]);
      drawMap(canvas, bytes, small, (k) => diverging(bytes[k]));
    }
  });
  drawOutputUnit(net.querySelector('[data-testid="neuron-output"] canvas'));
  // links: from unit i of column l to unit j of column l+1, width by |w|, colour by sign
  links.innerHTML = "";
  let maxW = 1e-9;
  for (const layer of layers) for (const row of layer.weights) for (const w of row) maxW = Math.max(maxW, Math.abs(w || 0));
  layers.forEach((layer, l) => {
    layer.weights.forEach((row, j) => {
      const to = pos[l + 1][Math.min(j, pos[l + 1].length - 1)];
      row.forEach((w, i) => {
        const from = pos[l][i];
        if (!from || !to) return;
        const x1 = from[0] + NODE, y1 = from[1] + NODE / 2, x2 = to[0], y2 = to[1] + NODE / 2;
        const mid = (x1 + x2) / 2;
        const path = svgEl("path", {
          d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`,
          class: "link", stroke: (w || 0) >= 0 ? "#0877bd" : "#f59322",
          "stroke-width": 0.5 + 5 * Math.abs(w || 0) / maxW,
          "data-testid": `link-${l}-${j}-${i}`, "data-weight": w,
        });
        path.addEventListener("mousemove", (e) => tooltip(e, `weight ${fmt(w)} (${i === undefined ? "" : "input " + (i + 1)} → neuron ${j + 1} of ${l === layers.length - 1 ? "the output" : "layer " + (l + 1)})`));
        path.addEventListener("mouseleave", () => { $("tooltip").hidden = true; });
        path.addEventListener("click", (e) => editWeight(e, l, j, i, w));
        links.appendChild(path);
      });
    });
  });
}
function makeUnit(x, y, cls, testid) {
  const unit = document.createElement("div");
  unit.className = "unit " + cls;
  unit.dataset.testid = testid;
  unit.setAttribute("data-testid", testid);
  unit.style.left = x + "px";
  unit.style.top = y + "px";
  const canvas = document.createElement("canvas");
  canvas.width = NODE; canvas.height = NODE;
  unit.appendChild(canvas);
  return unit;
}
function drawOutputUnit(canvas) {
  const big = $("output");
  canvas.getContext("2d").drawImage(big, 0, 0, canvas.width, canvas.height);
}
function tooltip(e, text) {
  const tip = $("tooltip");
  tip.textContent = text;
  tip.hidden = false;
  tip.style.left = (e.pageX + 12) + "px";
  tip.style.top = (e.pageY + 12) + "px";
}
function editWeight(e, layer, to, from, w) {
  const box = $("weight-editor");
  box.hidden = false;
  box.style.left = (e.pageX + 8) + "px";
  box.style.top = (e.pageY + 8) + "px";
  const input = $("weight-input");
  input.value = Number(w).toFixed(3);
  input.focus();
  input.select();
  const apply = () => {
    box.hidden = true;
    const value = Number(input.value);
    if (!Number.isFinite(value)) { showError(`weight: ${input.value} is not a number`); return; }
    command("/weight", { layer, to, from, value });
  };
  $("weight-ok").onclick = apply;
  input.onkeydown = (ev) => { if (ev.key === "Enter") apply(); if (ev.key === "Escape") box.hidden = true; };
}

function drawLossChart(history) {
  const svg = $("loss-chart");
  svg.innerHTML = "";
  const w = +svg.getAttribute("width"), h = +svg.getAttribute("height");
  const values = [...history.train, ...history.test].filter((v) => v !== null);
  if (!values.length) return;
  const top = Math.max(...values, 1e-9);
  const n = history.epoch.length;
  const last = Math.max(history.epoch[n - 1], 1);
  const line = (series, cls) => {
    const pts = series.map((v, i) => v === null ? null : `${(history.epoch[i] / last) * (w - 4) + 2},${h - 2 - (v / top) * (h - 6)}`)
      .filter(Boolean).join(" ");
    svg.appendChild(svgEl("polyline", { points: pts, class: cls }));
  };
  line(history.train, "train-line");
  line(history.test, "test-line");
  svg.appendChild(svgEl("text", { x: w - 4, y: 12, "text-anchor": "end", class: "axis" }, `max ${fmt(top)}`));
}

function drawGradChart(diag) {
  const svg = $("grad-chart");
  svg.innerHTML = "";
  const w = +svg.getAttribute("width"), h = +svg.getAttribute("height") - 30;
  const all = diag.layers.flatMap((l) => l.grad_norm).filter((v) => v !== null && v > 0);
  const units = [];
  diag.layers.forEach((l, k) => {
    const parts = [];
    if (l.last_saturated !== null) parts.push(`${Math.round(100 * l.last_saturated)}% saturated`);
    if (l.last_dead !== null) parts.push(`${Math.round(100 * l.last_dead)}% dead`);
    units.push(`<span style="color:${LAYER_COLORS[k % LAYER_COLORS.length]}">■</span> ${l.name}: |grad| ${fmt(l.last_grad_norm)}` +
      (parts.length ? ", " + parts.join(", ") : ""));
  });
  $("units").innerHTML = units.join("<br>");
  if (!all.length) return;
  const lo = Math.log10(Math.min(...all)), hi = Math.log10(Math.max(...all));
  const span = Math.max(hi - lo, 1e-6);
  diag.layers.forEach((l, k) => {
    const n = l.epochs.length;
    if (!n) return;
    const last = Math.max(l.epochs[n - 1], 1);
    const pts = l.grad_norm.map((v, i) => (v === null || v <= 0) ? null :
      `${(l.epochs[i] / last) * (w - 4) + 2},${h - 2 - ((Math.log10(v) - lo) / span) * (h - 6) + 2}`).filter(Boolean).join(" ");
    svg.appendChild(svgEl("polyline", { points: pts, stroke: LAYER_COLORS[k % LAYER_COLORS.length], class: "grad-line" }));
  });
  svg.appendChild(svgEl("text", { x: w - 4, y: 10, "text-anchor": "end", class: "axis" }, fmt(10 ** hi)));
  svg.appendChild(svgEl("text", { x: w - 4, y: h, "text-anchor": "end", class: "axis" }, fmt(10 ** lo)));
}

// ---- the computational graph panel ----------------------------------------------------------------
const BOX_W = 150, BOX_H = 58, GAP_X = 60, GAP_Y = 14, OP_R = 20;
function drawGraph(graph) {
  graphData = graph;
  $("sample-info").textContent = `at (${fmt(graph.point[0])}, ${fmt(graph.point[1])}), target ${fmtArray(graph.target)}, loss ${fmt(graph.loss)}`;
  if (document.activeElement !== $("sample")) $("sample").value = graph.index;
  const nodes = new Map(graph.nodes.map((n) => [n.key, n]));
  // columns: an op one right of its latest input; its result right of it; leaves just before their first use
  const col = new Map();
  const producer = new Map(graph.ops.map((o) => [o.output, o]));
  for (const op of graph.ops) {
    let c = 0;
    for (const k of op.inputs) if (producer.has(k)) c = Math.max(c, col.get(k) / 2); // a result sits at 2c + 2
    col.set(op.key, c * 2 + 1);
    col.set(op.output, c * 2 + 2);
    op._c = c;
  }
  for (const op of graph.ops) for (const k of op.inputs) {
    if (!producer.has(k)) col.set(k, Math.min(col.has(k) ? col.get(k) : Infinity, col.get(op.key) - 1));
  }
  for (const n of graph.nodes) if (!col.has(n.key)) col.set(n.key, 0);
  const rows = new Map(), place = new Map();
  const order = [...graph.nodes.map((n) => n.key), ...graph.ops.map((o) => o.key)];
  for (const k of order) {
    const c = col.get(k);
    const r = rows.get(c) || 0;
    rows.set(c, r + 1);
    place.set(k, [c, r]);
  }
  const xOf = (c) => 10 + Math.floor((c + 1) / 2) * (BOX_W + GAP_X) + Math.floor(c / 2) * (2 * OP_R + GAP_X);
  const yOf = (r) => 10 + r * (BOX_H + GAP_Y);
  const maxCol = Math.max(...col.values());
  const maxRow = Math.max(...rows.values());
  const svg = svgEl("svg", { width: xOf(maxCol) + BOX_W + 20, height: yOf(maxRow) + 10, id: "graph-svg" });
  const centre = (k) => {
    const [c, r] = place.get(k);
    return nodes.has(k) ? [xOf(c) + BOX_W / 2, yOf(r) + BOX_H / 2] : [xOf(c) + OP_R, yOf(r) + BOX_H / 2];
  };
  for (const op of graph.ops) {
    const [ox, oy] = centre(op.key);
    for (const k of op.inputs) {
      const [c, r] = place.get(k);
      svg.appendChild(svgEl("line", { x1: xOf(c) + BOX_W, y1: yOf(r) + BOX_H / 2, x2: ox - OP_R, y2: oy, class: "edge" }));
    }
    const [c, r] = place.get(op.output);
    svg.appendChild(svgEl("line", { x1: ox + OP_R, y1: oy, x2: xOf(c), y2: yOf(r) + BOX_H / 2, class: "edge" }));
  }
  graph.ops.forEach((op, i) => {
    const [ox, oy] = centre(op.key);
    const g = svgEl("g", { class: "op", "data-key": op.key, "data-order": i, "data-testid": "graph-op" });
    g.appendChild(svgEl("circle", { cx: ox, cy: oy, r: OP_R }));
    const label = op.label.length > 7 ? op.label.slice(0, 6) + "…" : op.label;
    g.appendChild(svgEl("text", { x: ox, y: oy + 4, "text-anchor": "middle" }, label));
    g.appendChild(svgEl("title", {}, op.kind + (op.layer ? ` (${op.layer})` : "")));
    svg.appendChild(g);
  });
  for (const n of graph.nodes) {
    const [c, r] = place.get(n.key);
    const x = xOf(c), y = yOf(r);
    const g = svgEl("g", {
      class: `value ${n.kind}` + (selectedNode === n.label ? " selected" : ""), "data-key": n.key,
      "data-label": n.label, "data-testid": "graph-node",
      "data-value": JSON.stringify(n.value), "data-grad": JSON.stringify(n.grad),
    });
    g.appendChild(svgEl("rect", { x, y, width: BOX_W, height: BOX_H, rx: 6 }));
    const shape = n.shape.length ? ` (${n.shape.join("×")})` : "";
    g.appendChild(svgEl("text", { x: x + 6, y: y + 15, class: "name" }, n.label + shape));
    g.appendChild(svgEl("text", { x: x + 6, y: y + 32, class: "val" }, "value " + fmtArray(n.value, 3)));
    g.appendChild(svgEl("text", { x: x + 6, y: y + 49, class: "grad" }, n.grad ? "grad " + fmtArray(n.grad, 3) : "no grad"));
    g.addEventListener("click", () => { selectedNode = n.label; drawGraph(graphData); });
    svg.appendChild(g);
  }
  const box = $("graph");
  box.innerHTML = "";
  box.appendChild(svg);
  showChain();
}

function showChain() {
  const box = $("chain");
  if (!graphData || selectedNode === null) { box.innerHTML = "<p class='note'>Click a value to see the chain rule there.</p>"; return; }
  const node = graphData.nodes.find((n) => n.label === selectedNode);
  if (!node) { box.innerHTML = ""; return; }
  const f = graphData.nodes.find((n) => n.key === graphData.output).label;
  const steps = graphData.steps.filter((s) => s.input === node.label);
  let html = `<h3>Chain rule at <code>${node.label}</code> = ${fmtArray(node.value, 8)}</h3>`;
  if (node.key === graphData.output) {
    html += `<p>d${f}/d${f} = 1: backprop starts here with the upstream gradient 1.</p>`;
  } else if (!steps.length) {
    html += `<p>No gradient flows to ${node.label} (it does not require grad).</p>`;
  }
  for (const s of steps) {
    const local = s.local ? `${s.formula} = ${fmtArray(s.local, 8)}` : `${s.formula} (a Jacobian: the op's backward applies it)`;
    html += `<div class="step" data-testid="chain-step"><b>d${f}/d${node.label}</b> through <code>${s.op}</code> → ${s.output}:` +
      `<br>upstream d${f}/d${s.output} = <span class="num">${fmtArray(s.upstream, 8)}</span>` +
      `<br>× local d${s.output}/d${node.label} = <span class="num">${local}</span>` +
      `<br>= <span class="num" data-testid="chain-product">${fmtArray(s.product, 8)}</span></div>`;
  }
  if (steps.length > 1) html += `<p>${node.label} feeds ${steps.length} ops: its gradient is the sum of the products.</p>`;
  if (node.grad) html += `<p>Gradient d${f}/d${node.label} = <b data-testid="chain-gradient">${fmtArray(node.grad, 8)}</b></p>`;
  box.innerHTML = html;
}

async function animate() {
  if (!graphData || animating) return;
  animating = true;
  const svg = $("graph-svg");
  svg.classList.add("animating");
  const wait = (ms) => new Promise((r) => setTimeout(r, ms));
  const opEls = [...svg.querySelectorAll("g.op")];
  const valueEl = (key) => svg.querySelector(`g.value[data-key="${key}"]`);
  for (const n of graphData.nodes) if (n.kind !== "op") valueEl(n.key).classList.add("shown-val");
  for (const [i, op] of graphData.ops.entries()) {   // forward, node by node
    opEls[i].classList.add("active");
    await wait(350);
    valueEl(op.output).classList.add("shown-val");
    opEls[i].classList.remove("active");
  }
  valueEl(graphData.output).classList.add("shown-grad");
  for (let i = graphData.ops.length - 1; i >= 0; i--) {   // backward, from the loss back
    const op = graphData.ops[i];
    opEls[i].classList.add("active", "back");
    await wait(350);
    for (const k of op.inputs) valueEl(k).classList.add("shown-grad");
    opEls[i].classList.remove("active", "back");
  }
  await wait(500);
  svg.classList.remove("animating");
  animating = false;
}

// ---- controls -------------------------------------------------------------------------------------
function fillSelect(id, options) {
  const el = $(id);
  for (const o of options) {
    const [value, text] = Array.isArray(o) ? o : [o, String(o)];
    const opt = document.createElement("option");
    opt.value = String(value);
    opt.textContent = text;
    el.appendChild(opt);
  }
}
function numberOrText(key, v) {
  return ["lr", "reg_rate", "classes", "noise", "train_ratio", "batch_size", "seed"].includes(key) ? Number(v) : v;
}
function changeSetting(key, value) {
  command("/config", (st) => {
    const change = { [key]: numberOrText(key, value) };
    if (key === "problem") {
      change.dataset = value === "regression" ? REGRESSION[0] : CLASSIFICATION[0];
      change.loss = value === "regression" ? "mse" : "cross_entropy";
      change.classes = 2;
    }
    if (key === "dataset" && value !== "csv") {
      const regression = REGRESSION.includes(value);
      change.problem = regression ? "regression" : "classification";
      if (regression && !["mse", "l1"].includes(st.config.loss)) change.loss = "mse";
      if (!regression && st.config.problem === "regression") change.loss = "cross_entropy";
      if (!MULTICLASS.includes(value)) change.classes = 2;
    }
    if (key === "classes" && Number(value) > 2 && st.config.loss === "bce") change.loss = "cross_entropy";
    return change;
  });
}
function toggleFeature(f) {
  command("/config", (st) => {
    const on = new Set(st.config.features);
    if (on.has(f)) on.delete(f); else on.add(f);
    if (!on.size) { showError("at least one input feature is needed"); return null; }
    return { features: FEATURES.map((x) => x[0]).filter((x) => on.has(x)) };
  });
}
function changeNeurons(layer, delta) {
  command("/config", (st) => {
    const layers = st.config.layers.slice();
    const n = layers[layer] + delta;
    if (n < 1 || n > 8) { showError("a hidden layer has 1 to 8 neurons"); return null; }
    layers[layer] = n;
    return { layers };
  });
}

// Classroom mode: each control gets a tick box; unticked ones are hidden (and listed in the link).
function applyHidden() {
  const editing = document.body.classList.contains("classroom-edit");
  for (const el of document.querySelectorAll(".ctl")) {
    const name = el.dataset.ctl;
    el.classList.toggle("hidden-ctl", hidden.has(name) && !editing);
    el.classList.toggle("dimmed-ctl", hidden.has(name) && editing);
    let tick = el.querySelector(":scope > .classroom-tick");
    if (editing && !tick) {
      tick = document.createElement("input");
      tick.type = "checkbox";
      tick.className = "classroom-tick";
      tick.title = "show this control";
      tick.addEventListener("click", (e) => e.stopPropagation());
      tick.onchange = () => { if (tick.checked) hidden.delete(name); else hidden.add(name); applyHidden(); if (state) writeUrl(state.config); };
      el.prepend(tick);
    }
    if (tick) { tick.checked = !hidden.has(name); if (!editing) tick.remove(); }
  }
}

function wire() {
  fillSelect("lr", OPTIONS.lr);
  for (const key of ["activation", "loss", "optimizer", "regularization", "reg_rate", "problem", "dataset", "classes"]) fillSelect(key, OPTIONS[key]);
  for (const key of ["lr", "activation", "loss", "optimizer", "regularization", "reg_rate", "problem", "dataset", "classes", "train_ratio", "noise", "batch_size", "seed"]) {
    $(key).addEventListener("change", (e) => changeSetting(key, e.target.value));
  }
  for (const key of ["train_ratio", "noise", "batch_size"]) {
    $(key).addEventListener("input", (e) => { $(key + "-text").textContent = e.target.value; });
  }
  $("play").onclick = () => {
    const run = () => send(state && state.playing ? "/pause" : "/play", {});
    queue = queue.then(run, run);
  };
  $("step").onclick = () => command("/step");
  $("reset").onclick = () => command("/reset");
  $("rewind").onclick = () => command("/rewind");
  $("add-layer").onclick = () => command("/config", (st) => {
    const layers = st.config.layers.slice();
    if (layers.length >= 6) { showError("at most 6 hidden layers"); return null; }
    layers.push(layers.length ? layers[layers.length - 1] : 4);
    return { layers };
  });
  $("remove-layer").onclick = () => command("/config", (st) => {
    if (!st.config.layers.length) { showError("there is no hidden layer to remove"); return null; }
    return { layers: st.config.layers.slice(0, -1) };
  });
  $("upload-csv").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    if (file.size > 1000000) { showError(`${file.name} is ${file.size.toLocaleString()} bytes; the limit is 1 MB`); e.target.value = ""; return; }
    const data = await file.text();
    await command("/csv", undefined, { data, name: file.name });
    e.target.value = "";
  });
  $("gradcheck").onclick = async () => {
    $("gradcheck-result").textContent = "checking…";
    try {
      const r = await api("/gradcheck", {});
      $("gradcheck-result").innerHTML = (r.ok ? "<b class='ok'>All gradients match</b>" : "<b class='bad'>Some gradients differ</b>") +
        " (backprop against central differences, float64):<br>" +
        r.layers.map((l) => `${l.name}: ${l.ok ? "ok" : "FAILED"}, max relative error ${fmt(l.max_rel_error)}`).join("<br>");
    } catch (err) { $("gradcheck-result").textContent = ""; }
  };
  $("show-test").onchange = () => state && drawOutput(state);
  $("output").addEventListener("click", (e) => {
    if (!points || !state) return;
    const rect = e.target.getBoundingClientRect();
    const [x0, x1, y0, y1] = state.heatmaps.bounds;
    const x = x0 + ((e.clientX - rect.left) / rect.width) * (x1 - x0);
    const y = y1 - ((e.clientY - rect.top) / rect.height) * (y1 - y0);
    let best = 0, dist = Infinity;
    points.train.forEach((p, i) => { const d = (p[0] - x) ** 2 + (p[1] - y) ** 2; if (d < dist) { dist = d; best = i; } });
    selectSample(best);
  });
  $("sample").addEventListener("change", (e) => selectSample(Number(e.target.value)));
  $("animate").onclick = animate;
  $("classroom").onclick = () => { document.body.classList.add("classroom-edit"); $("classroom-bar").hidden = false; applyHidden(); };
  $("classroom-done").onclick = () => { document.body.classList.remove("classroom-edit"); $("classroom-bar").hidden = true; applyHidden(); };
}
async function selectSample(index) {
  try {
    const graph = await api("/sample", { index });
    if (state) state.sample = index;
    drawGraph(graph);
    if (state) drawOutput(state);
  } catch (e) { /* shown */ }
}

async function start() {
  wire();
  let settings = settingsFromUrl();
  let snap;
  try {
    snap = await api("/api/session", settings);
  } catch (e) {
    snap = await api("/api/session", {}).catch(() => null); // a bad link: start from the defaults
  }
  if (!snap) return;
  session = snap.id;
  document.body.dataset.session = session;
  applyHidden();
  render(snap);
  connect();
  document.body.dataset.ready = "1";
}
start();
