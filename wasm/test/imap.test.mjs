// imap: async and sync sources, both orders, errors, abort, early exit,
// chained stages (parmapper's "concurrency + parallel"), and a long stream
// in flat memory. imap.single.test.mjs runs it on the single-thread build.
import { test } from 'node:test';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { imap, ParmapError } from '../index.js';
import { BUILD, checkBuild, countWorkers } from './helpers.mjs';

async function* count(n, f = (i) => i) { for (let i = 0; i < n; i++) yield f(i); }
async function collect(it) { const out = []; for await (const x of it) out.push(x); return out; }

test('imap: ordered results from async and sync iterables', async () => {
  await checkBuild();
  assert.deepEqual(await collect(imap((x) => x * 2, count(1000))), Array.from({ length: 1000 }, (_, i) => 2 * i));
  assert.deepEqual(await collect(imap((x) => x.v, [{ v: 'a' }, { v: 'b' }])), ['a', 'b']);
  assert.deepEqual(await collect(imap((x) => x, [])), []);
});

test('imap: ordered: false yields every result', async () => {
  const r = await collect(imap((x) => x + 1, count(5000), { ordered: false }));
  assert.equal(r.length, 5000);
  assert.deepEqual(r.sort((a, b) => a - b), Array.from({ length: 5000 }, (_, i) => i + 1));
});

test('imap: raise stops with the ParmapError after the earlier results', async () => {
  const got = [];
  await assert.rejects((async () => {
    for await (const x of imap((v) => { if (v === 300) throw new Error('bad 300'); return v; }, count(10000))) got.push(x);
  })(), (e) => e instanceof ParmapError && e.index === 300 && e.message === 'bad 300');
  assert.deepEqual(got, Array.from({ length: 300 }, (_, i) => i));
});

test("imap: exception 'return' yields errors in place", async () => {
  const r = await collect(imap((v) => { if (v % 100 === 7) throw new TypeError('t' + v); return v; }, count(1000), { exception: 'return' }));
  assert.equal(r.length, 1000);
  assert.ok(r[7] instanceof ParmapError && r[7].index === 7 && r[7].cause instanceof TypeError);
  assert.equal(r[8], 8);
});

test('imap: break closes the source and the workers', async () => {
  let closed = false;
  async function* endless() { try { for (let i = 0; ; i++) yield i; } finally { closed = true; } }
  let k = 0;
  for await (const x of imap((v) => v, endless())) { assert.equal(x, k); if (++k === 2000) break; }
  assert.ok(closed, 'the source generator was closed');
});

test('imap: abort rejects with an AbortError', async () => {
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 100);
  const t0 = performance.now();
  await assert.rejects(collect(imap((v) => { const t = Date.now() + 2; while (Date.now() < t); return v; }, count(1e6), { signal: ac.signal })),
    { name: 'AbortError' });
  assert.ok(performance.now() - t0 < 3000);
});

test('imap: a source that throws rejects with its error; a bad item with its index', async () => {
  async function* broken() { yield 1; yield 2; throw new Error('source broke'); }
  await assert.rejects(collect(imap((v) => v, broken())), { message: 'source broke' });
  await assert.rejects(collect(imap((v) => v, count(10, (i) => (i === 4 ? () => 1 : i)))), (e) => e instanceof TypeError && /item 4/.test(e.message));
  assert.throws(() => imap((v) => v, 42), TypeError);
  assert.throws(() => imap('f', []), TypeError);
  assert.throws(() => imap((v) => v, [], { threads: -1 }), RangeError);
});

test('imap: progress with a total', async () => {
  const seen = [];
  await collect(imap((v) => { const t = Date.now() + 1; while (Date.now() < t); return v; }, count(400), { total: 400, onProgress: (p) => seen.push(p) }));
  assert.ok(seen.length >= 1);
  const last = seen[seen.length - 1];
  assert.equal(last.done, 400);
  assert.equal(last.total, 400);
});

test('imap: stages chain (load -> parse -> score), every stage running at once', async () => {
  const lines = count(20000, (i) => `${i},${i % 13}`);
  const parsed = imap((line) => { const [a, b] = line.split(','); return { a: +a, b: +b }; }, lines);
  const scored = imap(({ a, b }) => a * b, parsed, { ordered: true });
  let sum = 0, n = 0;
  for await (const s of scored) { sum += s; n++; }
  let want = 0;
  for (let i = 0; i < 20000; i++) want += i * (i % 13);
  assert.equal(n, 20000);
  assert.equal(sum, want);
});

// A long stream through an async generator in this process: every item
// arrives, once. (node --test's async bookkeeping makes each await ~10x
// dearer here, and its garbage makes the RSS noisy, so flat memory is
// checked on the 1e8-item run below, in a plain child process.)
const LONG = Number(process.env.PARMAP_LONG_STREAM || 1e6);
test('imap: 60 at once, some left early: each gets its own results', async () => {
  await checkBuild();
  for (let round = 0; round < 2; round++) {
    const runs = Array.from({ length: 60 }, async (_, k) => {
      if (k % 10 === 9) {   // left after its first result
        for await (const v of imap((x) => x * 2, count(50, (i) => i + k))) return [v];
      }
      return collect(imap((x) => x + 1, count(5, (i) => i * k)));
    });
    const out = await Promise.all(runs);
    out.forEach((r, k) => {
      const want = k % 10 === 9 ? [2 * k] : [0, 1, 2, 3, 4].map((i) => i * k + 1);
      assert.deepEqual(r, want, `round ${round}, imap ${k}`);
    });
  }
});

if (BUILD === 'threaded') test('threaded: 60 imaps at once start a bounded number of workers (the rest run on the side pool)', () => {
  // Each imap on pthreads holds two (a worker each, kept by the module): 50
  // at once started ~95 workers (900 MB) and once crashed a thread's set-up.
  const out = countWorkers(`
    let ok = true;
    for (let round = 0; round < 2; round++) {
      const sums = await Promise.all(Array.from({ length: 60 }, async (_, k) => {
        let s = 0;
        for await (const v of pm.imap((x) => x + 1, [1, 2, 3, k])) s += v;
        return s;
      }));
      ok = ok && sums.every((s, k) => s === 10 + k);
    }
    return { ok };`);
  assert.equal(out.ok, true);
  // The crew, two spares, two per stream on pthreads (at most max(4, threads)),
  // the side pool, and a few coordinators (13-14 seen with 2 threads, 110
  // before the cap).
  const bound = out.threads + 2 + 2 * Math.max(4, out.threads) + out.threads + 6;
  assert.ok(out.started <= bound, `${out.started} workers for ${out.threads} threads (at most ${bound})`);
});

test(`imap: ${LONG.toExponential(0)} items from an async generator`, { timeout: 600000 }, async () => {
  let n = 0, sum = 0;
  for await (const x of imap((v) => v & 7, count(LONG))) {
    sum += x;
    n++;
  }
  assert.equal(n, LONG);
  assert.equal(sum, (LONG / 8) * 28);
});

// 1e8 items from an async generator through imap (bench/imap_1e8.mjs in a
// plain node process, ~30 s): every item arrives, the sum is right, and the
// RSS stays flat from 10% of the stream to its end.
const HUGE = Number(process.env.PARMAP_HUGE_STREAM || 1e8);
test(`imap: ${HUGE.toExponential(0)} items from an async generator in flat memory (child process)`, { timeout: 900000 }, () => {
  const script = fileURLToPath(new URL('../bench/imap_1e8.mjs', import.meta.url));
  const out = execFileSync(process.execPath, [script, String(HUGE)],
    { env: { ...process.env, PARMAP_WASM_BUILD: BUILD }, encoding: 'utf8', maxBuffer: 1 << 20 });
  const r = JSON.parse(out.trim().split('\n').pop());
  console.log(`# ${BUILD}: ${r.items} items in ${r.seconds} s, rss ${r.rss_mb.map((x) => x.rss_mb).join(' ')} MB`);
  assert.equal(r.build, BUILD);
  assert.equal(r.items, HUGE);
  assert.ok(r.ok, 'items missing or wrong sum');
  const growth = r.rss_mb.at(-1).rss_mb - r.rss_mb[0].rss_mb;
  assert.ok(growth < 64, `rss grew by ${growth} MB between 10% and the end`);
});
