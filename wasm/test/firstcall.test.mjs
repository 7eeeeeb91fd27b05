// The first call of a process checks its function while the engine loads
// (lib/source.js checkAhead: acorn parses it before the module is ready).
// That early check must give the same answers as a later call's: a closure
// is refused with the variable's name, a fine function runs, and a function
// whose source does not compile is refused, on every engine, for parmap and
// imap alike. And asking for the module alone first (info(), heapArray():
// lib/loader.js runtime) leaves the first call its turn without changing
// any result. Each case is a fresh process (the first call is once per process).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { pathToFileURL, fileURLToPath } from 'node:url';

const index = pathToFileURL(fileURLToPath(new URL('../index.js', import.meta.url))).href;

function firstCall(build, body) {
  const src = `import { parmap, imap, info, heapArray, mapKernel } from ${JSON.stringify(index)};
    const k = 3;
    const out = {};
    const settle = (p) => p.then((v) => ({ ok: v }), (e) => ({ name: e.name, message: e.message, variable: e.variable }));
    ${body}
    console.log(JSON.stringify(out));`;
  const text = execFileSync(process.execPath, ['--input-type=module', '-e', src],
    { encoding: 'utf8', timeout: 50000, env: { ...process.env, PARMAP_WASM_BUILD: build } });
  return JSON.parse(text.trim());
}

for (const build of ['threaded', 'workers', 'single']) {
  test(`first call: a closure is refused as on any later call (${build})`, { timeout: 60000 }, () => {
    const out = firstCall(build, `
      out.first = await settle(parmap((x) => x * k, [1, 2]));
      out.later = await settle(parmap((x) => x * k, [1, 2]));`);
    assert.equal(out.first.name, 'TypeError');
    assert.equal(out.first.variable, 'k');
    assert.match(out.first.message, /^parmap: the function uses `k`, which is not defined in the worker/);
    assert.deepEqual(out.later, out.first);
  });

  test(`first call: a fine function runs, then a closure is still refused (${build})`, { timeout: 60000 }, () => {
    const out = firstCall(build, `
      out.fine = await settle(parmap((x, { m }) => x * m, [1, 2], { kwargs: { m: 3 } }));
      out.closure = await settle(parmap((x) => x + k, [1]));`);
    assert.deepEqual(out.fine, { ok: [3, 6] });
    assert.equal(out.closure.variable, 'k');
  });

  test(`first call: imap's closure is refused, with the variable (${build})`, { timeout: 60000 }, () => {
    const out = firstCall(build, `
      out.first = await settle((async () => { const r = []; for await (const v of imap((x) => x - k, [1, 2])) r.push(v); return r; })());`);
    assert.equal(out.first.name, 'TypeError');
    assert.equal(out.first.variable, 'k');
    assert.match(out.first.message, /^imap: the function uses `k`/);
  });

  test(`first call: concurrent first calls, one fine and one a closure, each get their own answer (${build})`, { timeout: 60000 }, () => {
    const out = firstCall(build, `
      const [a, b] = await Promise.all([settle(parmap((x) => x + 1, [1, 2])), settle(parmap((x) => x + k, [1, 2]))]);
      out.a = a; out.b = b;`);
    assert.deepEqual(out.a, { ok: [2, 3] });
    assert.equal(out.b.variable, 'k');
  });

  test(`first call after info() and heapArray(): every call's results are right, an imap's and the later ones too (${build})`, { timeout: 60000 }, () => {
    const out = firstCall(build, `
      out.build = (await info()).build;
      const h = await heapArray(Float64Array, [1, 2, 3, 27]);
      out.kernel = Array.from(await mapKernel('collatz_steps', h));
      out.a = await parmap((x) => x * 2, [1, 2, 3]);
      out.s = [];
      for await (const v of imap((x) => x * 3, [1, 2])) out.s.push(v);
      out.b = await Promise.all([parmap((x) => x + 1, [1, 2]), parmap((x) => x - 1, [1, 2])]);
      h.free();`);
    assert.deepEqual(out, { build, kernel: [0, 1, 7, 111], a: [2, 4, 6], s: [3, 6], b: [[2, 3], [0, 1]] });
  });

  // A timed call runs on a pool of the workers engine (its own, or the side
  // pool of the other engines), whose first worker is given the first chunk
  // while it still boots (lib/pool.js): the boot (30+ ms) is not the item's
  // time, and a runaway item is still stopped.
  test(`first call with a timeout shorter than a worker's start: the items are timed, not the start (${build})`, { timeout: 60000 }, () => {
    const out = firstCall(build, `
      out.fast = await settle(parmap((x) => x * 2, [1, 2, 3], { timeout: 5 }));
      out.runaway = (await parmap((x) => { if (x === 2) for (;;); return x; }, [1, 2, 3], { timeout: 100, exception: 'return' }))
        .map((v) => (typeof v === 'number' ? v : v.code + ':' + v.index));`);
    assert.deepEqual(out, { fast: { ok: [2, 4, 6] }, runaway: [1, 'ETIMEOUT:1', 3] });
  });
}
