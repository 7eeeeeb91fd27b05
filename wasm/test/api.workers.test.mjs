// The api suite on the workers engine (one single-thread instance per worker).
process.env.PARMAP_WASM_BUILD = 'workers';
await import('./api.test.mjs');

// Small calls and chunk sizes on this engine (lib/wcall.js): each worker's
// realm has its own globalThis, so a function can say which worker ran it.
const { test } = await import('node:test');
const assert = (await import('node:assert/strict')).default;
const { parmap } = await import('../index.js');

test('workers: a slow unknown function is spread over the workers; a cheap known one goes as one chunk', async () => {
  // Both workers up first: one may be a replacement still booting (an earlier test's abort killed
  // its worker), and a chunk waiting for it is taken by the other worker when that one is free.
  const up = (x) => { const t = Date.now(); while (Date.now() - t < 20); return globalThis.__pmWorkerTag ??= Math.random(); };
  for (let i = 0; i < 50 && new Set(await parmap(up, [1, 2], { threads: 2 })).size < 2; i++);
  const slow = (x) => { const t = Date.now(); while (Date.now() - t < 30); return globalThis.__pmWorkerTag ??= Math.random(); };
  const slowTags = await parmap(slow, [1, 2, 3, 4], { threads: 2 });
  assert.equal(new Set(slowTags).size, 2, 'first call of a slow function: one chunk per worker');
  // Known slow now: still spread (its items are worth a worker each).
  assert.equal(new Set(await parmap(slow, [1, 2, 3, 4], { threads: 2 })).size, 2);

  const cheap = (x) => globalThis.__pmWorkerTag ??= Math.random();
  await parmap(cheap, Array.from({ length: 64 }, (_, i) => i), { threads: 2 });   // measured once
  for (let i = 0; i < 5; i++) {
    const tags = await parmap(cheap, [1, 2, 3, 4], { threads: 2 });
    assert.equal(new Set(tags).size, 1, 'a cheap known function: four items are one chunk (one round trip)');
  }
  // Explicit chunks still rule.
  const tags = await parmap(slow, [1, 2, 3, 4], { threads: 2, chunksize: 1 });
  assert.equal(new Set(tags).size, 2);
});
