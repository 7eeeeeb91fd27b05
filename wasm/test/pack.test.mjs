// `npm pack`, then install the tarball into an empty project (offline: the
// package has no dependencies) and use it there with a plain import.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, readdirSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = fileURLToPath(new URL('..', import.meta.url));

test('npm pack installs into an empty project and works there', { timeout: 180000 }, () => {
  const tmp = mkdtempSync(path.join(tmpdir(), 'parmap-wasm-pack-'));
  try {
    const npm = (args, cwd) => execFileSync('npm', args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' } });
    npm(['pack', '--pack-destination', tmp], pkgDir);
    const tgz = readdirSync(tmp).find((f) => f.endsWith('.tgz'));
    assert.ok(tgz, 'npm pack made a tarball');
    const listing = execFileSync('tar', ['tzf', path.join(tmp, tgz)], { encoding: 'utf8' });
    for (const f of ['package/index.js', 'package/index.d.ts', 'package/dist/node/parmap-mt.wasm', 'package/dist/node/parmap-mt.worker.js',
      'package/dist/node/parmap-st.wasm', 'package/dist/web/parmap-mt.mjs', 'package/dist/web/parmap-st.mjs', 'package/README.md',
      'package/LICENSE', 'package/index.cjs', 'package/index.d.cts', 'package/dist/index.cjs', 'package/lib/host-node.js', 'package/lib/host-web.js',
      'package/dist/index.mjs', 'package/dist/worker-node.cjs', 'package/dist/browser.mjs', 'package/dist/worker.js',
      'package/lib/worker-web.js', 'package/dist/vendor/acorn.mjs'])
      assert.ok(listing.includes(f + '\n'), `${f} is in the tarball`);
    assert.ok(!listing.includes('package/test/'), 'tests are not shipped');
    const app = path.join(tmp, 'app');
    execFileSync('mkdir', ['-p', app]);
    writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', type: 'module', private: true }));
    npm(['install', '--offline', '--no-package-lock', path.join(tmp, tgz)], app);
    writeFileSync(path.join(app, 'main.js'), `
      import { parmap, imap, mapKernel, info } from 'parmap-wasm';
      // Node takes the bundle (package.json's "node" condition).
      if (!import.meta.resolve('parmap-wasm').endsWith('/parmap-wasm/dist/index.mjs')) throw new Error('not the bundle: ' + import.meta.resolve('parmap-wasm'));
      const i = await info();
      const a = await parmap((x) => x * x, [1, 2, 3]);
      const b = [];
      for await (const r of imap((s) => s.length, ['a', 'bb'])) b.push(r);
      const img = await mapKernel('mandelbrot_row', new Int32Array([0, 1]), { width: 8, height: 2 });
      console.log(JSON.stringify({ build: i.build, a, b, img: img.length }));
    `);
    // The same from CommonJS: require() of the installed package.
    writeFileSync(path.join(app, 'main.cjs'), `
      const { parmap, imap, mapKernel, info } = require('parmap-wasm');
      (async () => {
        const i = await info();
        const a = await parmap((x) => x * x, [1, 2, 3]);
        const b = [];
        for await (const r of imap((s) => s.length, ['a', 'bb'])) b.push(r);
        const img = await mapKernel('mandelbrot_row', new Int32Array([0, 1]), { width: 8, height: 2 });
        console.log(JSON.stringify({ build: i.build, a, b, img: img.length }));
      })();
    `);
    for (const build of ['threaded', 'workers', 'single']) {
      for (const main of ['main.js', 'main.cjs']) {
        const out = execFileSync(process.execPath, [main], { cwd: app, encoding: 'utf8', timeout: 60000, env: { ...process.env, PARMAP_WASM_BUILD: build } });
        assert.deepEqual(JSON.parse(out.trim()), { build, a: [1, 4, 9], b: [1, 2], img: 64 }, `${main} on ${build}`);
      }
    }
    // The licence shipped is the repository's (MIT).
    const installed = path.join(app, 'node_modules', 'parmap-wasm');
    assert.equal(readFileSync(path.join(installed, 'LICENSE'), 'utf8'), readFileSync(new URL('../../LICENSE', import.meta.url), 'utf8'));
    assert.match(readFileSync(path.join(installed, 'LICENSE'), 'utf8'), /^MIT License/);
    // Every link of the README works from the npm page: absolute, or a file
    // that the package ships.
    const readme = readFileSync(path.join(installed, 'README.md'), 'utf8');
    const links = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]);
    for (const l of links) {
      if (/^(https?:|mailto:|#)/.test(l)) continue;
      assert.ok(existsSync(path.join(installed, l.split('#')[0])), `README links to ${l}, which the package does not ship`);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
