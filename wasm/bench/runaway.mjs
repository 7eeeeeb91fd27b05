// runaway.mjs - 10,000 items of which 3 loop forever, a 200 ms timeout per
// item: parmap-wasm (the engine PARMAP_WASM_BUILD picks, and the workers
// engine) next to workerpool's .timeout() on the same work, in this same run.
// Prints one JSON line per measurement.
//
//   cd wasm/bench && npm install && node runaway.mjs [--load]
//
// --load: a busy-looping child process runs beside every measurement (the
// "under load" line of the table; run.mjs --load does the same for
// x*2 and objects against hand-batched piscina).
import { spawn } from 'node:child_process';
import os from 'node:os';
import { parmap, info, terminate, configure } from '../index.js';

const emit = (o) => console.log(JSON.stringify(o));
const N = 10000, TIMEOUT = 200, THREADS = 2;
const RUNAWAY = new Set([1111, 5555, 9999]);
const items = Array.from({ length: N }, (_, i) => i);

// ~20 µs of work per item; items 1111, 5555 and 9999 never return.
function work(x) {
  if (x === 1111 || x === 5555 || x === 9999) for (;;);
  let s = 0;
  for (let d = 1; d < 4000; d++) s += x % d;
  return s;
}

let hog = null;
if (process.argv.includes('--load')) {
  hog = spawn(process.execPath, ['-e', 'for (;;);'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 200));
}

async function parmapRun(label) {
  const i = await info();
  // warm up (workers started, function compiled)
  await parmap(work, items.slice(0, 200), { timeout: TIMEOUT, exception: 'return' });
  const t0 = performance.now();
  const r = await parmap(work, items, { timeout: TIMEOUT, exception: 'return', threads: THREADS });
  const ms = performance.now() - t0;
  const timedOut = r.filter((v) => v && v.code === 'ETIMEOUT').map((e) => e.index);
  emit({ bench: 'runaway 10000 items, 3 endless, timeout 200 ms', impl: `parmap-wasm (${label}: ${i.build} engine)`,
    threads: THREADS, ms: +ms.toFixed(1), etimeout: timedOut.length, indices: timedOut, goal_ms: 1500, load: !!hog });
  return ms;
}

async function workerpoolRun() {
  let workerpool;
  try { workerpool = (await import('workerpool')).default; } catch { emit({ bench: 'runaway', skipped: 'npm install in wasm/bench first (workerpool)' }); return null; }
  const pool = workerpool.pool({ maxWorkers: THREADS });
  const t0 = performance.now();
  const settled = await Promise.all(items.map((x) => pool.exec(work, [x]).timeout(TIMEOUT).then((v) => v, (e) => e)));
  const ms = performance.now() - t0;
  const timedOut = settled.filter((v) => v instanceof Error && v.name === 'TimeoutError').length;
  await pool.terminate(true);
  emit({ bench: 'runaway 10000 items, 3 endless, timeout 200 ms', impl: 'workerpool, one task per item with .timeout(200)',
    threads: THREADS, ms: +ms.toFixed(1), etimeout: timedOut, load: !!hog });
  return ms;
}

emit({ bench: 'env', node: process.version, cpus: os.availableParallelism(), loadavg: os.loadavg().map((x) => +x.toFixed(2)), load: !!hog });
try {
  const a = await parmapRun('default');
  await terminate();
  configure({ build: 'workers' });
  const b = await parmapRun('forced');
  await terminate();
  const w = await workerpoolRun();
  if (w) emit({ bench: 'runaway', summary: true, workerpool_over_parmap_default: +(w / a).toFixed(2), workerpool_over_parmap_workers: +(w / b).toFixed(2) });
} finally {
  if (hog) hog.kill('SIGKILL');
}
