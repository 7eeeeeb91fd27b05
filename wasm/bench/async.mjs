// async.mjs - an async function that awaits 1 ms, over 200 items, on 2
// threads (issue 16's goal: <= 0.15 s), on each parmap-wasm engine, against
// the same function on piscina (16 tasks in flight per worker, like
// parmap's default concurrency, and its default of 1), workerpool, and on
// the main thread (one after another, and all at once with Promise.all).
// Prints one JSON line per measurement: first call in a fresh process
// (cold: the side pool of workers starts) and best of REPEAT warm calls.
//
//   cd wasm/bench && npm install && node async.mjs
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const N = 200, THREADS = 2, REPEAT = 7;
const emit = (o) => console.log(JSON.stringify(o));
const xs = Array.from({ length: N }, (_, i) => i);
const sleepDouble = async (x) => { await new Promise((r) => setTimeout(r, 1)); return x * 2; };
const check = (r) => { if (r.length !== N || r[N - 1] !== 2 * (N - 1)) throw new Error('wrong results'); };

async function measure(f) {
  let t = performance.now();
  check(await f());
  const cold = performance.now() - t;
  let best = Infinity;
  for (let i = 0; i < REPEAT; i++) {
    t = performance.now();
    check(await f());
    best = Math.min(best, performance.now() - t);
  }
  return { first_ms: +cold.toFixed(1), warm_ms: +best.toFixed(1) };
}

const engine = process.argv[2];
if (engine) {
  // One engine, in its own process (so that the first call is a cold one).
  process.env.PARMAP_WASM_BUILD = engine;
  const { parmap, info, terminate } = await import('../index.js');
  const r = await measure(() => parmap(sleepDouble, xs, { threads: THREADS }));
  emit({ bench: 'async_1ms_200', impl: `parmap-wasm ${engine}`, engine: (await info()).build, threads: THREADS, ...r,
    goal_ms: 150, ok: r.warm_ms <= 150 });
  await terminate();
} else {
  const self = fileURLToPath(import.meta.url);
  for (const e of ['threaded', 'workers', 'single']) {
    const p = spawnSync(process.execPath, [self, e], { encoding: 'utf8' });
    process.stdout.write(p.stdout);
    if (p.status !== 0) emit({ bench: 'async_1ms_200', impl: `parmap-wasm ${e}`, error: p.stderr.trim().split('\n').slice(-3).join(' ') });
  }
  const { Piscina } = await import('piscina');
  const workerpool = (await import('workerpool')).default;
  const filename = new URL('./piscina_worker.mjs', import.meta.url).href;
  for (const perWorker of [16, 1]) {
    const pool = new Piscina({ filename, minThreads: THREADS, maxThreads: THREADS, concurrentTasksPerWorker: perWorker });
    const r = await measure(() => Promise.all(xs.map((x) => pool.run({ fn: 'sleepDouble', arg: x }))));
    emit({ bench: 'async_1ms_200', impl: `piscina concurrentTasksPerWorker=${perWorker}`, threads: THREADS, ...r });
    await pool.destroy();
  }
  const wp = workerpool.pool(fileURLToPath(new URL('./workerpool_worker.cjs', import.meta.url)), { minWorkers: THREADS, maxWorkers: THREADS });
  const r = await measure(() => Promise.all(xs.map((x) => wp.exec('sleepDouble', [x]))));
  emit({ bench: 'async_1ms_200', impl: 'workerpool', threads: THREADS, ...r });
  await wp.terminate();
  emit({ bench: 'async_1ms_200', impl: 'main thread, one after another', threads: 1,
    ...await measure(async () => { const out = []; for (const x of xs) out.push(await sleepDouble(x)); return out; }) });
  emit({ bench: 'async_1ms_200', impl: 'main thread, Promise.all', threads: 1, ...await measure(() => Promise.all(xs.map(sleepDouble))) });
}
