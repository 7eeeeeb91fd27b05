#!/usr/bin/env node
// serve.mjs - the demo's static server: web/ at /, the parmap-wasm package
// (its published files: index.js, lib/, dist/) at /parmap-wasm/, and one file
// of web/node_modules at /vendor/ (workerpool's browser build, for the
// benchmark's peer). Every answer carries Cross-Origin-Opener-Policy:
// same-origin and Cross-Origin-Embedder-Policy: require-corp, which make the page cross-origin
// isolated, so the browser allows SharedArrayBuffer and the package picks its
// threaded build; --no-isolation leaves them out to show the workers engine
// (no SharedArrayBuffer needed). No framework: node:http and a table of MIME types (browsers refuse
// module scripts that are not text/javascript, and streaming WebAssembly
// compilation that is not application/wasm).
//
//   node web/serve.mjs [--port 8080] [--host 127.0.0.1] [--no-isolation] [--package DIR]
//
// --port 0 picks a free port. The first line printed is the page's URL (the
// tests read it). Also importable: startServer(opts) -> { server, url, close }.
import http from 'node:http';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

export const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
  '.LICENSE': 'text/plain; charset=utf-8',
};

// What `npm pack` would publish (package.json "files"): nothing else of wasm/
// (sources, node_modules, tests) is served.
const PACKAGE_FILES = new Set(['index.js', 'index.d.ts', 'lib', 'dist', 'README.md', 'package.json']);
const PACKAGE_PREFIX = '/parmap-wasm/';

// The few files of web/node_modules a page may load, each named here (URL
// path -> path under webRoot): an exact match, never a prefix, so no other
// file of node_modules is reachable. bench.mjs's peer, workerpool, runs from
// its browser build (UMD: a classic script in the page and importScripts in
// its workers).
const VENDOR = new Map([
  ['/vendor/workerpool.min.js', 'node_modules/workerpool/dist/workerpool.min.js'],
]);

/** The file for a URL path, or null (outside the roots, hidden, not served). */
export function resolvePath(urlPath, { webRoot, packageRoot }) {
  let rel;
  try {
    rel = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (rel.includes('\0')) return null;
  // Checked before the node_modules rule below, which would refuse it.
  if (VENDOR.has(rel)) return path.join(webRoot, VENDOR.get(rel));
  let root = webRoot;
  if (rel.startsWith(PACKAGE_PREFIX)) {
    root = packageRoot;
    rel = rel.slice(PACKAGE_PREFIX.length);
    if (!PACKAGE_FILES.has(rel.split('/')[0])) return null;
  } else if (rel.endsWith('/')) {
    rel += 'index.html';
  }
  const file = path.resolve(root, '.' + path.posix.normalize('/' + rel));
  if (file !== root && !file.startsWith(root + path.sep)) return null;
  // No dotfiles, no node_modules of the demo itself (playwright-core).
  const parts = path.relative(root, file).split(path.sep);
  if (parts.some((p) => p.startsWith('.') || p === 'node_modules')) return null;
  return file;
}

function mimeOf(file) {
  return MIME[path.extname(file)] || 'application/octet-stream';
}

/**
 * Start the server. opts: port (0 = any free one), host, isolation (default
 * true: send COOP/COEP), webRoot, packageRoot. Resolves once listening.
 */
export function startServer(opts = {}) {
  const webRoot = path.resolve(opts.webRoot || here);
  const packageRoot = path.resolve(opts.packageRoot || path.join(here, '..', 'wasm'));
  const isolation = opts.isolation !== false;
  const host = opts.host || '127.0.0.1';
  const isolationHeaders = isolation
    ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' }
    : {};

  const server = http.createServer(async (req, res) => {
    const common = {
      ...isolationHeaders,
      // Same-origin resources need no CORP under COEP; saying it costs nothing
      // and keeps other origins from embedding the files.
      'Cross-Origin-Resource-Policy': 'same-origin',
      'X-Content-Type-Options': 'nosniff',
      'Cache-Control': 'no-cache',
    };
    const fail = (code, text) => {
      res.writeHead(code, { ...common, 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(req.method === 'HEAD' ? undefined : `${code} ${text}\n`);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      fail(405, 'method not allowed');
      return;
    }
    const url = new URL(req.url, 'http://localhost');
    if (url.pathname === PACKAGE_PREFIX.slice(0, -1)) {
      res.writeHead(301, { ...common, Location: PACKAGE_PREFIX + 'README.md' }).end();
      return;
    }
    const file = resolvePath(url.pathname, { webRoot, packageRoot });
    if (!file) {
      fail(404, 'not found');
      return;
    }
    let st;
    try {
      st = await stat(file);
    } catch {
      fail(404, 'not found');
      return;
    }
    if (st.isDirectory()) {
      res.writeHead(301, { ...common, Location: url.pathname + '/' }).end();
      return;
    }
    res.writeHead(200, { ...common, 'Content-Type': mimeOf(file), 'Content-Length': st.size });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    createReadStream(file).on('error', () => res.destroy()).pipe(res);
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 8080, host, () => {
      server.off('error', reject);
      const { port } = server.address();
      const shown = host.includes(':') ? `[${host}]` : host;
      resolve({
        server,
        isolation,
        url: `http://${shown}:${port}/`,
        close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
      });
    });
  });
}

function usage(code) {
  (code ? process.stderr : process.stdout).write(
    'usage: node web/serve.mjs [--port N] [--host ADDR] [--no-isolation] [--package DIR]\n' +
    '  --port N        port to listen on (default 8080; 0 = any free port)\n' +
    '  --host ADDR     address to listen on (default 127.0.0.1)\n' +
    '  --no-isolation  leave out COOP/COEP: the page gets the single-thread build\n' +
    '  --package DIR   the parmap-wasm package folder (default ../wasm)\n');
  process.exit(code);
}

function parseArgs(argv) {
  const o = { port: 8080, host: '127.0.0.1', isolation: true, packageRoot: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(2);
      return argv[++i];
    };
    if (a === '--port' || a === '-p') {
      o.port = Number(value());
      if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) usage(2);
    } else if (a === '--host') o.host = value();
    else if (a === '--no-isolation') o.isolation = false;
    else if (a === '--package') o.packageRoot = value();
    else if (a === '--help' || a === '-h') usage(0);
    else if (/^\d+$/.test(a)) o.port = Number(a);
    else usage(2);
  }
  return o;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const o = parseArgs(process.argv.slice(2));
  try {
    const s = await startServer(o);
    console.log(s.url);
    console.log(o.isolation
      ? 'serving web/ cross-origin isolated (COOP: same-origin, COEP: require-corp): the threaded build runs'
      : 'serving web/ without COOP/COEP (--no-isolation): the single-thread build runs');
    console.log('Ctrl-C stops it');
    const stop = () => s.close().then(() => process.exit(0));
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  } catch (e) {
    console.error(`serve.mjs: cannot listen on ${o.host}:${o.port}: ${e.code || e.message}` +
      (e.code === 'EADDRINUSE' ? ' (try --port 0 or another port)' : ''));
    process.exit(1);
  }
}
