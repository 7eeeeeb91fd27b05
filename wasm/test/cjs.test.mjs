// The package as Node programs load it, from the bundles that
// scripts/build-bundles.mjs makes (rebuilt here from the current sources):
// require('parmap-wasm') (index.cjs -> dist/index.cjs) and import 'parmap-wasm'
// (package.json's "node" condition -> dist/index.mjs), on each engine, in a
// child process so its state is its own; the CommonJS types are the ES module
// ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

// The same program for both: pm is the package, loaded each way.
const PROGRAM = `
    const names = Object.keys(pm).sort();
    let bad = null;
    try { pm.configure({ baseURL: 'http://[oops' }); } catch (e) { bad = e.constructor.name; }
    const cpus = pm.cpuCount();
    (async () => {
      const i = await pm.info();
      const a = await pm.parmap((x) => x * x, [1, 2, 3]);
      const b = [];
      for await (const r of pm.imap((s) => s.length, ['a', 'bb'])) b.push(r);
      const img = await pm.mapKernel('mandelbrot_row', new Int32Array([0, 1]), { width: 8, height: 2 });
      const r = await pm.parmap((x) => { if (x === 2) throw new Error('two'); return x; }, [1, 2], { exception: 'return' });
      console.log(JSON.stringify({ names, bad, cpus: cpus >= 1, build: i.build, a, b, img: img.length,
        err: r[1] instanceof pm.ParmapError && r[1].index, entry }));
    })().catch((e) => { console.error(e); process.exit(1); });`;
const LOADS = {
  require: ['-e', `const pm = require('./index.cjs'); const entry = require.resolve('./index.cjs');${PROGRAM}`],
  // By the package's own name (a package may import itself): what a user's
  // import resolves to.
  import: ['--input-type=module', '-e', `import * as pm from 'parmap-wasm'; const entry = import.meta.resolve('parmap-wasm');${PROGRAM}`],
};
const ENTRY = { require: `${root}index.cjs`, import: `file://${root}dist/index.mjs` };

for (const how of ['require', 'import']) {
  test(`${how} 'parmap-wasm' works from its bundle: the same API, synchronous configure() and cpuCount(), every engine`,
    { timeout: 120000 }, () => {
      execFileSync(process.execPath, ['scripts/build-bundles.mjs'], { cwd: root });
      const esmNames = execFileSync(process.execPath, ['--input-type=module', '-e',
        "import * as m from './index.js'; console.log(JSON.stringify(Object.keys(m).sort()))"], { cwd: root, encoding: 'utf8' });
      for (const build of ['threaded', 'workers', 'single']) {
        const out = execFileSync(process.execPath, LOADS[how], { cwd: root, encoding: 'utf8', timeout: 60000,
          env: { ...process.env, PARMAP_WASM_BUILD: build } });
        assert.deepEqual(JSON.parse(out.trim()), { names: JSON.parse(esmNames), bad: 'RangeError', cpus: true, build,
          a: [1, 4, 9], b: [1, 2], img: 64, err: 1, entry: ENTRY[how] });
      }
    });
}

test('the browser bundle run in Node says what to import instead', () => {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e',
    "import { parmap } from './dist/browser.mjs'; try { await parmap((x) => x, [1]); console.log('resolved'); } catch (e) { console.log(e.message); }"],
  { cwd: root, encoding: 'utf8', timeout: 30000 });
  assert.match(out, /in Node, import the package by its name \('parmap-wasm'\).*dist\/browser\.mjs is for browsers/);
});

test('no top-level await in lib/ or index.js (require(esm) and the CommonJS bundle need none)', async () => {
  const acorn = await import('../dist/vendor/acorn.mjs');
  // Walk the module's syntax tree without entering functions: an await or a
  // for-await found there runs at the top level.
  const topLevelAwait = (node) => {
    if (!node || typeof node.type !== 'string') return false;
    if (/Function/.test(node.type)) return false;
    if (node.type === 'AwaitExpression' || (node.type === 'ForOfStatement' && node.await)) return true;
    return Object.values(node).some((v) => (Array.isArray(v) ? v.some(topLevelAwait) : v && typeof v === 'object' && topLevelAwait(v)));
  };
  const files = ['index.js', ...readdirSync(new URL('../lib/', import.meta.url)).filter((f) => f.endsWith('.js'))
    // Worker entries are never require()d: they may wait at the top level.
    .filter((f) => !['worker.js', 'worker-node.js'].includes(f)).map((f) => `lib/${f}`)];
  for (const f of files) {
    const ast = acorn.parse(readFileSync(new URL(`../${f}`, import.meta.url), 'utf8'), { ecmaVersion: 'latest', sourceType: 'module' });
    assert.equal(topLevelAwait(ast), false, `${f} has a top-level await`);
  }
});

test('index.d.cts (require) declares exactly what index.d.ts (import) does', () => {
  const strip = (s) => s.split('\n').slice(1).join('\n');
  assert.equal(strip(readFileSync(new URL('../index.d.cts', import.meta.url), 'utf8')),
    strip(readFileSync(new URL('../index.d.ts', import.meta.url), 'utf8')));
});

test('package.json: require gets index.cjs and its types; import gets dist/index.mjs in Node, index.js elsewhere', () => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  const dot = pkg.exports['.'];
  assert.deepEqual(dot.node, { import: { types: './index.d.ts', default: './dist/index.mjs' },
    require: { types: './index.d.cts', default: './index.cjs' } });
  assert.deepEqual(dot.require, { types: './index.d.cts', default: './index.cjs' });
  assert.deepEqual(dot.import, { types: './index.d.ts', default: './index.js' });
  // "node" first (conditions match in order), `types` first in each
  // condition (TypeScript reads them in order).
  assert.equal(Object.keys(dot)[0], 'node');
  for (const c of [...Object.values(dot.node), dot.import, dot.require, dot.default]) assert.equal(Object.keys(c)[0], 'types');
});
