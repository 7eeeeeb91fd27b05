// Runaway code: per-item timeouts that kill, aborts and terminate() that
// never wait for a function that does not return, crash isolation. Every
// test has a watchdog (the test's own timeout), and the functions that loop
// forever are always stopped by the library: none is left running when the
// file ends, so the process exits by itself. runaway.single.test.mjs and
// runaway.workers.test.mjs run it on the other engines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parmap, imap, mapKernel, terminate, info, ParmapError } from '../index.js';
import { BUILD, checkBuild, countWorkers } from './helpers.mjs';

const WATCH = { timeout: 30000 };
const range = (n) => Array.from({ length: n }, (_, i) => i);
// Items 13, 57 and 140 loop forever; the rest return 2x.
const runaway = (x) => { if (x === 13 || x === 57 || x === 140) for (;;); return 2 * x; };

test('timeout: the items over the limit fail with ETIMEOUT and their index, the rest completes', WATCH, async () => {
  await checkBuild();
  const t0 = performance.now();
  const r = await parmap(runaway, range(200), { timeout: 200, exception: 'return' });
  const took = performance.now() - t0;
  assert.equal(r.length, 200);
  const failed = r.map((v, i) => (v instanceof ParmapError ? i : -1)).filter((i) => i >= 0);
  assert.deepEqual(failed, [13, 57, 140]);
  for (const i of failed) {
    assert.equal(r[i].code, 'ETIMEOUT');
    assert.equal(r[i].index, i);
    assert.match(r[i].message, /timed out after 200 ms/);
  }
  for (let i = 0; i < 200; i++) if (!failed.includes(i)) assert.equal(r[i], 2 * i);
  assert.ok(took < 3000, `took ${took.toFixed(0)} ms`);
  // The killed workers were replaced: a parallel call runs as before.
  assert.deepEqual(await parmap((x) => x + 1, range(1000)), range(1000).map((x) => x + 1));
});

// The watchdog runs on the main thread: one that was busy for a while finds
// items "over time" that ended meanwhile, their messages still queued. They
// must not be killed for it (lib/pool.js armWatchdog looks twice).
test('timeout: a main thread busy for longer than the timeout does not time out items that ended meanwhile', WATCH, async () => {
  const slow = (x) => { const t = Date.now() + 2; while (Date.now() < t); return x; };
  assert.deepEqual(await parmap(slow, range(4), { timeout: 1000 }), range(4));   // workers up
  for (let round = 0; round < 3; round++) {
    const busy = setTimeout(() => { const t = Date.now() + 150; while (Date.now() < t); }, 20);
    const r = await parmap(slow, range(60), { timeout: 50, exception: 'return' });
    clearTimeout(busy);
    assert.deepEqual(r.map((v) => (typeof v === 'number' ? v : `${v.code}:${v.index}`)), range(60), `round ${round}`);
  }
});

test('timeout: raise mode rejects with the ETIMEOUT ParmapError', WATCH, async () => {
  const t0 = performance.now();
  const err = await parmap(runaway, range(50), { timeout: 100 }).then(() => null, (e) => e);
  assert.ok(err instanceof ParmapError, String(err));
  assert.equal(err.code, 'ETIMEOUT');
  assert.equal(err.index, 13);
  assert.ok(performance.now() - t0 < 2000);
  // Slow but in time: no failure (and fixed chunks keep the contract).
  const ok = await parmap((x) => { const t = Date.now() + 20; while (Date.now() < t); return x; }, range(20), { timeout: 1000, chunksize: 4 });
  assert.deepEqual(ok, range(20));
});

test('timeout: imap yields ETIMEOUT in place and goes on, in order', WATCH, async () => {
  async function* gen(n) { for (let i = 0; i < n; i++) yield i; }
  const out = [];
  for await (const v of imap(runaway, gen(150), { timeout: 150, exception: 'return' })) out.push(v);
  assert.equal(out.length, 150);
  assert.ok(out[13] instanceof ParmapError && out[13].code === 'ETIMEOUT' && out[13].index === 13);
  assert.ok(out[57] instanceof ParmapError && out[57].index === 57);
  assert.ok(out[140] instanceof ParmapError && out[140].index === 140);
  assert.equal(out[139], 278);
  assert.equal(out[149], 298);
});

test('timeout: bad values are a RangeError naming the option; mapKernel refuses it clearly', WATCH, async () => {
  for (const t of [0, -5, NaN, '100', null, Infinity]) {
    await assert.rejects(parmap((x) => x, [1], { timeout: t }), (e) => e instanceof RangeError && /option timeout/.test(e.message), String(t));
    assert.throws(() => imap((x) => x, [1], { timeout: t }), (e) => e instanceof RangeError && /option timeout/.test(e.message));
  }
  await assert.rejects(mapKernel('collatz_steps', [1, 2], { timeout: 100 }), (e) => e instanceof RangeError && /option timeout is not supported/.test(e.message));
});

// Not on the single engine: there the function runs on the caller's own
// thread, where nothing can stop an endless loop (README: Runaway code).
if (BUILD !== 'single') test('abort: rejects within 100 ms while the function loops forever; the next call works', WATCH, async () => {
  const ac = new AbortController();
  const p = parmap((x) => { for (;;); }, range(4), { signal: ac.signal });   // eslint-disable-line no-unused-vars
  await new Promise((r) => setTimeout(r, 100));
  const t0 = performance.now();
  ac.abort();
  await assert.rejects(p, { name: 'AbortError' });
  const took = performance.now() - t0;
  assert.ok(took < 100, `rejected ${took.toFixed(0)} ms after the abort`);
  assert.deepEqual(await parmap((x) => x * 3, range(10)), range(10).map((x) => 3 * x));
});

if (BUILD !== 'single') test('terminate(): never blocks, rejects pending calls (ECANCELED), makes imap throw', WATCH, async () => {
  const p = parmap((x) => { for (;;); }, range(4));   // eslint-disable-line no-unused-vars
  const it = imap((x) => { if (x === 5) for (;;); return x; }, range(100), { chunksize: 1 });
  const seen = [];
  const loop = (async () => { for await (const v of it) seen.push(v); })();
  await new Promise((r) => setTimeout(r, 150));
  let last = performance.now(), worst = 0;
  const iv = setInterval(() => { const now = performance.now(); worst = Math.max(worst, now - last); last = now; }, 5);
  const t0 = performance.now();
  await terminate();
  const took = performance.now() - t0;
  await assert.rejects(p, (e) => e instanceof ParmapError && e.code === 'ECANCELED' && /terminate\(\)/.test(e.message));
  await assert.rejects(loop, (e) => e instanceof ParmapError && e.code === 'ECANCELED');
  await new Promise((r) => setTimeout(r, 30));
  clearInterval(iv);
  assert.ok(took < 100, `terminate() took ${took.toFixed(0)} ms`);
  assert.ok(worst < 100, `the main thread stalled ${worst.toFixed(0)} ms`);
  assert.ok(seen.length <= 5);
  assert.deepEqual(await parmap((x) => -x, [1, 2]), [-1, -2], 'the next call loads afresh');
  assert.equal((await info()).build, BUILD);
});

if (BUILD !== 'single') test('imap: abort and break settle promptly while the function loops forever', WATCH, async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  // Loaded first (the test before terminated it).
  await parmap((x) => x, [1, 2]);
  const ac = new AbortController();
  const got = [];
  const loop = (async () => {
    for await (const v of imap((x) => { if (x === 3) for (;;); return x; }, range(100), { signal: ac.signal, chunksize: 1 })) got.push(v);
  })();
  // Aborted once item 3 loops (the stream's first results may take a while
  // on a loaded machine: its threads boot, what is timed is the abort).
  for (const t = performance.now(); got.length < 3 && performance.now() - t < 10000;) await sleep(10);
  await sleep(50);
  let t0 = performance.now();
  ac.abort();
  await assert.rejects(loop, { name: 'AbortError' });
  assert.ok(performance.now() - t0 < 200, `the loop threw ${(performance.now() - t0).toFixed(0)} ms after the abort`);
  assert.deepEqual(got.slice(0, 3), [0, 1, 2]);
  let n = 0;
  t0 = 0;
  for await (const v of imap((x) => { if (x === 5) for (;;); return x; }, range(100), { chunksize: 1 })) {
    assert.equal(v, n);
    if (++n === 3) { await sleep(100); t0 = performance.now(); break; }
  }
  assert.ok(performance.now() - t0 < 200, `break took ${(performance.now() - t0).toFixed(0)} ms`);
  assert.deepEqual(await parmap((x) => x * 5, range(10)), range(10).map((x) => 5 * x), 'the next call works');
});

// The threaded engine cannot isolate a thread that dies (process.exit in
// Node ends only that worker thread), but it must not hang: the module is
// retired, the call rejects with ECRASH, the next call loads a fresh one.
if (BUILD === 'threaded') test('threaded: an item that ends its thread (process.exit) rejects the call with ECRASH, never hangs', WATCH, async () => {
  const t0 = performance.now();
  await assert.rejects(parmap((x) => { if (x === 3) process.exit(1); return x; }, range(50), { exception: 'return' }),
    (e) => e instanceof ParmapError && e.code === 'ECRASH' && /threads exited/.test(e.message));
  assert.ok(performance.now() - t0 < 5000, `took ${(performance.now() - t0).toFixed(0)} ms`);
  assert.deepEqual(await parmap((x) => x + 1, range(5)), range(5).map((x) => x + 1), 'the next call works');
});

// An abort whose function never returns retires the threaded module: the
// calls running on it reject, but calls that had not begun (waiting for
// their turn: at most threads + 1 maps run at once; or, this soon after the
// start, for the crew to boot) run on a fresh module instead of failing for
// another call's runaway function.
if (BUILD === 'threaded') test('threaded: calls that had not begun when a runaway call retires the module run on a fresh one', WATCH, async () => {
  const { threads } = await info();
  const acs = [], runaways = [];
  for (let i = 0; i <= threads; i++) {   // every turn taken by a function that never returns
    const ac = new AbortController();
    acs.push(ac);
    runaways.push(parmap((x) => { for (;;); }, range(4), { signal: ac.signal }).then(() => 'resolved', (e) => e));   // eslint-disable-line no-unused-vars
  }
  await new Promise((r) => setTimeout(r, 100));
  const waiting = range(6).map((k) => parmap((x, k) => x * 10 + k, range(20), { args: [k] }));
  await new Promise((r) => setTimeout(r, 50));
  acs[0].abort();
  const results = await Promise.all(waiting);
  for (let k = 0; k < 6; k++) assert.deepEqual(results[k], range(20).map((x) => x * 10 + k), `waiting call ${k}`);
  // The other runaways ran on until now: on the first module (they reject
  // with its end), or, had they not begun there, on the fresh one.
  for (const ac of acs) ac.abort();
  const ends = await Promise.all(runaways);
  assert.equal(ends[0].name, 'AbortError');
  for (const e of ends.slice(1))
    assert.ok(e.name === 'AbortError' || (e instanceof ParmapError && e.code === 'ECANCELED' && /kept a thread busy/.test(e.message)), String(e));
  assert.deepEqual(await parmap((x) => x + 1, range(5)), range(5).map((x) => x + 1), 'the next call works');
});

// A throw in a timer an item set: in Node it ends that worker thread, and
// it must not end this process (Emscripten rethrew it on the main thread).
if (BUILD !== 'single') test('an error an item leaves behind in its thread (a timer that throws) does not end the process', WATCH, async () => {
  const r = await parmap((x) => { if (x === 3) setTimeout(() => { throw new Error('late'); }, 0); return x; }, range(20))
    .catch((e) => e);
  if (Array.isArray(r)) assert.deepEqual(r, range(20));
  else assert.equal(r.code, 'ECRASH', String(r));
  await new Promise((res) => setTimeout(res, 300));   // the thread has died by now
  assert.deepEqual(await parmap((x) => x * 3, range(5)), range(5).map((x) => 3 * x), 'the next call works');
});

// Only the workers engine isolates crashes: pthreads share one memory.
if (BUILD === 'workers') test('crash isolation: a worker that dies fails only its item (ECRASH), the rest completes', WATCH, async () => {
  // process.exit in a worker_threads worker ends that worker only.
  const dies = (x) => { if (x === 7 || x === 300) process.exit(3); return x * 2; };
  const r = await parmap(dies, range(500), { exception: 'return' });
  assert.equal(r.length, 500);
  for (const i of [7, 300]) {
    assert.ok(r[i] instanceof ParmapError, `item ${i}: ${r[i]}`);
    assert.equal(r[i].code, 'ECRASH');
    assert.equal(r[i].index, i);
  }
  for (let i = 0; i < 500; i++) if (i !== 7 && i !== 300) assert.equal(r[i], 2 * i, `item ${i}`);
  await assert.rejects(parmap(dies, range(20)), (e) => e instanceof ParmapError && e.code === 'ECRASH' && e.index === 7);
  assert.deepEqual(await parmap((x) => x + 1, range(100)), range(100).map((x) => x + 1), 'the pool is whole again');
  assert.equal((await info()).threads, (await info()).cpuCount);
});

// Last: on the workers engine it leaves a bigger pool behind.
test('threads above the pool never block: threaded caps to its fixed pool, workers grows in the background', WATCH, async () => {
  const before = await info();
  let last = performance.now(), worst = 0;
  const iv = setInterval(() => { const now = performance.now(); worst = Math.max(worst, now - last); last = now; }, 5);
  for (const threads of [3, 4, 6]) {
    const r = await parmap((x) => { const t = Date.now() + 1; while (Date.now() < t); return x + 1; }, range(60), { threads, chunksize: 1 });
    assert.deepEqual(r, range(60).map((x) => x + 1));
  }
  clearInterval(iv);
  assert.ok(worst < 100, `the main thread stalled ${worst.toFixed(0)} ms`);
  const after = await info();
  if (BUILD === 'threaded') assert.equal(after.threads, before.threads, 'the threaded pool has a fixed size');
  if (BUILD === 'workers') assert.equal(after.threads, 6);
  if (BUILD === 'single') assert.equal(after.threads, 1);
});

// { threads: 1000 } over 5 items grew the pool to 1000 workers, and a pool
// that grew booted all its new workers at once: 200 at once on 2 cores took
// the call 5 s, and a small call made while they booted 0.1-0.8 s.
if (BUILD === 'workers') test('workers: threads far above the items and the cores: no more workers than items, booting a few at a time', WATCH, async () => {
  const few = countWorkers(`
    const r = await pm.parmap((x) => x * 2, [0, 1, 2, 3, 4], { threads: 1000 });
    await new Promise((res) => setTimeout(res, 300));
    return { ok: JSON.stringify(r) === '[0,2,4,6,8]' };`, 'workers');
  assert.ok(few.ok);
  assert.equal(few.threads, 5, 'the pool grew to the items, not to 1000');
  assert.ok(few.started <= 5, `${few.started} workers started`);
  const many = countWorkers(`
    const t0 = performance.now();
    const r = await pm.parmap((x) => x + 1, Array.from({ length: 120 }, (_, i) => i), { threads: 120 });
    const atEnd = started, took = performance.now() - t0;
    const t1 = performance.now();
    await pm.parmap((x) => x, [1, 2, 3]);
    return { ok: r.length === 120 && r[119] === 120, atEnd, took, small: performance.now() - t1 };`, 'workers');
  assert.ok(many.ok);
  assert.equal(many.threads, 120, 'the pool grows to what was asked, in the background');
  assert.ok(many.atEnd < 60, `${many.atEnd} of 120 workers had started by the call's end`);
  assert.ok(many.small < 1000, `a small call took ${many.small.toFixed(0)} ms while the pool grew`);
});
