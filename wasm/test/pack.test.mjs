// `npm pack`, then install the tarball into an empty project (offline: the
// package has no dependencies) and use it there with a plain import.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, readdirSync } from 'node:fs';
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
      'package/dist/node/parmap-st.wasm', 'package/dist/web/parmap-mt.mjs', 'package/dist/web/parmap-st.mjs', 'package/README.md'])
      assert.ok(listing.includes(f + '\n'), `${f} is in the tarball`);
    assert.ok(!listing.includes('package/test/'), 'tests are not shipped');
    const app = path.join(tmp, 'app');
    execFileSync('mkdir', ['-p', app]);
    writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', type: 'module', private: true }));
    npm(['install', '--offline', '--no-package-lock', path.join(tmp, tgz)], app);
    writeFileSync(path.join(app, 'main.js'), `
      import { parmap, imap, mapKernel, info } from 'parmap-wasm';
      const i = await info();
      const a = await parmap((x) => x * x, [1, 2, 3]);
      const b = [];
      for await (const r of imap((s) => s.length, ['a', 'bb'])) b.push(r);
      const img = await mapKernel('mandelbrot_row', new Int32Array([0, 1]), { width: 8, height: 2 });
      console.log(JSON.stringify({ build: i.build, a, b, img: img.length }));
    `);
    for (const build of ['threaded', 'workers', 'single']) {
      const out = execFileSync(process.execPath, ['main.js'], { cwd: app, encoding: 'utf8', timeout: 60000, env: { ...process.env, PARMAP_WASM_BUILD: build } });
      assert.deepEqual(JSON.parse(out.trim()), { build, a: [1, 4, 9], b: [1, 2], img: 64 });
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
