// The package in a real browser (headless Chromium, when installed): the
// threaded build on a cross-origin isolated page (COOP/COEP headers), the
// workers engine without them (Web Workers, no SharedArrayBuffer); each from
// the ES modules as they are and from the prebuilt bundle (dist/browser.mjs).
// The browser demo's own end-to-end tests go further.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, inChromium } from './chromium.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm' };

/** Serves the package and opens `page` in a fresh headless Chromium; resolves
 * to what the page posts. `missing`: a path answered 404, or a function of
 * (path, request) saying which; `slow`: a path answered `slow.ms` late;
 * `requests`: an array that gets { path, dest, t } of every request (dest:
 * its Sec-Fetch-Dest, 'worker' for a worker's script; t: ms since the
 * server started). */
async function run(isolated, entry, page = 'smoke.html', missing = null, { slow = null, requests = null } = {}) {
  let resolveResult;
  const result = new Promise((r) => { resolveResult = r; });
  const server = http.createServer(async (req, res) => {
    const headers = isolated ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } : {};
    if (req.method === 'POST' && req.url === '/result') {
      let body = '';
      for await (const c of req) body += c;
      res.writeHead(204, headers).end();
      resolveResult(JSON.parse(body));
      return;
    }
    const pathname = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const file = path.join(root, pathname);
    if (requests) requests.push({ path: pathname, dest: req.headers['sec-fetch-dest'] || '', t: performance.now() - t0 });
    try {
      if (typeof missing === 'function' ? missing(pathname, req) : pathname === missing) throw new Error('missing on purpose');
      if (slow && pathname === slow.path) await new Promise((r) => setTimeout(r, slow.ms));
      const data = await readFile(file);
      res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream', ...headers }).end(data);
    } catch { res.writeHead(404, headers).end(); }
  });
  const t0 = performance.now();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  try {
    return await inChromium(`http://127.0.0.1:${server.address().port}/test/browser/${page}?entry=${entry}`, result);
  } finally {
    server.close();
  }
}

for (const [isolated, entry] of [[true, 'modules'], [false, 'modules'], [true, 'bundle'], [false, 'bundle']]) {
  test(`browser: ${isolated ? 'cross-origin isolated page -> threaded' : 'plain page -> workers'} engine, ${
    entry === 'bundle' ? 'the prebuilt bundle (dist/browser.mjs)' : 'the ES modules'}`,
    // Skipped only when asked to (PARMAP_NO_BROWSER=1); a missing Chromium
    // otherwise fails the test (scripts/test_node.sh installs it).
    { skip: process.env.PARMAP_NO_BROWSER === '1' ? 'PARMAP_NO_BROWSER=1' : false, timeout: 90000 }, async () => {
    assert.ok(chromium, 'no chromium installed (apt-get install chromium)');
      const r = await run(isolated, entry);
      assert.ok(r.ok, r.error);
      assert.equal(r.crossOriginIsolated, isolated);
      assert.equal(r.info.build, isolated ? 'threaded' : 'workers');
      assert.ok(r.info.threads >= 2 || r.info.cpuCount < 2, `threads ${r.info.threads}`);
      assert.match(r.info.reason, isolated ? /cross-origin isolated/ : /not cross-origin isolated/);
      assert.deepEqual(r.runaway, [0, 1, 2, 'ETIMEOUT:3', 4, 5], 'the runaway item was stopped by its timeout');
      assert.deepEqual(r.atOnce, { calls: true, streams: true }, '200 calls and 20 imaps at once');
      assert.equal(r.info.environment, 'browser');
      assert.deepEqual(r.sq, [1, 4, 9]);
      assert.equal(r.bigLast, 1);
      assert.deepEqual(r.st, ['A', 'B']);
      assert.deepEqual(r.img, [64, 48, 255]);
      assert.match(r.closure, /the function uses `k`/);
      assert.deepEqual(r.heap, { same: true, shared: isolated, imageData: 64 }, 'heap arrays: same pixels, shared memory only when threaded');
      assert.ok(r.ticks >= 5, `the page's timer ticked ${r.ticks} times during a map`);
      // The bundle is the whole package in one file (and its worker in one):
      // nothing of lib/ is loaded; the workers engine's worker is dist/worker.js.
      if (entry === 'bundle') {
        assert.deepEqual(r.files.filter((f) => f.startsWith('/lib/') || f === '/index.js'), [], 'only dist/ files');
        assert.ok(r.files.includes('/dist/browser.mjs') && r.files.includes('/dist/worker.js'), r.files.join(' '));
      } else {
        assert.ok(r.files.includes('/lib/loader.js') && !r.files.includes('/dist/browser.mjs'), r.files.join(' '));
      }
    });
}

// A page whose pthread workers cannot load their script (the server refuses
// the glue to workers, as a CSP or a proxy might): the threaded engine's
// first call rejects, naming the worker, with no hang.
test('browser: an isolated page whose pthread worker cannot load its script: the call rejects, saying why',
  { skip: process.env.PARMAP_NO_BROWSER === '1' ? 'PARMAP_NO_BROWSER=1' : false, timeout: 90000 }, async () => {
    assert.ok(chromium, 'no chromium installed (apt-get install chromium)');
    const r = await run(true, 'bundle', 'noworker.html',
      (p, req) => p === '/dist/web/parmap-mt.mjs' && req.headers['sec-fetch-dest'] === 'worker');
    assert.equal(r.crossOriginIsolated, true);
    assert.match(r.error || '', /the threaded engine's first worker did not start/, JSON.stringify(r));
  });

// The threaded engine's pthread workers run the glue itself as their script
// (scripts/pthread-worker.cmake): one request each, not Emscripten's worker
// script and then the glue; and the first one asks for it at once, not once
// the main thread has loaded the module: with the .wasm served 1.5 s late, it
// asks long before the .wasm arrives (Emscripten's script asked after).
test('browser: the pthread workers load the glue as their script, the first one while the main thread still loads the module',
  { skip: process.env.PARMAP_NO_BROWSER === '1' ? 'PARMAP_NO_BROWSER=1' : false, timeout: 90000 }, async () => {
    assert.ok(chromium, 'no chromium installed (apt-get install chromium)');
    const requests = [];
    const SLOW_MS = 1500;
    const r = await run(true, 'bundle', 'smoke.html', null, { slow: { path: '/dist/web/parmap-mt.wasm', ms: SLOW_MS }, requests });
    assert.ok(r.ok, r.error);
    assert.equal(r.info.build, 'threaded');
    const wasm = requests.find((q) => q.path === '/dist/web/parmap-mt.wasm');
    // (dist/worker.js: the workers engine's, for the calls with a timeout)
    const workers = requests.filter((q) => q.dest === 'worker' && q.path.startsWith('/dist/web/'));
    assert.ok(wasm && workers.length >= 2, JSON.stringify(requests));   // the first worker, the crew
    assert.deepEqual([...new Set(workers.map((q) => q.path))], ['/dist/web/parmap-mt.mjs'], JSON.stringify(requests));
    assert.ok(!requests.some((q) => q.path.endsWith('.worker.js')), JSON.stringify(requests));
    assert.ok(workers[0].t < wasm.t + SLOW_MS - 500,
      `the first pthread worker asked for its script ${(workers[0].t - wasm.t).toFixed(0)} ms after the .wasm was asked for ` +
      `(served ${SLOW_MS} ms late): ${JSON.stringify(requests)}`);
  });

// The package on a CDN: its files on another origin (which allows CORS, as
// CDNs do), the page importing the bundle from there, with configure({
// baseURL }) and without. A browser starts workers only from the page's
// origin: the workers (the workers engine's and the pthreads) start from a
// blob: that imports the script (lib/host-web.js moduleWorker).
async function runFromCdn(isolated, configureBase) {
  const iso = isolated ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } : {};
  const cdn = http.createServer(async (req, res) => {
    const h = { 'Access-Control-Allow-Origin': '*', 'Cross-Origin-Resource-Policy': 'cross-origin' };
    try {
      const file = path.join(root, decodeURIComponent(new URL(req.url, 'http://x').pathname));
      res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream', ...h }).end(await readFile(file));
    } catch { res.writeHead(404, h).end(); }
  });
  await new Promise((r) => cdn.listen(0, '127.0.0.1', r));
  const dist = `http://127.0.0.1:${cdn.address().port}/dist/`;
  const page = `<!doctype html><script type="module">
    const report = (o) => fetch('/result', { method: 'POST', body: JSON.stringify(o) });
    try {
      const { parmap, configure, info, mapKernel } = await import('${dist}browser.mjs');
      if (${configureBase}) configure({ baseURL: '${dist}' });
      const sq = await parmap((x) => x * x, [1, 2, 3]);
      const timed = await parmap((x) => x + 1, [1, 2], { timeout: 5000 });
      const kernel = Array.from(await mapKernel('collatz_steps', Float64Array.from([1, 2, 3, 27])));
      report({ ok: true, sq, timed, kernel, build: (await info()).build });
    } catch (e) { report({ ok: false, error: String(e && e.message || e) }); }
  </script>`;
  let resolveResult;
  const result = new Promise((r) => { resolveResult = r; });
  const server = http.createServer(async (req, res) => {
    if (req.method === 'POST') { let b = ''; for await (const c of req) b += c; res.writeHead(204, iso).end(); resolveResult(JSON.parse(b)); return; }
    res.writeHead(200, { 'Content-Type': 'text/html', ...iso }).end(page);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  try {
    // (localhost and 127.0.0.1: two origins)
    return await inChromium(`http://localhost:${server.address().port}/`, result);
  } finally {
    server.close();
    cdn.close();
  }
}

for (const isolated of [false, true]) {
  for (const configureBase of [true, false]) {
    test(`browser: the package from another origin (a CDN), ${configureBase ? 'with' : 'without'} configure({ baseURL }), ${
      isolated ? 'isolated page -> threaded' : 'plain page -> workers'}`,
    { skip: process.env.PARMAP_NO_BROWSER === '1' ? 'PARMAP_NO_BROWSER=1' : false, timeout: 90000 }, async () => {
      assert.ok(chromium, 'no chromium installed (apt-get install chromium)');
      const r = await runFromCdn(isolated, configureBase);
      assert.deepEqual(r, { ok: true, sq: [1, 4, 9], timed: [2, 3], kernel: [0, 1, 7, 111], build: isolated ? 'threaded' : 'workers' });
    });
  }
}
