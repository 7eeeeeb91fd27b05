// The package in a real browser (headless Chromium, when installed): the
// threaded build on a cross-origin isolated page (COOP/COEP headers), the
// workers engine without them (Web Workers, no SharedArrayBuffer); each from
// the ES modules as they are and from the prebuilt bundle (dist/browser.mjs).
// The browser demo's own end-to-end tests go further.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn, execFileSync } from 'node:child_process';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const chromium = ['chromium', 'chromium-browser', 'google-chrome'].map((c) => {
  try { return execFileSync('sh', ['-c', `command -v ${c}`], { encoding: 'utf8' }).trim(); } catch { return null; }
}).find(Boolean);
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm' };

/** Serves the package and opens `page` in a fresh headless Chromium; resolves
 * to what the page posts. `missing`: a path answered 404; `slow`: a path
 * answered `slow.ms` late; `requests`: an array that gets { path, referer, t }
 * of every request (t: ms since the server started). */
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
    if (requests) requests.push({ path: pathname, referer: req.headers.referer || '', t: performance.now() - t0 });
    try {
      if (pathname === missing) throw new Error('missing on purpose');
      if (slow && pathname === slow.path) await new Promise((r) => setTimeout(r, slow.ms));
      const data = await readFile(file);
      res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream', ...headers }).end(data);
    } catch { res.writeHead(404, headers).end(); }
  });
  const t0 = performance.now();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}/test/browser/${page}?entry=${entry}`;
  const profile = await mkdtemp(path.join(tmpdir(), 'parmap-chromium-'));
  // Its own process group, so that the renderer and zygote processes go too.
  const browser = spawn(chromium, ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync',
    `--user-data-dir=${profile}`, url], { stdio: 'ignore', detached: true });
  const exited = new Promise((r) => browser.once('exit', r));
  let timer;
  const timeout = new Promise((_, rej) => {
    timer = setTimeout(() => rej(new Error('no result from the page in 60 s')), 60000);
  });
  try {
    return await Promise.race([result, timeout]);
  } finally {
    clearTimeout(timer);
    try { process.kill(-browser.pid, 'SIGKILL'); } catch { browser.kill('SIGKILL'); }
    await exited;
    server.close();
    // Chromium's helpers may still be letting go of the profile for a moment.
    await rm(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
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

// A page whose server lacks the pthread worker script (a partial deploy): the
// threaded engine's first call rejects, naming the worker, with no hang.
test('browser: an isolated page without dist/web/parmap-mt.worker.js: the call rejects, saying why',
  { skip: process.env.PARMAP_NO_BROWSER === '1' ? 'PARMAP_NO_BROWSER=1' : false, timeout: 90000 }, async () => {
    assert.ok(chromium, 'no chromium installed (apt-get install chromium)');
    const r = await run(true, 'bundle', 'noworker.html', '/dist/web/parmap-mt.worker.js');
    assert.equal(r.crossOriginIsolated, true);
    assert.match(r.error || '', /the threaded engine's first worker did not start/, JSON.stringify(r));
  });

// The threaded engine's first pthread worker starts importing the glue as
// soon as it runs (scripts/pthread-preload.cmake), not once the main thread
// has loaded the module: with the .wasm served 1.5 s late, that worker asks
// for the glue long before the .wasm arrives (it used to ask after).
test('browser: the first pthread worker imports the glue while the main thread still loads the module',
  { skip: process.env.PARMAP_NO_BROWSER === '1' ? 'PARMAP_NO_BROWSER=1' : false, timeout: 90000 }, async () => {
    assert.ok(chromium, 'no chromium installed (apt-get install chromium)');
    const requests = [];
    const SLOW_MS = 1500;
    const r = await run(true, 'bundle', 'smoke.html', null, { slow: { path: '/dist/web/parmap-mt.wasm', ms: SLOW_MS }, requests });
    assert.ok(r.ok, r.error);
    assert.equal(r.info.build, 'threaded');
    const wasm = requests.find((q) => q.path === '/dist/web/parmap-mt.wasm');
    const fromWorker = requests.filter((q) => q.path === '/dist/web/parmap-mt.mjs' && q.referer.endsWith('/dist/web/parmap-mt.worker.js'));
    assert.ok(wasm && fromWorker.length > 0, JSON.stringify(requests));
    const first = fromWorker[0];
    assert.ok(first.t < wasm.t + SLOW_MS - 500,
      `the first pthread worker asked for the glue ${(first.t - wasm.t).toFixed(0)} ms after the .wasm was asked for ` +
      `(served ${SLOW_MS} ms late): ${JSON.stringify(requests)}`);
  });
