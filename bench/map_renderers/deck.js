import { Deck, OrthographicView } from '@deck.gl/core';
import { ScatterplotLayer } from '@deck.gl/layers';
import { makePoints, N, PALETTE, report, flush } from './common.js';
const { x, y, c } = makePoints(N);
const pos = new Float32Array(2 * N), col = new Uint8Array(4 * N);
const rgb = PALETTE.map(h => [1, 3, 5].map(i => parseInt(h.slice(i, i + 2), 16)));
for (let i = 0; i < N; i++) { pos[2 * i] = x[i] * 400; pos[2 * i + 1] = y[i] * 400;
  const q = rgb[c[i]]; col[4 * i] = q[0]; col[4 * i + 1] = q[1]; col[4 * i + 2] = q[2]; col[4 * i + 3] = 128; }
const t0 = performance.now();
let frames = 0, t1 = 0, f0 = 0;
const layer = (k) => new ScatterplotLayer({ id: 'p', data: { length: N, attributes: {
  getPosition: { value: pos, size: 2 }, getFillColor: { value: col, size: 4 } } },
  radiusUnits: 'pixels', getRadius: 1, stroked: false });
const deck = new Deck({ canvas: 'c', width: 800, height: 800, views: new OrthographicView(),
  initialViewState: { target: [0, 0, 0], zoom: 0 }, controller: false, layers: [layer(0)],
  onAfterRender: () => {
    frames++;
    if (frames === 1) { flush(document.getElementById('c')); t1 = performance.now(); f0 = t1; }
    if (frames >= 1 && frames <= 10) { deck.setProps({ viewState: { target: [frames, 0, 0], zoom: 0 } }); }
    if (frames === 11) flush(document.getElementById('c')), report({ first_frame_ms: t1 - t0, frame_ms: (performance.now() - f0) / 10, n: N });
  } });
