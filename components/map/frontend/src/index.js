// Latent Lens map: a Streamlit Components v2 module drawing up to millions of points with
// regl-scatterplot (WebGL). Python (components/map/component.py) sends Arrow tables:
//   coords  (x float32, y float32, row uint32)  only when this page lacks `coords_id`;
//   color   (one column `c`: dictionary codes, float32 values or uint8 palette indices for
//            "rgb", which has no legend) only when it lacks `color_id`;
//   density (one column `m`: uint8 mass shares of a grid) only when it lacks `density_id`;
//   edges   (`s`, `t` uint32 point indices) only when it lacks `edges_id`.
// All are cached here (module scope survives reruns), so a colour change moves one column.
// Layers: `labels` ([x, y, name, n] largest first) are written over the points, thinned by
// zoom; the density is a texture under the points (regl-scatterplot's background image);
// edges are WebGL lines on a canvas under the (then transparent) points canvas.
// State sent back: `have` (cached ids), `selection` (box / lasso geometry in data coordinates),
// `hidden` (legend categories switched off); trigger `click` (row id of a clicked point).
// A selection is drawn through the colours (the points outside it take a faded twin of their
// colour), so showing it redraws each point once: regl-scatterplot's own selection draws the
// selected points three more times, seconds a frame for half a million in software WebGL.
import createRegl from 'regl';
import createScatterplot from 'regl-scatterplot';
import KDBush from 'kdbush';

const CSS = `
.llmap { font: 13px/1.4 "Source Sans Pro", sans-serif; color: var(--st-text-color, #31333f); }
.llmap .bar { display: flex; gap: 6px; align-items: center; flex-wrap: wrap; margin-bottom: 4px; }
.llmap button { font: inherit; padding: 2px 10px; border: 1px solid #ccc; border-radius: 6px;
  background: var(--st-background-color, #fff); color: inherit; cursor: pointer; }
.llmap button[aria-pressed="true"] { background: #ff4b4b; border-color: #ff4b4b; color: #fff; }
.llmap .info { margin-left: auto; opacity: .75; }
.llmap .plot { position: relative; border: 1px solid #e6e6e6; border-radius: 6px; overflow: hidden; }
.llmap .plot canvas { position: absolute; left: 0; top: 0; }
.llmap .plot canvas.overlay, .llmap .plot canvas.edges { pointer-events: none; }
.llmap .plot canvas.sel { cursor: crosshair; touch-action: none; }
.llmap .plot { background: #fff; }
.llmap .tip { position: absolute; pointer-events: none; background: rgba(255,255,255,.95);
  border: 1px solid #bbb; border-radius: 4px; padding: 2px 6px; white-space: pre; display: none; }
.llmap .legend { display: flex; flex-wrap: wrap; gap: 2px 10px; margin-top: 4px; }
.llmap .legend span { cursor: pointer; user-select: none; }
.llmap .legend span.off { opacity: .35; text-decoration: line-through; }
.llmap .legend i { display: inline-block; width: 10px; height: 10px; border-radius: 5px;
  margin-right: 4px; vertical-align: -1px; }
`;

const COORDS = new Map(); // coords_id -> {x, y (normalised), rows, norm, spatialIndex, points}
const COLORS = new Map(); // coords_id + '|' + color_id -> Float32Array of palette indices
const DENSITY = new Map(); // density_id -> Uint8Array of mass shares (rows by increasing y)
const EDGES = new Map(); // edges_id -> {s, t} Uint32Arrays of point indices
const VIEWS = new Map(); // view_key + '|' + projection_id -> camera view (Float32Array)
const INSTANCES = new Map(); // parentElement -> instance
// Selection and hidden categories per map and projection, and the ids last reported to Python:
// kept here rather than sent back in `data`, so a selection changes nothing Python sends (the
// unchanged message is then served from Streamlit's message cache, bundle included).
const UI = new Map(); // view_key + '|' + projection_id -> {selection, hidden}
const REPORTED = new Map(); // view_key -> {coords, color}
// The page's hover columns of a row, asked for (trigger `hover`) once the pointer rests on it.
const DETAILS = new Map(); // view_key|hover_key|row -> text
const HOVER_DELAY = 250; // ms
const KEEP = 2; // cached projections (each ~8 bytes/point here plus the renderer's copy)

function remember(map, key, value, keep) {
  map.delete(key);
  map.set(key, value);
  while (map.size > keep) map.delete(map.keys().next().value);
  return value;
}

// One column of an apache-arrow Table (as Streamlit hands it over) as one typed array:
// dictionary columns give their codes, others their values.
function columnArray(table, name) {
  const vec = table.getChild(name);
  const parts = vec.data.map((d) => d.values.subarray(d.offset, d.offset + d.length));
  if (parts.length === 1) return parts[0];
  const out = new parts[0].constructor(vec.length);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

// The data's larger extent spans 2 / MARGIN of the normalised square [-1, 1]^2: the room
// around it holds the density layer's tails (regl-scatterplot's background image covers just
// that square).
const MARGIN = 1.3;

// The home view: the data's bounding box plus 4 %, whatever the canvas's shape.
function zoomHome(sp, coords) {
  const [w, h] = coords.extent.map((v) => Math.max(v, 0.05) * 1.04);
  sp.zoomToArea({ x: -w / 2, y: -h / 2, width: w, height: h });
}

function loadCoords(d) {
  const x = columnArray(d.coords, 'x');
  const y = columnArray(d.coords, 'y');
  const rows = columnArray(d.coords, 'row');
  const [x0, x1, y0, y1] = d.bounds;
  const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
  const half = (Math.max(x1 - x0, y1 - y0) / 2) * MARGIN || 1;
  const nx = new Float32Array(x.length), ny = new Float32Array(y.length);
  for (let i = 0; i < x.length; i++) { nx[i] = (x[i] - cx) / half; ny[i] = (y[i] - cy) / half; }
  return { x: nx, y: ny, rows, norm: { cx, cy, half }, extent: [(x1 - x0) / half, (y1 - y0) / half],
    spatialIndex: null, points: null };
}

function loadColor(d, n) {
  const c = columnArray(d.color, 'c');
  const out = new Float32Array(n);
  if (d.color_kind === 'category' || d.color_kind === 'rgb') { // palette indices
    for (let i = 0; i < n; i++) out[i] = c[i];
  } else {
    const bins = d.palette.length - 1; // last entry: missing values
    const lo = d.vmin, span = d.vmax - d.vmin || 1;
    for (let i = 0; i < n; i++) {
      const v = c[i];
      out[i] = Number.isFinite(v) ? Math.min(bins - 1, Math.max(0, Math.floor(((v - lo) / span) * bins))) : bins;
    }
  }
  return out;
}

// Row id -> point index (rows are sorted ascending).
function indexOfRow(rows, row) {
  let lo = 0, hi = rows.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (rows[mid] === row) return mid;
    if (rows[mid] < row) lo = mid + 1; else hi = mid - 1;
  }
  return -1;
}

// Size and opacity that keep dense regions readable: big opaque dots for a few hundred points,
// one- to two-pixel translucent ones for millions.
export function pointStyle(n) {
  const l = Math.log10(Math.max(n, 1));
  const size = Math.max(1, Math.min(8, 12 - 2 * l));
  const opacity = Math.max(0.25, Math.min(0.9, 1.45 - 0.2 * l));
  return { size, opacity };
}

function createInstance(root) {
  const style = document.createElement('style');
  style.textContent = CSS;
  const wrap = document.createElement('div');
  wrap.className = 'llmap';
  wrap.innerHTML = `<div class="bar">
      <button data-mode="box" title="Drag to select a rectangle">Box</button>
      <button data-mode="lasso" title="Drag to draw a lasso">Lasso</button>
      <button data-mode="pan" title="Drag to pan (the wheel zooms in every mode)">Pan</button>
      <button data-act="reset" title="Show every point">Reset view</button>
      <button data-act="clear">Clear selection</button>
      <span class="info"></span></div>
    <div class="plot" data-testid="map-plot"><canvas class="edges"></canvas><canvas class="points"></canvas><canvas class="overlay"></canvas><canvas class="sel"></canvas>
      <div class="tip" data-testid="map-tip"></div></div>
    <div class="legend" data-testid="map-legend"></div>`;
  root.appendChild(style);
  root.appendChild(wrap);
  const inst = {
    root, wrap, style, sp: null, data: null, coords: null, colorKey: null, mode: 'box',
    selection: null, hidden: new Set(), width: 0, height: 0, highlight: [], context: [], hovered: -1,
    destroyTimer: null, drawn: null, readyCoords: null,
  };
  const plot = wrap.querySelector('.plot');
  inst.plot = plot;
  inst.canvas = wrap.querySelector('canvas.points');
  inst.overlay = wrap.querySelector('canvas.overlay');
  inst.edgesCanvas = wrap.querySelector('canvas.edges');
  inst.sel = wrap.querySelector('canvas.sel');
  plot.llmap = inst; // tests read the renderer's own screen positions through this
  listenForPointer(inst);
  inst.tip = wrap.querySelector('.tip');
  inst.info = wrap.querySelector('.info');
  inst.legend = wrap.querySelector('.legend');
  wrap.querySelectorAll('[data-mode]').forEach((b) => {
    b.onclick = () => setMode(inst, b.dataset.mode);
  });
  wrap.querySelector('[data-act="reset"]').onclick = () => inst.sp && zoomHome(inst.sp, inst.coords);
  wrap.querySelector('[data-act="clear"]').onclick = () => clearSelection(inst);
  // a double click, or Escape while the pointer is over the map, clears the selection too
  plot.addEventListener('dblclick', () => clearSelection(inst));
  inst.onKey = (e) => { if (e.key === 'Escape' && inst.mouse) clearSelection(inst); };
  window.addEventListener('keyup', inst.onKey);
  plot.addEventListener('mousemove', (e) => {
    const r = plot.getBoundingClientRect();
    inst.mouse = [e.clientX - r.left, e.clientY - r.top];
    if (inst.tip.style.display === 'block') placeTip(inst);
  });
  plot.addEventListener('mouseleave', () => { inst.tip.style.display = 'none'; inst.mouse = null; });
  return inst;
}

function setMode(inst, mode) {
  inst.mode = mode;
  inst.wrap.querySelectorAll('[data-mode]').forEach((b) => {
    b.setAttribute('aria-pressed', String(b.dataset.mode === mode));
  });
  inst.sel.style.cursor = mode === 'pan' ? 'grab' : 'crosshair';
}

// Screen pixels (CSS, relative to the plot) -> the renderer's GL coordinates: the inverse of
// regl-scatterplot's projection * camera view * model (each a 2-D scale and translation).
// The renderer's camera as one affine map from its coordinates (gx, gy) to clip space
// (nx, ny) = (a gx + b gy + e, c gx + d gy + f): projection (the canvas aspect) · camera view
// · model (the data aspect), as regl-scatterplot draws its points. screenTransform and
// screenToGl both read it, one forward and one inverted.
function glToClip(inst) {
  const v = inst.sp.get('cameraView');
  const ar = inst.width / inst.height, dar = inst.sp.get('aspectRatio');
  return { a: (v[0] * dar) / ar, b: v[4] / ar, e: v[12] / ar, c: v[1] * dar, d: v[5], f: v[13] };
}

function screenToGl(inst, [sx, sy]) {
  const { a, b, c, d, e, f } = glToClip(inst);
  const nx = (2 * sx) / inst.width - 1, ny = 1 - (2 * sy) / inst.height;
  const det = a * d - b * c || 1e-12;
  const rx = nx - e, ry = ny - f;
  return [(d * rx - b * ry) / det, (a * ry - c * rx) / det];
}

function forward(inst, type, e, extra) {
  const Ctor = type === 'wheel' ? WheelEvent : MouseEvent;
  inst.canvas.dispatchEvent(new Ctor(type, {
    bubbles: true, cancelable: true, clientX: e.clientX, clientY: e.clientY, screenX: e.screenX,
    screenY: e.screenY, shiftKey: e.shiftKey, altKey: e.altKey, ctrlKey: e.ctrlKey,
    metaKey: e.metaKey, button: 0, buttons: 0, ...extra,
  }));
}

// Pointer input lands on a 2-D overlay above the points. Box and lasso paint one rectangle or
// path there and select on release; hover and click find the nearest point in the renderer's
// spatial index and ring it there. None of this redraws the points (regl-scatterplot redraws
// every point for its own lasso and for each hover: a second or more per frame for a million
// points in software WebGL). Only pan (a drag in pan mode) and zoom (the wheel) reach the
// renderer, whose camera then follows the mouse.
function listenForPointer(inst) {
  const cv = inst.sel;
  const pos = (e) => { const r = cv.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
  let down = null; // where the button went down
  let path = null; // the box's corners or the lasso's vertices, while dragging one
  const paint = () => {
    const g = cv.getContext('2d');
    g.clearRect(0, 0, cv.width, cv.height);
    if (!path || path.length < 2) return;
    g.lineWidth = 1.5;
    g.strokeStyle = '#ff4b4b';
    g.fillStyle = 'rgba(255,75,75,0.08)';
    g.beginPath();
    if (inst.mode === 'box') {
      const [x0, y0] = path[0], [x1, y1] = path[path.length - 1];
      g.rect(x0, y0, x1 - x0, y1 - y0);
    } else {
      path.forEach(([x, y], k) => (k ? g.lineTo(x, y) : g.moveTo(x, y)));
      g.closePath();
    }
    g.fill();
    g.stroke();
  };
  cv.addEventListener('pointerdown', (e) => {
    if (e.button !== 0 || !inst.sp || !inst.coords) return;
    down = pos(e);
    cv.setPointerCapture(e.pointerId);
    setHover(inst, -1);
    if (inst.mode === 'pan') forward(inst, 'mousedown', e, { buttons: 1 }); // the camera pans
    else path = [down];
  });
  cv.addEventListener('pointermove', (e) => {
    const p = pos(e);
    if (path) {
      const q = path[path.length - 1];
      if (inst.mode === 'box') path[1] = p;
      else if (Math.hypot(p[0] - q[0], p[1] - q[1]) >= 3) path.push(p);
      paint();
    } else if (!down) {
      hoverLater(inst, p);
    }
  });
  cv.addEventListener('pointerup', (e) => {
    if (!down) return;
    const start = down, done = path, p = pos(e);
    down = null;
    path = null;
    paint();
    const pts = done || [start, p];
    const xs = pts.map((q) => q[0]), ys = pts.map((q) => q[1]);
    if (Math.max(...xs) - Math.min(...xs) < 4 && Math.max(...ys) - Math.min(...ys) < 4) {
      const i = nearestPoint(inst, p); // a click picks the point under the mouse
      if (i >= 0) inst.setTriggerValue('click', inst.coords.rows[i]);
      return;
    }
    if (!done) return; // a pan
    const corners = inst.mode === 'box'
      ? [done[0], [done[0][0], done[done.length - 1][1]], done[done.length - 1], [done[done.length - 1][0], done[0][1]]]
      : done;
    if (corners.length < 3) return;
    inst.selection = geometry(inst, corners.map((q) => screenToGl(inst, q)));
    sendState(inst, {});
    redrawLater(inst);
  });
  cv.addEventListener('pointercancel', () => { down = null; path = null; paint(); });
  cv.addEventListener('pointerleave', () => { if (!down) setHover(inst, -1); });
  cv.addEventListener('wheel', (e) => {
    e.preventDefault();
    forward(inst, 'wheel', e, { deltaX: e.deltaX, deltaY: e.deltaY, deltaMode: e.deltaMode });
  }, { passive: false });
}

const PICK_RADIUS = 6; // CSS pixels around the mouse in which hover and click find a point

// The drawn point nearest the mouse (canvas pixels) within PICK_RADIUS, or -1: a query of the
// renderer's own spatial index (kdbush over the points' coordinates), as its raycast does.
function nearestPoint(inst, [sx, sy]) {
  const coords = inst.coords;
  if (!coords || !coords.spatialIndex || !inst.width) return -1;
  if (!coords.kd) coords.kd = KDBush.from(coords.spatialIndex);
  const [gx, gy] = screenToGl(inst, [sx, sy]);
  const [hx, hy] = screenToGl(inst, [sx + PICK_RADIUS, sy]);
  const r = Math.hypot(hx - gx, hy - gy);
  const colors = COLORS.get(inst.colorKey);
  const hidden = inst.hiddenCodes;
  let best = -1, bestD = r;
  for (const i of coords.kd.within(gx, gy, r)) {
    if (hidden && colors && hidden[colors[i]]) continue;
    const dd = Math.hypot(coords.x[i] - gx, coords.y[i] - gy);
    if (dd <= bestD) { best = i; bestD = dd; }
  }
  return best;
}

// Hover follows the mouse at most once a frame.
function hoverLater(inst, p) {
  inst.hoverAt = p;
  if (inst.hoverFrame) return;
  inst.hoverFrame = requestAnimationFrame(() => {
    inst.hoverFrame = 0;
    setHover(inst, nearestPoint(inst, inst.hoverAt));
  });
}

// Hover on point i (-1: none): a ring on the overlay, the row id and colour value at once, and
// the page's hover columns of that row once the pointer has rested on it.
function setHover(inst, i) {
  if (i === inst.hovered) return;
  inst.hovered = i;
  clearTimeout(inst.hoverTimer);
  drawOverlay(inst);
  if (i < 0) {
    inst.tipRow = null;
    inst.tip.style.display = 'none';
    return;
  }
  const d = inst.data;
  const row = inst.coords.rows[i];
  let label = '';
  const c = COLORS.get(inst.colorKey);
  if (c && d.color_kind === 'category') label = ` · ${d.color_label}: ${d.categories[c[i]]}`;
  else if (c && d.color_kind === 'value') {
    const v = inst.colorValues ? inst.colorValues[i] : NaN;
    label = ` · ${d.color_label}: ${Number.isFinite(v) ? v.toPrecision(4) : 'missing'}`;
  }
  inst.tipHead = `row ${row}${label}`;
  inst.tipRow = row;
  showTip(inst);
  if (d.hover_key && !DETAILS.has(detailKey(d, row))) {
    inst.hoverTimer = setTimeout(() => {
      if (inst.tipRow === row) inst.setTriggerValue('hover', row);
    }, HOVER_DELAY);
  }
}

function detailKey(d, row) {
  return `${d.view_key}|${d.hover_key}|${row}`;
}

// Row id and colour value at once; the hover columns when the page has sent them.
function showTip(inst) {
  const d = inst.data;
  const more = d.hover_key ? DETAILS.get(detailKey(d, inst.tipRow)) : '';
  inst.tip.textContent = inst.tipHead + (more === undefined ? ' …' : more ? `\n${more}` : '');
  inst.tip.style.display = 'block';
  placeTip(inst);
}

function placeTip(inst) {
  const [mx, my] = inst.mouse || [0, 0];
  inst.tip.style.left = `${Math.max(0, Math.min(mx + 12, inst.width - inst.tip.offsetWidth - 4))}px`;
  inst.tip.style.top = `${Math.max(my - 28, 0)}px`;
}

function toData(norm, [gx, gy]) {
  return [norm.cx + gx * norm.half, norm.cy + gy * norm.half];
}

function toGl(norm, [x, y]) {
  return [(x - norm.cx) / norm.half, (y - norm.cy) / norm.half];
}

// Selection geometry in data coordinates, in the shape of rows_in_selection's argument.
const MAX_VERTICES = 200; // a lasso is thinned to this many vertices (the server tests each)

function geometry(inst, coordinates) {
  let pts = coordinates.map((p) => toData(inst.coords.norm, p));
  if (pts.length > MAX_VERTICES) {
    const step = pts.length / MAX_VERTICES;
    pts = Array.from({ length: MAX_VERTICES }, (_, k) => pts[Math.floor(k * step)]);
  }
  if (inst.mode === 'box') {
    const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
    return { box: [{ x: [Math.min(...xs), Math.max(...xs)], y: [Math.min(...ys), Math.max(...ys)] }] };
  }
  return { lasso: [{ x: pts.map((p) => p[0]), y: pts.map((p) => p[1]) }] };
}

function sendState(inst, extra) {
  const d = inst.data;
  inst.plot.dataset.selection = JSON.stringify(inst.selection);
  UI.set(`${d.view_key}|${d.projection_id}`, { selection: inst.selection, hidden: [...inst.hidden] });
  inst.setStateValue('event', {
    seq: (inst.seq = (inst.seq || 0) + 1),
    projection_id: d.projection_id,
    selection: inst.selection,
    hidden: [...inst.hidden],
    ...extra,
  });
}

// The renderer's properties that differ from what was last set.
function styleChanges(inst, props) {
  const changed = {};
  for (const [k, v] of Object.entries(props)) {
    const json = JSON.stringify(v);
    if (inst.styleSet[k] !== json) { changed[k] = v; inst.styleSet[k] = json; }
  }
  return changed;
}

function createPlot(inst, n) {
  const { size, opacity } = pointStyle(n);
  const sp = createScatterplot({
    canvas: inst.canvas, width: inst.width, height: inst.height,
    // The selection is in the colours, and hover and clicks are found here (listenForPointer):
    // the renderer only pans and zooms (it sees a mouse button only in pan mode). No
    // performanceMode: it turns blending off, so translucent points vanished and dense regions
    // could not show their density, for a frame only a quarter faster in software WebGL.
    pointSize: size, opacity, backgroundColor: [1, 1, 1, 1], mouseMode: 'panZoom',
    deselectOnDblClick: false, deselectOnEscape: false,
    colorBy: 'valueA', syncEvents: false,
  });
  inst.sp = sp;
  inst.styleSet = { pointSize: JSON.stringify(size), opacity: JSON.stringify(opacity),
    width: JSON.stringify(inst.width), height: JSON.stringify(inst.height) };
  sp.subscribe('view', ({ view }) => {
    VIEWS.set(`${inst.data.view_key}|${inst.data.projection_id}`, Float32Array.from(view));
    drawOverlay(inst);
    drawEdges(inst);
  });
  setMode(inst, inst.mode);
}

// Normalised (GL) coordinates -> canvas pixels under the current camera, as
// regl-scatterplot's getScreenPosition does for a point: projection * view * model.
function screenTransform(inst) {
  const { a, b, c, d, e, f } = glToClip(inst);
  const w = inst.width, h = inst.height;
  return (gx, gy) => [(w * (a * gx + b * gy + e + 1)) / 2, (h * (1 - (c * gx + d * gy + f))) / 2];
}

// Edges: WebGL lines on their own canvas under the points, through the scatterplot's camera
// (projection * view * model, as its points); a million edges draw in one call.
const EDGE_VS = `precision highp float;
attribute vec2 position;
uniform mat4 view;
uniform float aspect, dataAspect;
void main() {
  vec4 p = view * vec4(position.x * dataAspect, position.y, 0.0, 1.0);
  gl_Position = vec4(p.x / aspect, p.y, 0.0, 1.0);
}`;
const EDGE_FS = `precision mediump float;
uniform vec4 color;
void main() { gl_FragColor = color; }`;
const EDGE_COLOR = [0.43, 0.43, 0.43, 0.45];
const EDGE_COLOR_RINGED = [0.08, 0.08, 0.08, 0.9];

// End points (normalised coordinates) of the edges for which keep(a, b) holds, for gl.LINES.
function segments(e, coords, keep) {
  const { x, y } = coords;
  const out = new Float32Array(4 * e.s.length);
  let n = 0;
  for (let k = 0; k < e.s.length; k++) {
    const a = e.s[k], b = e.t[k];
    if (keep && !keep(a, b)) continue;
    out[n++] = x[a]; out[n++] = y[a]; out[n++] = x[b]; out[n++] = y[b];
  }
  return out.subarray(0, n);
}

function edgeLayer(canvas) {
  const regl = createRegl({ canvas, attributes: { alpha: true, antialias: true, premultipliedAlpha: false, preserveDrawingBuffer: true } });
  const draw = regl({
    vert: EDGE_VS,
    frag: EDGE_FS,
    attributes: { position: regl.prop('buffer') },
    uniforms: { view: regl.prop('view'), aspect: regl.prop('aspect'),
      dataAspect: regl.prop('dataAspect'), color: regl.prop('color') },
    primitive: 'lines',
    count: regl.prop('count'),
    depth: { enable: false },
    blend: { enable: true, func: { srcRGB: 'src alpha', srcAlpha: 'one',
      dstRGB: 'one minus src alpha', dstAlpha: 'one minus src alpha' } },
  });
  return { regl, draw, buffers: {}, keys: {} };
}

// (Re)fill one vertex buffer of the edge layer when what it holds (`key`) changed.
function edgeBuffer(layer, name, key, make) {
  if (layer.keys[name] === key) return;
  const b = layer.buffers[name];
  if (b) b.buffer.destroy();
  const data = make();
  layer.buffers[name] = data.length ? { buffer: layer.regl.buffer(data), count: data.length / 2 } : null;
  layer.keys[name] = key;
}

// Edges under the points: grey hairlines, those of ringed points dark over them.
function drawEdges(inst) {
  const e = inst.edges;
  if (!e && !inst.edgeGl) return;
  if (!inst.edgeGl) inst.edgeGl = edgeLayer(inst.edgesCanvas);
  const layer = inst.edgeGl;
  layer.regl.poll(); // the canvas may have been resized
  layer.regl.clear({ color: [0, 0, 0, 0] });
  if (!e || !inst.sp || !inst.coords) return;
  const t0 = performance.now();
  const key = `${inst.data.edges_id}|${inst.drawn}`;
  edgeBuffer(layer, 'all', key, () => segments(e, inst.coords));
  edgeBuffer(layer, 'ringed', `${key}|${inst.highlight.join(',')}`, () => {
    const ringed = new Set(inst.highlight);
    return ringed.size ? segments(e, inst.coords, (a, b) => ringed.has(a) || ringed.has(b)) : [];
  });
  const camera = { view: inst.sp.get('cameraView'), aspect: inst.width / inst.height,
    dataAspect: inst.sp.get('aspectRatio') };
  for (const [name, color] of [['all', EDGE_COLOR], ['ringed', EDGE_COLOR_RINGED]]) {
    const b = layer.buffers[name];
    if (b) layer.draw({ ...camera, ...b, color });
  }
  inst.plot.dataset.edgesMs = (performance.now() - t0).toFixed(1); // diagnostics
}

// Cluster names at their centres, largest cluster first; a name that would overlap one
// already written (or fall outside the view) is left out, so zooming in shows more of them.
function drawLabels(inst, g) {
  const labels = (inst.data && inst.data.labels) || [];
  let drawn = 0;
  if (labels.length && inst.coords) {
    g.font = 'bold 13px "Source Sans Pro", sans-serif';
    g.textAlign = 'center';
    g.textBaseline = 'middle';
    g.lineJoin = 'round';
    g.lineWidth = 3;
    const placed = [];
    const at = screenTransform(inst);
    for (const [x, y, name] of labels) {
      const [px, py] = at(...toGl(inst.coords.norm, [x, y]));
      const half = g.measureText(name).width / 2 + 3;
      if (px < half || px > inst.width - half || py < 9 || py > inst.height - 9) continue;
      if (placed.some(([qx, qy, qh]) => Math.abs(qx - px) < qh + half && Math.abs(qy - py) < 18)) continue;
      placed.push([px, py, half]);
      g.strokeStyle = 'rgba(255,255,255,.9)';
      g.strokeText(name, px, py);
      g.fillStyle = '#111';
      g.fillText(name, px, py);
      drawn += 1;
    }
  }
  inst.plot.dataset.labelsDrawn = String(drawn); // tests: names written at this zoom
  inst.plot.dataset.labelsTotal = String(labels.length);
}

function drawOverlay(inst) {
  const cv = inst.overlay;
  const g = cv.getContext('2d');
  g.clearRect(0, 0, cv.width, cv.height);
  if (!inst.sp) return;
  drawLabels(inst, g);
  if (!inst.sp.get('isPointsDrawn')) return; // a draw is under way: no screen positions yet
  // rings: the context (e.g. neighbours) orange, the highlighted rows black over them
  const hovered = inst.hovered >= 0 ? [inst.hovered] : [];
  for (const [points, colour, radius] of [[inst.context, '#f28e2b', 6], [inst.highlight, '#111', 7], [hovered, '#555', 5]]) {
    g.lineWidth = 2;
    g.strokeStyle = colour;
    for (const i of points) {
      const p = inst.sp.getScreenPosition(i);
      if (!p) continue;
      g.beginPath();
      g.arc(p[0], p[1], radius, 0, 2 * Math.PI);
      g.stroke();
    }
  }
}

function renderLegend(inst) {
  const d = inst.data;
  const el = inst.legend;
  el.innerHTML = '';
  if (d.color_kind === 'category') {
    d.categories.forEach((name, k) => {
      const s = document.createElement('span');
      s.dataset.category = name;
      s.title = 'Click to hide or show';
      if (inst.hidden.has(name)) s.className = 'off';
      const dot = document.createElement('i');
      dot.style.background = d.palette[k];
      s.appendChild(dot);
      s.appendChild(document.createTextNode(`${name} (${d.counts[k].toLocaleString()})`));
      s.onclick = () => {
        if (inst.hidden.has(name)) inst.hidden.delete(name); else inst.hidden.add(name);
        renderLegend(inst);
        sendState(inst, {});
        redrawLater(inst);
      };
      el.appendChild(s);
    });
  } else if (d.color_kind === 'value') {
    const grad = d.palette.slice(0, -1).join(',');
    el.innerHTML = `<span>${d.color_label}: ${d.vmin.toPrecision(3)}</span>`
      + `<span style="display:inline-block;width:160px;height:10px;background:linear-gradient(90deg,${grad})"></span>`
      + `<span>${d.vmax.toPrecision(3)}</span>`;
  }
}

// Indices of the points of the categories shown in the legend, or null when none is hidden.
function keptPoints(inst, d, colors) {
  inst.hiddenCodes = null;
  if (!colors || d.color_kind !== 'category' || inst.hidden.size === 0) return null;
  const off = new Uint8Array(d.categories.length);
  d.categories.forEach((name, k) => { off[k] = inst.hidden.has(name) ? 1 : 0; });
  const keep = [];
  for (let i = 0; i < colors.length; i++) if (!off[colors[i]]) keep.push(i);
  inst.hiddenCodes = off; // hover and clicks skip these categories' points
  return keep;
}

// Which points lie inside a selection geometry (data coordinates), as rows_in_selection decides
// on the server for every row: one byte a point (1 inside), and how many are inside.
function pointsInGeometry(coords, sel) {
  const { x, y, norm } = coords;
  const inside = new Uint8Array(x.length);
  const g = (v, c) => (v - c) / norm.half;
  for (const b of sel.box || []) {
    const x0 = g(Math.min(...b.x), norm.cx), x1 = g(Math.max(...b.x), norm.cx);
    const y0 = g(Math.min(...b.y), norm.cy), y1 = g(Math.max(...b.y), norm.cy);
    for (let i = 0; i < x.length; i++) if (x[i] >= x0 && x[i] <= x1 && y[i] >= y0 && y[i] <= y1) inside[i] = 1;
  }
  for (const l of sel.lasso || []) {
    const px = l.x.map((v) => g(v, norm.cx)), py = l.y.map((v) => g(v, norm.cy));
    const bx0 = Math.min(...px), bx1 = Math.max(...px), by0 = Math.min(...py), by1 = Math.max(...py);
    for (let i = 0; i < x.length; i++) {
      const xi = x[i], yi = y[i];
      if (xi < bx0 || xi > bx1 || yi < by0 || yi > by1) continue;
      let odd = false;
      for (let a = 0, b = px.length - 1; a < px.length; b = a++) {
        if ((py[a] > yi) !== (py[b] > yi) && xi < ((px[b] - px[a]) * (yi - py[a])) / (py[b] - py[a]) + px[a]) odd = !odd;
      }
      if (odd) inside[i] = 1;
    }
  }
  let count = 0;
  for (let i = 0; i < inside.length; i++) count += inside[i];
  return { inside, count };
}

// The points as regl-scatterplot holds them ([x, y, colour index] each), made once per
// projection and refilled in place: its draw would otherwise build a million small arrays
// from typed ones on every colour or selection change.
function pointsArray(coords, valueA) {
  const { x, y } = coords;
  if (!coords.points) coords.points = Array.from({ length: x.length }, (_, i) => [x[i], y[i], 0]);
  const pts = coords.points;
  for (let i = 0; i < pts.length; i++) pts[i][2] = valueA[i];
  return pts;
}

// A palette colour mixed with white: the points outside a selection.
function faded(hex, keep = 0.3) {
  const v = parseInt(hex.slice(1, 7), 16);
  const mix = (c) => Math.round(255 - keep * (255 - c)).toString(16).padStart(2, '0');
  return `#${mix(v >> 16)}${mix((v >> 8) & 255)}${mix(v & 255)}`;
}

// The renderer's colour index of each point: its palette index, plus the palette's length
// (the faded twin) when a selection exists and the point is outside it.
function colorIndices(colors, n, selected, nPalette) {
  const out = new Float32Array(n);
  if (colors) out.set(colors);
  if (selected) for (let i = 0; i < n; i++) if (!selected.inside[i]) out[i] += nPalette;
  return out;
}

function clearSelection(inst) {
  if (!inst.selection) return;
  inst.selection = null;
  sendState(inst, {});
  redrawLater(inst);
}

// Redraw with the current selection and legend, after any update already running.
function redrawLater(inst) {
  if (inst.data) schedule(inst, inst.pending || inst.data);
}

// Fill of each highest-density band over white (none, 90 %, 75 %, 50 %, 25 %) and the
// contour line between bands: light greys, so every point colour stays readable on them.
const BAND_FILL = [[255, 255, 255], [243, 244, 246], [233, 235, 239], [221, 224, 230], [208, 212, 220]];
const BAND_LINE = [120, 126, 138];
const TEXELS = 512;

// Fractional grid index of a coordinate (cell centres at whole numbers), or -1 outside.
function cellAt(v, lo, hi, n) {
  const f = ((v - lo) / (hi - lo)) * n - 0.5;
  return f < -0.5 || f > n - 0.5 ? -1 : Math.min(n - 1, Math.max(0, f));
}

// The density grid resampled (bilinear) onto the normalised square [-1, 1]^2 that
// regl-scatterplot's background image covers (row 0 at the top), as RGBA bytes: bands
// filled, their edges lined.
function densityTexels(m, d, norm) {
  const [ny, nx] = d.density_shape;
  const [x0, x1, y0, y1] = d.density_extent;
  const cuts = d.density_levels.map((l) => l * 255);
  const band = new Uint8Array(TEXELS * TEXELS);
  for (let r = 0; r < TEXELS; r++) {
    const fi = cellAt(norm.cy + (1 - ((r + 0.5) * 2) / TEXELS) * norm.half, y0, y1, ny);
    if (fi < 0) continue;
    const i = Math.min(ny - 2, Math.floor(fi)), ti = fi - i;
    for (let c = 0; c < TEXELS; c++) {
      const fj = cellAt(norm.cx + (((c + 0.5) * 2) / TEXELS - 1) * norm.half, x0, x1, nx);
      if (fj < 0) continue;
      const j = Math.min(nx - 2, Math.floor(fj)), tj = fj - j;
      const k = i * nx + j;
      const v = (1 - ti) * ((1 - tj) * m[k] + tj * m[k + 1]) + ti * ((1 - tj) * m[k + nx] + tj * m[k + nx + 1]);
      let b = 0;
      while (b < cuts.length && v <= cuts[cuts.length - 1 - b]) b += 1;
      band[r * TEXELS + c] = b;
    }
  }
  const rgba = new Uint8Array(TEXELS * TEXELS * 4);
  for (let k = 0; k < band.length; k++) {
    const b = band[k];
    const c = k % TEXELS;
    const edge = b > 0 && ((c > 0 && band[k - 1] < b) || (c < TEXELS - 1 && band[k + 1] < b)
      || (k >= TEXELS && band[k - TEXELS] < b) || (k + TEXELS < band.length && band[k + TEXELS] < b));
    rgba.set(edge ? BAND_LINE : BAND_FILL[b], 4 * k);
    rgba[4 * k + 3] = 255;
  }
  return rgba;
}

// The density layer: a texture under the points (the renderer's background image), rebuilt only
// when the grid or the projection changes; none when the page turned it off. Returns the
// renderer property to set, if any, and a function that frees the texture it replaces.
function densityLayer(inst, d, coords) {
  const key = d.density_id ? `${d.density_id}|${d.coords_id}` : null;
  if (key === inst.densityKey) return [{}, () => {}];
  const old = inst.densityTexture;
  inst.densityTexture = null;
  if (key) {
    const t0 = performance.now();
    const data = densityTexels(DENSITY.get(d.density_id), d, coords.norm);
    inst.plot.dataset.densityMs = (performance.now() - t0).toFixed(1); // diagnostics
    inst.densityTexture = inst.sp.get('regl').texture({
      data, width: TEXELS, height: TEXELS, mag: 'linear', min: 'linear' });
  }
  inst.densityKey = key;
  inst.plot.dataset.density = key ? d.density_id : 'none'; // tests: the layer drawn
  return [{ backgroundImage: inst.densityTexture }, () => old && old.destroy()];
}

async function update(inst, d) {
  inst.data = d;
  if (d.hover && d.hover_key) {
    DETAILS.set(detailKey(d, d.hover.row), d.hover.text);
    if (inst.tipRow === d.hover.row && inst.tip.style.display === 'block') showTip(inst);
  }
  inst.info.textContent = d.caption || '';
  // Coordinates: from this message or from the cache.
  let coords = COORDS.get(d.coords_id);
  const plot = inst.plot.dataset;
  if (d.coords) {
    coords = remember(COORDS, d.coords_id, loadCoords(d), KEEP);
    plot.coordsLoads = String(Number(plot.coordsLoads || 0) + 1); // tests: coordinates moved once
  }
  const colorKey = `${d.coords_id}|${d.color_id}`;
  let colors = COLORS.get(colorKey);
  if (d.color && coords) {
    colors = remember(COLORS, colorKey, loadColor(d, coords.x.length), 2 * KEEP);
    plot.colorLoads = String(Number(plot.colorLoads || 0) + 1);
    if (d.color_kind === 'value') inst.colorValues = columnArray(d.color, 'c');
  }
  if (d.density) {
    remember(DENSITY, d.density_id, columnArray(d.density, 'm'), KEEP);
    plot.densityLoads = String(Number(plot.densityLoads || 0) + 1);
  }
  if (d.edges) {
    remember(EDGES, d.edges_id, { s: columnArray(d.edges, 's'), t: columnArray(d.edges, 't') }, KEEP);
    plot.edgesLoads = String(Number(plot.edgesLoads || 0) + 1);
  }
  const density = d.density_id ? DENSITY.get(d.density_id) : null;
  const edges = d.edges_id ? EDGES.get(d.edges_id) : null;
  // `seq` names the render this report follows: tables Python sent after it are on their way.
  const have = { coords: coords ? d.coords_id : null, color: colors ? d.color_id : null,
    density: density ? d.density_id : null, edges: edges ? d.edges_id : null, seq: d.seq };
  if (!coords || (d.color_kind !== 'none' && !colors) || (d.density_id && !density)
      || (d.edges_id && !edges)) {
    // Python believed these were cached here: ask for them.
    REPORTED.set(d.view_key, have);
    inst.setStateValue('have', have);
    return;
  }
  const w = Math.max(200, inst.plot.clientWidth || inst.root.host?.clientWidth || 700);
  const h = d.height;
  if (w !== inst.width || h !== inst.height) {
    inst.width = w; inst.height = h;
    inst.plot.style.height = `${h}px`;
    inst.overlay.width = w; inst.overlay.height = h;
    inst.edgesCanvas.width = w; inst.edgesCanvas.height = h;
    inst.sel.width = w; inst.sel.height = h;
  }
  if (!inst.sp) createPlot(inst, coords.x.length);
  const sp = inst.sp;

  // Legend state from Python (survives remounts); hidden categories that no longer exist go.
  const ui = UI.get(`${d.view_key}|${d.projection_id}`) || { selection: null, hidden: [] };
  if (inst.drawn !== d.coords_id) {
    inst.selection = ui.selection;
    inst.hidden = new Set(ui.hidden);
  }
  // hidden categories of another colouring do not apply to this one
  inst.hidden = new Set([...inst.hidden].filter((c) => d.categories.includes(c)));

  // Every renderer property in one set, awaited before a draw: each set renders a frame of its
  // own after the next one (a second or more for a million points in software WebGL), so a
  // set followed by a draw would render twice. The palette always holds the faded twins, so a
  // selection changes no property.
  const style = pointStyle(coords.x.length);
  const palette = [...d.palette, ...d.palette.map((c) => faded(c))];
  const changes = styleChanges(inst, { width: w, height: h, pointSize: style.size,
    opacity: style.opacity, pointColor: palette, pointColorActive: palette,
    pointColorHover: palette, backgroundColor: edges ? [1, 1, 1, 0] : [1, 1, 1, 1] });
  const [densityProps, freeDensity] = densityLayer(inst, d, coords);
  Object.assign(changes, densityProps);
  const sameCoords = inst.drawn === d.coords_id;
  // the saved view, read before drawing: the first draw reports the default camera as a view
  const view = sameCoords ? null : VIEWS.get(`${d.view_key}|${d.projection_id}`);
  if (view) changes.cameraView = view;
  const set = Object.keys(changes).length ? sp.set(changes) : null;
  if (!sameCoords) setHover(inst, -1);
  // One draw (one frame) for new coordinates, colours or selection, the legend's filter included.
  const selKey = `${d.coords_id}|${JSON.stringify(inst.selection)}`;
  const filterKey = `${colorKey}|${[...inst.hidden].sort().join('\n')}`;
  if (!sameCoords || inst.colorKey !== colorKey || inst.selKey !== selKey) {
    // the points inside the selection, found again only when it or the projection changes
    if (inst.selection && inst.selectedKey !== selKey) {
      inst.selected = pointsInGeometry(coords, inst.selection);
      inst.selectedKey = selKey;
    }
    const selected = inst.selection ? inst.selected : null;
    const valueA = colorIndices(colors, coords.x.length, selected, d.palette.length);
    const keep = keptPoints(inst, d, colors);
    if (set) await set;
    if (!sameCoords && !view) zoomHome(sp, coords);
    await sp.draw(pointsArray(coords, valueA), {
      zDataType: 'categorical',
      spatialIndex: sameCoords || coords.spatialIndex ? coords.spatialIndex : undefined,
      ...(keep ? { filter: keep } : {}),
    });
    if (!coords.spatialIndex) coords.spatialIndex = sp.get('spatialIndex');
    inst.drawn = d.coords_id;
    inst.colorKey = colorKey;
    inst.coords = coords;
    inst.selKey = selKey;
    inst.filterKey = filterKey;
    plot.selected = String(selected ? selected.count : 0); // tests: points drawn as selected
  } else if (inst.filterKey !== filterKey) {
    const keep = keptPoints(inst, d, colors);
    if (set) await set;
    await (keep ? sp.filter(keep, { preventEvent: true }) : sp.unfilter({ preventEvent: true }));
    inst.filterKey = filterKey;
  } else if (set) {
    await set;
  }
  freeDensity();
  renderLegend(inst);
  const points = (rows) => (rows || []).map((r) => indexOfRow(coords.rows, r)).filter((i) => i >= 0);
  inst.highlight = points(d.highlight);
  inst.context = points(d.context);
  plot.ringed = String(inst.highlight.length); // tests: points ringed
  plot.ringedContext = String(inst.context.length);
  drawOverlay(inst);
  inst.edges = edges; // they show through the points canvas, then transparent
  drawEdges(inst);
  plot.edgesDrawn = String(edges ? edges.s.length : 0); // tests: the edge layer
  // tests: where a row's point is on the canvas (CSS pixels from the plot's corner), or null
  inst.plot.screenOfRow = (row) => {
    const i = indexOfRow(inst.coords.rows, row);
    return i < 0 ? null : screenTransform(inst)(inst.coords.x[i], inst.coords.y[i]);
  };
  inst.plot.dataset.drawn = String(coords.x.length);
  inst.plot.dataset.coordsId = d.coords_id;
  inst.plot.dataset.colorId = d.color_id;
  inst.wrap.dataset.ready = '1';
  // What this page now holds, once the frame is on screen (two animation frames later): the
  // rerun this report starts would otherwise compete with the draw for the CPU.
  const prevHave = REPORTED.get(d.view_key) || {};
  if (prevHave.coords !== have.coords || prevHave.color !== have.color
      || (have.density && prevHave.density !== have.density)
      || (have.edges && prevHave.edges !== have.edges)) {
    REPORTED.set(d.view_key, have);
    requestAnimationFrame(() => requestAnimationFrame(() => inst.setStateValue('have', have)));
  }
}

// One update at a time per map, the latest data last: Streamlit may hand over new data while
// a draw is still running (a 1M-point draw takes seconds in software WebGL), and
// regl-scatterplot refuses a draw call before the previous one has finished.
function schedule(inst, data) {
  inst.pending = data;
  if (inst.running) return;
  inst.running = true;
  (async () => {
    while (inst.pending) {
      const d = inst.pending;
      inst.pending = null;
      try {
        await update(inst, d);
      } catch (e) {
        inst.info.textContent = `The map could not draw: ${e && e.message ? e.message : e}`;
        console.error(e);
      }
    }
    inst.running = false;
  })();
}

export default function mount(component) {
  const { data, parentElement, setStateValue, setTriggerValue } = component;
  let inst = INSTANCES.get(parentElement);
  if (!inst) {
    inst = createInstance(parentElement);
    INSTANCES.set(parentElement, inst);
  }
  clearTimeout(inst.destroyTimer);
  inst.setStateValue = setStateValue;
  inst.setTriggerValue = setTriggerValue;
  if (data) schedule(inst, data);
  return () => {
    // Streamlit calls this before each new `data` too: destroy only when really unmounted.
    inst.destroyTimer = setTimeout(() => {
      if (parentElement.isConnected) return;
      window.removeEventListener('keyup', inst.onKey);
      if (inst.sp) inst.sp.destroy();
      if (inst.edgeGl) inst.edgeGl.regl.destroy();
      INSTANCES.delete(parentElement);
    }, 1500);
  };
}
