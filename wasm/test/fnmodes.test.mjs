// What fn may be (issue 16): async functions (awaited in the workers, a
// bounded number in flight per worker), errors that come back faithfully
// (thrown values, cause, AggregateError.errors, own properties) and module
// mode ({ module: URL, export }). Run on the threaded build here; the
// .workers and .single files run it on the other engines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parmap, imap, ParmapError } from '../index.js';
import { BUILD, checkBuild } from './helpers.mjs';

const WORK = new URL('../test-fixtures/work.mjs', import.meta.url);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Rejects after ms: a hang fails the test instead of stalling the suite. */
function watchdog(p, ms, what) {
  let t;
  return Promise.race([p, new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`watchdog: ${what} still running after ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(t));
}

async function collect(it) {
  const out = [];
  for await (const v of it) out.push(v);
  return out;
}

test('engine', async () => { await checkBuild(); });

/* ------------------------------------------------------- async functions */

test('async functions: awaited in the workers, results in order', async () => {
  const xs = Array.from({ length: 300 }, (_, i) => i);
  const r = await watchdog(parmap(async (x) => { await new Promise((res) => setTimeout(res, 1)); return x * 2; }, xs), 20000, 'async map');
  assert.deepEqual(r, xs.map((x) => x * 2));
  async function named(a, b, { c }) { return `${a}${b}${c}`; }
  assert.deepEqual(await parmap(named, [[1, 2], [3, 4]], { star: true, kwargs: { c: '!' } }), ['12!', '34!']);
  assert.deepEqual(await parmap(async (x) => x, []), []);
  // Values that are not numbers, and undefined.
  assert.deepEqual(await parmap(async (x) => (x ? { v: [x] } : undefined), [1, 0, 'a']), [{ v: [1] }, undefined, { v: ['a'] }]);
});

test('async functions: items overlap in a worker, at most `concurrency` at once', async () => {
  // Each item reports how many of this worker's items were in flight when it
  // started (a global of the worker's realm).
  const probe = async (ms) => {
    globalThis.inflight = (globalThis.inflight || 0) + 1;
    const seen = globalThis.inflight;
    await new Promise((res) => setTimeout(res, ms));
    globalThis.inflight--;
    return seen;
  };
  const items = new Array(64).fill(20);
  let t0 = performance.now();
  const r = await watchdog(parmap(probe, items, { threads: 1, chunksize: 64 }), 20000, 'overlap');
  const dt = performance.now() - t0;
  const most = Math.max(...r);
  assert.ok(most >= 2 && most <= 16, `default: up to 16 in flight, saw ${most}`);
  // Sequential would be 64 x 20 ms = 1.3 s; 16 at once ~ 80 ms.
  assert.ok(dt < 900, `64 items of 20 ms on one worker took ${dt.toFixed(0)} ms`);
  t0 = performance.now();
  const r4 = await watchdog(parmap(probe, new Array(16).fill(10), { threads: 1, chunksize: 16, concurrency: 4 }), 20000, 'concurrency 4');
  assert.ok(Math.max(...r4) <= 4, `concurrency 4: saw ${Math.max(...r4)} in flight`);
  const r1 = await watchdog(parmap(probe, new Array(8).fill(2), { threads: 1, concurrency: 1 }), 20000, 'concurrency 1');
  assert.deepEqual(r1, new Array(8).fill(1));
});

test('async functions: unordered, progress per item', async () => {
  const xs = Array.from({ length: 100 }, (_, i) => i);
  const f = async (x) => { await new Promise((res) => setTimeout(res, (x * 7) % 5)); return x; };
  const r = await watchdog(parmap(f, xs, { ordered: false }), 20000, 'unordered');
  assert.deepEqual([...r].sort((a, b) => a - b), xs);
  const seen = [];
  await watchdog(parmap(f, xs, { onProgress: (p) => seen.push(p.done) }), 20000, 'progress');
  assert.equal(seen[seen.length - 1], 100);
  assert.ok(seen.every((d, i) => i === 0 || d >= seen[i - 1]), 'progress never goes back');
});

test('async functions: raise rejects with the lowest failing index; return mode puts errors in place', async () => {
  const f = async (x) => {
    await new Promise((res) => setTimeout(res, x === 5 ? 30 : 1));
    if (x === 5 || x === 9) throw new RangeError(`bad ${x}`);
    return x;
  };
  const xs = Array.from({ length: 40 }, (_, i) => i);
  await assert.rejects(watchdog(parmap(f, xs, { chunksize: 40 }), 20000, 'raise'),
    (e) => e instanceof ParmapError && e.index === 5 && e.message === 'bad 5' && e.cause instanceof RangeError);
  const r = await watchdog(parmap(f, xs, { exception: 'return' }), 20000, 'return');
  assert.ok(r[5] instanceof ParmapError && r[5].index === 5);
  assert.ok(r[9] instanceof ParmapError && r[9].index === 9);
  assert.equal(r[10], 10);
  // A rejection with a non-Error value: the value is the cause.
  const s = await parmap(async (x) => { if (x) throw { why: x }; return 0; }, [0, 'no'], { exception: 'return' });
  assert.deepEqual(s[1].cause, { why: 'no' });
});

test('async functions: timeout fails the item over it (ETIMEOUT), the rest goes on', async () => {
  const f = async (x) => {
    if (x === 2) await new Promise((res) => setTimeout(res, 5000));
    if (x === 4) for (;;);   // stuck without awaiting: its worker is terminated
    await new Promise((res) => setTimeout(res, 1));
    return x;
  };
  const t0 = performance.now();
  const r = await watchdog(parmap(f, [0, 1, 2, 3, 4, 5, 6, 7], { timeout: 200, exception: 'return' }), 20000, 'timeout');
  assert.deepEqual(r.map((v) => (v instanceof ParmapError ? `${v.code}:${v.index}` : v)), [0, 1, 'ETIMEOUT:2', 3, 'ETIMEOUT:4', 5, 6, 7]);
  assert.ok(performance.now() - t0 < 4000, `took ${performance.now() - t0} ms`);
});

test('async functions: timeout in raise mode rejects with the ETIMEOUT item', async () => {
  const f = async (x) => { await new Promise((res) => setTimeout(res, x === 3 ? 5000 : 1)); return x; };
  await assert.rejects(watchdog(parmap(f, [0, 1, 2, 3, 4, 5], { timeout: 150 }), 20000, 'timeout raise'),
    (e) => e instanceof ParmapError && e.code === 'ETIMEOUT' && e.index === 3);
});

test('async functions: a worker that dies fails only the item that kills it (ECRASH)', async () => {
  // On every engine async calls run on workers; process.exit in a
  // worker_threads worker ends that worker only. Its other items in flight
  // run again, each alone, so only the one that kills a worker again fails.
  const dies = async (x) => { await new Promise((res) => setTimeout(res, 1)); if (x === 5) process.exit(3); return x * 2; };
  const xs = Array.from({ length: 40 }, (_, i) => i);
  const r = await watchdog(parmap(dies, xs, { exception: 'return' }), 20000, 'crash');
  assert.ok(r[5] instanceof ParmapError && r[5].code === 'ECRASH' && r[5].index === 5, String(r[5]));
  r.forEach((v, i) => { if (i !== 5) assert.equal(v, 2 * i); });
  const t = await watchdog(parmap(dies, xs, { exception: 'return', timeout: 5000 }), 20000, 'crash, stream mode');
  assert.ok(t[5] instanceof ParmapError && t[5].code === 'ECRASH', String(t[5]));
  t.forEach((v, i) => { if (i !== 5) assert.equal(v, 2 * i); });
});

test('async functions: breaking out of imap stops its items in flight', async () => {
  const f = async (x) => { await new Promise((res) => setTimeout(res, x < 3 ? 1 : 60000)); return x; };
  const got = [];
  const t0 = performance.now();
  await watchdog((async () => { for await (const v of imap(f, [0, 1, 2, 3, 4, 5])) { got.push(v); if (got.length === 3) break; } })(), 10000, 'imap break');
  assert.deepEqual(got, [0, 1, 2]);
  assert.ok(performance.now() - t0 < 5000);
  assert.deepEqual(await parmap(async (x) => x, [7]), [7], 'the pool still works');
});

test('async functions: an abort settles the call promptly', async () => {
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 50);
  const t0 = performance.now();
  await assert.rejects(watchdog(parmap(async () => { await new Promise((res) => setTimeout(res, 60000)); }, [1, 2, 3], { signal: ac.signal }), 10000, 'abort'),
    { name: 'AbortError' });
  assert.ok(performance.now() - t0 < 2000);
  assert.deepEqual(await parmap(async (x) => x + 1, [1]), [2], 'still works after');
});

test('async functions: imap over an async source, both orders', async () => {
  async function* src() { for (let i = 0; i < 50; i++) { if (i % 10 === 0) await sleep(1); yield i; } }
  const f = async (x) => { await new Promise((res) => setTimeout(res, x % 3)); return x * x; };
  const r = await watchdog(collect(imap(f, src())), 20000, 'imap');
  assert.deepEqual(r, Array.from({ length: 50 }, (_, i) => i * i));
  const u = await watchdog(collect(imap(f, src(), { ordered: false })), 20000, 'imap unordered');
  assert.deepEqual(u.sort((a, b) => a - b), r);
  const e = await collect(imap(async (x) => { if (x === 3) throw 'three'; return x; }, [1, 2, 3, 4], { exception: 'return' }));
  assert.equal(e[3], 4);
  assert.ok(e[2] instanceof ParmapError && e[2].index === 2 && e[2].cause === 'three');
});

test('a plain function that returns a promise (or a thenable) is awaited by parmap', async () => {
  // Threaded and single: found out at its first promise, the call runs again
  // on the workers engine (lib/map.js); workers: awaited where it runs.
  const r = await watchdog(parmap((x) => Promise.resolve(x + 1), [1, 2, 3]), 20000, 'promise');
  assert.deepEqual(r, [2, 3, 4]);
  const t = await parmap((x) => ({ then(ok) { ok(x * 10); } }), [1, 2], { exception: 'return' });
  assert.deepEqual(t, [10, 20]);
  // Mixed: some items return at once.
  const m = await parmap((x) => (x % 2 ? Promise.resolve(-x) : x), [0, 1, 2, 3], { exception: 'return' });
  assert.deepEqual(m, [0, -1, 2, -3]);
});

test('imap with a plain function that returns a promise', async () => {
  const f = (x) => Promise.resolve(x * 2);
  const r = await watchdog(collect(imap(f, [1, 2, 3], { exception: 'return' })), 20000, 'imap promise');
  if (BUILD === 'workers') assert.deepEqual(r, [2, 4, 6]);
  else {
    // A stream cannot be replayed on the workers engine: the items say what to do.
    assert.ok(r.every((v) => v instanceof ParmapError && /declare it `async`/.test(v.message)), String(r[0]));
  }
});

/* --------------------------------------------------------- faithful errors */

const throwing = (x) => {
  if (x === 0) throw 'a string';
  if (x === 1) throw 42;
  if (x === 2) throw { reason: 'an object', list: [1, 2] };
  if (x === 3) throw null;
  if (x === 4) throw undefined;
  if (x === 5) {
    const e = new Error('with extras', { cause: new TypeError('the cause') });
    e.code = 'EEXTRA';
    e.errno = -17;
    e.custom = { deep: [1, { two: 2 }] };
    throw e;
  }
  if (x === 6) throw new AggregateError([new RangeError('first'), 'second', { third: 3 }], 'several');
  if (x === 7) throw new Error('plain cause', { cause: 'just text' });
  if (x === 8) {
    const e = new Error('circular');
    e.cause = e;
    e.fn = () => 1;        // cannot be sent: left out
    e.kept = true;
    throw e;
  }
  if (x === 9) {
    class MyError extends Error { constructor(m) { super(m); this.name = 'MyError'; this.detail = { at: 9 }; } }
    throw new MyError('custom class');
  }
  return x;
};

function checkFaithful(r) {
  for (let i = 0; i < 10; i++) {
    assert.ok(r[i] instanceof ParmapError, `item ${i}`);
    assert.equal(r[i].index, i);
    assert.equal(r[i].code, 'EITEM');
  }
  assert.equal(r[0].cause, 'a string');
  assert.match(r[0].message, /a string/);
  assert.equal(r[1].cause, 42);
  assert.deepEqual(r[2].cause, { reason: 'an object', list: [1, 2] });
  assert.equal(r[3].cause, null);
  assert.ok('cause' in r[4] && r[4].cause === undefined, 'undefined is the cause');
  const e5 = r[5].cause;
  assert.ok(e5 instanceof Error);
  assert.equal(e5.message, 'with extras');
  assert.equal(e5.code, 'EEXTRA');
  assert.equal(e5.errno, -17);
  assert.deepEqual(e5.custom, { deep: [1, { two: 2 }] });
  assert.ok(e5.cause instanceof TypeError && e5.cause.message === 'the cause');
  assert.match(e5.cause.stack, /the cause/);
  assert.equal(r[5].message, 'with extras');
  const e6 = r[6].cause;
  assert.ok(e6 instanceof AggregateError, 'an AggregateError');
  assert.equal(e6.message, 'several');
  assert.equal(e6.errors.length, 3);
  assert.ok(e6.errors[0] instanceof RangeError && e6.errors[0].message === 'first');
  assert.equal(e6.errors[1], 'second');
  assert.deepEqual(e6.errors[2], { third: 3 });
  assert.equal(r[7].cause.cause, 'just text');
  const e8 = r[8].cause;
  assert.equal(e8.message, 'circular');
  assert.equal(e8.kept, true);
  assert.equal(e8.fn, undefined);
  assert.equal(e8.cause.message, 'circular', 'a cycle is cut, not followed for ever');
  const e9 = r[9].cause;
  assert.equal(e9.name, 'MyError');
  assert.deepEqual(e9.detail, { at: 9 });
  assert.equal(r[10], 10);
}

test('errors come back faithfully: thrown values, cause, AggregateError.errors, own properties', async () => {
  const xs = Array.from({ length: 11 }, (_, i) => i);
  checkFaithful(await watchdog(parmap(throwing, xs, { exception: 'return' }), 20000, 'errors'));
  // The same through imap, and through an async function (workers engine).
  checkFaithful(await watchdog(collect(imap(throwing, xs, { exception: 'return' })), 20000, 'imap errors'));
  const asyncSrc = `async (x) => (${throwing.toString()})(x)`;
  const asyncThrowing = new Function(`return ${asyncSrc}`)();
  checkFaithful(await watchdog(parmap(asyncThrowing, xs, { exception: 'return' }), 20000, 'async errors'));
  // Raise mode: the rejection carries the same.
  await assert.rejects(parmap(throwing, [10, 2]), (e) => e instanceof ParmapError && e.index === 1 && e.cause.reason === 'an object');
  await assert.rejects(parmap(throwing, [5]), (e) => e.cause.code === 'EEXTRA' && e.cause.cause instanceof TypeError);
});

/* ------------------------------------------------------------- module mode */

test('module mode: an export of an ES module by URL', async () => {
  assert.deepEqual(await parmap({ module: WORK, export: 'square' }, [1, 2, 3]), [1, 4, 9]);
  assert.deepEqual(await parmap({ module: WORK.href }, ['a']), ['default:a'], 'export defaults to default');
  assert.deepEqual(await parmap({ module: WORK.pathname, export: 'slowDouble' }, [1, 2, 3]), [2, 4, 6], 'an absolute path, an async export');
  assert.deepEqual(await parmap({ module: WORK, export: 'add' }, [[1, 2], [3, 4]], { star: true, kwargs: { c: 10 } }), [13, 17]);
  assert.deepEqual(await collect(imap({ module: WORK, export: 'square' }, [4, 5])), [16, 25]);
});

test('module mode: a missing export or module fails clearly; bad specs are refused before any work', async () => {
  await assert.rejects(parmap({ module: WORK, export: 'nope' }, [1]),
    (e) => e instanceof ParmapError && /no function export 'nope'/.test(e.message));
  await assert.rejects(parmap({ module: WORK, export: 'notAFunction' }, [1]), /no function export 'notAFunction'/);
  await assert.rejects(parmap({ module: new URL('./missing.mjs', WORK) }, [1]), (e) => e instanceof ParmapError && e.index === 0);
  await assert.rejects(parmap({ module: './work.mjs' }, [1]), { name: 'RangeError', message: /must be a URL/ });
  await assert.rejects(parmap({ module: 42 }, [1]), { name: 'TypeError', message: /fn.module/ });
  await assert.rejects(parmap({ module: WORK, exports: 'x' }, [1]), { name: 'RangeError', message: /unknown key exports/ });
  await assert.rejects(parmap({ module: WORK, export: 3 }, [1]), { name: 'TypeError', message: /fn.export/ });
  assert.throws(() => imap({ nomodule: 1 }, [1]), { name: 'TypeError', message: /fn must be a function or \{ module/ });
});

// Functions as compilers leave them. tsx (esbuild with keepNames) names a
// function declared inside another with a helper its source calls and does
// not define: `__name(inner, "inner")` (this is the text tsx emitted for
// `function named(x: number) { function inner(y: number) { return y + 1; }
// return inner(x); }`). Every engine compiles functions with it in scope.
test('compiled functions: esbuild keepNames (tsx) __name works; an older-target helper (__awaiter) is refused saying so', async () => {
  const named = new Function('return function named(x){function inner(y){return y+1}__name(inner,"inner");return [inner(x), inner.name]}')();
  assert.deepEqual(await parmap(named, [1, 2]), [[2, 'inner'], [3, 'inner']]);
  const arrow = new Function('return (x) => { const g = /* @__PURE__ */ __name((y) => y * y, "g"); return g(x) + g.name; }')();
  assert.deepEqual(await parmap(arrow, [3]), ['9g']);
  const got = [];
  for await (const v of imap(named, [5])) got.push(v);
  assert.deepEqual(got, [[6, 'inner']]);
  // TypeScript for ES2015: an async arrow becomes a call of its __awaiter.
  const lowered = new Function('return (x) => __awaiter(void 0, void 0, void 0, function* () { yield null; return x; })')();
  await assert.rejects(parmap(lowered, [1]), (e) => e instanceof TypeError && /uses `__awaiter`, a helper your compiler/.test(e.message) &&
    /ES2017 or later/.test(e.message) && e.variable === '__awaiter');
  // istanbul (nyc, jest --coverage) counts statements with a function of its file.
  const counted = new Function('return (x) => { cov_2b1uv1ws0a().f[0]++; cov_2b1uv1ws0a().s[1]++; return x * 2; }')();
  await assert.rejects(parmap(counted, [1]), (e) => e instanceof TypeError && /uses `cov_2b1uv1ws0a`, a counter that coverage/.test(e.message) &&
    /c8, jest --coverageProvider=v8/.test(e.message));
});
