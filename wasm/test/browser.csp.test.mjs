// Module mode on a strict page (issue 16): headless Chromium loads a page
// served with `Content-Security-Policy: script-src 'self' 'wasm-unsafe-eval'`
// (no 'unsafe-eval': new Function is refused, WebAssembly is allowed), with
// and without COOP/COEP (threaded and workers engines). A function shipped
// by its source must fail with an error that names the CSP and module mode;
// { module, export } must work. Same harness as browser.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, inChromium } from './chromium.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm' };
const CSP = "script-src 'self' 'wasm-unsafe-eval'";

async function run(isolated, entry) {
  let resolveResult;
  const result = new Promise((r) => { resolveResult = r; });
  const server = http.createServer(async (req, res) => {
    // Every response carries the policy: a worker's script gets its own from its response.
    const headers = { 'Content-Security-Policy': CSP,
      ...(isolated ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } : {}) };
    if (req.method === 'POST' && req.url === '/result') {
      let body = '';
      for await (const c of req) body += c;
      res.writeHead(204, headers).end();
      resolveResult(JSON.parse(body));
      return;
    }
    const file = path.join(root, decodeURIComponent(new URL(req.url, 'http://x').pathname));
    try {
      const data = await readFile(file);
      res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream', ...headers }).end(data);
    } catch { res.writeHead(404, headers).end(); }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}/test-fixtures/csp.html?entry=${entry}`;
  try {
    return await inChromium(url, result);
  } finally {
    server.close();
  }
}

for (const [isolated, entry] of [[false, 'modules'], [true, 'modules'], [false, 'bundle'], [true, 'bundle']]) {
  test(`browser, CSP without 'unsafe-eval' (${isolated ? 'isolated: threaded' : 'plain: workers'}, ${
    entry === 'bundle' ? 'dist/browser.mjs' : 'the ES modules'}): module mode works, fn by source fails clearly`,
    { skip: process.env.PARMAP_NO_BROWSER === '1' ? 'PARMAP_NO_BROWSER=1' : false, timeout: 90000 }, async () => {
      assert.ok(chromium, 'no chromium installed (apt-get install chromium)');
      const r = await run(isolated, entry);
      assert.ok(r.ok, r.error);
      assert.equal(r.build, isolated ? 'threaded' : 'workers');
      assert.equal(r.evalWorks, false, 'the policy is in force: new Function is refused');
      assert.equal(r.evalRefused.name, 'EvalError');
      assert.match(r.evalRefused.message, /Content-Security-Policy forbids eval \('unsafe-eval'\)/);
      assert.match(r.evalRefused.message, /module mode/);
      assert.deepEqual(r.sq, [1, 4, 9]);
      assert.equal(r.dblLast, 78);
      assert.deepEqual(r.st, [16, 25]);
      assert.match(r.missing, /no function export 'nope'/);
      assert.equal(r.kernel, 8 * 4 * 4, 'mapKernel (wasm only) works too');
      assert.equal(r.entry, entry === 'bundle' ? '../dist/browser.mjs' : '../index.js');
    });
}
