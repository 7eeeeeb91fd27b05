// breakeven.mjs - where plain items.map wins: the same function over 64
// items with items.map on the main thread and with parmap (default engine,
// warm), for growing amounts of work per item. Prints JSON: each row's total
// work (the items.map time), both medians, and the break-even: the least
// total work from which parmap is faster (linear interpolation between the
// two rows around the crossing).
// Usage: node bench/breakeven.mjs [reps=15]
import os from 'node:os';
import { parmap, info, terminate } from '../index.js';

const reps = Number(process.argv[2] || 15);
const N = 64;
const items = Array.from({ length: N }, (_, i) => i);
// Self-contained (shipped by source): the work per item is its argument.
const work = (x, iters) => { let s = 0; for (let i = 0; i < iters; i++) s += Math.sqrt(i + x); return s; };
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

async function time(f) {
  const ts = [];
  for (let r = 0; r < reps; r++) {
    const t = performance.now();
    await f();
    ts.push(performance.now() - t);
  }
  return median(ts);
}

const i = await info();
// Warm both paths up (JIT, the pool's workers, wasm tier-up).
for (let r = 0; r < 50; r++) { items.map((x) => work(x, 1000)); await parmap(work, items, { args: [1000] }); }

const rows = [];
for (const iters of [1, 10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000]) {
  const mapMs = await time(() => items.map((x) => work(x, iters)));
  const parmapMs = await time(() => parmap(work, items, { args: [iters] }));
  rows.push({ itersPerItem: iters, totalWorkMs: +mapMs.toFixed(4), mapMs: +mapMs.toFixed(4), parmapMs: +parmapMs.toFixed(4), faster: parmapMs < mapMs ? 'parmap' : 'items.map' });
}
let breakEvenMs = null;
for (let k = 1; k < rows.length; k++) {
  const a = rows[k - 1], b = rows[k];
  if (a.faster === 'items.map' && b.faster === 'parmap') {
    // Where (parmap - map) crosses zero, in total work.
    const da = a.parmapMs - a.mapMs, db = b.parmapMs - b.mapMs;
    breakEvenMs = +(a.totalWorkMs + (b.totalWorkMs - a.totalWorkMs) * (da / (da - db))).toFixed(3);
  }
}
console.log(JSON.stringify({
  machine: { cpus: os.availableParallelism(), model: os.cpus()[0].model, node: process.version, loadavg: os.loadavg().map((v) => +v.toFixed(2)) },
  engine: i.build, threads: i.threads, items: N, reps, breakEvenMs, rows,
}, null, 2));
await terminate();
