// parmap / mapKernel / info: results, both orders, errors, abort, progress,
// bad input, values, large inputs. Run on the threaded build; the
// api.single.test.mjs file runs it on the single-thread build.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parmap, imap, mapKernel, listKernels, info, ParmapError } from '../index.js';
import { BUILD, checkBuild, countWorkers, same } from './helpers.mjs';

const threaded = BUILD === 'threaded';
const parallel = BUILD !== 'single';   // threaded or workers

test('info names the build and its threads', async () => {
  const i = await checkBuild();
  assert.equal(i.threads, parallel ? i.cpuCount : 1);
  assert.equal(typeof i.reason, 'string');
  assert.equal(i.environment, 'node');
});

test('parmap: results in order, numbers and values', async () => {
  assert.deepEqual(await parmap((x) => x * 2, [1, 2, 3]), [2, 4, 6]);
  assert.deepEqual(await parmap((x) => x, []), []);
  const r = await parmap((s) => s.toUpperCase() + '!', ['a', 'é€😀', '']);
  assert.deepEqual(r, ['A!', 'É€😀!', '!']);
  assert.deepEqual(await parmap((x) => x, new Set([1, 'b'])), [1, 'b']);
  function* g() { yield 1; yield 2; }
  assert.deepEqual(await parmap((x) => x + 1, g()), [2, 3]);
});

test('values round-trip through workers unchanged', async () => {
  const items = [
    0, -0, NaN, Infinity, -1.5, 2 ** 53 - 1, -(2 ** 31), 2 ** 32, 1e300, null, undefined, true, false,
    '', 'x'.repeat(1000), 'naïve 😀', [1, [2, [3]]], { a: 1, b: { c: [null, undefined] } },
    new Date(86400000), new Map([[1, 'a'], ['k', { v: 2 }]]), new Set([1, 2]), 123n ** 5n,
    new Uint8Array([1, 2, 255]), new Float64Array([1.5, -2]), new Int32Array([-7]), /re+/gi,
    JSON.parse('{"__proto__": 1, "k": 2}'),
  ];
  const out = await parmap((x) => x, items);
  items.forEach((v, i) => {
    const got = out[i];
    if (v instanceof Map || v instanceof Set) assert.deepEqual([...got], [...v]);
    else if (v instanceof RegExp) assert.equal(String(got), String(v));
    else if (ArrayBuffer.isView(v)) { assert.equal(got.constructor, v.constructor); assert.deepEqual([...got], [...v]); }
    else if (typeof v === 'number') assert.ok(Object.is(got, v), `item ${i}: ${got} != ${v}`);
    else assert.deepEqual(got, v, `item ${i}`);
  });
});

test('numeric results: -0, NaN, Infinity and a non-number among them come back exact', async () => {
  // parmap builds all-number results as an array of doubles, and switches to
  // a generic array at the first non-number: both paths, in both orders.
  const xs = Array.from({ length: 5000 }, (_, i) => i);
  const f = (x) => (x === 10 ? -0 : x === 20 ? NaN : x === 30 ? -Infinity : x === 4000 ? 'four thousand' : x * 1.5);
  for (const r of [await parmap(f, xs), await parmap((x) => (x === 4000 ? 0 : x * 1.5), xs)]) {
    assert.equal(r.length, xs.length);
    assert.ok(Array.isArray(r));
    assert.equal(r[4999], 4999 * 1.5);
  }
  const r = await parmap(f, xs);
  assert.ok(Object.is(r[10], -0));
  assert.ok(Number.isNaN(r[20]));
  assert.equal(r[30], -Infinity);
  assert.equal(r[4000], 'four thousand');
  assert.equal(r[3], 4.5);
  assert.deepEqual(await parmap((x) => x / 2, new Float64Array([1, NaN, -0])), [0.5, NaN, -0]);
  assert.deepEqual(await parmap((x) => x, [NaN, 1]), [NaN, 1]);
});

test('star, args, kwargs: keywords are one extra last argument', async () => {
  const r = await parmap((a, b, c, { k = 0 } = {}) => a + b + c + k, [[1, 2], [3, 4]], { star: true, args: [10], kwargs: { k: 100 } });
  assert.deepEqual(r, [113, 117]);
  assert.deepEqual(await parmap((a, kw) => a * kw.m, [[2, { m: 3 }], [4, { m: 5 }]], { kwstar: true }), [6, 20]);
  assert.deepEqual(await parmap((...a) => a.length, [1, 2], { star: null, args: [7, 8, 9] }), [3, 3]);
});

test('ordered: false gives every result, in completion order when threaded', async () => {
  const slowFirst = (x) => { if (x === 0) { const t = Date.now() + 300; while (Date.now() < t); } return x; };
  const items = Array.from({ length: 40 }, (_, i) => i);
  const un = await parmap(slowFirst, items, { ordered: false, chunksize: 1, threads: 2 });
  assert.deepEqual([...un].sort((a, b) => a - b), items);
  if (parallel) assert.notEqual(un[0], 0, 'the slow item 0 should come last-ish, not first');
  assert.deepEqual(await parmap(slowFirst, items, { ordered: true, chunksize: 1, threads: 2 }), items);
});

test('raise: rejects with a ParmapError (index, message, cause) and cancels the rest', async () => {
  const t0 = performance.now();
  const f = (x) => {
    if (x === 5) { const e = new RangeError('five is bad'); e.code = 7; throw e; }
    const t = Date.now() + 10; while (Date.now() < t);
    return x;
  };
  const err = await parmap(f, Array.from({ length: 1000 }, (_, i) => i), { chunksize: 1 }).then(() => null, (e) => e);
  assert.ok(err instanceof ParmapError);
  assert.equal(err.index, 5);
  assert.equal(err.message, 'five is bad');
  assert.equal(err.itemCode, 7);
  assert.ok(err.cause instanceof RangeError);
  assert.match(err.cause.stack, /five is bad/);
  assert.ok(performance.now() - t0 < 3000, 'the rest should have been cancelled (1000 x 10 ms)');
});

test("exception: 'return' puts ParmapErrors in place", async () => {
  const r = await parmap((x) => { if (x % 2) throw new Error('odd ' + x); return x; }, [0, 1, 2, 3], { exception: 'return' });
  assert.equal(r[0], 0);
  assert.equal(r[2], 2);
  assert.ok(r[1] instanceof ParmapError && r[1].index === 1 && r[1].message === 'odd 1');
  assert.ok(r[3] instanceof ParmapError && r[3].index === 3);
  const thrownString = await parmap(() => { throw 'plain'; }, [1], { exception: 'return' });
  assert.match(thrownString[0].message, /plain/);
});

test('a closure fails with a clear error naming the variable', async () => {
  const scale = 3;
  let ran = 0;
  const err = await parmap((x) => x * scale, [1, 2], { onProgress: () => { ran++; } }).then(() => null, (e) => e);
  assert.ok(err instanceof TypeError, 'found before any work: a TypeError');
  assert.equal(ran, 0);
  assert.match(err.message, /^parmap: the function uses `scale`, which is not defined in the worker: functions are shipped by source and must be self-contained; pass it through args\/kwargs/);
  // imap says the same at its first next()
  await assert.rejects((async () => { for await (const _ of imap((x) => x + scale, [1])); })(), /imap: the function uses `scale`/);
  // A global of the main thread that workers lack is caught in the worker.
  if (parallel) {
    globalThis.mainOnlyValue = 5;
    const e2 = await parmap((x) => x + mainOnlyValue, [1]).then(() => null, (e) => e);   // eslint-disable-line no-undef
    delete globalThis.mainOnlyValue;
    assert.ok(e2 instanceof ParmapError && e2.index === 0);
    assert.match(e2.message, /^parmap: the function uses `mainOnlyValue`, which is not defined in the worker/);
    assert.ok(e2.cause instanceof ReferenceError);
  }
  // the fix the message suggests
  assert.deepEqual(await parmap((x, { scale: s }) => x * s, [1, 2], { kwargs: { scale } }), [3, 6]);
});

test('values that cannot be sent fail with the item index', async () => {
  await assert.rejects(parmap((x) => x, [1, { f: () => 1 }]), (e) => e instanceof TypeError && /item 1/.test(e.message) && /a function/.test(e.message) && /\.f/.test(e.message));
  await assert.rejects(parmap((x) => x, [Symbol('s')]), (e) => e instanceof TypeError && /item 0/.test(e.message) && /symbol/.test(e.message));
  await assert.rejects(parmap((x) => () => x, [1, 2]), (e) => e instanceof ParmapError && e.index === 0 && /result cannot be sent back: a function/.test(e.message));
  const cyc = {}; cyc.self = cyc;
  await assert.rejects(parmap((x) => x, [cyc]), (e) => e instanceof TypeError && /cycle/.test(e.message));
  await assert.rejects(parmap((x) => x, [1], { args: [() => 1] }), (e) => e instanceof TypeError && /option args/.test(e.message));
});

test('bad arguments: TypeError / RangeError naming the option, before any work', async () => {
  let ran = 0;
  const f = (x) => x;
  await assert.rejects(parmap(42, [1]), { name: 'TypeError', message: /fn must be a function/ });
  await assert.rejects(parmap(f, 5), { name: 'TypeError', message: /items must be an iterable/ });
  await assert.rejects(parmap(f, null), TypeError);
  const bad = [
    [{ threads: 0 }, RangeError, /threads/], [{ threads: '2' }, TypeError, /threads/], [{ threads: 1.5 }, RangeError, /threads/],
    [{ chunksize: -1 }, RangeError, /chunksize/], [{ ordered: 'yes' }, TypeError, /ordered/],
    [{ star: 'yes' }, TypeError, /star/], [{ kwstar: 1 }, TypeError, /kwstar/], [{ args: 5 }, TypeError, /args/],
    [{ kwargs: [1] }, TypeError, /kwargs/], [{ exception: 'ignore' }, RangeError, /exception/],
    [{ exception: 1 }, TypeError, /exception/], [{ total: -1 }, RangeError, /total/],
    [{ onProgress: 'x' }, TypeError, /onProgress/], [{ signal: {} }, TypeError, /signal/],
    [{ chunkSize: 4 }, RangeError, /unknown option chunkSize/], ['opts', TypeError, /options/],
  ];
  for (const [opts, cls, re] of bad) {
    await assert.rejects(parmap(() => { ran++; }, [1], opts), (e) => e instanceof cls && re.test(e.message), JSON.stringify(opts));
  }
  await assert.rejects(parmap(Math.sqrt, [1]), { name: 'TypeError', message: /built-in function \(sqrt\)/ });
  await assert.rejects(parmap(((x, y) => x + y).bind(null, 1), [1]), { name: 'TypeError', message: /fn is a bound function, .*option args/ });
  await assert.rejects(parmap(function add(x, y) { return x + y; }.bind(null, 1), [1]), { name: 'TypeError', message: /fn is a bound function \(add\)/ });
  await assert.rejects(parmap(function* g(x) { yield x; }, [1]), { name: 'TypeError', message: /generator function/ });
  await assert.rejects(parmap(async function* g(x) { yield x; }, [1]), { name: 'TypeError', message: /generator function/ });
  await assert.rejects(parmap(f, [1], { concurrency: 0 }), { name: 'RangeError', message: /concurrency/ });
  assert.equal(ran, 0);
});

test('abort: rejects with an AbortError within about a chunk', async () => {
  const ac = new AbortController();
  const slow = (x) => { const t = Date.now() + 2; while (Date.now() < t); return x; };
  const items = Array.from({ length: 5000 }, (_, i) => i);   // ~10 s if not stopped
  setTimeout(() => ac.abort(), 100);
  const t0 = performance.now();
  await assert.rejects(parmap(slow, items, { signal: ac.signal }), { name: 'AbortError' });
  assert.ok(performance.now() - t0 < 2000, `stopped after ${performance.now() - t0} ms`);
  const pre = new AbortController(); pre.abort();
  await assert.rejects(parmap(slow, [1], { signal: pre.signal }), { name: 'AbortError' });
  assert.deepEqual(await parmap((x) => x + 1, [1, 2]), [2, 3], 'the pool still works');
});

test('progress arrives while the map runs, and a final report', async () => {
  const seen = [];
  let resolved = false;
  const p = parmap((x) => { const t = Date.now() + 1; while (Date.now() < t); return x; },
    Array.from({ length: 800 }, (_, i) => i), { onProgress: (pr) => seen.push({ ...pr, resolved }) });
  const r = await p;
  resolved = true;
  assert.equal(r.length, 800);
  assert.ok(seen.length >= 2, `only ${seen.length} reports`);
  const last = seen[seen.length - 1];
  assert.equal(last.done, 800);
  assert.equal(last.total, 800);
  assert.equal(last.failed, 0);
  for (const k of ['elapsed', 'rate']) assert.equal(typeof last[k], 'number');
  assert.ok(seen.some((s) => s.done > 0 && s.done < 800), 'a report in the middle');
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i].done >= seen[i - 1].done);
});

test('large inputs: 1e6 numbers (array and Float64Array), 1e5 objects', async () => {
  const n = 1e6;
  const xs = Array.from({ length: n }, (_, i) => i);
  const r = await parmap((x) => x * 2, xs);
  assert.equal(r.length, n);
  assert.equal(r[0], 0); assert.equal(r[n - 1], 2 * (n - 1)); assert.equal(r[123456], 246912);
  const f = new Float64Array(xs);
  const r2 = await parmap((x) => x + 0.5, f);
  assert.equal(r2[n - 1], n - 0.5);
  const objs = Array.from({ length: 1e5 }, (_, i) => ({ s: 'ab', n: i % 7 }));
  const r3 = await parmap(({ s, n: k }) => s.repeat(k).length, objs);
  assert.equal(r3[1e5 - 1], 2 * ((1e5 - 1) % 7));
});

test('mapKernel: mandelbrot_row and collatz_steps', async () => {
  const ks = await listKernels();
  assert.ok(ks.some((k) => k.name === 'mandelbrot_row' && k.input === 'Int32Array' && k.output === 'Uint8ClampedArray'));
  const width = 64, height = 48, maxIter = 100;
  const rows = Int32Array.from({ length: height }, (_, y) => y);
  const img = await mapKernel('mandelbrot_row', rows, { width, height, maxIter, threads: 2 });
  assert.ok(img instanceof Uint8ClampedArray);
  assert.equal(img.length, width * height * 4);
  // the same in JS, pixel by pixel
  const [x0, y0, x1, y1] = [-2.5, -1.25, 1, 1.25];
  for (const [x, y] of [[0, 0], [32, 24], [50, 10], [63, 47], [40, 24]]) {
    const ci = y0 + (y + 0.5) * (y1 - y0) / height, cr = x0 + (x + 0.5) * ((x1 - x0) / width);
    let zr = 0, zi = 0, zr2 = 0, zi2 = 0, n = 0;
    while (n < maxIter && zr2 + zi2 <= 4) { zi = 2 * zr * zi + ci; zr = zr2 - zi2 + cr; zr2 = zr * zr; zi2 = zi * zi; n++; }
    const p = 4 * (y * width + x);
    const want = n >= maxIter ? [0, 0, 0, 255] : [(n * 9) & 255, (n * 5 + 40) & 255, (255 - n * 3) & 255, 255];
    assert.deepEqual([...img.subarray(p, p + 4)], want, `pixel ${x},${y}`);
  }
  const steps = await mapKernel('collatz_steps', new Float64Array([1, 2, 3, 27]));
  assert.ok(steps instanceof Int32Array);
  assert.deepEqual([...steps], [0, 1, 7, 111]);
  await assert.rejects(mapKernel('collatz_steps', [1, 0.5, 3]), (e) => e instanceof ParmapError && e.index === 1);
  const ret = await mapKernel('collatz_steps', [1, -1, 2], { exception: 'return' });
  assert.deepEqual(ret.failures, [{ index: 1, code: 1 }]);
  await assert.rejects(mapKernel('nope', []), { name: 'RangeError', message: /no kernel named 'nope'/ });
  await assert.rejects(mapKernel('mandelbrot_row', rows, { widht: 3 }), { name: 'RangeError', message: /unknown option widht/ });
  await assert.rejects(mapKernel('mandelbrot_row', rows, { width: 'x' }), { name: 'TypeError', message: /width/ });
  await assert.rejects(mapKernel('mandelbrot_row', 5), TypeError);
});

test('the main thread never blocks: a 10 ms interval keeps ticking during a map', async () => {
  let last = performance.now(), worst = 0, ticks = 0;
  const iv = setInterval(() => { const now = performance.now(); worst = Math.max(worst, now - last); last = now; ticks++; }, 10);
  const busy = (x) => { const t = Date.now() + 2; while (Date.now() < t); return x; };
  last = performance.now();
  const t0 = performance.now();
  await parmap(busy, Array.from({ length: 1000 }, (_, i) => i));   // ~1-2 s of work
  const took = performance.now() - t0;
  clearInterval(iv);
  assert.ok(ticks >= 20, `only ${ticks} ticks`);
  console.log(`# worst interval gap ${worst.toFixed(1)} ms over ${ticks} ticks`);
  // A blocked main thread would show one gap as long as the whole map; the
  // bound leaves room for a machine loaded by other processes.
  assert.ok(worst < Math.min(250, took / 3), `the interval stalled for ${worst.toFixed(0)} ms (map took ${took.toFixed(0)} ms)`);
});

test('terminate() releases the workers; the next call loads afresh', async () => {
  const { terminate, configure } = await import('../index.js');
  assert.throws(() => configure({ build: 'single' }), /before the first map/);
  assert.throws(() => configure({ build: 'fast' }), RangeError);
  await terminate();
  assert.deepEqual(await parmap((x) => -x, [1, 2]), [-1, -2]);
  assert.equal((await info()).build, BUILD);
});

test('terminate() at any moment of a load or a call, 20 times: nothing escapes, the next call works', async () => {
  const { terminate } = await import('../index.js');
  // A module terminated while its workers still boot, or while a call's
  // threads run: no worker's error may reach this process (Emscripten
  // rethrows them on the main thread), and nothing may hang.
  for (let i = 0; i < 20; i++) {
    const p = parmap((x) => { const t = Date.now() + 1; while (Date.now() < t); return x; }, Array.from({ length: 50 }, (_, k) => k))
      .catch((e) => e);
    await new Promise((r) => setTimeout(r, i % 5));
    await terminate();
    const r = await p;
    assert.ok(Array.isArray(r) || (r && r.code === 'ECANCELED'), `round ${i}: ${r}`);
  }
  assert.deepEqual(await parmap((x) => x + 1, [1, 2]), [2, 3]);
});

test('values that throw when read (a revoked Proxy) fail their item, on every path; nothing escapes', async () => {
  const revoked = () => { const p = Proxy.revocable({}, {}); p.revoke(); return p.proxy; };
  const mk = new Function('return ' + revoked.toString())();
  // thrown, returned, thrown by an async function: the item fails with its index
  const thrown = await parmap(new Function(`return (x) => { if (x === 1) throw (${revoked})(); return x; }`)(), [0, 1, 2], { exception: 'return' });
  assert.deepEqual([thrown[0], thrown[2]], [0, 2]);
  assert.ok(thrown[1] instanceof ParmapError && thrown[1].index === 1, String(thrown[1]));
  assert.match(thrown[1].message, /a value was thrown that cannot be read/);
  const returned = await parmap(new Function(`return (x) => x === 2 ? (${revoked})() : x`)(), [0, 1, 2], { exception: 'return' });
  assert.ok(returned[2] instanceof ParmapError && returned[2].index === 2);
  assert.match(returned[2].message, /cannot be sent back: reading it threw TypeError/);
  const asyncThrown = await parmap(new Function(`return async (x) => { if (x === 0) throw (${revoked})(); return x; }`)(), [0, 1], { exception: 'return' });
  assert.ok(asyncThrown[0] instanceof ParmapError && asyncThrown[0].index === 0);
  assert.equal(asyncThrown[1], 1);
  // as an item: refused before any work, naming the item
  await assert.rejects(parmap((x) => x, [1, mk()]), (e) => e instanceof TypeError && e.index === 1 && /item 1 cannot be sent to a worker: reading it threw/.test(e.message));
  assert.deepEqual(await parmap((x) => x + 1, [1]), [2], 'the next call works');
});

// Each pthread worker has its own realm, so a function can say which thread ran it.
if (threaded) test('threaded: a small call of a cheap known function runs on one thread; a slow one spreads', async () => {
  const slow = (x) => { const t = Date.now(); while (Date.now() - t < 30); return globalThis.__pmThreadTag ??= Math.random(); };
  assert.equal(new Set(await parmap(slow, [1, 2, 3, 4], { threads: 2 })).size, 2, 'an unknown function spreads');
  assert.equal(new Set(await parmap(slow, [1, 2, 3, 4], { threads: 2 })).size, 2, 'a known slow one too');
  // ~20 us an item: four of them are far under 0.5 ms of work, but long
  // enough for a woken crew member to take some.
  const cheap = (x) => { const t = performance.now(); while (performance.now() - t < 0.02); return globalThis.__pmThreadTag ??= Math.random(); };
  await parmap(cheap, Array.from({ length: 64 }, (_, i) => i), { threads: 2 });   // measured
  for (let i = 0; i < 3; i++) await parmap(cheap, [1, 2, 3, 4], { threads: 2 });   // measured again, warm
  // A hiccup (a collection, a busy machine) may spread one call: most stay on one thread.
  let alone = 0;
  for (let i = 0; i < 10; i++) if (new Set(await parmap(cheap, [1, 2, 3, 4], { threads: 2 })).size === 1) alone++;
  assert.ok(alone >= 8, `a cheap known function: ${alone} of 10 small calls on one thread`);
  // Explicit chunks still spread.
  assert.equal(new Set(await parmap(slow, [1, 2, 3, 4], { threads: 2, chunksize: 1 })).size, 2);
});

test('calls at once: each gets its own results (the threaded engine keeps one coordinator and starts others while it is busy)', async () => {
  await checkBuild();
  const slow = (x) => { const t = Date.now(); while (Date.now() - t < 2); return x * 3; };
  for (let round = 0; round < 3; round++) {
    const calls = [];
    for (let k = 0; k < 8; k++) {
      const n = [1, 4, 50, 1000][k % 4];
      const xs = Array.from({ length: n }, (_, i) => i + k);
      calls.push(parmap(k === 5 ? slow : (x) => x * 2 + 1, xs, { threads: 2 }).then((out) => [k, xs, out]));
    }
    for (const [k, xs, out] of await Promise.all(calls)) {
      assert.deepEqual(out, xs.map((x) => (k === 5 ? x * 3 : x * 2 + 1)), `call ${k} of round ${round}`);
    }
  }
  // And one at a time again afterwards (the kept coordinator is free).
  for (let i = 0; i < 20; i++) assert.deepEqual(await parmap((x) => -x, [i, i + 1]), [-i, -i - 1]);
});

test('small calls one after another, 10,000 times: each gets its own results', async () => {
  // Threaded: a call's end is told by a word of its job, and the next job
  // often gets the same address; a late wake-up from the previous call's
  // coordinator must not end the next call early (it did, in 1 run in 3 of
  // 3,000 calls: a call read its items back as its results).
  await checkBuild();
  for (let i = 0; i < 10000; i++) {
    const out = await parmap((x) => x * 2, [i, 1, 2, 3]);
    if (out[0] !== 2 * i || out[3] !== 6) assert.fail(`call ${i}: ${out}`);
  }
});

if (threaded) test('threaded, where Atomics.waitAsync is missing (Firefox): a call ends by its post', async () => {
  const { execFileSync } = await import('node:child_process');
  const src = `delete Atomics.waitAsync;
    const { parmap, info } = await import(${JSON.stringify(new URL('../index.js', import.meta.url).href)});
    const got = [];
    for (let i = 0; i < 200; i++) got.push((await parmap((x) => x * 2, [i, 1]))[0]);
    console.log(JSON.stringify({ build: (await info()).build, ok: got.every((v, i) => v === 2 * i) }));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', src],
    { encoding: 'utf8', timeout: 60000, env: { ...process.env, PARMAP_WASM_BUILD: 'threaded' } });
  assert.deepEqual(JSON.parse(out), { build: 'threaded', ok: true });
});

test('300 calls at once, three times: each gets its own results', async () => {
  // Workers engine: a worker used to drop the oldest of its cached functions
  // past 64 while the main thread still counted on it, and the next chunk of
  // that call, sent without its source, crashed the worker ("reading
  // 'startsWith'"). Threaded: each call beyond the first started a pthread,
  // a worker each (the child process below counts them).
  await checkBuild();
  for (let round = 0; round < 3; round++) {
    const calls = [];
    for (let i = 0; i < 300; i++) calls.push(parmap((x) => x + 1, [i, -i]));
    const out = await Promise.all(calls);
    out.forEach((r, i) => { if (r[0] !== i + 1 || r[1] !== 1 - i) assert.fail(`round ${round}, call ${i}: ${r}`); });
  }
});

if (threaded) test('threaded: 300 calls at once start a few pthread workers, not one per call', () => {
  const out = countWorkers(`
    for (let round = 0; round < 3; round++) {
      await Promise.all(Array.from({ length: 300 }, (_, i) => pm.parmap((x) => x * 2, [i])));
    }
    return {};`);
  // The first pthread, the crew, two spares, at most `threads` more
  // coordinators and a spare booted in place of each (3 * threads + 3: 8-9
  // seen with 2 threads), a little slack for timing; it was ~250.
  const bound = 3 * out.threads + 5;
  assert.ok(out.started <= bound, `${out.started} workers for ${out.threads} threads (at most ${bound})`);
});

// (The single engine runs calls on the calling thread, a slice at a time: none waits for a turn.)
if (parallel) test('calls at once: one aborted while the others run rejects at once; the others complete', async () => {
  await checkBuild();
  const slow = (x) => { const t = Date.now(); while (Date.now() - t < 150); return x; };
  await parmap(slow, [0]);   // its source checked: the calls below start in order
  const busy = [];
  for (let k = 0; k < 6; k++) busy.push(parmap(slow, [k, k], { threads: 1 }));
  await new Promise((r) => setTimeout(r, 10));
  const ac = new AbortController();
  const waiting = parmap((x) => x, [1], { signal: ac.signal });
  let abortedAt = 0;
  setTimeout(() => { abortedAt = Date.now(); ac.abort(); }, 20);
  await assert.rejects(waiting, { name: 'AbortError' });
  // Had it waited for a turn, it would have taken 300 ms (two 150 ms items).
  assert.ok(Date.now() - abortedAt < 100, `the abort took ${Date.now() - abortedAt} ms`);
  assert.deepEqual(await Promise.all(busy), [0, 1, 2, 3, 4, 5].map((k) => [k, k]));
  assert.deepEqual(await parmap((x) => x * 2, [4]), [8]);
});

test('terminate() with calls running and waiting for their turn rejects them; the next call works', async () => {
  const { terminate } = await import('../index.js');
  await checkBuild();
  const slow = (x) => { const t = Date.now(); while (Date.now() - t < 20); return x; };
  const calls = [];
  const items = Array.from({ length: 20 }, (_, i) => i);
  for (let k = 0; k < 10; k++) calls.push(parmap(slow, items, { threads: 1 }).then(() => 'ok', (e) => e.code));
  await new Promise((r) => setTimeout(r, 30));
  await terminate();
  const outcomes = await Promise.all(calls);
  assert.ok(outcomes.every((x) => x === 'ok' || x === 'ECANCELED'), outcomes.join());
  assert.ok(outcomes.includes('ECANCELED'), outcomes.join());
  assert.deepEqual(await parmap((x) => x + 1, [1]), [2]);
  // A call seen running (its progress reported) rejects too: the single
  // engine stops between two slices (it ran to its end on the old module).
  let seen;
  const running = new Promise((r) => { seen = r; });
  const call = parmap(slow, items.concat(items), { onProgress: () => seen() }).then(() => 'ok', (e) => e.code);
  await running;
  await terminate();
  assert.equal(await call, 'ECANCELED');
  assert.deepEqual(await parmap((x) => x + 1, [2]), [3]);
});

test('what items print reaches stdout and stderr, every line (child process)', async () => {
  // Threaded, in Node: a pthread never returns to its worker's event loop,
  // and only each thread's first console.log arrived (js/chunk.js pmwSyncStdio).
  const src = `const { parmap } = await import(${JSON.stringify(new URL('../index.js', import.meta.url).href)});
    const r = await parmap((x) => { console.log('item', x); console.error('err', x); return x; },
      Array.from({ length: 40 }, (_, i) => i));
    process.stderr.write('returned ' + r.length + '\\n');`;
  const { spawnSync } = await import('node:child_process');
  const out = spawnSync(process.execPath, ['--input-type=module', '-e', src],
    { encoding: 'utf8', timeout: 60000, env: { ...process.env, PARMAP_WASM_BUILD: BUILD } });
  assert.equal(out.status, 0, out.stderr);
  const items = out.stdout.split('\n').filter((l) => l.startsWith('item ')).map((l) => Number(l.slice(5)));
  const errs = out.stderr.split('\n').filter((l) => l.startsWith('err ')).map((l) => Number(l.slice(4)));
  const all = Array.from({ length: 40 }, (_, i) => i);
  assert.deepEqual(items.sort((a, b) => a - b), all, 'stdout lines');
  assert.deepEqual(errs.sort((a, b) => a - b), all, 'stderr lines');
  assert.match(out.stderr, /returned 40/);
});
