// imap_latency.mjs - how promptly imap hands out results from a slow source,
// and what that costs on fast ones. Prints one JSON line per engine and
// package (and a summary line). Issue 16's goal: with a source giving one
// item every 20 ms, the first result <= 50 ms after the first item is
// produced; throughput on fast sources not worse than before.
//
//   node bench/imap_latency.mjs [--base DIR] [--engines threaded,workers,single] [--quick]
//
// --base DIR: another copy of the package (a folder with index.js, e.g. the
// main branch's wasm/) measured in the same run, engine by engine, for a
// before/after comparison on the same (noisy, shared) machine.
//
// Each measurement runs in a child process (an engine is chosen once per
// process), after the module is loaded (info()).
//  - slow: an async generator sleeping 20 ms before each of SLOW_N items;
//    latency of item i = when its result arrived - when it was produced.
//    slow_cold is the process's first imap (5 items: the workers engine's
//    workers may still be starting, the function is compiled in each);
//    slow is the next one.
//  - fast_async / fast_sync: FAST_N numbers from an async generator / a
//    sync generator through v => v & 7; best of REPEAT runs.
import { execFileSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const arg = (name, d) => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : d; };
const quick = argv.includes('--quick');
const SLOW_N = quick ? 15 : 40;
const SLOW_MS = 20;
const FAST_N = quick ? 3e5 : 2e6;
const REPEAT = quick ? 2 : 5;

if (argv[0] === '--child') {
  await child(argv[1]);
} else {
  parent();
}

function parent() {
  const engines = arg('--engines', 'threaded,workers,single').split(',');
  const pkgs = [['this', path.resolve(here, '..')]];
  if (arg('--base')) pkgs.push(['base', path.resolve(arg('--base'))]);
  const rows = [];
  for (const engine of engines) {
    for (const [label, dir] of pkgs) {
      const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--child', dir, ...(quick ? ['--quick'] : [])],
        { env: { ...process.env, PARMAP_WASM_BUILD: engine }, encoding: 'utf8', maxBuffer: 1 << 20, timeout: 600000 });
      const r = { package: label, dir, ...JSON.parse(out.trim().split('\n').pop()) };
      rows.push(r);
      console.log(JSON.stringify(r));
    }
  }
  if (pkgs.length > 1) {
    // this / base: < 1 is faster (latency) or slower (throughput is items/s).
    const summary = { bench: 'imap_latency summary', ratios_this_over_base: {} };
    for (const engine of engines) {
      const a = rows.find((r) => r.engine === engine && r.package === 'this');
      const b = rows.find((r) => r.engine === engine && r.package === 'base');
      summary.ratios_this_over_base[engine] = {
        first_result_ms: +(a.slow.first_result_ms / b.slow.first_result_ms).toFixed(3),
        cold_first_result_ms: +(a.slow_cold.first_result_ms / b.slow_cold.first_result_ms).toFixed(3),
        fast_async_items_per_s: +(a.fast_async.items_per_s / b.fast_async.items_per_s).toFixed(3),
        fast_sync_items_per_s: +(a.fast_sync.items_per_s / b.fast_sync.items_per_s).toFixed(3),
      };
    }
    console.log(JSON.stringify(summary));
  }
}

async function child(dir) {
  const { imap, info } = await import(pathToFileURL(path.join(dir, 'index.js')).href);
  const engine = (await info()).build;
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  // Slow source: produced[i] is when item i was handed to imap.
  let produced = [];
  async function* slow(n) {
    for (let i = 0; i < n; i++) {
      await sleep(SLOW_MS);
      produced[i] = performance.now();
      yield i;
    }
  }
  async function slowRun(n) {
    produced = [];
    const lat = [];
    const t0 = performance.now();
    let k = 0;
    for await (const x of imap((v) => v * 2, slow(n))) {
      lat.push(performance.now() - produced[k]);
      if (x !== 2 * k) throw new Error(`slow: item ${k} is ${x}`);
      k++;
    }
    const total = performance.now() - t0;
    const sorted = [...lat].sort((a, b) => a - b);
    const pct = (p) => +sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))].toFixed(1);
    return {
      items: n, source_ms_per_item: SLOW_MS, first_result_ms: +lat[0].toFixed(1),
      median_ms: pct(0.5), p90_ms: pct(0.9), max_ms: +sorted.at(-1).toFixed(1), total_s: +(total / 1000).toFixed(2),
    };
  }
  const slowCold = await slowRun(5);
  const slowRow = await slowRun(SLOW_N);

  async function* countAsync(n) { for (let i = 0; i < n; i++) yield i; }
  function* countSync(n) { for (let i = 0; i < n; i++) yield i; }
  async function fast(gen) {
    let bestMs = Infinity;
    for (let r = 0; r < REPEAT; r++) {
      const t = performance.now();
      let sum = 0, n = 0;
      for await (const x of imap((v) => v & 7, gen(FAST_N))) { sum += x; n++; }
      const ms = performance.now() - t;
      if (n !== FAST_N || sum !== (FAST_N / 8) * 28) throw new Error(`fast: ${n} items, sum ${sum}`);
      bestMs = Math.min(bestMs, ms);
    }
    return { items: FAST_N, best_s: +(bestMs / 1000).toFixed(3), items_per_s: Math.round(FAST_N / (bestMs / 1000)),
      us_per_item: +(bestMs * 1000 / FAST_N).toFixed(3) };
  }
  const fastAsync = await fast(countAsync);
  const fastSync = await fast(countSync);
  console.log(JSON.stringify({ bench: 'imap_latency', engine, slow_cold: slowCold, slow: slowRow, fast_async: fastAsync, fast_sync: fastSync }));
}
