// coldstart.mjs - the first call in a fresh Node process: parmap-wasm (each
// engine) beside piscina and workerpool doing the same small job (double
// 4 numbers), each in its own new process, several times. Prints JSON:
// per library, the medians (and min/max) of
//   import   ms to import the library,
//   first    ms from before the import to the first call's result (one case
//            awaits info() before that call, as a program printing it would),
//   warm     ms of a small call after 50 warm-up calls (mean of 200),
//   steady   ms of a small call after 2,250 calls (mean of 1,000: the JIT done),
//   process  ms of the whole child process, spawn to exit (as a user sees it),
// and which children crashed (they are run again, up to twice).
// and, as the floor of a first call that needs a worker, an empty
// worker_threads worker's start (first: new Worker to its first message).
// Usage: node bench/coldstart.mjs [runs=7]
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import path from 'node:path';

const here = fileURLToPath(new URL('.', import.meta.url));
const runs = Number(process.argv[2] || 7);
// What `import 'parmap-wasm'` loads in Node: the bundle dist/index.mjs
// (package.json's "node" condition). PARMAP_BENCH_PKG: another entry to
// compare (index.js, or an older commit's copy of the package).
const pkg = process.env.PARMAP_BENCH_PKG ? new URL(process.env.PARMAP_BENCH_PKG, 'file://' + process.cwd() + '/').href : new URL('../dist/index.mjs', import.meta.url).href;

// Each child prints { import, first, warm, steady } and exits by itself (the
// libraries' idle workers must not keep it alive; piscina/workerpool are
// closed explicitly, as their users must). A child sets t0, t1 (imported),
// one() (the small call) and close(); TAIL times it.
const TAIL = `
    await one();
    const t2 = performance.now();
    for (let i = 0; i < 50; i++) await one();
    let t = performance.now();
    for (let i = 0; i < 200; i++) await one();
    const warm = (performance.now() - t) / 200;
    // Steady state: the JIT has compiled the hot paths (it takes a few
    // thousand calls on every side: main thread and workers).
    for (let i = 0; i < 2000; i++) await one();
    t = performance.now();
    for (let i = 0; i < 1000; i++) await one();
    const steady = (performance.now() - t) / 1000;
    await close();
    console.log(JSON.stringify({ import: t1 - t0, first: t2 - t0, warm, steady }));`;
const CHILD = {
  parmap: `
    const t0 = performance.now();
    const m = await import(${JSON.stringify(pkg)});
    const t1 = performance.now();
    const one = () => m.parmap((x) => x * 2, [1, 2, 3, 4]);
    const close = async () => {};` + TAIL,
  // A program that asks info() first (prints the engine, say): the module
  // is loaded then, and the first call comes after.
  parmapInfo: `
    const t0 = performance.now();
    const m = await import(${JSON.stringify(pkg)});
    const t1 = performance.now();
    await m.info();
    const one = () => m.parmap((x) => x * 2, [1, 2, 3, 4]);
    const close = async () => {};` + TAIL,
  piscina: `
    const t0 = performance.now();
    const { Piscina } = await import(${JSON.stringify(import.meta.resolve('piscina'))});
    const t1 = performance.now();
    const pool = new Piscina({ filename: ${JSON.stringify(here + 'piscina_worker.mjs')} });
    const one = () => Promise.all([1, 2, 3, 4].map((x) => pool.run({ fn: 'double', arg: x })));
    const close = () => pool.destroy();` + TAIL,
  workerpool: `
    const t0 = performance.now();
    const { default: workerpool } = await import(${JSON.stringify(import.meta.resolve('workerpool'))});
    const t1 = performance.now();
    const pool = workerpool.pool(${JSON.stringify(here + 'workerpool_worker.cjs')}, { workerType: 'thread' });
    const one = () => Promise.all([1, 2, 3, 4].map((x) => pool.exec('double', [x])));
    const close = () => pool.terminate();` + TAIL,
};

// The floor for any library that runs the function in a worker: an empty
// worker_threads worker, from new Worker to its first message.
CHILD.emptyWorker = `
    const { Worker } = await import('node:worker_threads');
    const t0 = performance.now();
    const w = new Worker('require("node:worker_threads").parentPort.postMessage(1)', { eval: true });
    await new Promise((r) => w.once('message', r));
    const first = performance.now() - t0;
    await w.terminate();
    console.log(JSON.stringify({ first }));`;

const cases = [
  ['parmap-wasm threaded', 'parmap', { PARMAP_WASM_BUILD: 'threaded' }],
  ['parmap-wasm workers', 'parmap', { PARMAP_WASM_BUILD: 'workers' }],
  ['parmap-wasm single', 'parmap', { PARMAP_WASM_BUILD: 'single' }],
  ['parmap-wasm threaded, info() first', 'parmapInfo', { PARMAP_WASM_BUILD: 'threaded' }],
  ['piscina', 'piscina', {}],
  ['workerpool', 'workerpool', {}],
  ['empty worker (the floor)', 'emptyWorker', {}],
];

const stat = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const r = (v) => Math.round(v * 1000) / 1000;
  return { median: r(s[s.length >> 1]), min: r(s[0]), max: r(s[s.length - 1]) };
};

// Each child is a script file (not `node -e`), as a user's program would be.
const tmp = mkdtempSync(path.join(os.tmpdir(), 'parmap-coldstart-'));
const script = Object.fromEntries(Object.entries(CHILD).map(([k, src]) => {
  const f = path.join(tmp, `${k}.mjs`);
  writeFileSync(f, src);
  return [k, f];
}));

const samples = Object.fromEntries(cases.map(([name]) => [name, { import: [], first: [], warm: [], steady: [], process: [], crashed: [] }]));
// Interleaved (A B C ... A B C ...), so a drift of the machine's speed hits all alike.
for (let r = 0; r < runs + 1; r++) {
  for (const [name, kind, env] of cases) {
    let t, out;
    // A child that crashes is counted and run again (Node 20.20 sometimes
    // aborts in piscina's worker, on an assertion of its require(esm)).
    for (let attempt = 0; ; attempt++) {
      t = performance.now();
      try {
        out = execFileSync(process.execPath, [script[kind]],
          { cwd: here, encoding: 'utf8', timeout: 60000, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
        break;
      } catch (e) {
        samples[name].crashed.push(String(e.stderr || e.message).split('\n').find((l) => /\S/.test(l)).trim().slice(0, 200));
        if (attempt === 2) throw e;
      }
    }
    const wall = performance.now() - t;
    if (r === 0) continue;   // warm-up round: file caches
    const o = JSON.parse(out.trim());
    for (const k of ['import', 'first', 'warm', 'steady']) if (k in o) samples[name][k].push(o[k]);
    samples[name].process.push(wall);
  }
}
rmSync(tmp, { recursive: true, force: true });
const result = {
  machine: { cpus: os.availableParallelism(), model: os.cpus()[0].model, node: process.version, loadavg: os.loadavg().map((v) => +v.toFixed(2)) },
  runs,
  ms: Object.fromEntries(Object.entries(samples).map(([n, s]) => [n, Object.fromEntries(Object.entries(s)
    .filter(([k, v]) => v.length && k !== 'crashed').map(([k, v]) => [k, stat(v)]))])),
  // children that crashed (and were run again), by case: their first stderr line
  crashed: Object.fromEntries(Object.entries(samples).filter(([, s]) => s.crashed.length).map(([n, s]) => [n, s.crashed])),
};
console.log(JSON.stringify(result, null, 2));
