// The package as bundled by a user: a small page importing 'parmap-wasm'
// from an installed copy (node_modules/parmap-wasm, the files `npm pack`
// ships), built with esbuild, Vite (build, and the dev server) and webpack 5
// with their defaults, served with and without COOP/COEP, run in headless
// Chromium, which reports a real parmap call's results. Nothing of the
// package is copied by hand: Vite and webpack follow its literal
// `new URL('../dist/...', import.meta.url)`; esbuild does not follow those, so
// its page points configure({ baseURL }) at the installed package with a
// path relative to the page (which is also the test of that resolution).
// Every bundle is checked for `node:` imports (there must be none).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFile, mkdtemp, rm, mkdir, writeFile, cp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, inChromium } from './chromium.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm' };
const ISOLATION = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
const WATCHDOG_MS = 150000;   // the whole file: a hang fails instead of stalling CI

// The page: a real call of each kind, its results posted back to /result.
const MAIN = (baseURL) => `
import { parmap, imap, mapKernel, info, configure } from 'parmap-wasm';
const report = (o) => fetch('/result', { method: 'POST', body: JSON.stringify(o) });
(async () => {
  try {
    ${baseURL ? `configure({ baseURL: ${JSON.stringify(baseURL)} });` : ''}
    const i = await info();
    const sq = await parmap((x) => x * x, [1, 2, 3, 4]);
    const st = [];
    for await (const r of imap((s) => s.toUpperCase(), ['a', 'b'])) st.push(r);
    const px = await mapKernel('mandelbrot_row', Int32Array.from({ length: 8 }, (_, y) => y), { width: 16, height: 8 });
    await report({ ok: true, build: i.build, threads: i.threads, isolated: self.crossOriginIsolated === true, sq, st, px: px.length });
  } catch (e) {
    await report({ ok: false, error: String(e && e.stack || e) });
  }
})();
`;
const HTML = (script) => `<!doctype html><meta charset="utf-8"><title>parmap-wasm bundled</title>
<script type="module" src="${script}"></script>\n`;

/** A project with parmap-wasm installed (the shipped files, as npm would). */
async function makeApp(dir) {
  const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8'));
  const dest = path.join(dir, 'node_modules', 'parmap-wasm');
  await mkdir(dest, { recursive: true });
  for (const f of [...pkg.files, 'package.json']) {
    await cp(path.join(root, f), path.join(dest, f), { recursive: true }).catch((e) => { if (e.code !== 'ENOENT') throw e; });
  }
  await writeFile(path.join(dir, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
}

/** A static server of `dir` (optionally cross-origin isolated) that takes the page's result. */
async function serveStatic(dir, isolated) {
  const got = {};
  got.result = new Promise((r) => { got.resolve = r; });
  const headers = isolated ? ISOLATION : {};
  const server = http.createServer(async (req, res) => {
    if (req.method === 'POST' && req.url === '/result') {
      let body = '';
      for await (const c of req) body += c;
      res.writeHead(204, headers).end();
      got.resolve(JSON.parse(body));
      return;
    }
    let file = path.join(dir, decodeURIComponent(new URL(req.url, 'http://x').pathname));
    if (file.endsWith('/')) file += 'index.html';
    try {
      const data = await readFile(file);
      res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream', ...headers }).end(data);
    } catch { res.writeHead(404, headers).end(); }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}/`, result: got.result, close: () => server.close() };
}

/** Every .js/.mjs file of a build: none may import a `node:` module. */
async function assertNoNodeImports(dir) {
  const files = (await readdir(dir, { recursive: true })).filter((f) => /\.m?js$/.test(f));
  assert.ok(files.length > 0, `no scripts in ${dir}`);
  for (const f of files) {
    const src = await readFile(path.join(dir, f), 'utf8');
    assert.doesNotMatch(src, /(?:from\s*|import\s*\(\s*|require\s*\(\s*)["']node:/, `${f} imports a node: module`);
  }
}

function checkPage(r, isolated) {
  assert.ok(r.ok, r.error);
  assert.equal(r.isolated, isolated);
  assert.equal(r.build, isolated ? 'threaded' : 'workers');
  assert.deepEqual(r.sq, [1, 4, 9, 16]);
  assert.deepEqual(r.st, ['A', 'B']);
  assert.equal(r.px, 16 * 8 * 4);
}

const skip = process.env.PARMAP_NO_BROWSER === '1' ? 'PARMAP_NO_BROWSER=1' : false;

test('bundlers: esbuild, Vite (build and dev) and webpack 5 pages run parmap in Chromium', { skip, timeout: WATCHDOG_MS }, async (t) => {
  assert.ok(chromium, 'no chromium installed (apt-get install chromium)');
  const tmp = await mkdtemp(path.join(tmpdir(), 'parmap-bundlers-'));
  const watchdog = setTimeout(() => { console.error('bundlers.test: watchdog fired'); process.exit(1); }, WATCHDOG_MS - 5000);
  try {
    await makeApp(tmp);

    await t.test('esbuild (relative baseURL), plain page and cross-origin isolated page', async () => {
      const { build } = await import('esbuild');
      const dir = path.join(tmp, 'esb');
      await mkdir(dir);
      await writeFile(path.join(dir, 'main.js'), MAIN('node_modules/parmap-wasm/dist/'));
      await build({ entryPoints: [path.join(dir, 'main.js')], bundle: true, format: 'esm', platform: 'browser',
        outfile: path.join(tmp, 'esb-out', 'main.js'), absWorkingDir: tmp, logLevel: 'error' });
      await assertNoNodeImports(path.join(tmp, 'esb-out'));
      // The page at the project's root, its bundle in esb-out/.
      await writeFile(path.join(tmp, 'index.html'), HTML('/esb-out/main.js'));
      for (const isolated of [false, true]) {
        const s = await serveStatic(tmp, isolated);
        try { checkPage(await inChromium(s.url, s.result), isolated); } finally { s.close(); }
      }
    });

    await t.test('webpack 5, plain page and cross-origin isolated page', async () => {
      const webpack = (await import('webpack')).default;
      const dir = path.join(tmp, 'wp');
      await mkdir(dir);
      await writeFile(path.join(dir, 'main.js'), MAIN(null));
      const stats = await new Promise((res, rej) => webpack({
        mode: 'production', context: dir, entry: './main.js',
        output: { path: path.join(dir, 'dist'), filename: 'main.js' },
        resolve: { modules: [path.join(tmp, 'node_modules')] },
      }, (e, s) => (e ? rej(e) : res(s))));
      assert.ok(!stats.hasErrors(), stats.toString('errors-only'));
      await writeFile(path.join(dir, 'dist', 'index.html'), HTML('main.js'));
      await assertNoNodeImports(path.join(dir, 'dist'));
      for (const isolated of [false, true]) {
        const s = await serveStatic(path.join(dir, 'dist'), isolated);
        try { checkPage(await inChromium(s.url, s.result), isolated); } finally { s.close(); }
      }
    });

    const vite = await import('vite');
    const viteConfig = (dir, extra) => ({ root: dir, configFile: false, logLevel: 'error', clearScreen: false, ...extra });

    await t.test('Vite build, plain page', async () => {
      const dir = path.join(tmp, 'vb');
      await mkdir(dir);
      await writeFile(path.join(dir, 'main.js'), MAIN(null));
      await writeFile(path.join(dir, 'index.html'), HTML('./main.js'));
      await vite.build(viteConfig(dir, { build: { outDir: path.join(dir, 'dist'), target: 'es2022' } }));
      await assertNoNodeImports(path.join(dir, 'dist'));
      const s = await serveStatic(path.join(dir, 'dist'), false);
      try { checkPage(await inChromium(s.url, s.result), false); } finally { s.close(); }
    });

    await t.test('Vite dev server, cross-origin isolated page', async () => {
      const dir = path.join(tmp, 'vd');
      await mkdir(dir);
      await writeFile(path.join(dir, 'main.js'), MAIN(null));
      await writeFile(path.join(dir, 'index.html'), HTML('./main.js'));
      let resolve;
      const result = new Promise((r) => { resolve = r; });
      const server = await vite.createServer(viteConfig(dir, {
        server: { host: '127.0.0.1', port: 0, headers: ISOLATION, hmr: false, watch: null },
        plugins: [{
          name: 'result',
          configureServer(srv) {
            srv.middlewares.use('/result', async (req, res) => {
              let body = '';
              for await (const c of req) body += c;
              res.statusCode = 204;
              res.end();
              resolve(JSON.parse(body));
            });
          },
        }],
      }));
      await server.listen();
      try {
        checkPage(await inChromium(`http://127.0.0.1:${server.httpServer.address().port}/`, result), true);
      } finally {
        await server.close();
      }
    });
  } finally {
    clearTimeout(watchdog);
    await rm(tmp, { recursive: true, force: true });
  }
});
