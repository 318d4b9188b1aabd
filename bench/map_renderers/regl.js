import createScatterplot from 'regl-scatterplot';
import { makePoints, N, PALETTE, report, flush } from './common.js';
const { x, y, c } = makePoints(N);
const canvas = document.getElementById('c');
const t0 = performance.now();
const perf = new URLSearchParams(location.search).get('perf') === '1';
const sp = createScatterplot({ canvas, performanceMode: perf, width: 800, height: 800, pointSize: 2, opacity: 0.5,
  pointColor: PALETTE, colorBy: 'valueA', backgroundColor: [1, 1, 1, 1] });
const valueA = new Float32Array(c);  // categorical codes
sp.draw({ x, y, valueA }, { zDataType: 'categorical' }).then(() => {
  requestAnimationFrame(() => {
    flush(canvas);
    const t1 = performance.now();
    // frame time: 10 pans, each awaited as a drawn frame
    let k = 0; const f0 = performance.now();
    const step = () => {
      if (k++ >= 10) { flush(canvas); report({ first_frame_ms: t1 - t0, frame_ms: (performance.now() - f0) / 10, n: N }); return; }
      sp.set({ cameraTarget: [0.01 * k, 0] });
      sp.subscribe('draw', step, 1);
    };
    step();
  });
});
