// loader.js - choosing, loading and keeping the WebAssembly module.
//
// Two builds of the same C: 'threaded' (pthreads = web workers, needs
// SharedArrayBuffer: Node, or a cross-origin isolated page) and 'single'
// (everything on the calling thread, cut into slices so the event loop keeps
// running). The first call loads one of them; its worker pool then stays up
// for every later call. In Node the workers are unref'ed whenever no call is
// running, so a script exits by itself when its work is done; terminate()
// releases everything (a later call loads afresh).
//
// Node: the CommonJS flavour under dist/node/ is loaded with createRequire
// and given the .wasm bytes (Node's fetch cannot read files). Browsers: the
// ES module flavour under dist/web/, found with new URL(..., import.meta.url),
// so no bundler is needed.

import { loadParser } from './freevars.js';

export const isNode = typeof process === 'object' && process !== null && typeof process.versions === 'object' &&
  typeof process.versions.node === 'string' && typeof window === 'undefined';

const config = { build: 'auto', threads: undefined, baseURL: undefined };
let state = null;     // the loaded runtime
let loading = null;   // its promise

/**
 * Settings for the next load (before the first call, or after terminate()):
 *   build: 'auto' | 'threaded' | 'single' (also env PARMAP_WASM_BUILD in Node)
 *   threads: size of the worker pool (default: cpuCount())
 *   baseURL: where dist/ lives, if not beside this file (browsers: a CDN)
 */
export function configure(opts = {}) {
  if (opts === null || typeof opts !== 'object') throw new TypeError('configure: options must be an object');
  for (const k of Object.keys(opts))
    if (!['build', 'threads', 'baseURL'].includes(k)) throw new RangeError(`configure: unknown option ${k}`);
  if (opts.build !== undefined && !['auto', 'threaded', 'single'].includes(opts.build))
    throw new RangeError(`configure: build must be 'auto', 'threaded' or 'single', got ${String(opts.build)}`);
  if (opts.threads !== undefined && !(Number.isInteger(opts.threads) && opts.threads >= 1 && opts.threads <= 1024))
    throw new RangeError(`configure: threads must be an integer from 1 to 1024, got ${opts.threads}`);
  if (state || loading) throw new Error('configure: call it before the first map, or after terminate()');
  Object.assign(config, opts);
}

/** CPUs this program may use (Node: os.availableParallelism; browsers:
 * navigator.hardwareConcurrency). */
export function cpuCount() {
  if (isNode && nodeOs) return nodeOs.availableParallelism ? nodeOs.availableParallelism() : nodeOs.cpus().length;
  const n = typeof navigator === 'object' && navigator ? navigator.hardwareConcurrency : 0;
  return n > 0 ? n : 1;
}

let nodeOs = null;
if (isNode) nodeOs = await import('node:os');

/** Can the threaded build run here? */
export function threadsSupported() {
  if (typeof SharedArrayBuffer !== 'function' || typeof Atomics !== 'object') return false;
  if (isNode) return true;
  return globalThis.crossOriginIsolated === true;
}

function chooseBuild() {
  let want = config.build;
  if (want === 'auto' && isNode && process.env.PARMAP_WASM_BUILD) want = process.env.PARMAP_WASM_BUILD;
  if (!['auto', 'threaded', 'single'].includes(want))
    throw new RangeError(`parmap: PARMAP_WASM_BUILD must be auto, threaded or single, got ${want}`);
  if (want === 'threaded' && !threadsSupported())
    throw new Error('parmap: the threaded build needs SharedArrayBuffer: serve the page cross-origin isolated ' +
      '(Cross-Origin-Opener-Policy: same-origin, Cross-Origin-Embedder-Policy: require-corp)');
  if (want === 'auto') want = threadsSupported() ? 'threaded' : 'single';
  return want;
}

function distURL(path) {
  return config.baseURL ? new URL(path, config.baseURL) : new URL(`../dist/${path}`, import.meta.url);
}

async function instantiate(build, poolSize) {
  const variant = build === 'threaded' ? 'mt' : 'st';
  if (isNode) {
    const { createRequire } = await import('node:module');
    const { readFile } = await import('node:fs/promises');
    const { fileURLToPath } = await import('node:url');
    const jsURL = distURL(`node/parmap-${variant}.js`);
    const factory = createRequire(import.meta.url)(fileURLToPath(jsURL));
    const wasmBinary = await readFile(distURL(`node/parmap-${variant}.wasm`));
    return factory({ wasmBinary, pmwPoolSize: poolSize });
  }
  const jsURL = distURL(`web/parmap-${variant}.mjs`);
  const { default: factory } = await import(jsURL.href);
  return factory({
    pmwPoolSize: poolSize,
    locateFile: (p) => distURL(`web/${p}`).href,
    mainScriptUrlOrBlob: jsURL.href,
  });
}

async function load() {
  const build = chooseBuild();
  await loadParser(distURL('vendor/acorn.mjs').href);
  const threads = build === 'threaded' ? (config.threads || cpuCount()) : 1;
  // Pool: the crew (threads) + a coordinator + an imap feeder, preloaded;
  // more start on demand.
  const M = await instantiate(build, threads + 2);
  const rt = {
    M,
    pmw: M.pmw,
    build,
    threads,          // default threads of a call
    crew: 0,          // crew members of the C pool
    jobs: new Map(),  // job id -> { progress(p), post(what) }
    active: 0,
  };
  M.pmwProgress = (id, done, total, failed, elapsed, rate, eta) => {
    const h = rt.jobs.get(id);
    if (h && h.progress) h.progress({ done, total: total > 0 ? total : null, failed, elapsed, rate, eta: total > 0 ? eta : null });
  };
  M.pmwPost = (id, what) => {
    const h = rt.jobs.get(id);
    if (h) h.post(what);
  };
  if (!M._pmw_pool_ensure(threads)) throw new Error('parmap: could not start the worker pool');
  rt.crew = threads;
  setIdle(rt, true);
  return rt;
}

/** The loaded runtime (loads it on first use). */
export function runtime() {
  if (state) return Promise.resolve(state);
  if (!loading) {
    loading = load().then((rt) => { state = rt; return rt; }, (e) => { loading = null; throw e; });
  }
  return loading;
}

/** The loaded runtime, or null (not loaded yet, or terminated): lets a heap
 * array tell whether the module it lives in is still the current one. */
export function currentRuntime() {
  return state;
}

/** Keep Node's event loop alive only while calls run. */
function setIdle(rt, idle) {
  if (!isNode || rt.build !== 'threaded') return;
  const P = rt.M.PThread;
  for (const w of [...P.unusedWorkers, ...P.runningWorkers]) {
    if (idle) w.unref(); else w.ref();
  }
}

/** A call starts: the pool must have `threads` members; workers stay ref'ed. */
export function begin(rt, threads) {
  if (threads > rt.crew) {
    if (rt.active === 0) {
      if (!rt.M._pmw_pool_ensure(threads)) throw new RangeError(`parmap: could not start ${threads} threads`);
      rt.crew = threads;
    } else {
      threads = rt.crew; // cannot rebuild the pool under running calls
    }
  }
  if (rt.active++ === 0) setIdle(rt, false);
  return threads;
}

export function end(rt) {
  if (--rt.active === 0) setIdle(rt, true);
}

/** Which build runs and with how many threads (loads the module). */
export async function info() {
  const rt = await runtime();
  return {
    build: rt.build,
    threads: rt.build === 'threaded' ? rt.crew : 1,
    cpuCount: cpuCount(),
    threadsSupported: threadsSupported(),
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    environment: isNode ? 'node' : 'browser',
  };
}

/** Stop every worker and forget the module. Running calls are aborted. */
export async function terminate() {
  const rt = state || (loading ? await loading.catch(() => null) : null);
  state = null;
  loading = null;
  if (!rt) return;
  for (const h of rt.jobs.values()) if (h.cancel) h.cancel();
  // Let cancelled calls see their end before the threads go.
  for (let i = 0; i < 100 && rt.jobs.size; i++) await new Promise((r) => setTimeout(r, 5));
  rt.M._pmw_pool_free();
  if (rt.build === 'threaded') rt.M.PThread.terminateAllThreads();
}

/** Let the event loop run (timers, I/O) without the 4 ms nested-timer clamp. */
export const yieldToLoop = typeof setImmediate === 'function'
  ? () => new Promise((r) => setImmediate(r))
  : (() => {
    const ch = new MessageChannel();
    const queue = [];
    ch.port1.onmessage = () => queue.shift()();
    return () => new Promise((r) => { queue.push(r); ch.port2.postMessage(0); });
  })();
