// host-node.js - what the loader needs from Node: the CommonJS flavour of
// the Emscripten glue under dist/node/ (loaded with createRequire: 3.1.6's
// ES6 output still uses require/__dirname on Node), the .wasm bytes read from
// disk (Node's fetch cannot read a file path), worker_threads. The loader
// imports this file only when it runs in Node, through a specifier that
// bundlers do not follow, so browser bundles never see a `node:` import
// (the browser's counterpart: host-web.js).

import os from 'node:os';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

export const node = true;

const require = createRequire(import.meta.url);

export function fileURL(name, baseURL) {
  return new URL(`node/${name}`, baseURL || new URL('../dist/', import.meta.url)).href;
}

export function cpuCount() {
  return os.availableParallelism ? os.availableParallelism() : os.cpus().length;
}

export async function compile(variant, baseURL) {
  return WebAssembly.compile(await readFile(new URL(fileURL(`parmap-${variant}.wasm`, baseURL))));
}

export async function factory(variant, baseURL) {
  const f = require(fileURLToPath(fileURL(`parmap-${variant}.js`, baseURL)));
  return { factory: f, options: {} };
}

/** A pthread worker started before the glue has loaded (lib/loader.js
 * instantiate: the glue adopts it), made as the glue would make it. */
export function startPthreadWorker(baseURL) {
  return new Worker(fileURLToPath(fileURL('parmap-mt.worker.js', baseURL)));
}

export function parser() {
  return import('../dist/vendor/acorn.mjs');
}

// A workers-engine worker's entry: lib/worker-node.js, which hands
// lib/worker.js its port and glue, then imports it; the Node bundles start
// their CommonJS build, dist/worker-node.cjs, instead (useWorkerEntry).
let workerEntry = new URL('./worker-node.js', import.meta.url);

/** The Node bundles' worker entry (lib/node.js): one CommonJS file, which
 * a worker loads ~4 ms sooner than an ES module graph (Node sets up its ES
 * module loader in each worker that imports one). */
export function useWorkerEntry(url) {
  workerEntry = url;
}

export function spawner(baseURL) {
  const dist = baseURL || new URL('../dist/', import.meta.url).href;
  const url = workerEntry;
  let execArgv = workerExecArgv(process.execArgv);
  return {
    glue: null,
    dist,
    spawn() {
      let w;
      try {
        w = new Worker(url, { stdout: false, stderr: false, execArgv });
      } catch (e) {
        if (e.code !== 'ERR_WORKER_INVALID_EXEC_ARGV' || !execArgv) throw e;
        execArgv = withoutInvalid(execArgv, e.message);
        w = new Worker(url, { stdout: false, stderr: false, execArgv });
      }
      const h = {
        onmessage: null, ondeath: null, dead: false,
        post: (m, t) => w.postMessage(m, t),
        terminate: () => { h.dead = true; w.terminate().catch(() => {}); },
        ref: () => w.ref(),
        unref: () => w.unref(),
      };
      w.on('message', (m) => h.onmessage(m));
      w.on('error', (e) => { if (!h.dead) h.ondeath(String(e && e.message || e)); });
      w.on('exit', (code) => { if (!h.dead) h.ondeath(`the worker exited (code ${code})`); });
      return h;
    },
  };
}

/**
 * The execArgv a worker starts with. A worker inherits the process's flags
 * when given none, and Node accepts that whatever they are (--expose-gc,
 * --max-old-space-size...). But it refuses to start one with --input-type (a
 * script run as `node --input-type=module -e ...`): only then is the list
 * given, without that flag.
 */
function workerExecArgv(argv) {
  if (!argv.some((a) => a === '--input-type' || a.startsWith('--input-type='))) return undefined;
  const out = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--input-type') i++;
    else if (!a.startsWith('--input-type=')) out.push(a);
  }
  return out;
}

/** A given execArgv that Node refused ("invalid execArgv flags: --a, --b=1"):
 * the same without those flags (and the value after a refused `--flag value`). */
function withoutInvalid(argv, message) {
  const bad = new Set((message.split('flags: ')[1] || '').split(', ').filter(Boolean));
  const out = [];
  for (let i = 0; i < argv.length; i++) {
    if (!bad.has(argv[i])) out.push(argv[i]);
    else if (!argv[i].includes('=') && i + 1 < argv.length && !argv[i + 1].startsWith('-')) i++;
  }
  return out;
}

/** Node: a relative baseURL is a path from the current directory. */
export function baseForRelative() {
  return pathToFileURL(process.cwd() + '/').href;
}
