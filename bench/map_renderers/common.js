// Shared by both pages: deterministic synthetic points (10 Gaussian blobs) in [-1, 1].
export function makePoints(n) {
  const x = new Float32Array(n), y = new Float32Array(n), c = new Uint8Array(n);
  let s = 12345;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
  for (let i = 0; i < n; i++) {
    const k = i % 10, a = (k / 10) * 2 * Math.PI;
    const u = Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * 0.12, v = 2 * Math.PI * rnd();
    x[i] = Math.max(-1, Math.min(1, 0.6 * Math.cos(a) + u * Math.cos(v)));
    y[i] = Math.max(-1, Math.min(1, 0.6 * Math.sin(a) + u * Math.sin(v)));
    c[i] = k;
  }
  return { x, y, c };
}
export const N = Number(new URLSearchParams(location.search).get('n') || 1000000);
export const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
export function report(obj) { window.__bench = obj; document.title = 'done'; }
// Forces the GPU work of the last frame to finish: read one pixel back through a 2-D canvas.
export function flush(canvas) {
  const t = document.createElement('canvas'); t.width = t.height = 1;
  const g = t.getContext('2d'); g.drawImage(canvas, 0, 0, 1, 1); return g.getImageData(0, 0, 1, 1).data[3];
}
