// run.mjs - parmap-wasm's benchmarks; prints one JSON line per measurement.
//
//   cd wasm/bench && npm install && node run.mjs [--quick] [--load] [--only-trivial]
//
// --load: a busy-looping child process runs beside every measurement (issue
// 15's "under load" line: parmap-wasm must keep its lead over hand-batched
// piscina when a core is taken: no spin-waiting that collapses then).
// --only-trivial: only x*2 and objects (section 2 and 3).
//
// 1. mapKernel('mandelbrot_row') on 1 and 2 threads vs the same C file
//    compiled natively (gcc -O2) on parmap's threads executor.
// 2. x => x * 2 over 1e6 numbers (array and Float64Array), automatic
//    chunking, vs piscina hand-batched into 64 chunks, and piscina /
//    workerpool with one task per item (on fewer items: reported per item).
// 3. ({s, n}) => s.repeat(n).length over 1e5 objects vs piscina hand-batched.
// 4. mapKernel('affine') over 4e6 doubles: ordinary typed arrays (copied in
//    and out) vs heap arrays (heapArray(): in place, nothing copied).
// Every peer runs in this same process run, warm (best of REPEAT).
//
// other_load: how many CPUs other processes kept busy while a measurement
// ran (Linux: /proc/stat busy time minus this process's own CPU time, over
// the wall time). On the shared 2-core machine 0.5 means half a core was
// taken by someone else, and every figure of that line suffers.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import os from 'node:os';
import { readFileSync as readProc } from 'node:fs';
import { parmap, mapKernel, heapArray, info, terminate } from '../index.js';

const quick = process.argv.includes('--quick');
const onlyTrivial = process.argv.includes('--only-trivial');
let hog = null;
if (process.argv.includes('--load')) {
  hog = spawn(process.execPath, ['-e', 'for (;;);'], { stdio: 'ignore' });
  process.on('exit', () => hog.kill('SIGKILL'));
  await new Promise((r) => setTimeout(r, 200));
}
const REPEAT = quick ? 3 : 7;
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const THREADS = 2;

const emit = (o) => console.log(JSON.stringify(o));

/** Busy CPU seconds of the whole machine (null where /proc/stat is missing). */
function machineBusy() {
  try {
    const f = readProc('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3] + (f[4] || 0);
    return (f.reduce((a, b) => a + b, 0) - idle) / 100;   // USER_HZ ticks
  } catch {
    return null;
  }
}

/** Start measuring other processes' load; the returned function gives it. */
function otherLoad() {
  const busy0 = machineBusy(), own0 = process.cpuUsage(), t0 = performance.now();
  return () => {
    const wall = (performance.now() - t0) / 1000, busy = machineBusy();
    if (busy0 === null || busy === null || wall <= 0) return null;
    const own = process.cpuUsage(own0);
    return Math.max(0, +(((busy - busy0) - (own.user + own.system) / 1e6) / wall).toFixed(2));
  };
}

/** Best time of `repeat` runs (ms), and the other load meanwhile. */
async function best(f, repeat = REPEAT) {
  let b = Infinity;
  const load = otherLoad();
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    await f();
    b = Math.min(b, performance.now() - t0);
  }
  best.otherLoad = load();
  return b;
}

function buildNative() {
  const dir = path.join(here, 'native');
  mkdirSync(dir, { recursive: true });
  const exe = path.join(dir, 'native_mandelbrot');
  // The library's portable sources, as cmake/sources.cmake lists them.
  const top = readFileSync(path.join(root, 'cmake/sources.cmake'), 'utf8');
  const core = /set\(PM_SOURCES([^)]*)\)/.exec(top)[1].split(/\s+/).filter(Boolean).map((f) => path.join(root, f));
  execFileSync('gcc', ['-O2', '-std=gnu11', '-pthread', `-I${root}/include`, `-I${root}/src`, `-I${here}/../include`,
    ...core, path.join(here, '../src/kernel_registry.c'), path.join(here, '../kernels/mandelbrot.c'),
    path.join(here, 'native_mandelbrot.c'), '-lm', '-o', exe], { stdio: 'inherit' });
  return exe;
}

async function mandelbrot() {
  const width = 1200, height = 900, maxIter = 500;
  const exe = buildNative();
  const native = execFileSync(exe, [width, height, maxIter, 2 * REPEAT, 1, THREADS].map(String), { encoding: 'utf8' })
    .trim().split('\n').map((l) => JSON.parse(l));
  native.forEach(emit);
  const rows = Int32Array.from({ length: height }, (_, y) => y);
  const wasm = { 1: Infinity, [THREADS]: Infinity };
  const imgs = {};
  for (const threads of [1, THREADS]) await mapKernel('mandelbrot_row', rows, { width, height, maxIter, threads });   // warm-up (tier-up)
  // Interleaved, best of 2 x REPEAT: the machine may be shared with other jobs.
  const load = otherLoad();
  for (let r = 0; r < 2 * REPEAT; r++) {
    for (const threads of [1, THREADS]) {
      const t0 = performance.now();
      imgs[threads] = await mapKernel('mandelbrot_row', rows, { width, height, maxIter, threads });
      wasm[threads] = Math.min(wasm[threads], performance.now() - t0);
    }
  }
  const other = load();
  for (const threads of [1, THREADS]) {
    const img = imgs[threads];
    let s = 0n;
    for (let i = 0; i < img.length; i++) s = (s * 31n + BigInt(img[i])) & 0xffffffffffffffffn;
    emit({ bench: 'mandelbrot_row', impl: 'parmap-wasm', threads, width, height, maxIter, ms: +wasm[threads].toFixed(2),
      checksum: s.toString(16).padStart(16, '0'), other_load: other });
  }
  const nat = Object.fromEntries(native.map((n) => [n.threads, n.ms]));
  emit({ bench: 'mandelbrot_row', summary: true, wasm_over_native_2t: +(wasm[THREADS] / nat[THREADS]).toFixed(3),
    wasm_over_native_1t: +(wasm[1] / nat[1]).toFixed(3), wasm_speedup_2t: +(wasm[1] / wasm[THREADS]).toFixed(3),
    native_speedup_2t: +(nat[1] / nat[THREADS]).toFixed(3), goal: 'wasm <= 1.5x native, speedup >= 1.9' });
}

async function trivial(Piscina, workerpool) {
  const n = 1e6;
  const xs = Array.from({ length: n }, (_, i) => i);
  const f64 = new Float64Array(xs);
  const fn = (x) => x * 2;
  await parmap(fn, xs);
  const check = await parmap(fn, f64);
  if (check.length !== n || check[n - 1] !== 2 * (n - 1)) throw new Error('x => x * 2 gave wrong results');
  let ms = await best(() => parmap(fn, xs));
  const msArray = ms;
  emit({ bench: 'x*2', impl: 'parmap-wasm', input: 'Array', items: n, threads: THREADS, ms: +ms.toFixed(2), us_per_item: +(ms * 1e3 / n).toFixed(4), goal_us_per_item: 0.02, other_load: best.otherLoad });
  ms = await best(() => parmap(fn, f64));
  const msF64 = ms;
  emit({ bench: 'x*2', impl: 'parmap-wasm', input: 'Float64Array', items: n, threads: THREADS, ms: +ms.toFixed(2), us_per_item: +(ms * 1e3 / n).toFixed(4), goal_us_per_item: 0.02, other_load: best.otherLoad });

  const pool = new Piscina({ filename: path.join(here, 'piscina_worker.mjs'), minThreads: THREADS, maxThreads: THREADS });
  const batched = async (arr, name) => {
    const size = Math.ceil(arr.length / 64);
    const parts = [];
    for (let i = 0; i < arr.length; i += size) parts.push(pool.run({ fn: name, arg: arr.slice(i, i + size) }));
    return (await Promise.all(parts)).flat();
  };
  await batched(xs, 'doubleBatch');
  ms = await best(() => batched(xs, 'doubleBatch'));
  emit({ bench: 'x*2', impl: 'piscina, 64 hand-made batches', input: 'Array', items: n, threads: THREADS, ms: +ms.toFixed(2), us_per_item: +(ms * 1e3 / n).toFixed(4), other_load: best.otherLoad });
  emit({ bench: 'x*2', summary: true, piscina_batched_over_parmap_array: +(ms / msArray).toFixed(2),
    piscina_batched_over_parmap_f64: +(ms / msF64).toFixed(2), goal: '>= 10' });
  const few = 20000;
  ms = await best(() => Promise.all(xs.slice(0, few).map((x) => pool.run({ fn: 'double', arg: x }))), 3);
  emit({ bench: 'x*2', impl: 'piscina, one task per item', items: few, threads: THREADS, ms: +ms.toFixed(2), us_per_item: +(ms * 1e3 / few).toFixed(4), other_load: best.otherLoad });
  const wp = workerpool.pool(path.join(here, 'workerpool_worker.cjs'), { minWorkers: THREADS, maxWorkers: THREADS, workerType: 'thread' });
  ms = await best(() => Promise.all(xs.slice(0, few).map((x) => wp.exec('double', [x]))), 3);
  emit({ bench: 'x*2', impl: 'workerpool, one task per item', items: few, threads: THREADS, ms: +ms.toFixed(2), us_per_item: +(ms * 1e3 / few).toFixed(4), other_load: best.otherLoad });

  const objs = Array.from({ length: 1e5 }, (_, i) => ({ s: 'ab', n: i % 10 }));
  const rl = ({ s, n: k }) => s.repeat(k).length;
  await parmap(rl, objs);
  ms = await best(() => parmap(rl, objs));
  emit({ bench: 'objects s.repeat(n).length', impl: 'parmap-wasm', items: objs.length, threads: THREADS, ms: +ms.toFixed(2), us_per_item: +(ms * 1e3 / objs.length).toFixed(4), other_load: best.otherLoad });
  await batched(objs, 'repeatLenBatch');
  const msp = await best(() => batched(objs, 'repeatLenBatch'));
  emit({ bench: 'objects s.repeat(n).length', impl: 'piscina, 64 hand-made batches', items: objs.length, threads: THREADS, ms: +msp.toFixed(2), us_per_item: +(msp * 1e3 / objs.length).toFixed(4), other_load: best.otherLoad });
  emit({ bench: 'objects s.repeat(n).length', summary: true, piscina_batched_over_parmap: +(msp / ms).toFixed(2), goal: '> 1' });
  await pool.destroy();
  await wp.terminate();
}

async function zeroCopy() {
  const n = 4e6;
  const values = Float64Array.from({ length: n }, (_, i) => i);
  const xs = await heapArray(Float64Array, values);
  const ys = await heapArray(Float64Array, n);
  const copied = await mapKernel('affine', values, { by: 3, plus: 1 });
  const inPlace = await mapKernel('affine', xs, { by: 3, plus: 1, out: ys });
  for (const i of [0, 12345, n - 1]) if (copied[i] !== inPlace[i] || copied[i] !== 3 * i + 1) throw new Error('affine gave wrong results');
  const ms = await best(() => mapKernel('affine', values, { by: 3, plus: 1 }));
  emit({ bench: 'mapKernel affine', impl: 'typed arrays (copied in and out)', items: n, threads: THREADS, ms: +ms.toFixed(2), other_load: best.otherLoad });
  const msHeap = await best(() => mapKernel('affine', xs, { by: 3, plus: 1, out: ys }));
  emit({ bench: 'mapKernel affine', impl: 'heap arrays (in place)', items: n, threads: THREADS, ms: +msHeap.toFixed(2), other_load: best.otherLoad });
  xs.free();
  ys.free();
}

emit({ bench: 'env', node: process.version, cpus: os.availableParallelism(), loadavg: os.loadavg().map((x) => +x.toFixed(2)), load: !!hog, parmap: await info() });
if (!onlyTrivial) await mandelbrot();
let Piscina = null, workerpool = null;
try {
  Piscina = (await import('piscina')).default;
  workerpool = (await import('workerpool')).default;
} catch {
  emit({ bench: 'x*2', skipped: 'npm install in wasm/bench first (piscina, workerpool)' });
}
if (Piscina) await trivial(Piscina, workerpool);
if (!onlyTrivial) await zeroCopy();
await terminate();
if (hog) hog.kill('SIGKILL');
