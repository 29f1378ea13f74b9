// Reactive trajectory player (anywidget ES module): 3D ball-and-stick view whose bonds are
// recomputed per frame (sent from Python), play/pause/scrub/speed controls, and an energy and
// distance trace with a frame cursor and bond-event markers. Plain canvas 2D with depth sorting,
// so it needs no WebGL, no three.js and nothing from the network.

const EVENT_COLOR = { formed: "#2ca02c", broken: "#d62728" };
const PALETTE = ["#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"];
// inline SVG icons: media-control glyphs are missing from many fonts
const ICONS = {
  first: '<rect x="1" y="3" width="2" height="10"/><path d="M9 3L3 8L9 13ZM15 3L9 8L15 13Z"/>',
  prev: '<rect x="3" y="3" width="2" height="10"/><path d="M13 3L6 8L13 13Z"/>',
  play: '<path d="M4 2L14 8L4 14Z"/>',
  pause: '<rect x="3" y="3" width="3.5" height="10"/><rect x="9.5" y="3" width="3.5" height="10"/>',
  next: '<path d="M3 3L10 8L3 13Z"/><rect x="11" y="3" width="2" height="10"/>',
  last: '<path d="M1 3L7 8L1 13ZM7 3L13 8L7 13Z"/><rect x="13" y="3" width="2" height="10"/>',
};
const icon = (name) => `<svg viewBox="0 0 16 16" width="14" height="14" fill="currentColor">${ICONS[name]}</svg>`;

function floats(value) {
  // Bytes traits arrive as DataView (live kernel) or ArrayBuffer/typed array (saved state).
  if (!value) return new Float32Array(0);
  if (value instanceof DataView) return new Float32Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength));
  if (value instanceof ArrayBuffer) return new Float32Array(value.slice(0));
  if (ArrayBuffer.isView(value)) return new Float32Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength));
  return new Float32Array(value);
}

function heat(f) {
  // 0 → pale grey-blue, 1 → dark red: per-atom uncertainty colours
  const stops = [[0, [198, 219, 239]], [0.35, [253, 208, 162]], [0.7, [241, 105, 19]], [1, [165, 15, 21]]];
  f = Math.min(1, Math.max(0, Number.isFinite(f) ? f : 0));
  let k = 1; while (k < stops.length - 1 && f > stops[k][0]) k++;
  const [f0, c0] = stops[k - 1], [f1, c1] = stops[k], u = (f - f0) / Math.max(1e-9, f1 - f0);
  return "#" + c0.map((c, i) => Math.round(c + u * (c1[i] - c)).toString(16).padStart(2, "0")).join("");
}

function h(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function shade(hex, f) {
  const n = parseInt(hex.slice(1), 16);
  const c = [(n >> 16) & 255, (n >> 8) & 255, n & 255].map((v) => Math.round(f >= 1 ? v + (255 - v) * (f - 1) : v * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

function niceTicks(lo, hi, count) {
  if (!(hi > lo)) { hi = lo + 1; }
  const raw = (hi - lo) / count, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) out.push(+v.toFixed(10));
  return out;
}

function rotation(ax, ay) {
  // rotation about the screen y axis by ay, then about x by ax
  const cy = Math.cos(ay), sy = Math.sin(ay), cx = Math.cos(ax), sx = Math.sin(ax);
  return [[cy, 0, sy], [sx * sy, cx, -sx * cy], [-cx * sy, sx, cx * cy]];
}

function matmul(a, b) {
  return a.map((row) => [0, 1, 2].map((j) => row[0] * b[0][j] + row[1] * b[1][j] + row[2] * b[2][j]));
}

function inverse3(m) {
  const [a, b, c] = m, det = a[0] * (b[1] * c[2] - b[2] * c[1]) - a[1] * (b[0] * c[2] - b[2] * c[0]) + a[2] * (b[0] * c[1] - b[1] * c[0]);
  if (Math.abs(det) < 1e-9) return null;
  const inv = [
    [b[1] * c[2] - b[2] * c[1], a[2] * c[1] - a[1] * c[2], a[1] * b[2] - a[2] * b[1]],
    [b[2] * c[0] - b[0] * c[2], a[0] * c[2] - a[2] * c[0], a[2] * b[0] - a[0] * b[2]],
    [b[0] * c[1] - b[1] * c[0], a[1] * c[0] - a[0] * c[1], a[0] * b[1] - a[1] * b[0]],
  ];
  return inv.map((r) => r.map((v) => v / det));
}

class Scene {
  // Orthographic ball-and-stick renderer; primitives are painted back to front.
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.rot = rotation(-0.35, 0.5);
    this.zoom = 1;
  }

  fit(pos, n, frames) {
    const c = [0, 0, 0];
    for (let k = 0; k < pos.length; k += 3) { c[0] += pos[k]; c[1] += pos[k + 1]; c[2] += pos[k + 2]; }
    const m = Math.max(1, pos.length / 3);
    this.center = c.map((v) => v / m);
    let r = 1;
    for (let k = 0; k < pos.length; k += 3) {
      const d = Math.hypot(pos[k] - this.center[0], pos[k + 1] - this.center[1], pos[k + 2] - this.center[2]);
      if (d > r) r = d;
    }
    this.extent = r + 0.7; // room for the largest sphere
  }

  project(p, w, hgt) {
    const s = (0.5 * Math.min(w, hgt) / this.extent) * this.zoom, R = this.rot;
    const x = p[0] - this.center[0], y = p[1] - this.center[1], z = p[2] - this.center[2];
    return [w / 2 + s * (R[0][0] * x + R[0][1] * y + R[0][2] * z), hgt / 2 - s * (R[1][0] * x + R[1][1] * y + R[1][2] * z), R[2][0] * x + R[2][1] * y + R[2][2] * z, s];
  }

  draw(st) {
    const { canvas, ctx } = this, dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || 400, hgt = canvas.clientHeight || 360;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(hgt * dpr)) {
      canvas.width = Math.round(w * dpr); canvas.height = Math.round(hgt * dpr);
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#ffffff"; ctx.fillRect(0, 0, w, hgt);
    const n = st.n, off = st.frame * n * 3, P = [];
    for (let i = 0; i < n; i++) P.push(this.project([st.pos[off + 3 * i], st.pos[off + 3 * i + 1], st.pos[off + 3 * i + 2]], w, hgt));
    const items = [], zs = P.map((p) => p[2]), zmin = Math.min(...zs), zmax = Math.max(...zs), span = Math.max(zmax - zmin, 1e-6);
    const fog = (z) => 0.65 + 0.35 * (z - zmin) / span; // far atoms are dimmer: a depth cue
    for (let i = 0; i < n; i++) items.push({ z: P[i][2], kind: "atom", i });
    const bonds = st.bonds[st.frame] || [];
    for (let k = 0; k < bonds.length; k += 2) {
      const i = bonds[k], j = bonds[k + 1], tag = st.fresh.get(i * n + j) || null;
      const ends = st.mic(i, j, P, w, hgt, this);
      items.push({ z: P[i][2] - 1e-3, kind: "half", i, from: P[i], to: ends.mid_i, tag });
      items.push({ z: P[j][2] - 1e-3, kind: "half", i: j, from: P[j], to: ends.mid_j, tag });
    }
    for (const [key, tag] of st.fresh) if (tag === "broken") {
      const i = Math.floor(key / n), j = key % n;
      items.push({ z: 1e9, kind: "broken", from: P[i], to: P[j] }); // on top: it marks an event
    }
    items.sort((a, b) => a.z - b.z);
    const bondR = 0.12;
    for (const it of items) {
      if (it.kind === "atom") {
        const p = P[it.i], r = Math.max(1.5, st.radii[it.i] * p[3]), col = st.atomColor(it.i), f = fog(p[2]);
        const g = ctx.createRadialGradient(p[0] - 0.35 * r, p[1] - 0.35 * r, 0.1 * r, p[0], p[1], r);
        g.addColorStop(0, shade(col, 1 + 0.6 * f)); g.addColorStop(0.45, shade(col, f)); g.addColorStop(1, shade(col, 0.45 * f));
        ctx.beginPath(); ctx.arc(p[0], p[1], r, 0, 2 * Math.PI); ctx.fillStyle = g; ctx.fill();
        if (st.marked.has(it.i)) { ctx.lineWidth = 2.5; ctx.strokeStyle = "#f5b800"; ctx.stroke(); }
      } else if (it.kind === "half") {
        const lw = Math.max(1.5, 2 * bondR * it.from[3]), col = st.atomColor(it.i), f = fog(it.from[2]);
        if (it.tag === "formed") this.segment(it.from, it.to, lw + 8, "rgba(44,160,44,0.45)");
        this.segment(it.from, it.to, lw + 1.5, shade(col, 0.35 * f));
        this.segment(it.from, it.to, lw, shade(col, f));
      } else {
        ctx.setLineDash([6, 5]); this.segment(it.from, it.to, 2.5, EVENT_COLOR.broken); ctx.setLineDash([]);
      }
    }
    if (st.cellEdges) for (const [a, b] of st.cellEdges) this.segment(this.project(a, w, hgt), this.project(b, w, hgt), 1, "rgba(90,90,90,0.6)");
  }

  segment(a, b, width, color) {
    const ctx = this.ctx;
    ctx.beginPath(); ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]);
    ctx.lineWidth = width; ctx.lineCap = "round"; ctx.strokeStyle = color; ctx.stroke();
  }
}

class Trace {
  // Energy (top) and distance (bottom) panels sharing the time axis, with cursor and event marks.
  constructor(canvas) { this.canvas = canvas; this.ctx = canvas.getContext("2d"); }

  panels(st) {
    const out = [];
    if (st.energies.length) out.push({ title: st.energyLabel, series: [{ name: "E", y: st.energies, color: "#222" }] });
    if (st.frameValues.length) out.push({ title: st.valueLabel, series: [{ name: "max over atoms", y: st.frameValues, color: "#a50f15" }] });
    const names = Object.keys(st.distances);
    if (names.length) out.push({ title: "distance (Å)", series: names.map((k, c) => ({ name: k, y: st.distances[k], color: PALETTE[c % PALETTE.length] })) });
    return out;
  }

  layout() {
    const w = this.canvas.clientWidth || 360, hgt = this.canvas.clientHeight || 360;
    return { w, hgt, left: 58, right: 12, top: 10, bottom: 30 };
  }

  xOf(st, L, t) {
    const t0 = st.times[0], t1 = st.times[st.times.length - 1];
    return L.left + (L.w - L.left - L.right) * (t1 > t0 ? (t - t0) / (t1 - t0) : 0.5);
  }

  frameAt(st, px) {
    const L = this.layout(), t0 = st.times[0], t1 = st.times[st.times.length - 1];
    const t = t0 + (t1 - t0) * (px - L.left) / Math.max(1, L.w - L.left - L.right);
    let best = 0;
    for (let k = 1; k < st.times.length; k++) if (Math.abs(st.times[k] - t) < Math.abs(st.times[best] - t)) best = k;
    return best;
  }

  draw(st) {
    const { canvas, ctx } = this, dpr = window.devicePixelRatio || 1, L = this.layout();
    if (canvas.width !== Math.round(L.w * dpr) || canvas.height !== Math.round(L.hgt * dpr)) {
      canvas.width = Math.round(L.w * dpr); canvas.height = Math.round(L.hgt * dpr);
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, L.w, L.hgt);
    ctx.font = "11px sans-serif";
    const panels = this.panels(st), gap = 18, x0 = L.left, x1 = L.w - L.right;
    if (!panels.length) { ctx.fillStyle = "#888"; ctx.fillText("no energies or distances given", x0, 24); }
    const ph = (L.hgt - L.top - L.bottom - gap * Math.max(0, panels.length - 1)) / Math.max(1, panels.length);
    panels.forEach((panel, k) => {
      const y0 = L.top + k * (ph + gap), y1 = y0 + ph;
      let lo = Infinity, hi = -Infinity;
      for (const s of panel.series) for (const v of s.y) if (Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
      if (!(hi > lo)) { lo -= 0.5; hi += 0.5; }
      const pad = 0.08 * (hi - lo); lo -= pad; hi += pad;
      const yOf = (v) => y1 - (y1 - y0) * (v - lo) / (hi - lo);
      ctx.strokeStyle = "#ddd"; ctx.lineWidth = 1; ctx.fillStyle = "#555"; ctx.textAlign = "right";
      for (const v of niceTicks(lo, hi, 4)) {
        const y = yOf(v); ctx.beginPath(); ctx.moveTo(x0, y); ctx.lineTo(x1, y); ctx.stroke();
        ctx.fillText(String(+v.toPrecision(6)), x0 - 4, y + 4);
      }
      ctx.strokeStyle = "#999"; ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
      for (const e of st.events) {
        const x = this.xOf(st, L, e.time);
        ctx.strokeStyle = EVENT_COLOR[e.kind]; ctx.setLineDash([3, 3]); ctx.beginPath(); ctx.moveTo(x, y0); ctx.lineTo(x, y1); ctx.stroke(); ctx.setLineDash([]);
        ctx.fillStyle = EVENT_COLOR[e.kind]; ctx.beginPath();
        if (e.kind === "formed") { ctx.moveTo(x - 4, y0 + 7); ctx.lineTo(x + 4, y0 + 7); ctx.lineTo(x, y0); }
        else { ctx.moveTo(x - 4, y0); ctx.lineTo(x + 4, y0); ctx.lineTo(x, y0 + 7); }
        ctx.fill();
      }
      panel.series.forEach((s, c) => {
        ctx.strokeStyle = s.color; ctx.lineWidth = 1.6; ctx.beginPath();
        s.y.forEach((v, t) => { const x = this.xOf(st, L, st.times[t]); t ? ctx.lineTo(x, yOf(v)) : ctx.moveTo(x, yOf(v)); });
        ctx.stroke();
        const v = s.y[st.frame];
        if (Number.isFinite(v)) { ctx.fillStyle = s.color; ctx.beginPath(); ctx.arc(this.xOf(st, L, st.times[st.frame]), yOf(v), 3.5, 0, 2 * Math.PI); ctx.fill(); }
        {  // every curve is named, with its value at the cursor
          ctx.textAlign = "left";
          const text = `${s.name} ${Number.isFinite(v) ? v.toFixed(3) : "n/a"}`;
          ctx.fillStyle = "rgba(255,255,255,0.85)"; ctx.fillRect(x0 + 3, y0 + 4 + 14 * c, ctx.measureText(text).width + 6, 14);
          ctx.fillStyle = s.color; ctx.fillText(text, x0 + 6, y0 + 15 + 14 * c);
        }
      });
      ctx.save(); ctx.translate(12, (y0 + y1) / 2); ctx.rotate(-Math.PI / 2); ctx.textAlign = "center"; ctx.fillStyle = "#333";
      ctx.fillText(panel.title, 0, 0); ctx.restore();
    });
    const xc = this.xOf(st, L, st.times[st.frame]);
    ctx.strokeStyle = "#f5b800"; ctx.lineWidth = 2; ctx.beginPath(); ctx.moveTo(xc, L.top); ctx.lineTo(xc, L.hgt - L.bottom); ctx.stroke();
    ctx.fillStyle = "#555"; ctx.textAlign = "center";
    // frames are numbered from 1 everywhere the user reads them (axis, readout, event list)
    const one = st.timeUnit === "frame" ? 1 : 0;
    for (const v of niceTicks(st.times[0] + one, st.times[st.times.length - 1] + one, 5)) ctx.fillText(String(+v.toPrecision(6)), this.xOf(st, L, v - one), L.hgt - L.bottom + 13);
    ctx.fillText(st.timeUnit === "frame" ? "frame" : `time (${st.timeUnit})`, (x0 + x1) / 2, L.hgt - 4);
  }
}

function render({ model, el }) {
  const root = h("div", "llrp");
  const title = h("div", "llrp-title");
  const main = h("div", "llrp-main");
  const view = h("canvas", "llrp-view");
  const side = h("div", "llrp-side");
  const plot = h("canvas", "llrp-plot");
  const eventsBox = h("div", "llrp-events");
  const bar = h("div", "llrp-controls");
  const btn = (name, tip) => { const b = h("button", "llrp-btn"); b.innerHTML = icon(name); b.title = tip; bar.appendChild(b); return b; };
  const first = btn("first", "first frame"), back = btn("prev", "previous frame"), play = btn("play", "play / pause");
  const fwd = btn("next", "next frame"), last = btn("last", "last frame");
  const slider = h("input", "llrp-slider"); slider.type = "range"; slider.min = 0; bar.appendChild(slider);
  const readout = h("span", "llrp-readout"); bar.appendChild(readout);
  const speed = h("select", "llrp-speed"); speed.title = "frames per second";
  for (const v of [2, 5, 10, 20, 40]) { const o = h("option", "", `${v} fps`); o.value = v; speed.appendChild(o); }
  bar.appendChild(speed);
  const colorBy = h("select", "llrp-colorby"); colorBy.title = "colour atoms by element or by the per-atom values (uncertainty)";
  for (const [v, text] of [["element", "colour: element"], ["values", "colour: uncertainty"]]) { const o = h("option", "", text); o.value = v; colorBy.appendChild(o); }
  colorBy.onchange = () => { model.set("color_by", colorBy.value); model.save_changes(); redraw(); };
  bar.appendChild(colorBy);
  side.append(plot, eventsBox); main.append(view, side); root.append(title, main, bar); el.appendChild(root);

  const scene = new Scene(view), trace = new Trace(plot), st = {};
  let timer = null, raf = 0;

  function load() {
    st.n = model.get("n_atoms"); st.nFrames = model.get("n_frames");
    st.pos = floats(model.get("positions")); st.cells = floats(model.get("cells"));
    st.pbc = model.get("pbc"); st.bonds = model.get("bonds"); st.events = model.get("events");
    st.colors = model.get("atom_colors"); st.radii = model.get("atom_radii");
    st.times = model.get("times"); st.timeUnit = model.get("time_unit");
    st.energies = model.get("energies"); st.energyLabel = model.get("energy_label"); st.distances = model.get("distances");
    st.window = model.get("highlight_frames");
    // per-atom values (force disagreement of a committee, eV/Å): colours and a trace under the energy
    st.values = floats(model.get("atom_values")); st.valueLabel = model.get("atom_value_label");
    st.frameValues = [];
    if (st.values.length === st.nFrames * st.n && st.n) {
      for (let t = 0; t < st.nFrames; t++) { let m = 0; for (let i = 0; i < st.n; i++) m = Math.max(m, st.values[t * st.n + i]); st.frameValues.push(m); }
    } else st.values = new Float32Array(0);
    st.vmax = Math.max(1e-9, ...st.frameValues);
    st.atomColor = (i) => (st.values.length && model.get("color_by") === "values") ? heat(st.values[st.frame * st.n + i] / st.vmax) : st.colors[i];
    colorBy.style.display = st.values.length ? "" : "none";
    colorBy.value = model.get("color_by");
    title.textContent = model.get("title");
    view.style.height = plot.style.height = `${model.get("height")}px`;
    slider.max = Math.max(0, st.nFrames - 1);
    scene.fit(st.pos, st.n, st.nFrames);
    eventsBox.replaceChildren();
    if (!st.events.length) eventsBox.appendChild(h("div", "llrp-muted", "no bond events"));
    st.eventRows = st.events.map((e) => {
      const row = h("div", `llrp-event llrp-${e.kind}`, `${e.kind === "formed" ? "▲" : "▼"} frame ${e.frame + 1} · ${e.time.toPrecision(4)} ${st.timeUnit === "frame" ? "" : st.timeUnit} · ${e.label}`);
      row.onclick = () => seek(e.frame); eventsBox.appendChild(row); return row;
    });
  }

  st.mic = (i, j, P, w, hgt, sc) => {
    // bond ends meet at the midpoint of the minimum-image vector, so bonds never span the box
    const off = st.frame * st.n * 3, a = [0, 1, 2].map((c) => st.pos[off + 3 * i + c]), b = [0, 1, 2].map((c) => st.pos[off + 3 * j + c]);
    let d = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
    if (st.pbc.some(Boolean) && st.cells.length >= (st.frame + 1) * 9) {
      const C = [0, 1, 2].map((r) => [0, 1, 2].map((c) => st.cells[st.frame * 9 + 3 * r + c])), inv = inverse3(C);
      if (inv) {
        const f = [0, 1, 2].map((c) => d[0] * inv[0][c] + d[1] * inv[1][c] + d[2] * inv[2][c]).map((v, c) => (st.pbc[c] ? v - Math.round(v) : v));
        d = [0, 1, 2].map((c) => f[0] * C[0][c] + f[1] * C[1][c] + f[2] * C[2][c]);
      }
    }
    const mi = sc.project([a[0] + d[0] / 2, a[1] + d[1] / 2, a[2] + d[2] / 2], w, hgt);
    const mj = sc.project([b[0] - d[0] / 2, b[1] - d[1] / 2, b[2] - d[2] / 2], w, hgt);
    return { mid_i: mi, mid_j: mj };
  };

  function cellEdges() {
    if (!st.pbc.some(Boolean) || st.cells.length < (st.frame + 1) * 9) return null;
    const C = [0, 1, 2].map((r) => [0, 1, 2].map((c) => st.cells[st.frame * 9 + 3 * r + c])), edges = [];
    const pt = (u, v, w) => [0, 1, 2].map((c) => u * C[0][c] + v * C[1][c] + w * C[2][c]);
    for (const [u, v, w] of [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1]])
      for (const [du, dv, dw] of [[1, 0, 0], [0, 1, 0], [0, 0, 1]])
        if (u + du <= 1 && v + dv <= 1 && w + dw <= 1) edges.push([pt(u, v, w), pt(u + du, v + dv, w + dw)]);
    return edges;
  }

  function draw() {
    raf = 0;
    if (!st.nFrames) return;
    st.frame = Math.min(Math.max(0, model.get("frame")), st.nFrames - 1);
    st.fresh = new Map(); st.marked = new Set();
    for (const e of st.events) if (e.frame <= st.frame && st.frame < e.frame + st.window) {
      st.fresh.set(e.i * st.n + e.j, e.kind); st.marked.add(e.i); st.marked.add(e.j);
    }
    st.cellEdges = cellEdges();
    scene.draw(st); trace.draw(st);
    slider.value = st.frame;
    const t = st.times[st.frame], e = st.energies.length ? ` · ${st.energyLabel.replace(" (eV)", "")} ${st.energies[st.frame].toFixed(3)} eV` : "";
    readout.textContent = `frame ${st.frame + 1}/${st.nFrames}${st.timeUnit === "frame" ? "" : ` · ${t.toFixed(1)} ${st.timeUnit}`}${e}`;
    st.eventRows.forEach((row, k) => row.classList.toggle("llrp-now", st.fresh.size > 0 && st.events[k].frame <= st.frame && st.frame < st.events[k].frame + st.window));
    play.innerHTML = icon(model.get("playing") ? "pause" : "play");
  }
  const redraw = () => { if (!raf) raf = requestAnimationFrame(draw); };

  function seek(k) {
    k = Math.min(Math.max(0, Math.round(k)), st.nFrames - 1);
    if (k !== model.get("frame")) { model.set("frame", k); model.save_changes(); }
    redraw();
  }

  function schedule() {
    clearInterval(timer); timer = null;
    if (!model.get("playing")) return;
    timer = setInterval(() => {
      let k = model.get("frame") + 1;
      if (k >= st.nFrames) {
        if (!model.get("loop")) { model.set("playing", false); model.save_changes(); return; }
        k = 0;
      }
      seek(k);
    }, 1000 / Math.max(0.1, model.get("fps")));
  }

  first.onclick = () => seek(0); last.onclick = () => seek(st.nFrames - 1);
  back.onclick = () => seek(model.get("frame") - 1); fwd.onclick = () => seek(model.get("frame") + 1);
  play.onclick = () => {
    const on = !model.get("playing");
    if (on && model.get("frame") >= st.nFrames - 1) model.set("frame", 0);
    model.set("playing", on); model.save_changes();
  };
  slider.oninput = () => seek(+slider.value);
  speed.onchange = () => { model.set("fps", +speed.value); model.save_changes(); };

  let drag = null;
  view.onpointerdown = (ev) => { drag = [ev.clientX, ev.clientY]; view.setPointerCapture(ev.pointerId); };
  view.onpointermove = (ev) => {
    if (!drag) return;
    const dx = ev.clientX - drag[0], dy = ev.clientY - drag[1]; drag = [ev.clientX, ev.clientY];
    scene.rot = matmul(rotation(-dy * 0.01, dx * 0.01), scene.rot); redraw();
  };
  view.onpointerup = () => { drag = null; };
  view.ondblclick = () => { scene.rot = rotation(-0.35, 0.5); scene.zoom = 1; redraw(); };
  view.onwheel = (ev) => { ev.preventDefault(); scene.zoom *= Math.exp(-ev.deltaY * 0.001); redraw(); };
  let scrub = false;
  plot.onpointerdown = (ev) => { scrub = true; plot.setPointerCapture(ev.pointerId); seek(trace.frameAt(st, ev.offsetX)); };
  plot.onpointermove = (ev) => { if (scrub) seek(trace.frameAt(st, ev.offsetX)); };
  plot.onpointerup = () => { scrub = false; };

  const data = ["positions", "cells", "bonds", "events", "energies", "distances", "times", "title", "height", "atom_colors", "atom_radii", "highlight_frames", "atom_values", "atom_value_label", "color_by"];
  const onData = () => { load(); redraw(); };
  const onPlaying = () => { schedule(); redraw(); };
  const onFps = () => { speed.value = String(model.get("fps")); schedule(); };
  data.forEach((k) => model.on(`change:${k}`, onData));
  model.on("change:frame", redraw); model.on("change:playing", onPlaying); model.on("change:fps", onFps);
  const resize = new ResizeObserver(redraw); resize.observe(view); resize.observe(plot);
  load(); onFps(); schedule(); redraw();
  return () => {
    clearInterval(timer); resize.disconnect(); if (raf) cancelAnimationFrame(raf);
    data.forEach((k) => model.off(`change:${k}`, onData));
    model.off("change:frame", redraw); model.off("change:playing", onPlaying); model.off("change:fps", onFps);
  };
}

export default { render };
