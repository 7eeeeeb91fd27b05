// heapArray() and zero-copy mapKernel: in place over a heap array, into a
// heap array given as `out`, memory growth, misuse (freed, double free, wrong
// type or length, another module's array). Threaded build here;
// heap.single.test.mjs runs it on the single-thread build.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { heapArray, HeapArray, mapKernel, ParmapError, terminate, configure, info } from '../index.js';
import { BUILD, checkBuild } from './helpers.mjs';

const threaded = BUILD === 'threaded';

test('heapArray: zero-filled or filled from values; its view lives in the heap', async () => {
  await checkBuild();
  const a = await heapArray(Float64Array, 5);
  assert.ok(a instanceof HeapArray);
  assert.equal(a.type, Float64Array);
  assert.equal(a.length, 5);
  assert.equal(a.byteLength, 40);
  assert.deepEqual([...a.array], [0, 0, 0, 0, 0]);
  assert.equal(a.array.buffer.constructor, threaded ? SharedArrayBuffer : ArrayBuffer);
  a.array[2] = 7.5;
  assert.equal(a.array[2], 7.5, 'the same memory every time');
  const b = await heapArray(Int32Array, [1, -2, 3]);
  assert.deepEqual([...b.array], [1, -2, 3]);
  const c = await heapArray(Uint8ClampedArray, new Set([300, 4]));
  assert.deepEqual([...c.array], [255, 4]);
  const e = await heapArray(Int16Array, 0);
  assert.equal(e.array.length, 0);
  for (const h of [a, b, c, e]) h.free();
  assert.throws(() => new HeapArray(), TypeError);
});

test('heapArray: bad arguments name the argument', async () => {
  await assert.rejects(heapArray(Array, 3), { name: 'TypeError', message: /heapArray: type must be one of Int8Array.*got Array/ });
  await assert.rejects(heapArray(BigInt64Array, 3), { name: 'TypeError', message: /type must be/ });
  await assert.rejects(heapArray('Float64Array', 3), { name: 'TypeError', message: /type must be .* got string/ });
  await assert.rejects(heapArray(Float64Array, -1), { name: 'RangeError', message: /heapArray: length must be an integer/ });
  await assert.rejects(heapArray(Float64Array, 1.5), { name: 'RangeError', message: /length/ });
  await assert.rejects(heapArray(Float64Array, 2 ** 29), { name: 'RangeError', message: /length must be an integer from 0 to/ });
  await assert.rejects(heapArray(Float64Array, '3'), { name: 'TypeError', message: /heapArray: length must be a number or an array/ });
  await assert.rejects(heapArray(Float64Array), { name: 'TypeError', message: /length/ });
  await assert.rejects(heapArray(Float64Array, [1, 2n]), { name: 'TypeError', message: /heapArray: the values do not fit a Float64Array/ });
});

test('mapKernel over a heap array: same results as the copying path, input untouched', async () => {
  const n = 10000;
  const values = Float64Array.from({ length: n }, (_, i) => i + 1);
  const xs = await heapArray(Float64Array, values);
  const copied = await mapKernel('collatz_steps', values);
  const inPlace = await mapKernel('collatz_steps', xs);
  assert.deepEqual(inPlace, copied);
  assert.equal(inPlace.buffer.constructor, ArrayBuffer, 'no out: the result is copied out once, into its own buffer');
  assert.deepEqual(xs.array, values, 'the kernel only reads its input');
  const rows = await heapArray(Int32Array, Int32Array.from({ length: 30 }, (_, y) => y));
  const opts = { width: 40, height: 30, maxIter: 50 };
  assert.deepEqual(await mapKernel('mandelbrot_row', rows, opts),
    await mapKernel('mandelbrot_row', Int32Array.from({ length: 30 }, (_, y) => y), opts));
  xs.free();
  rows.free();
});

test('out: the kernel writes into the heap array and the result is a view of it (no copy)', async () => {
  const width = 32, height = 24;
  const rows = await heapArray(Int32Array, Int32Array.from({ length: height }, (_, y) => y));
  const img = await heapArray(Uint8ClampedArray, width * height * 4);
  const r = await mapKernel('mandelbrot_row', rows, { width, height, out: img });
  assert.ok(r instanceof Uint8ClampedArray);
  assert.equal(r.length, width * height * 4);
  assert.equal(r.buffer, img.array.buffer, 'the same memory');
  assert.equal(r.byteOffset, img.array.byteOffset);
  assert.deepEqual(r, await mapKernel('mandelbrot_row', rows, { width, height }));
  img.array[0] = 1;
  assert.equal(r[0], 1, 'writes through the heap array show in the result: it is not a copy');
  // An ordinary input with a heap out: copied in once, nothing copied out.
  const viaCopy = await mapKernel('mandelbrot_row', Int32Array.from({ length: height }, (_, y) => y), { width, height, out: img });
  assert.equal(viaCopy.buffer, img.array.buffer);
  // The result view is recognised as the heap array when passed back.
  const xs = await heapArray(Float64Array, [1, 2, 3]);
  const ys = await heapArray(Float64Array, 3);
  const y1 = await mapKernel('affine', xs, { by: 10, plus: 1, out: ys });
  const zs = await heapArray(Float64Array, 3);
  const z = await mapKernel('affine', y1, { by: 2, out: zs });
  assert.deepEqual([...z], [22, 42, 62]);
  // In place: the same array as input and out (one element per item).
  const w = await mapKernel('affine', xs, { by: 3, plus: 0.5, out: xs });
  assert.deepEqual([...w], [3.5, 6.5, 9.5]);
  assert.deepEqual([...xs.array], [3.5, 6.5, 9.5]);
  for (const h of [rows, img, xs, ys, zs]) h.free();
});

test("out with exception: 'return': failed items' outputs are zero", async () => {
  const out = await heapArray(Int32Array, [99, 99, 99]);
  const r = await mapKernel('collatz_steps', [1, -1, 2], { out, exception: 'return' });
  assert.deepEqual([...r], [0, 0, 1]);
  assert.deepEqual(r.failures, [{ index: 1, code: 1 }]);
  assert.equal(Object.hasOwn(out.array, 'failures'), false, 'failures belong to this result, not to the heap array');
  await assert.rejects(mapKernel('collatz_steps', [1, 0.5], { out: await heapArray(Int32Array, 2) }),
    (e) => e instanceof ParmapError && e.index === 1);
  out.free();
});

test('misuse: freed, double free, wrong type or length, not a heap array: TypeError / RangeError naming it', async () => {
  const xs = await heapArray(Float64Array, [1, 2]);
  const i32 = await heapArray(Int32Array, 2);
  const f32 = await heapArray(Float32Array, 2);
  await assert.rejects(mapKernel('collatz_steps', i32), { name: 'TypeError', message: /mapKernel: input is a heap array of Int32Array, but collatz_steps takes Float64Array/ });
  await assert.rejects(mapKernel('collatz_steps', xs, { out: f32 }), { name: 'TypeError', message: /option out must be a heap array of Int32Array for collatz_steps, got Float32Array/ });
  await assert.rejects(mapKernel('collatz_steps', xs, { out: new Int32Array(2) }), { name: 'TypeError', message: /option out must be a heap array \(heapArray\(Int32Array, length\)\), got an Int32Array/ });
  await assert.rejects(mapKernel('collatz_steps', xs, { out: [0, 0] }), { name: 'TypeError', message: /option out must be a heap array/ });
  await assert.rejects(mapKernel('collatz_steps', [1, 2, 3], { out: i32 }), { name: 'RangeError', message: /option out must have 3 elements \(3 items x 1\), got 2/ });
  const rows = await heapArray(Int32Array, [0, 1]);
  await assert.rejects(mapKernel('mandelbrot_row', rows, { width: 4, height: 2, out: await heapArray(Uint8ClampedArray, 16) }),
    { name: 'RangeError', message: /option out must have 32 elements \(2 items x 16\), got 16/ });
  assert.equal(xs.freed, false);
  xs.free();
  assert.equal(xs.freed, true);
  xs.free();   // a second free() does nothing (the memory is released once)
  await assert.rejects(mapKernel('collatz_steps', xs), { name: 'TypeError', message: /mapKernel: input was freed/ });
  assert.throws(() => xs.array, { name: 'TypeError', message: /HeapArray.array: this heap array was freed/ });
  i32.free();
  await assert.rejects(mapKernel('collatz_steps', [1, 2], { out: i32 }), { name: 'TypeError', message: /mapKernel: option out was freed/ });
  f32.free();
  rows.free();
});

test('free() during a call waits for it; a view kept after free is refused', async () => {
  const n = 200000;
  const xs = await heapArray(Float64Array, Float64Array.from({ length: n }, (_, i) => i + 1));
  const view = xs.array;
  const p = mapKernel('collatz_steps', xs);
  xs.free();                                   // released when the call ends
  assert.equal(xs.freed, true);
  const r = await p;
  assert.equal(r.length, n);
  assert.equal(r[26], 111);
  await assert.rejects(mapKernel('collatz_steps', view), { name: 'TypeError', message: /input was freed/ });
  // the memory went back to the heap: a new array of the same size can use it
  const again = await heapArray(Float64Array, n);
  assert.ok(again.array.every((v) => v === 0), 'a new heap array is zero-filled');
  again.free();
});

test('abort: the call rejects and the heap arrays stay usable', async () => {
  const xs = await heapArray(Float64Array, Float64Array.from({ length: 3e5 }, (_, i) => 2 ** 40 + i));
  const out = await heapArray(Int32Array, 3e5);
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(mapKernel('collatz_steps', xs, { out, signal: ac.signal }), { name: 'AbortError' });
  const ac2 = new AbortController();
  const p = mapKernel('collatz_steps', xs, { out, signal: ac2.signal, chunksize: 64 });
  setTimeout(() => ac2.abort(), 5);
  await p.then(() => {}, (e) => assert.equal(e.name, 'AbortError'));   // may finish first on a fast machine
  const r = await mapKernel('collatz_steps', xs, { out });
  assert.equal(r.length, 3e5);
  xs.free();
  out.free();
});

test('memory growth: the handle stays valid; a view is rebuilt when the heap grew', async () => {
  const xs = await heapArray(Float64Array, [1, 2, 3, 27]);
  const before = xs.array;
  // 256 MB more than the initial heap: the memory must grow.
  const big = await heapArray(Float64Array, 32 * 1024 * 1024);
  if (threaded) {
    // Shared memory: the old view still aliases the same bytes.
    assert.equal(before.length, 4);
    before[0] = 5;
    assert.equal(xs.array[0], 5);
    assert.deepEqual([...await mapKernel('collatz_steps', before)], [5, 1, 7, 111]);
  } else {
    // Growth detached the old ArrayBuffer: the old view is empty, .array is a
    // new view of the same contents, and the stale view is refused.
    assert.equal(before.length, 0);
    assert.notEqual(xs.array, before);
    assert.deepEqual([...xs.array], [1, 2, 3, 27]);
    await assert.rejects(mapKernel('collatz_steps', before), { name: 'TypeError', message: /input is a stale view of a heap array/ });
  }
  assert.deepEqual([...await mapKernel('collatz_steps', xs)], [threaded ? 5 : 0, 1, 7, 111]);
  big.array[big.length - 1] = 42;
  assert.equal(big.array[big.length - 1], 42);
  big.free();
  xs.free();
});

test('a heap array of a module that was terminated, or of the other build, is refused', async () => {
  const xs = await heapArray(Float64Array, [1, 2]);
  await terminate();
  assert.equal(xs.freed, true, 'its module is gone');
  await assert.rejects(mapKernel('collatz_steps', xs), { name: 'TypeError', message: /input belongs to a module that is no longer loaded/ });
  await assert.rejects(mapKernel('collatz_steps', [1], { out: await (async () => { const o = await heapArray(Int32Array, 1); await terminate(); return o; })() }),
    { name: 'TypeError', message: /option out belongs to a module that is no longer loaded/ });
  xs.free();   // nothing to release: no error
  assert.deepEqual([...await mapKernel('collatz_steps', [1, 2])], [0, 1], 'the new module works');
  // The same across builds: an array of this build, used after switching to the other one.
  const mine = await heapArray(Float64Array, [3]);
  await terminate();
  const other = threaded ? 'single' : 'threaded';
  configure({ build: other });
  try {
    assert.equal((await info()).build, other);
    await assert.rejects(mapKernel('collatz_steps', mine), { name: 'TypeError', message: /input belongs to a module that is no longer loaded \(allocated before terminate\(\), or by the other build\)/ });
    const theirs = await heapArray(Float64Array, [3]);
    assert.deepEqual([...await mapKernel('collatz_steps', theirs)], [7]);
    theirs.free();
  } finally {
    await terminate();
    configure({ build: 'auto' });
  }
});
