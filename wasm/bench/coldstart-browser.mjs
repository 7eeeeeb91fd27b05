// coldstart-browser.mjs - the first call in a fresh page of headless
// Chromium (Debian's chromium): a page served by a local server, with and
// without COOP/COEP, imports the package without a bundler (the prebuilt
// bundle dist/browser.mjs, and the ES modules as they are) and times its
// first parmap((x) => x * 2, [1, 2, 3, 4]), each run in a new browser profile.
// Two conditions:
//  - at browser start (the keys of `ms`): the page's script runs while the
//    freshly launched browser still starts up around it (on 2 cores its own
//    start-up competes for the CPU: an empty module's import alone then
//    takes ~30 ms);
//  - browser up (`ms.browserUp`): the same page waits 1.5 s before it starts
//    the clock, as a page opened in a browser already running (only the
//    bundle: what a page without a bundler loads).
// Prints JSON: medians (min, max) of
//   first     ms from the module script's start (its clock's start) to the first result,
//   sinceNav  ms from the navigation's start to the first result (at browser start),
//   warm      ms of a small call after 50 warm-up calls (mean of 200),
//   steady    ms of a small call after 2,250 calls (mean of 1,000: the JIT done).
// and the floors, measured the same way in each condition (emptyWorker):
//   import      ms of a dynamic import of a one-line module from the server
//               (what the package's own import cannot go below);
//   first       an empty worker's start (a Blob URL: no request), to its
//               first message;
//   fileWorker  that import, then a module worker whose script is a file
//               from the server, to its first message (the floor of a first
//               call that runs in a worker: import, worker script, message);
//   roundTrip   a message's round trip to the worker (the floor of a steady
//               small call on the workers engine).
// Usage: node bench/coldstart-browser.mjs [runs=5]
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const runs = Number(process.argv[2] || 5);
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm' };
const UP_MS = 1500;   // browser up: the page waits this long first
const page = (entry, wait = 0) => `<!doctype html><script type="module">
${wait ? `await new Promise((r) => setTimeout(r, ${wait}));` : ''}
const t0 = performance.now();
const { parmap, info } = await import('${entry}');
await parmap((x) => x * 2, [1, 2, 3, 4]);
const t1 = performance.now();
for (let i = 0; i < 50; i++) await parmap((x) => x * 2, [1, 2, 3, 4]);
const t2 = performance.now();
for (let i = 0; i < 200; i++) await parmap((x) => x * 2, [1, 2, 3, 4]);
const warm = (performance.now() - t2) / 200;
for (let i = 0; i < 2000; i++) await parmap((x) => x * 2, [1, 2, 3, 4]);
const t3 = performance.now();
for (let i = 0; i < 1000; i++) await parmap((x) => x * 2, [1, 2, 3, 4]);
const steady = (performance.now() - t3) / 1000;
fetch('/result', { method: 'POST', body: JSON.stringify({ build: (await info()).build, first: t1 - t0, sinceNav: t1, warm, steady }) });
</script>`;

// The floor for a first call that runs in a worker: an empty worker, from
// new Worker to its first message, in a fresh page.
// Then, as the floor of a small call's steady state on the workers engine,
// the round trip of a message of 4 numbers to it and back (mean of 2,000
// after 3,000).
const EMPTY_PAGE = (wait = 0) => `<!doctype html><script type="module">
${wait ? `await new Promise((r) => setTimeout(r, ${wait}));` : ''}
const t0 = performance.now();
const w = new Worker(URL.createObjectURL(new Blob(['postMessage(1); onmessage = (e) => postMessage(e.data)'], { type: 'text/javascript' })));
await new Promise((r) => { w.onmessage = r; });
const first = performance.now() - t0;
const rt = () => new Promise((r) => { w.onmessage = r; w.postMessage([1, 2, 3, 4]); });
for (let i = 0; i < 3000; i++) await rt();
const t1 = performance.now();
for (let i = 0; i < 2000; i++) await rt();
fetch('/result', { method: 'POST', body: JSON.stringify({ first, roundTrip: (performance.now() - t1) / 2000 }) });
</script>`;
// The floor of the package's own first call, in a page of its own: a
// module's import, then a module worker from a file, to its first message.
const FLOOR_PAGE = (wait = 0) => `<!doctype html><script type="module">
${wait ? `await new Promise((r) => setTimeout(r, ${wait}));` : ''}
const t0 = performance.now();
await import('/empty.mjs');
const importMs = performance.now() - t0;
const w = new Worker('/empty-worker.mjs', { type: 'module' });
await new Promise((r) => { w.onmessage = r; });
fetch('/result', { method: 'POST', body: JSON.stringify({ import: importMs, fileWorker: performance.now() - t0 }) });
</script>`;

async function once(isolated, page) {
  let resolve;
  const result = new Promise((r) => { resolve = r; });
  const headers = isolated ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } : {};
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x').pathname;
    if (req.method === 'POST') { let b = ''; for await (const c of req) b += c; res.writeHead(204, headers).end(); resolve(JSON.parse(b)); return; }
    if (url === '/') { res.writeHead(200, { 'Content-Type': 'text/html', ...headers }).end(page); return; }
    // (the floors' files: a one-line module, a worker that says it is up)
    if (url === '/empty.mjs') { res.writeHead(200, { 'Content-Type': 'text/javascript', ...headers }).end('export default 1;'); return; }
    if (url === '/empty-worker.mjs') { res.writeHead(200, { 'Content-Type': 'text/javascript', ...headers }).end('postMessage(1);'); return; }
    try {
      const file = path.join(root, decodeURIComponent(url));
      const data = await readFile(file);
      res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream', ...headers }).end(data);
    } catch { res.writeHead(404, headers).end(); }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const profile = await mkdtemp(path.join(os.tmpdir(), 'parmap-cold-'));
  // (TMPDIR: Chromium's singleton socket goes in the profile, removed with it; a
  // killed browser leaves its /tmp/org.chromium.Chromium.* behind otherwise)
  const browser = spawn('chromium', ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-quic',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`,
    `http://127.0.0.1:${server.address().port}/`], { stdio: 'ignore', detached: true, env: { ...process.env, TMPDIR: profile } });
  const exited = new Promise((r) => browser.once('exit', r));
  let timer;
  try {
    return await Promise.race([result, new Promise((_, rej) => { timer = setTimeout(() => rej(new Error('no result in 30 s')), 30000); })]);
  } finally {
    clearTimeout(timer);
    try { process.kill(-browser.pid, 'SIGKILL'); } catch { browser.kill('SIGKILL'); }
    await exited;
    server.close();
    await rm(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  }
}

const stat = (xs) => { const s = [...xs].sort((a, b) => a - b); const r = (v) => Math.round(v * 1000) / 1000; return { median: r(s[s.length >> 1]), min: r(s[0]), max: r(s[s.length - 1]) }; };
// The package as a page imports it without a bundler: the prebuilt bundle
// (dist/browser.mjs: one request) and the ES modules as they are (index.js
// and lib/: three levels of requests), interleaved run by run.
const ENTRIES = { bundle: '/dist/browser.mjs', modules: '/index.js' };
const summary = (r, wait) => ({ build: r[0].build, first: stat(r.map((x) => x.first)),
  ...(wait ? {} : { sinceNav: stat(r.map((x) => x.sinceNav)) }), warm: stat(r.map((x) => x.warm)), steady: stat(r.map((x) => x.steady)) });
const floors = (r) => Object.fromEntries(['import', 'first', 'fileWorker', 'roundTrip'].map((k) => [k, stat(r.map((x) => x[k]))]));
// Interleaved run by run: the package's pages and the empty one, in each condition.
async function measure(entries, wait) {
  const out = {};
  for (const isolated of [true, false]) {
    const rs = Object.fromEntries(Object.keys(entries).map((k) => [k, []]));
    for (let i = 0; i < runs; i++) for (const [k, entry] of Object.entries(entries)) rs[k].push(await once(isolated, page(entry, wait)));
    for (const [k, r] of Object.entries(rs)) out[`${isolated ? 'isolated' : 'plain'} ${k}`] = summary(r, wait);
  }
  const empty = [], floor = [];
  for (let i = 0; i < runs; i++) {
    empty.push(await once(false, EMPTY_PAGE(wait)));
    floor.push(await once(false, FLOOR_PAGE(wait)));
  }
  out.emptyWorker = floors(empty.map((r, i) => ({ ...r, ...floor[i] })));
  return out;
}
const out = await measure(ENTRIES, 0);
out.browserUp = await measure({ bundle: ENTRIES.bundle }, UP_MS);
console.log(JSON.stringify({ machine: { cpus: os.availableParallelism(), loadavg: os.loadavg().map((v) => +v.toFixed(2)) }, runs, ms: out }, null, 2));
