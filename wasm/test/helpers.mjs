// Shared by the test files. PARMAP_WASM_BUILD=single|threaded picks the
// build (the *.single.test.mjs files set it, then import the suite).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { info } from '../index.js';

export const BUILD = process.env.PARMAP_WASM_BUILD || 'threaded';

export async function checkBuild() {
  const i = await info();
  assert.equal(i.build, BUILD, `expected the ${BUILD} build, got ${i.build}`);
  return i;
}

/** Deep equality where numbers compare as numbers and key order is free. */
export function same(a, b) {
  if (typeof a === 'number' && typeof b === 'number') return Object.is(a, b) || a === b;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return a === b;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) return a.length === b.length && a.every((x, i) => same(x, b[i]));
  const ka = Object.keys(a), kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && same(a[k], b[k]));
}

/**
 * Runs `body` (the inside of an async function, given the package as `pm`)
 * in a child process on the given engine (threaded by default), counting
 * the Workers it starts. Returns what body returned, with { started, threads }.
 */
export function countWorkers(body, build = 'threaded') {
  const src = `import wt from 'node:worker_threads';
    import { syncBuiltinESMExports } from 'node:module';
    let started = 0;
    const Base = wt.Worker;
    wt.Worker = class extends Base { constructor(...a) { started++; super(...a); } };
    syncBuiltinESMExports();
    const pm = await import(${JSON.stringify(new URL('../index.js', import.meta.url).href)});
    const out = await (async () => { ${body} })();
    console.log(JSON.stringify({ ...out, started, threads: (await pm.info()).threads }));`;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', src],
    { encoding: 'utf8', timeout: 120000, env: { ...process.env, PARMAP_WASM_BUILD: build } }));
}
