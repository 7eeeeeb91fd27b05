// imap's lifecycle and promptness (issue 16): results from a slow source
// come item by item, a pause does not hold a part-filled batch back, every
// way of ending (return before or during the start, throw(), an error after
// the source ended, abort while draining, a timeout in raise mode,
// terminate()) settles once, and an iterator that is dropped or left with
// break does not keep Node alive (checked in child processes with a
// watchdog). imap_life.workers / .single run it on the other engines.
import { test } from 'node:test';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { imap, terminate, info, ParmapError } from '../index.js';
import { BUILD, checkBuild } from './helpers.mjs';

const WATCH = { timeout: 30000 };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function collect(it) { const out = []; for await (const x of it) out.push(x); return out; }

test('imap: a slow source is handed on item by item', WATCH, async () => {
  await checkBuild();
  await collect(imap((v) => v, [1, 2, 3]));   // workers up, function compiled: this measures imap, not start-up
  const produced = [];
  async function* slow(n) { for (let i = 0; i < n; i++) { await sleep(20); produced[i] = performance.now(); yield i; } }
  const lat = [];
  let k = 0;
  for await (const x of imap((v) => v * 3, slow(15))) {
    assert.equal(x, 3 * k);
    lat.push(performance.now() - produced[k++]);
  }
  lat.sort((a, b) => a - b);
  // Batches of 64 (the old behaviour) made these ~1 s; the goal is about one
  // item's time + 30 ms. Loose bounds: the machine running this may be busy.
  assert.ok(lat[7] < 50, `median latency ${lat[7].toFixed(1)} ms (all: ${lat.map((x) => x.toFixed(0)).join(' ')})`);
  assert.ok(lat[14] < 400, `worst latency ${lat[14].toFixed(1)} ms`);
});

// Threaded engine: the feed's batches go into the in ring promptly, and the
// ring's reader tells the C core's feeder PM_SOURCE_LATER when it finds the
// ring empty, so the chunk open when the source pauses is handed on as is.
test('imap: a burst then a pause: the burst is handed on before the pause ends', WATCH, async () => {
  const t = {};
  async function* bursty() {
    for (let i = 0; i < 3000; i++) yield i;   // fast: the feed measures a fast source, batches grow
    t.burst = performance.now();
    await sleep(600);
    t.pause = performance.now();
    yield -1;
  }
  const got = [];
  let lastOfBurst = 0;
  for await (const x of imap((v) => v + 1, bursty())) {
    got.push(x);
    if (x === 3000) lastOfBurst = performance.now();
  }
  assert.equal(got.length, 3001);
  assert.equal(got[2999], 3000);
  assert.ok(lastOfBurst < t.pause, 'the last items of the burst waited for the pause to end');
  assert.ok(lastOfBurst - t.burst < 300, `the burst's last result came ${(lastOfBurst - t.burst).toFixed(0)} ms after it`);
});

test('imap: return() before the first next() closes the source and starts nothing', WATCH, async () => {
  let closed = 0;
  const src = { [Symbol.iterator]() { return { next: () => ({ value: 1, done: false }), return: () => { closed++; return { done: true }; } }; } };
  const it = imap((v) => v, src);
  assert.deepEqual(await it.return('r'), { value: 'r', done: true });
  assert.equal(closed, 1);
  assert.deepEqual(await it.next(), { value: undefined, done: true });
  assert.deepEqual(await it.return(), { value: undefined, done: true });
  assert.equal(closed, 1, 'closed once');
});

test('imap: return() while the first next() is starting: that next() ends done', WATCH, async () => {
  async function* endless() { for (let i = 0; ; i++) { await sleep(5); yield i; } }
  const gen = endless();
  const it = imap((v) => v, gen);
  const first = it.next();
  await it.return();
  const r = await first;
  assert.ok(r.done || r.value === 0, JSON.stringify(r));
  assert.deepEqual(await it.next(), { value: undefined, done: true });
  assert.deepEqual(await gen.next(), { value: undefined, done: true }, 'the source was closed');
});

test('imap: throw() closes the source and rethrows; the iterator is then done', WATCH, async () => {
  let closed = false;
  async function* endless() { try { for (let i = 0; ; i++) yield i; } finally { closed = true; } }
  const it = imap((v) => v * 2, endless());
  assert.deepEqual(await it.next(), { value: 0, done: false });
  const mine = new Error('consumer gave up');
  await assert.rejects(it.throw(mine), (e) => e === mine);
  assert.ok(closed);
  assert.deepEqual(await it.next(), { value: undefined, done: true });
});

test('imap: an error is thrown once, after the results before it; then done', WATCH, async () => {
  const it = imap((v) => { if (v === 3) throw new RangeError('three'); return v; }, [0, 1, 2, 3, 4, 5], { chunksize: 1 });
  const got = [];
  let err = null;
  try { for (;;) { const r = await it.next(); if (r.done) break; got.push(r.value); } } catch (e) { err = e; }
  assert.deepEqual(got, [0, 1, 2]);
  assert.ok(err instanceof ParmapError && err.index === 3 && err.message === 'three', String(err));
  assert.deepEqual(await it.next(), { value: undefined, done: true });
  assert.deepEqual(await it.return(), { value: undefined, done: true });
});

test('imap: next() calls at once each get their result', WATCH, async () => {
  const it = imap((v) => v * 10, [1, 2, 3]);
  const [a, b] = await Promise.all([it.next(), it.next()]);
  assert.deepEqual([a, b], [{ value: 10, done: false }, { value: 20, done: false }]);
  assert.deepEqual(await collect(it), [30]);
  // Three at once over a source that ends at once: the single engine's
  // second fill ended the stream while the first one's results were on
  // their way, and two of the three were told done.
  const it2 = imap((v) => v * 2, Array.from({ length: 10 }, (_, i) => i));
  const three = await Promise.all([it2.next(), it2.next(), it2.next()]);
  assert.deepEqual(three, [0, 2, 4].map((value) => ({ value, done: false })));
  assert.deepEqual(await collect(it2), [6, 8, 10, 12, 14, 16, 18]);
});

test('imap: return() after the stream ended drops what was not read: iterating again yields nothing', WATCH, async () => {
  const it = imap((v) => v, Array.from({ length: 10 }, (_, i) => i));
  for await (const v of it) {
    if (v === 0) await sleep(300);   // every result has arrived: the stream ended ('done')
    if (v === 3) break;              // return()
  }
  assert.deepEqual(await collect(it), []);
  assert.deepEqual(await it.next(), { value: undefined, done: true });
  // An error not thrown yet is dropped too.
  const bad = imap((v) => { if (v === 2) throw new Error('two'); return v; }, [0, 1, 2, 3], { chunksize: 1 });
  assert.deepEqual(await bad.next(), { value: 0, done: false });
  await sleep(300);
  assert.deepEqual(await bad.return(), { value: undefined, done: true });
  assert.deepEqual(await bad.next(), { value: undefined, done: true });
});

test('imap: abort after the source ended (draining) rejects with an AbortError', WATCH, async () => {
  const ac = new AbortController();
  const it = imap((v) => { const t = Date.now() + 2; while (Date.now() < t); return v; }, [...Array(400).keys()], { signal: ac.signal });
  assert.deepEqual(await it.next(), { value: 0, done: false });
  await sleep(20);   // the 400 items are all pulled by now; they take ~0.4 s to run
  ac.abort();
  await assert.rejects(collect(it), { name: 'AbortError' });
  assert.deepEqual(await it.next(), { value: undefined, done: true });
});

test('imap: timeout in raise mode fails the loop with ETIMEOUT', WATCH, async () => {
  const got = [];
  await assert.rejects((async () => {
    for await (const v of imap((x) => { if (x === 3) for (;;); return x; }, [0, 1, 2, 3, 4, 5], { timeout: 150, chunksize: 1 })) got.push(v);
  })(), (e) => e instanceof ParmapError && e.code === 'ETIMEOUT' && e.index === 3);
  assert.deepEqual(got, [0, 1, 2]);
});

// terminate() while a slow stream runs: the loop throws (never ends quietly)
// on every engine, and the next call loads afresh.
test('imap: terminate() during a slow stream makes the loop throw ECANCELED', WATCH, async () => {
  async function* slow() { for (let i = 0; ; i++) { await sleep(10); yield i; } }
  const seen = [];
  const loop = (async () => { for await (const v of imap((x) => x, slow())) seen.push(v); })();
  await sleep(150);
  await terminate();
  await assert.rejects(loop, (e) => e instanceof ParmapError && e.code === 'ECANCELED');
  assert.ok(seen.length >= 1);
  assert.deepEqual(await collect(imap((x) => -x, [1, 2])), [-1, -2], 'the next call loads afresh');
  assert.equal((await info()).build, BUILD);
});

/* ------------------------------------------- abandoned iterators (children) */

const PKG = new URL('../index.js', import.meta.url).href;
// Each child reads once (or breaks), then has nothing left to do: it must
// exit by itself. It prints 'read' when it got its result.
const CHILDREN = {
  'dropped, slow endless async source': `
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    async function* slow() { for (let i = 0; ; i++) { await sleep(20); yield i; } }
    let it = imap((v) => v, slow());
    const r = await it.next();
    if (r.value === 0) console.log('read');
    it = null;`,
  'dropped, endless sync source': `
    function* endless() { for (let i = 0; ; i++) yield i; }
    const it = imap((v) => v + 1, endless());
    const r = await it.next();
    if (r.value === 1) console.log('read');`,
  'dropped, fast async source': `
    async function* endless() { for (let i = 0; ; i++) yield i; }
    const it = imap((v) => v + 1, endless());
    for (let k = 0; k < 1000; k++) await it.next();
    console.log('read');`,
  'break from a slow endless async source': `
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    async function* slow() { for (let i = 0; ; i++) { await sleep(20); yield i; } }
    for await (const v of imap((x) => x, slow())) { if (v === 2) { console.log('read'); break; } }`,
};

for (const [name, body] of Object.entries(CHILDREN)) {
  test(`imap: an iterator ${name} lets the process exit`, WATCH, async () => {
    // A file, not -e: worker_threads workers inherit execArgv, and
    // --input-type would stop them.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'parmap-imap-'));
    const file = path.join(dir, 'child.mjs');
    writeFileSync(file, `import { imap } from ${JSON.stringify(PKG)};\n${body}\n`);
    const t0 = performance.now();
    const child = spawn(process.execPath, [file],
      { env: { ...process.env, PARMAP_WASM_BUILD: BUILD }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    // Watchdog: a child still alive after 10 s is killed and the test fails.
    const watchdog = setTimeout(() => child.kill('SIGKILL'), 10000);
    const [exitCode, signal] = await new Promise((r) => child.on('exit', (c, s) => r([c, s])));
    clearTimeout(watchdog);
    rmSync(dir, { recursive: true, force: true });
    const took = performance.now() - t0;
    assert.equal(signal, null, `the child did not exit by itself (killed after ${took.toFixed(0)} ms); stderr: ${err}`);
    assert.equal(exitCode, 0, `stderr: ${err}`);
    assert.match(out, /read/);
    assert.ok(took < 6000, `the child took ${took.toFixed(0)} ms to exit`);
  });
}

test('imap: iterators dropped without return() are closed once collected (their sources close)', WATCH, async () => {
  // A long-running program (a server whose clients go away) must not keep
  // each dropped stream's source, job and (threaded) pthreads for ever.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'parmap-imap-'));
  const file = path.join(dir, 'child.mjs');
  writeFileSync(file, `import { imap } from ${JSON.stringify(PKG)};
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    let closed = 0;
    async function* endless() { try { for (let i = 0; ; i++) { await sleep(1); yield i; } } finally { closed++; } }
    async function readOnce(k) { const it = imap((x) => x + 1, endless()); return (await it.next()).value; }
    let ok = true;
    for (let k = 0; k < 20; k++) ok = ok && (await readOnce(k)) === 1;
    for (let i = 0; i < 100 && closed < 20; i++) { globalThis.gc(); await sleep(50); }
    console.log(JSON.stringify({ ok, closed }));\n`);
  const child = spawn(process.execPath, ['--expose-gc', file],
    { env: { ...process.env, PARMAP_WASM_BUILD: BUILD }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const watchdog = setTimeout(() => child.kill('SIGKILL'), 20000);
  const [exitCode] = await new Promise((r) => child.on('exit', (c, s) => r([c, s])));
  clearTimeout(watchdog);
  rmSync(dir, { recursive: true, force: true });
  assert.equal(exitCode, 0, `stderr: ${err}`);
  assert.deepEqual(JSON.parse(out), { ok: true, closed: 20 });
});
