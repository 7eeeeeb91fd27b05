// configure({ baseURL }): a bad one is refused at configure() with a
// RangeError (not at the first call); a relative one is a path from the
// current directory in Node (from the page in browsers: test/bundlers.test.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, cpSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { configure, parmap, terminate } from '../index.js';

const root = fileURLToPath(new URL('..', import.meta.url));

test('configure: a malformed or unusable baseURL is refused at once, with a RangeError that says why', () => {
  const cases = [
    ['http://[oops', /not a valid URL/],
    ['', /non-empty/],
    [42, /string or URL/],
    ['https://cdn.example/parmap-wasm/dist/', /in Node, baseURL must be a path or a file: URL/],
  ];
  for (const [v, msg] of cases) assert.throws(() => configure({ baseURL: v }), (e) => e instanceof RangeError && msg.test(e.message), String(v));
});

test('configure: a refused baseURL leaves the earlier settings in force', async () => {
  assert.throws(() => configure({ build: 'single', baseURL: 'http://[oops' }), RangeError);
  assert.deepEqual(await parmap((x) => x + 1, [1, 2]), [2, 3]);
  await terminate();
});

for (const build of ['threaded', 'workers', 'single']) {
  test(`configure: a relative baseURL is taken from the current directory (${build})`, { timeout: 60000 }, () => {
    const script = (base) => `import { configure, parmap, info } from ${JSON.stringify(pathToFileURL(root + 'index.js').href)};
      configure({ baseURL: ${JSON.stringify(base)}, build: '${build}' });
      const i = await info();
      console.log(JSON.stringify({ build: i.build, r: await parmap((x) => x * 2, [1, 2, 3]) }));`;
    // From wasm/test/, '../dist' is the package's dist/ ...
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script('../dist')],
      { cwd: `${root}test`, encoding: 'utf8', timeout: 50000 });
    assert.deepEqual(JSON.parse(out.trim()), { build, r: [2, 4, 6] });
    // ... and from wasm/ it names nothing: the load fails, naming the place.
    assert.throws(() => execFileSync(process.execPath, ['--input-type=module', '-e', script('../dist')],
      { cwd: root, encoding: 'utf8', timeout: 50000, stdio: 'pipe' }), (e) => e.stderr.includes(pathToFileURL(root).href.replace(/wasm\/$/, 'dist/')) || /ENOENT|Cannot find module/.test(e.stderr));
  });
}

// A dist/ whose .wasm is damaged (a truncated download, a bad CDN copy),
// whose glue is missing, or whose pthread worker script is missing: the call
// rejects (the compile error, the missing module, the worker that did not
// start: the threaded engine's only, the others do not use that file), on
// every engine, stops the workers it started and does not wait for a module
// that will never come (the glue loads and starts its workers while the
// .wasm compiles, so a failed compile must stop it: lib/loader.js
// instantiate); a good dist/ then works, and the process exits by itself.
// In a child process, with a watchdog: a hang fails the test.
test('configure: a dist/ with a damaged .wasm, no glue or no pthread worker script rejects the call (no hang, no worker left), every engine', { timeout: 120000 }, () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'parmap-baddist-'));
  try {
    const damaged = path.join(tmp, 'damaged', 'dist');
    const noGlue = path.join(tmp, 'noglue', 'dist');
    const noWorker = path.join(tmp, 'noworker', 'dist');
    for (const d of [damaged, noGlue, noWorker]) cpSync(`${root}dist/node`, path.join(d, 'node'), { recursive: true });
    for (const v of ['mt', 'st']) {
      writeFileSync(path.join(damaged, 'node', `parmap-${v}.wasm`), Buffer.from('\0asm\x01\0\0\0 not a module'));
      rmSync(path.join(noGlue, 'node', `parmap-${v}.js`));
    }
    rmSync(path.join(noWorker, 'node', 'parmap-mt.worker.js'));
    const url = (d) => JSON.stringify(pathToFileURL(d + '/').href);
    for (const build of ['threaded', 'workers', 'single']) {
      const script = `import { configure, parmap, terminate } from ${JSON.stringify(pathToFileURL(root + 'index.js').href)};
        const out = [];
        for (const base of [${url(damaged)}, ${url(noGlue)}, ${url(noWorker)}]) {
          configure({ baseURL: base, build: '${build}' });
          try { await parmap((x) => x, [1, 2]); out.push('resolved'); } catch (e) { out.push(e.constructor.name + ' ' + (e.code || '') + (/first worker did not start/.test(e.message) ? 'no worker' : '')); }
          await terminate();
        }
        configure({ baseURL: ${url(root + 'dist')} });
        out.push(await parmap((x) => x + 1, [1, 2]));
        console.log(JSON.stringify(out));`;
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30000 });
      assert.deepEqual(JSON.parse(out.trim()),
        ['CompileError ', 'Error MODULE_NOT_FOUND', build === 'threaded' ? 'Error no worker' : 'resolved', [2, 3]], build);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

// The threaded engine's load does not wait for its first pthread worker
// (lib/loader.js instantiate): the first call's thread is posted to it while
// it boots. A worker that fails after the load has ended (here: its script
// runs 300 ms, then throws) must still fail that call and not leave it
// waiting for ever; so must it fail a second call that waits for the crew
// (after info(), every call but the first waits: lib/loader.js waitCrew),
// with the same error, not start it on the dead module. In a child process,
// with a watchdog: a hang fails the test.
test('configure: a first pthread worker that fails after the load has ended rejects the calls (no hang), and the next call works', { timeout: 60000 }, () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'parmap-lateworker-'));
  try {
    const dist = path.join(tmp, 'dist');
    cpSync(`${root}dist/node`, path.join(dist, 'node'), { recursive: true });
    writeFileSync(path.join(dist, 'node', 'parmap-mt.worker.js'),
      'const t = Date.now(); while (Date.now() - t < 300); throw new Error("late failure");\n');
    const script = `import { configure, parmap, info, terminate } from ${JSON.stringify(pathToFileURL(root + 'index.js').href)};
      const out = [];
      configure({ baseURL: ${JSON.stringify(pathToFileURL(dist + '/').href)}, build: 'threaded' });
      const t0 = performance.now();
      try { await parmap((x) => x, [1, 2]); out.push('resolved'); } catch (e) { out.push(e.message); }
      out.push(performance.now() - t0 > 250 ? 'after the worker ran' : 'too soon');
      await terminate();
      await info();
      const msg = (e) => e.message;
      out.push(await Promise.all([parmap((x) => x, [1]).catch(msg), parmap((x) => x, [2]).catch(msg)]));
      await terminate();
      configure({ baseURL: ${JSON.stringify(pathToFileURL(root + 'dist').href)} });
      out.push(await parmap((x) => x + 1, [1, 2]), (await info()).build);
      console.log(JSON.stringify(out));`;
    const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30000 }).trim());
    assert.match(out[0], /^parmap: the threaded engine's first worker did not start: late failure/);
    assert.equal(out[1], 'after the worker ran');
    for (const m of out[2]) assert.match(m, /^parmap: the threaded engine's first worker did not start: late failure/);
    assert.deepEqual(out.slice(3), [[2, 3], 'threaded']);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

// Node flags a Worker refuses when given explicitly (V8 and per-process ones:
// --expose-gc, --max-old-space-size, --stack-size), in a script file and with
// --input-type (the one flag the package must take out of a worker's
// execArgv, so that list is then given): workers still start on every engine.
for (const build of ['threaded', 'workers', 'single']) {
  for (const flags of [['--expose-gc', '--max-old-space-size=2000'], ['--expose-gc', '--stack-size=900', '--input-type=module']]) {
    test(`node ${flags.join(' ')}: workers start (${build})`, { timeout: 60000 }, () => {
      const src = `import { parmap, info } from ${JSON.stringify(pathToFileURL(root + 'index.js').href)};
        const r = await parmap(async (x) => x * 2, [1, 2, 3]);   // async: the workers pool on every engine
        console.log(JSON.stringify({ build: (await info()).build, r }));`;
      const dir = mkdtempSync(path.join(os.tmpdir(), 'parmap-flags-'));
      const file = path.join(dir, 'main.mjs');
      writeFileSync(file, src);
      const args = flags.includes('--input-type=module') ? [...flags, '-e', src] : [...flags, file];
      try {
        const out = execFileSync(process.execPath, args, { encoding: 'utf8', timeout: 50000, env: { ...process.env, PARMAP_WASM_BUILD: build } });
        assert.deepEqual(JSON.parse(out.trim()), { build, r: [2, 4, 6] });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
}
