// render.js - the Mandelbrot set drawn progressively with mapKernel.
//
// mapKernel('mandelbrot_row') resolves with the whole output at once: its
// progress reports say how many rows are done, not which, and their pixels are
// not readable before the call ends. So the image is computed in blocks of
// consecutive rows, one mapKernel call per block on all the chosen threads,
// and each block is drawn once its call resolves. The calls are
// pipelined: the next block is started before the finished one is drawn, so
// the workers do not wait for the canvas. Blocks are sized from the measured
// speed to take about BLOCK_MS each (so the ~1 ms a call costs and the idle
// tail of a block, when one thread finishes its last row before the other,
// stay small), and never fewer rows than 4 per thread. Finished blocks are
// drawn at most every DRAW_MS: a repaint of a large canvas costs main-thread
// and compositor time, which the workers feel when there are no spare cores.

const BLOCK_MS = 150;
const DRAW_MS = 100;

/** Views of the complex plane: centre and width (the height follows the image). */
export const VIEWS = {
  whole: { cx: -0.75, cy: 0, w: 3.5 },
  seahorse: { cx: -0.7453, cy: 0.1127, w: 0.0065 },
  spiral: { cx: -0.7749, cy: -0.1371, w: 0.0004 },
  elephant: { cx: 0.2833, cy: 0.0108, w: 0.016 },
  minibrot: { cx: -1.762, cy: 0, w: 0.05 },
};

/** The kernel's rectangle for a view: x0,y0 top left .. x1,y1 bottom right,
 * imaginary axis up as in the usual pictures, square pixels. */
export function viewRect(view, width, height) {
  const v = VIEWS[view] || VIEWS.whole;
  const h = (v.w * height) / width;
  return { x0: v.cx - v.w / 2, x1: v.cx + v.w / 2, y0: v.cy + h / 2, y1: v.cy - h / 2 };
}

/**
 * Render into `ctx` (a 2D context of a width x height canvas). opts: mapKernel
 * (the package's), width, height, maxIter, view, threads, chunksize (0 = auto),
 * signal, onRows(done) (rows finished so far, from the calls' onProgress and
 * from each finished block). Resolves with { rows, blocks }; rejects with the
 * package's AbortError when the signal aborts.
 */
export async function renderMandelbrot(opts) {
  const { mapKernel, ctx, width, height, maxIter, threads, chunksize, signal, onRows } = opts;
  const rect = viewRect(opts.view, width, height);
  const minRows = Math.max(2, 4 * threads);
  const maxRows = Math.max(minRows, Math.ceil(height / 12));
  let rowsDone = 0;
  let blocks = 0;

  const start = (r0, n) => {
    const rows = new Int32Array(n);
    for (let i = 0; i < n; i++) rows[i] = r0 + i;
    const t0 = performance.now();
    const r0Done = rowsDone;
    const promise = mapKernel('mandelbrot_row', rows, {
      width, height, maxIter, ...rect, threads, chunksize, signal,
      // Within a block, rows finish in any order: count them, draw at the end.
      onProgress: ({ done }) => onRows && onRows(r0Done + done),
    });
    blocks++;
    return { r0, n, t0, promise };
  };

  // Finished blocks wait here until the next draw.
  const ready = [];
  let drawn = -Infinity;
  const draw = () => {
    for (const b of ready) ctx.putImageData(new ImageData(b.px, width, b.count), 0, b.r0);
    ready.length = 0;
    drawn = performance.now();
  };

  let n = Math.min(height, minRows);
  let next = start(0, n);
  try {
    while (next) {
      const { r0, n: count, t0, promise } = next;
      const px = await promise;
      const ms = performance.now() - t0;
      rowsDone += count;
      const end = r0 + count;
      next = null;
      if (end < height) {
        // Rows per BLOCK_MS at the speed just measured; at most 4x growth per
        // block, since the next rows may be much slower (deeper in the set).
        const want = Math.round((count * BLOCK_MS) / Math.max(ms, 1));
        n = Math.min(height - end, Math.max(minRows, Math.min(maxRows, want, 4 * count)));
        next = start(end, n);
      }
      ready.push({ px, r0, count });
      if (performance.now() - drawn >= DRAW_MS) draw();
      if (onRows) onRows(rowsDone);
    }
  } catch (e) {
    // A cancelled call returns nothing: only the blocks before it are drawn.
    if (e && typeof e === 'object') e.rowsDrawn = rowsDone;
    throw e;
  } finally {
    draw(); // the end, or what was done before a cancel
  }
  return { rows: rowsDone, blocks };
}
