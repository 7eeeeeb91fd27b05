// loader.js - choosing, loading and keeping the WebAssembly module.
//
// Three engines, one contract (DESIGN.md, JavaScript API):
//  - 'threaded': the pthreads build (web workers sharing one memory); needs
//    SharedArrayBuffer: Node, or a cross-origin isolated page;
//  - 'workers': N dedicated workers, each with its own instance of the
//    single-thread build (compiled once, the WebAssembly.Module posted to
//    each), chunks as transferable buffers (lib/pool.js): any page with
//    Workers, no COOP/COEP needed;
//  - 'single': everything on the calling thread, cut into slices so the
//    event loop keeps running: where there is nothing else.
// The first call loads one of them; its workers then stay up for every later
// call. In Node idle workers are unref'ed, so a script exits by itself when
// its work is done; terminate() releases everything at once, without ever
// waiting for a worker (a later call loads afresh).
//
// Calls with a `timeout` need workers that can be killed: on the threaded
// and single engines they run on a pool of the workers engine, started on
// first need (a pthread cannot be terminated on its own). So do calls that
// may await (async functions, module mode: lib/source.js): a pthread runs
// its items inside a call from C, the single engine inside a slice of the
// C map, and neither can return to an event loop mid-chunk.
//
// Node: the CommonJS flavour under dist/node/ is loaded with createRequire
// and given the .wasm bytes (Node's fetch cannot read files). Browsers: the
// ES module flavour under dist/web/, found with new URL(..., import.meta.url),
// so no bundler is needed.

import { loadParser } from './freevars.js';
import { Pool, makeSpawner } from './pool.js';
import { ParmapError } from './errors.js';

const BUILDS = ['auto', 'threaded', 'workers', 'single'];

export const isNode = typeof process === 'object' && process !== null && typeof process.versions === 'object' &&
  typeof process.versions.node === 'string' && typeof window === 'undefined';

const config = { build: 'auto', threads: undefined, baseURL: undefined };
let state = null;     // the loaded runtime
let loading = null;   // its promise

/**
 * Settings for the next load (before the first call, or after terminate()):
 *   build: 'auto' | 'threaded' | 'workers' | 'single' (also env PARMAP_WASM_BUILD in Node)
 *   threads: size of the worker pool (default: cpuCount())
 *   baseURL: where dist/ lives, if not beside this file (browsers: a CDN)
 */
export function configure(opts = {}) {
  if (opts === null || typeof opts !== 'object') throw new TypeError('configure: options must be an object');
  for (const k of Object.keys(opts))
    if (!['build', 'threads', 'baseURL'].includes(k)) throw new RangeError(`configure: unknown option ${k}`);
  if (opts.build !== undefined && !BUILDS.includes(opts.build))
    throw new RangeError(`configure: build must be 'auto', 'threaded', 'workers' or 'single', got ${String(opts.build)}`);
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

/** Can the workers engine run here? */
export function workersSupported() {
  return isNode || typeof Worker === 'function';
}

/** { build, reason }: the engine to load and why. */
function chooseBuild() {
  let want = config.build;
  let why = 'configure({ build })';
  if (want === 'auto' && isNode && process.env.PARMAP_WASM_BUILD) { want = process.env.PARMAP_WASM_BUILD; why = 'PARMAP_WASM_BUILD'; }
  if (!BUILDS.includes(want))
    throw new RangeError(`parmap: PARMAP_WASM_BUILD must be auto, threaded, workers or single, got ${want}`);
  if (want === 'threaded' && !threadsSupported())
    throw new Error('parmap: the threaded build needs SharedArrayBuffer: serve the page cross-origin isolated ' +
      '(Cross-Origin-Opener-Policy: same-origin, Cross-Origin-Embedder-Policy: require-corp)');
  if (want === 'workers' && !workersSupported()) throw new Error('parmap: the workers engine needs Web Workers, which this environment lacks');
  if (want !== 'auto') return { build: want, reason: `${want} asked for with ${why}` };
  if (threadsSupported())
    return { build: 'threaded', reason: isNode ? 'Node has SharedArrayBuffer' : 'the page is cross-origin isolated: SharedArrayBuffer works' };
  if (workersSupported())
    return { build: 'workers', reason: 'no SharedArrayBuffer (the page is not cross-origin isolated: no COOP/COEP headers), but Web Workers exist' };
  return { build: 'single', reason: 'neither SharedArrayBuffer nor Web Workers here' };
}

function distURL(path) {
  return config.baseURL ? new URL(path, config.baseURL) : new URL(`../dist/${path}`, import.meta.url);
}

/** The compiled single-thread module (for the workers engine), once. */
let compiledST = null;
function compileST() {
  if (!compiledST) {
    compiledST = (async () => {
      if (isNode) {
        const { readFile } = await import('node:fs/promises');
        return WebAssembly.compile(await readFile(distURL('node/parmap-st.wasm')));
      }
      const url = distURL('web/parmap-st.wasm').href;
      const res = await fetch(url);
      if (!res.ok) throw new Error(`parmap: could not load ${url} (${res.status})`);
      return WebAssembly.compile(await res.arrayBuffer());
    })();
    compiledST.catch(() => { compiledST = null; });
  }
  return compiledST;
}

async function instantiate(build, poolSize, module) {
  const variant = build === 'threaded' ? 'mt' : 'st';
  const instantiateWasm = module ? (imports, done) => {
    WebAssembly.instantiate(module, imports).then((inst) => done(inst, module));
    return {};
  } : undefined;
  if (isNode) {
    const { createRequire } = await import('node:module');
    const { readFile } = await import('node:fs/promises');
    const { fileURLToPath } = await import('node:url');
    const jsURL = distURL(`node/parmap-${variant}.js`);
    const factory = createRequire(import.meta.url)(fileURLToPath(jsURL));
    if (instantiateWasm) return factory({ instantiateWasm, pmwPoolSize: poolSize });
    const wasmBinary = await readFile(distURL(`node/parmap-${variant}.wasm`));
    return factory({ wasmBinary, pmwPoolSize: poolSize });
  }
  const jsURL = distURL(`web/parmap-${variant}.mjs`);
  const { default: factory } = await import(jsURL.href);
  return factory({
    pmwPoolSize: poolSize,
    locateFile: (p) => distURL(`web/${p}`).href,
    mainScriptUrlOrBlob: jsURL.href,
    ...(instantiateWasm ? { instantiateWasm } : {}),
  });
}

/** A pool of the workers engine of `size` workers. */
async function newPool(size) {
  const [module, spawn] = await Promise.all([compileST(), makeSpawner(isNode)]);
  return new Pool({ size, module, dist: distURL('./').href, spawn });
}

async function load() {
  const { build, reason } = chooseBuild();
  await loadParser(distURL('vendor/acorn.mjs').href);
  const threads = build === 'single' ? 1 : (config.threads || cpuCount());
  // threaded: the crew (threads) + a coordinator + an imap feeder, preloaded.
  const module = build === 'workers' ? await compileST() : undefined;
  const M = await instantiate(build, build === 'threaded' ? threads + 2 : 1, module);
  const rt = {
    M,
    pmw: M.pmw,
    build,
    reason,
    threads,          // default threads of a call
    crew: 0,          // crew members of the C pool
    jobs: new Map(),  // job id -> { progress(p), post(what), cancel(), terminate(err) }
    active: 0,
    pool: build === 'workers' ? await newPool(threads) : null,
    sidePool: null,   // threaded / single: the workers pool for calls with a timeout
    terminated: false,
  };
  M.pmwProgress = (id, done, total, failed, elapsed, rate, eta) => {
    const h = rt.jobs.get(id);
    if (h && h.progress) h.progress({ done, total: total > 0 ? total : null, failed, elapsed, rate, eta: total > 0 ? eta : null });
  };
  M.pmwPost = (id, what) => {
    const h = rt.jobs.get(id);
    if (h) h.post(what);
  };
  const crew = build === 'threaded' ? threads : 1;
  if (!M._pmw_pool_ensure(crew)) throw new Error('parmap: could not start the worker pool');
  rt.crew = crew;
  setIdle(rt, true);
  return rt;
}

/** The pool a call runs on when it is not the engine's own: calls with a
 * timeout, and calls that may await (o.viaWorkers: async functions, module
 * mode; lib/source.js), on the threaded and single engines (where Workers
 * exist). */
export async function poolFor(rt, o) {
  if (rt.pool) return rt.pool;
  if (!o.timeout && !o.viaWorkers) return null;
  if (!workersSupported()) return null;
  if (!rt.sidePool) rt.sidePool = newPool(rt.build === 'threaded' ? rt.threads : (config.threads || cpuCount()));
  return rt.sidePool;
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

/** A call starts: its threads, capped to the pool (the threaded engine's
 * pool has a fixed size: growing it needs the main thread to wait for new
 * pthreads, so it never grows; size it with configure({ threads })). */
export function begin(rt, threads) {
  if (rt.terminated) throw terminatedError();
  if (rt.build === 'threaded' && threads > rt.crew) threads = rt.crew;
  if (rt.active++ === 0) setIdle(rt, false);
  return threads;
}

export function end(rt) {
  if (--rt.active === 0) setIdle(rt, true);
}

/** Which engine runs, why, and with how many threads (loads the module). */
export async function info() {
  const rt = await runtime();
  return {
    build: rt.build,
    reason: rt.reason,
    threads: rt.build === 'threaded' ? rt.crew : rt.build === 'workers' ? rt.pool.size : 1,
    cpuCount: cpuCount(),
    threadsSupported: threadsSupported(),
    workersSupported: workersSupported(),
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    environment: isNode ? 'node' : 'browser',
  };
}

export function terminatedError() {
  return new ParmapError('parmap: terminate() was called: the call was stopped before it finished', { code: 'ECANCELED', itemCode: -6 });
}

/**
 * Stop every worker and forget the module, at once: running calls reject
 * with a ParmapError (code 'ECANCELED'), imap loops throw it. Nothing is
 * waited for (a worker in an endless loop is terminated like any other).
 */
export async function terminate() {
  const rt = state || (loading ? await loading.catch(() => null) : null);
  state = null;
  loading = null;
  if (rt) shutdown(rt, terminatedError());
}

/** Take a runtime down now (never waits for a thread or worker). */
function shutdown(rt, err) {
  if (rt.terminated) return;
  rt.terminated = true;
  if (rt.pool) rt.pool.close(err);
  if (rt.sidePool) {
    const side = rt.sidePool;
    rt.sidePool = null;
    side.then((p) => p.close(err), () => {});
  }
  for (const h of [...rt.jobs.values()]) if (h.terminate) h.terminate(err);
  rt.jobs.clear();
  // The pthreads are terminated, not joined: a thread in a user's endless
  // loop would never join, and joining blocks the main thread.
  if (rt.build === 'threaded') rt.M.PThread.terminateAllThreads();
}

/**
 * The threaded engine cannot kill one pthread: when a thread will not stop
 * (an aborted call's function that never returns), the whole module goes.
 * Other calls running on it reject (ECANCELED, saying why); the next call
 * loads a fresh module.
 */
export function retire(rt, why) {
  if (state === rt) { state = null; loading = null; }
  const err = new ParmapError(`parmap: the threaded module was terminated: ${why} kept a thread busy`, { code: 'ECANCELED', itemCode: -6 });
  shutdown(rt, err);
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
