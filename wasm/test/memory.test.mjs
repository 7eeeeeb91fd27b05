// Memory failures are contained (issue 15): a result larger than the
// WebAssembly heap fails its item with ENOMEM and the process lives; memory
// a call used is given back when it ends (the module, or a worker, whose heap
// grew or that held a huge value is replaced: lib/loader.js recycleIfBig,
// lib/pool.js RECYCLE_BYTES); a huge string is encoded whole, never cut
// short. Each case runs in a child process: they use gigabytes, and the
// memory figure must be the call's alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { BUILD } from './helpers.mjs';

const index = pathToFileURL(fileURLToPath(new URL('../index.js', import.meta.url))).href;

function child(src, flags = []) {
  const out = execFileSync(process.execPath, [...flags, '--input-type=module', '-e', src],
    { encoding: 'utf8', timeout: 120000, maxBuffer: 1 << 20, env: { ...process.env, PARMAP_WASM_BUILD: BUILD } });
  return JSON.parse(out.trim().split('\n').pop());
}

// The workers engine gives each worker a heap of its own and sends results
// as they come, so six 500 MB results fit there (at ~7 GB of memory).
if (BUILD !== 'workers') test('results larger than the heap: the item fails with ENOMEM and its index, the process lives', { timeout: 150000 }, () => {
  const r = child(`import { parmap } from ${JSON.stringify(index)};
    let err = null;
    try { await parmap((s) => 'a'.repeat(s), Array(6).fill(5e8)); } catch (e) { err = e; }
    const next = await parmap((x) => x * 2, [1, 2, 3]);
    console.log(JSON.stringify({ name: err && err.name, code: err && err.code, index: err && err.index, message: err && err.message, next }));`);
  assert.equal(r.name, 'ParmapError');
  assert.equal(r.code, 'ENOMEM');
  assert.ok(Number.isInteger(r.index) && r.index >= 0 && r.index < 6, `index ${r.index}`);
  assert.match(r.message, /does not fit in the WebAssembly heap/);
  assert.deepEqual(r.next, [2, 4, 6]);
});

test('memory a call used is given back: a 200 MB result leaves less than 450 MB behind', { timeout: 150000 }, () => {
  const r = child(`import { parmap } from ${JSON.stringify(index)};
    await parmap((x) => x * 2, [1, 2, 3]);
    await new Promise((r) => setTimeout(r, 300)); gc();
    const base = process.memoryUsage().rss;
    let len = 0;
    { const out = await parmap((n) => 'a'.repeat(n), [2e8]); len = out[0].length; }
    let after = Infinity;
    for (let i = 0; i < 6 && after - base > 300e6; i++) {
      await new Promise((r) => setTimeout(r, 500)); gc();
      after = process.memoryUsage().rss;
    }
    const next = await parmap((x) => x + 1, [1, 2]);
    console.log(JSON.stringify({ len, grew: after - base, next }));`, ['--expose-gc']);
  assert.equal(r.len, 2e8);
  // Before: 820 MB on the threaded engine, 930 MB on the workers engine
  // (the scratch buffer and garbage idle workers never collected).
  assert.ok(r.grew < 450e6, `${(r.grew / 1e6).toFixed(0)} MB still in use`);
  assert.deepEqual(r.next, [2, 3]);
});

test('a huge string result comes back whole (one chunk of four 500 MB strings)', { timeout: 150000 }, () => {
  const r = child(`import { parmap } from ${JSON.stringify(index)};
    const out = await parmap((s) => 'b'.repeat(s), Array(4).fill(5e8), { exception: 'return', chunksize: 4 });
    console.log(JSON.stringify(out.map((x) => typeof x === 'string' ? [x.length, x[0], x[x.length - 1]] : x.code)));`);
  // Each result whole, or (where the heap cannot hold them all) ENOMEM:
  // never a string cut short (Node's encodeInto wrote nothing into a view
  // over 2 GB, and two of the four came back empty on the workers engine).
  for (const x of r) assert.ok(x === 'ENOMEM' || (x[0] === 5e8 && x[1] === 'b' && x[2] === 'b'), JSON.stringify(x));
  assert.ok(r.some((x) => x !== 'ENOMEM'));
});
