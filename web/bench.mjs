#!/usr/bin/env node
// bench.mjs - parmap-wasm measured in headless Chromium (Debian's, through
// playwright-core), on the demo page served by serve.mjs. Prints one JSON
// line per measurement:
//   mandelbrot_row  mapKernel over a whole 1200x900 image (maxIter 500, the
//                   package's own benchmark case), 1 thread vs 2: the speedup
//   mandelbrot_page the demo's progressive render (row blocks, drawn as they
//                   come; the mini-Mandelbrot view, maxIter 1000), 1 thread
//                   vs 2, as a user of the page sees it
//   double          parmap(x => x * 2) over 10^6 numbers, Float64Array and
//                   Array, 1 and 2 threads
//   double_handmade the same over a Float64Array with two plain Web Workers,
//                   each sent one half as a transferable buffer and sending it
//                   back (the best hand-made transfer: the peer of the
//                   workers engine, in the same page and run)
//   objects         parmap(({ s, n }) => s.repeat(n).length) over 10^5
//                   objects { s: 'ab', n: i % 10 } on 2 threads (the workload
//                   of wasm/bench/run.mjs), with ratio_vs_workerpool: the
//                   peer's time over parmap's (> 1: parmap faster)
//   objects_workerpool  the peer: workerpool (web/node_modules, served as
//                   /vendor/workerpool.min.js), 2 web workers
//                   (bench_workerpool_worker.js), the items hand-made into 64
//                   batches as run.mjs does for piscina, one pool.exec each,
//                   results concatenated; its reps alternate with parmap's
// and the same on the workers engine (a page without COOP/COEP), where the
// objects line carries issue 15's goal (faster than hand-batched workerpool).
// Times are medians of REPS runs after a warm-up (wasm tier-up), with the
// best of them beside (speedup_best: the least disturbed by other jobs).
//
//   node web/bench.mjs [--reps 5] [--out FILE]
import { readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { startServer, launchBrowser } from './harness.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const REPS = Number(opt('--reps', 5));
const OUT = opt('--out', null);
if (OUT) writeFileSync(OUT, '');

// The lines with one time per run (ms, us_per_item), not one per thread count.
const PER_ITEM = new Set(['double', 'double_handmade', 'objects', 'objects_workerpool']);
// Recorded on the peer's line: the figure is of that version.
const WORKERPOOL_VERSION = (() => {
  try {
    return JSON.parse(readFileSync(new URL('./node_modules/workerpool/package.json', import.meta.url), 'utf8')).version;
  } catch {
    return 'not installed';
  }
})();

function emit(o) {
  const line = JSON.stringify(o);
  console.log(line);
  if (OUT) appendFileSync(OUT, line + '\n');
}

/** Runs in the page: all measurements of one build. */
async function measure({ reps, wpVersion }) {
  const { mapKernel, parmap, info } = await import('parmap-wasm');
  const threaded = (await info()).build !== 'single';   // threaded or workers: 1 and 2 threads
  const { renderMandelbrot } = await import('/render.js');
  const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]; };
  const time = async (f) => { const t0 = performance.now(); await f(); return performance.now() - t0; };
  const threadCounts = threaded ? [1, 2] : [1];
  const res = { info: await info(), results: [] };

  // mapKernel over the whole image, one call.
  const width = 1200, height = 900, maxIter = 500;
  const rows = Int32Array.from({ length: height }, (_, y) => y);
  const kernel = (threads) => mapKernel('mandelbrot_row', rows, { width, height, maxIter, threads });
  for (const t of threadCounts) await kernel(t); // warm-up
  const km = Object.fromEntries(threadCounts.map((t) => [t, []]));
  for (let r = 0; r < reps; r++) for (const t of threadCounts) km[t].push(await time(() => kernel(t)));
  res.results.push({ bench: 'mandelbrot_row', width, height, maxIter, ms: Object.fromEntries(threadCounts.map((t) => [t, median(km[t])])),
    all: km });

  // The page's progressive render: blocks of rows, drawn into the canvas, the
  // progress bar moving; a view with ~1 s of work on 1 thread.
  const canvas = document.getElementById('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d', { alpha: false });
  const bar = document.getElementById('progress');
  const view = 'minibrot', pageIter = 1000;
  const page = (threads) => renderMandelbrot({ mapKernel, ctx, width, height, maxIter: pageIter, view, threads, chunksize: 0,
    onRows: (d) => { bar.value = d / height; } });
  for (const t of threadCounts) await page(t);
  const pm = Object.fromEntries(threadCounts.map((t) => [t, []]));
  for (let r = 0; r < reps; r++) for (const t of threadCounts) pm[t].push(await time(() => page(t)));
  res.results.push({ bench: 'mandelbrot_page', view, width, height, maxIter: pageIter,
    ms: Object.fromEntries(threadCounts.map((t) => [t, median(pm[t])])), all: pm });

  // The cheapest function: what the pool costs per item.
  const n = 1e6;
  const f64 = new Float64Array(n);
  for (let i = 0; i < n; i++) f64[i] = i;
  const arr = Array.from(f64);
  for (const [kind, items] of [['Float64Array', f64], ['Array', arr]]) {
    for (const t of threadCounts) {
      const check = await parmap((x) => x * 2, items, { threads: t });
      if (check.length !== n || check[n - 1] !== 2 * (n - 1)) throw new Error('x => x * 2 gave wrong results');
      const xs = [];
      for (let r = 0; r < reps; r++) xs.push(await time(() => parmap((x) => x * 2, items, { threads: t })));
      const ms = median(xs);
      res.results.push({ bench: 'double', items: n, input: kind, threads: t, ms, us_per_item: (1000 * ms) / n, all: xs });
    }
  }
  // The hand-made peer: two workers, one transferable half each.
  const src = 'onmessage = (e) => { const a = e.data; for (let i = 0; i < a.length; i++) a[i] = a[i] * 2; postMessage(a, [a.buffer]); };';
  const url = URL.createObjectURL(new Blob([src], { type: 'text/javascript' }));
  const ws = [new Worker(url), new Worker(url)];
  const half = (w, a) => new Promise((r) => { w.onmessage = (e) => r(e.data); w.postMessage(a, [a.buffer]); });
  const hand = async () => {
    const h = n >> 1;
    const [a, b] = await Promise.all([half(ws[0], f64.slice(0, h)), half(ws[1], f64.slice(h))]);
    const out = new Float64Array(n);
    out.set(a);
    out.set(b, h);
    return out;
  };
  await hand();
  const hx = [];
  for (let r = 0; r < reps; r++) hx.push(await time(hand));
  for (const w of ws) w.terminate();
  res.results.push({ bench: 'double_handmade', items: n, input: 'Float64Array', threads: 2, ms: median(hx),
    us_per_item: (1000 * median(hx)) / n, all: hx, note: 'two plain workers, one transferable half each, result a Float64Array' });

  // Objects: every item structured-cloned or encoded both ways, the case of
  // issue 15's goal "faster than hand-batched workerpool". The workload and
  // the peer's 64 batches are wasm/bench/run.mjs's (there the peer is
  // piscina), so the Node and Chromium figures compare.
  const objs = Array.from({ length: 1e5 }, (_, i) => ({ s: 'ab', n: i % 10 }));
  const rl = ({ s, n: k }) => s.repeat(k).length;
  const objThreads = threaded ? 2 : 1;
  const checkObjs = (out, who) => {
    if (out.length !== objs.length || out.some((v, i) => v !== 2 * (i % 10))) throw new Error(`${who}: s.repeat(n).length gave wrong results`);
  };
  // workerpool's browser build is UMD: a classic script sets window.workerpool.
  await new Promise((resolve, reject) => {
    const el = document.createElement('script');
    el.src = '/vendor/workerpool.min.js';
    el.onload = resolve;
    el.onerror = () => reject(new Error('cannot load /vendor/workerpool.min.js (cd web && npm install)'));
    document.head.append(el);
  });
  const wp = window.workerpool.pool('/bench_workerpool_worker.js', { minWorkers: objThreads, maxWorkers: objThreads, workerType: 'web' });
  const batched = async () => {
    const size = Math.ceil(objs.length / 64);
    const parts = [];
    for (let i = 0; i < objs.length; i += size) parts.push(wp.exec('repeatLenBatch', [objs.slice(i, i + size)]));
    return (await Promise.all(parts)).flat();
  };
  try {
    // The warm-up calls are the checked ones; the reps alternate the two, so
    // a neighbour's burst of load falls on both rather than on one.
    checkObjs(await parmap(rl, objs, { threads: objThreads }), 'parmap');
    checkObjs(await batched(), 'workerpool');
    const px = [], wx = [];
    for (let r = 0; r < reps; r++) {
      px.push(await time(() => parmap(rl, objs, { threads: objThreads })));
      wx.push(await time(batched));
    }
    const base = { items: objs.length, input: 'Array of { s, n }', threads: objThreads };
    res.results.push({ bench: 'objects', ...base, ms: median(px), us_per_item: (1000 * median(px)) / objs.length, all: px,
      ratio_vs_workerpool: median(wx) / median(px) });
    res.results.push({ bench: 'objects_workerpool', ...base, ms: median(wx), us_per_item: (1000 * median(wx)) / objs.length, all: wx,
      note: `workerpool ${wpVersion}, ${objThreads} web workers, 64 hand-made batches (one pool.exec each), results concatenated` });
  } finally {
    await wp.terminate(true);
  }
  return res;
}

const browser = await launchBrowser();
let failed = false;
try {
  for (const isolation of [true, false]) {
    const server = await startServer({ isolation });
    const page = await browser.newPage();
    try {
      await page.goto(server.url);
      await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state), null, { timeout: 30000 });
      const ua = await page.evaluate(() => navigator.userAgent);
      const chromium = (ua.match(/HeadlessChrome\/([\d.]+)|Chrome\/([\d.]+)/) || []).slice(1).find(Boolean) || ua;
      const r = await page.evaluate(measure, { reps: REPS, wpVersion: WORKERPOOL_VERSION });
      // The machine's load average while it ran: on a shared 2-core machine a
      // busy neighbour takes the second core, and the speedup with it.
      const base = { where: 'chromium', chromium, build: r.info.build, crossOriginIsolated: r.info.crossOriginIsolated,
        cpus: r.info.cpuCount, loadavg: Math.round(loadavg()[0] * 100) / 100 };
      for (const x of r.results) {
        const round = (v) => Math.round(v * 100) / 100;
        const o = { ...x, ...base };
        if (!PER_ITEM.has(x.bench)) {
          o.ms = Object.fromEntries(Object.entries(x.ms).map(([k, v]) => [k, round(v)]));
          o.best_ms = Object.fromEntries(Object.entries(x.all).map(([k, v]) => [k, round(Math.min(...v))]));
          if (x.ms[2]) {
            o.speedup = round(x.ms[1] / x.ms[2]);
            o.speedup_best = round(o.best_ms[1] / o.best_ms[2]);
            if (x.bench === 'mandelbrot_row') o.goal = 1.8;
          }
        } else {
          o.ms = round(x.ms);
          o.us_per_item = Math.round(x.us_per_item * 10000) / 10000;
          if (r.info.build === 'workers' && x.bench === 'double' && x.threads === 2 && x.input === 'Float64Array') o.goal_us_per_item = 0.05;
          if (x.ratio_vs_workerpool !== undefined) o.ratio_vs_workerpool = round(x.ratio_vs_workerpool);
          if (r.info.build === 'workers' && x.bench === 'objects') o.goal = 'faster than hand-batched workerpool';
        }
        o.all = Array.isArray(x.all) ? x.all.map(round)
          : Object.fromEntries(Object.entries(x.all).map(([k, v]) => [k, v.map(round)]));
        emit(o);
      }
    } finally {
      await page.close();
      await server.close();
    }
  }
} catch (e) {
  console.error(`bench.mjs: ${e.stack || e}`);
  failed = true;
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
