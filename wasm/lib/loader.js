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
// Where the files are and how workers start differ between Node and
// browsers: that is all in host-node.js and host-web.js. host-node.js is
// imported only in Node, by a specifier bundlers do not follow, so a browser
// bundle never meets a `node:` module. No top-level await anywhere, so that
// the CommonJS entry (index.cjs) and Node 22's require(esm) can load this.

import { useParser } from './freevars.js';
import { LateWorker } from './late-worker.js';
import { Pool, RECYCLE_BYTES } from './pool.js';
import { ParmapError, abortError, setStatuses, STATUS } from './errors.js';
import * as webHost from './host-web.js';

const BUILDS = ['auto', 'threaded', 'workers', 'single'];

export const isNode = typeof process === 'object' && process !== null && typeof process.versions === 'object' &&
  typeof process.versions.node === 'string' && typeof window === 'undefined';

const config = { build: 'auto', threads: undefined, baseURL: undefined };
let state = null;     // the loaded runtime
let loading = null;   // its promise

// Held in a variable so that bundlers (esbuild, webpack, Vite) leave the
// import alone: they would otherwise bundle node:os and friends for browsers.
const NODE_HOST = './host-node.js';
let host = isNode ? null : webHost;
let hostLoading = null;

/** The host module (host-node.js in Node, host-web.js elsewhere). */
export function getHost() {
  if (host) return Promise.resolve(host);
  // Only index.js run unbundled in Node gets here: the Node bundles give the
  // host at once (lib/node.js, useHost).
  if (!hostLoading) {
    const url = new URL(NODE_HOST, import.meta.url).href;
    hostLoading = import(/* webpackIgnore: true */ /* @vite-ignore */ url)
      .then((h) => (host = h), (e) => {
        hostLoading = null;
        // Typically dist/browser.mjs (the browser bundle, with no lib/ beside it) run in Node.
        throw new Error(`parmap: cannot load ${url} (${e && e.message}): in Node, import the package by its ` +
          "name ('parmap-wasm'), or its index.js; dist/browser.mjs is for browsers", { cause: e });
      });
  }
  return hostLoading;
}

/** The host, given at once (lib/node.js: the Node bundles). */
export function useHost(h) {
  host = h;
}

/** A Node built-in, synchronously, without an import bundlers could see
 * (process.getBuiltinModule: Node 20.16+; null before). */
function builtin(name) {
  return isNode && typeof process.getBuiltinModule === 'function' ? process.getBuiltinModule(name) : null;
}

/** configure({ baseURL }): an absolute URL string ending in '/', or a RangeError.
 * A relative one is taken from the page (document.baseURI, else location)
 * or, in Node, from the current directory. */
function resolveBaseURL(v) {
  if (!(typeof v === 'string' || v instanceof URL) || String(v) === '')
    throw new RangeError(`configure: baseURL must be a non-empty string or URL, got ${v === '' ? 'an empty string' : typeof v}`);
  let base;
  if (isNode) {
    const url = builtin('node:url');
    const cwd = process.cwd().replace(/\\/g, '/');
    base = url ? url.pathToFileURL(process.cwd() + '/').href
      : 'file://' + (cwd.startsWith('/') ? '' : '/') + cwd.split('/').map(encodeURIComponent).join('/') + '/';
  } else {
    base = webHost.baseForRelative();
  }
  let u;
  try {
    u = new URL(String(v), base);
  } catch {
    throw new RangeError(`configure: baseURL ${JSON.stringify(String(v))} is not a valid URL` +
      (base ? '' : ' (a relative one needs a page to be relative to)'));
  }
  if (isNode && u.protocol !== 'file:')
    throw new RangeError(`configure: in Node, baseURL must be a path or a file: URL, got ${u.href}`);
  if (!isNode && !['http:', 'https:', 'file:', 'blob:'].includes(u.protocol) && !/^[a-z-]+-extension:$/.test(u.protocol))
    throw new RangeError(`configure: baseURL must be an http(s) URL (or a path relative to the page), got ${u.href}`);
  // 'https://cdn.example/dist' would put files at /web/..., not /dist/web/...
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  u.search = '';
  u.hash = '';
  return u.href;
}

/**
 * Settings for the next load (before the first call, or after terminate()):
 *   build: 'auto' | 'threaded' | 'workers' | 'single' (also env PARMAP_WASM_BUILD in Node)
 *   threads: size of the worker pool (default: cpuCount())
 *   baseURL: where dist/ lives, if not beside this file (browsers: a CDN, or
 *     a path relative to the page; Node: a path or file: URL)
 */
export function configure(opts = {}) {
  if (opts === null || typeof opts !== 'object') throw new TypeError('configure: options must be an object');
  for (const k of Object.keys(opts))
    if (!['build', 'threads', 'baseURL'].includes(k)) throw new RangeError(`configure: unknown option ${k}`);
  if (opts.build !== undefined && !BUILDS.includes(opts.build))
    throw new RangeError(`configure: build must be 'auto', 'threaded', 'workers' or 'single', got ${String(opts.build)}`);
  if (opts.threads !== undefined && !(Number.isInteger(opts.threads) && opts.threads >= 1 && opts.threads <= 1024))
    throw new RangeError(`configure: threads must be an integer from 1 to 1024, got ${opts.threads}`);
  const baseURL = opts.baseURL === undefined ? undefined : resolveBaseURL(opts.baseURL);
  if (state || loading) throw new Error('configure: call it before the first map, or after terminate()');
  Object.assign(config, opts);
  if ('baseURL' in opts) config.baseURL = baseURL;
}

/** CPUs this program may use (Node: os.availableParallelism; browsers:
 * navigator.hardwareConcurrency). */
export function cpuCount() {
  if (host) return host.cpuCount();
  const os = builtin('node:os');
  if (os) return os.availableParallelism ? os.availableParallelism() : os.cpus().length;
  return webHost.cpuCount();
}

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

/** The compiled single-thread module (for the workers engine), once. */
let compiledST = null;
function compileST(h) {
  if (!compiledST) {
    compiledST = h.compile('st', config.baseURL);
    compiledST.catch(() => { compiledST = null; });
  }
  return compiledST;
}

/** The module's instance. The .wasm compiles (`module`: the workers
 * engine's, compiling already) while the glue (the Emscripten JS) loads and
 * runs, not after it as the glue's own loading of the .wasm would (and Node's
 * fetch cannot read a file anyway). The threaded build's first pthread
 * worker (the first call's coordinator) starts before all that, and boots
 * meanwhile: the glue adopts it as the one worker it preloads, instead of
 * starting one once it has loaded (20-30 ms later on a page, ~4 ms in Node).
 * Nor does the glue wait for that worker to load before it runs: the load
 * ends and the first call sets up its job (5-12 ms of this thread) while the
 * worker still boots; Emscripten posts the call's thread to it once it says
 * it has loaded (spawnThread's runPthread), as for any worker it starts.
 * A failure to compile or instantiate rejects; so does the first worker's
 * failure to start, before the load ends, and after it that failure ends
 * the module (M.pmwFirstWorker.died: lib/loader.js load), failing the calls
 * on it, instead of leaving them waiting for ever. M.pmwFirstWorker.loaded
 * settles when the worker has loaded (the crew's start waits for it). */
async function instantiate(h, build, module) {
  const variant = build === 'threaded' ? 'mt' : 'st';
  const early = build === 'threaded' ? h.startPthreadWorker(config.baseURL) : null;
  const compiled = Promise.resolve(module || h.compile(variant, config.baseURL));
  let fail;
  const failed = new Promise((_, reject) => { fail = reject; });
  compiled.catch(fail);
  // A first worker that cannot start (its script missing) rejects the load,
  // or ends the module once loaded (died); after the worker has loaded,
  // errors are the glue's and watchThreads' to handle.
  let diedAfterLoad, loaded, up = false;
  const first = { died: new Promise((r) => { diedAfterLoad = r; }), loaded: new Promise((r) => { loaded = r; }) };
  const died = (e) => {
    if (up) return;   // it had started: not this handler's to report
    const err = new Error(`parmap: the threaded engine's first worker did not start: ${(e && e.message) || e}`);
    fail(err);
    diedAfterLoad(err);
    loaded();
  };
  const onError = isNode ? died : (ev) => { ev.preventDefault(); died(ev.message || 'its script could not be loaded'); };
  function started() {
    up = true;
    loaded();
    if (isNode) early.off('error', onError);
    else early.removeEventListener('error', onError);
  }
  if (early) {
    if (isNode) early.on('error', onError);
    else early.addEventListener('error', onError);
    workerLoaded(early).then(started);
  }
  let factory, options;
  try {
    ({ factory, options } = await h.factory(variant, config.baseURL));
  } catch (e) {
    if (early) { started(); early.terminate(); }
    throw e;
  }
  // The glue's Module is this object: it holds the PThread of the workers
  // the glue started, which a failure must stop (they would keep Node alive).
  const opts = {
    ...options,
    // The glue's initMainThread asks how many workers to preload
    // (-sPTHREAD_POOL_SIZE in CMakeLists.txt): none, it has ours.
    pmwPthreadPool: (PThread) => {
      PThread.unusedWorkers.push(early);
      // Every later worker is started as the first was (host-web.js: in a
      // browser, a module worker of the glue itself).
      PThread.allocateUnusedWorker = function () {
        PThread.unusedWorkers.push(h.startPthreadWorker(config.baseURL));
      };
      // Emscripten's error handler, set when it loads the module into the
      // worker, would throw the error out of the process: ours rejects.
      // (Once loaded, watchThreads sets the handler of every worker.)
      // The glue waits for its preloaded workers' 'loaded' before it runs:
      // not for this one (see above).
      const load = PThread.loadWasmModuleToWorker;
      PThread.loadWasmModuleToWorker = function (w, onFinishedLoading) {
        if (w !== early) return load.apply(this, arguments);
        const r = load.call(this, w);
        w.onerror = died;
        if (onFinishedLoading) Promise.resolve().then(() => onFinishedLoading(w));
        return r;
      };
      return 0;
    },
    instantiateWasm: (imports, done) => {
      compiled.then((m) => WebAssembly.instantiate(m, imports).then((inst) => done(inst, m))).catch(fail);
      return {};
    },
  };
  try {
    const M = await Promise.race([failed, factory(opts)]);
    if (early) M.pmwFirstWorker = first;
    return M;
  } catch (e) {
    if (opts.PThread) stopPthreads(opts.PThread);
    if (early) { started(); early.terminate(); }
    throw e;
  }
}

/** A pool of the workers engine of `size` workers (they start in the
 * background, at most one per core at a time; the module follows them when
 * it is compiled). */
async function newPool(h, size) {
  // The worker first: its start is the longest wait of a cold call (a
  // browser's fetch() of the .wasm alone takes ~4 ms of this thread).
  const sp = h.spawner(config.baseURL);
  let giveModule;
  const pool = new Pool({ size, module: new Promise((r) => { giveModule = r; }), dist: sp.dist || config.baseURL || null, glue: sp.glue, spawn: sp.spawn,
    bootAtOnce: h.cpuCount() });
  const module = compileST(h);
  giveModule(module);
  await module.catch((e) => { pool.close(e); throw e; });
  return pool;
}

async function load() {
  const { build, reason } = chooseBuild();
  const h = await getHost();
  // Cold start, everything at once: the compile of the .wasm, the workers'
  // start-up and the main thread's own instance overlap instead of
  // following each other.
  const threads = build === 'single' ? 1 : (config.threads || cpuCount());
  // workers: the pool's workers boot while the module compiles (they get it
  // when it is ready) and while this thread instantiates its own copy.
  const pool = build === 'workers' ? newPool(h, threads) : null;
  const module = build === 'workers' ? compileST(h) : undefined;
  // threaded: the factory waits until every preloaded pthread worker has
  // loaded, so only one is: the first call's coordinator, which runs the
  // call's chunks itself (the core's threads executor counts the caller
  // among a call's threads). The crew boots in the background (see below)
  // and joins the call as its members come up.
  const instance = instantiate(h, build, module);
  useParser(() => h.parser());   // acorn, if a call needs it (lib/source.js checkAhead)
  let M;
  try {
    M = await instance;
  } catch (e) {
    // The pool's workers go too (a failed compile has closed it already).
    if (pool) pool.then((p) => p.close(e), () => {});
    throw e;
  }
  // The statuses come from the module (C's table), ESOURCE and all.
  setStatuses(M.pmw.P.status);
  const rt = {
    M,
    pmw: M.pmw,
    build,
    reason,
    threads,          // default threads of a call
    crew: 0,          // crew members of the C pool
    jobs: new Map(),  // job id -> { progress(p), post(what), cancel(), terminate(err) }
    active: 0,
    pool: pool ? await pool : null,
    crewReady: null,  // threaded: settles once every crew member's worker has loaded
    ended: null,      // settles when the runtime is shut down (shutdown: endedNow)...
    endedNow: null,
    endError: null,   // ...with this error
    lateWorkers: null, // threaded: the crew's and spare's workers, until they start (startCrew)
    sidePool: null,   // threaded / single: the workers pool for calls with a timeout
    terminated: false,
    heapArrays: 0,    // live heapArray()s (lib/heap.js): the module is kept while there are any
    handedOut: 0,     // calls given this runtime so far (recycleIfBig: none may be starting)
    calls: 0,         // parmap/imap/mapKernel calls given it: the first needs no crew (runtime())
    starting: 0,      // calls waiting for the side pool, between runtime() and begin()
    threadedStreams: 0, // threaded: imaps running on pthreads (lib/imap.js)
    mapsRunning: 0,   // threaded: maps on a coordinator now (mapTurn)...
    mapsWaiting: [],  // ...and those waiting for their turn: { resolve, reject }
  };
  rt.ended = new Promise((r) => { rt.endedNow = r; });
  M.pmwProgress = (id, done, total, failed, elapsed, rate, eta) => {
    const h = rt.jobs.get(id);
    if (h && h.progress) h.progress({ done, total: total > 0 ? total : null, failed, elapsed, rate, eta: total > 0 ? eta : null });
  };
  M.pmwPost = (id, what) => {
    const h = rt.jobs.get(id);
    if (h) h.post(what);
  };
  const crew = build === 'threaded' ? threads : 1;
  if (build === 'threaded') {
    M.pmwFirstWorker.died.then((err) => unload(rt, err));
    watchThreads(rt);
    startCrew(rt, crew);
  }
  else if (!M._pmw_pool_ensure(crew)) throw new Error('parmap: could not start the worker pool');
  rt.crew = crew;
  setIdle(rt, true);
  return rt;
}

/**
 * The threaded engine's crew, without waiting for it: the first worker
 * (loaded or loading) is kept aside for the first call's coordinator
 * (pthread_create takes the last of PThread.unusedWorkers), the crew takes
 * new ones, which run their thread as soon as they have loaded (the crew's
 * work queue does not need them all). One spare worker boots too, for an
 * imap's feeder thread. These workers start CREW_DELAY_MS after the first
 * worker has loaded, or when the first call ends, or when a second call
 * runs beside it (lib/late-worker.js: booting while the first worker loads
 * or the first call's coordinator runs, they slowed a small first call).
 * Sets rt.crewReady: settles when the crew's workers have all loaded.
 */
const CREW_WAIT_MS = 2000;
const CREW_DELAY_MS = 10;
function startCrew(rt, crew) {
  const { M } = rt;
  const P = M.PThread;
  const reserved = P.unusedWorkers.length > 0 ? P.unusedWorkers.pop() : null;
  const late = [];
  const allocate = P.allocateUnusedWorker;
  P.allocateUnusedWorker = function () {
    const w = new LateWorker(() => { allocate.call(P); return P.unusedWorkers.pop(); });
    P.unusedWorkers.push(w);
    late.push(w);
  };
  let members;
  try {
    const ok = M._pmw_pool_ensure(crew);
    if (reserved) P.unusedWorkers.push(reserved);
    if (!ok) throw new Error('parmap: could not start the worker pool');
    members = P.runningWorkers.slice();
    bootSpare(P);
  } finally {
    P.allocateUnusedWorker = allocate;
  }
  rt.lateWorkers = late;
  // (from the first worker's load: booting beside it, they slowed it too)
  M.pmwFirstWorker.loaded.then(() => startLateSoon(rt, CREW_DELAY_MS));
  rt.crewReady = Promise.all(members.map(workerLoaded));
}

/** Resolves when pthread worker w says it has loaded. Emscripten marks it
 * `loaded` then; this listens beside Emscripten's own handler. */
function workerLoaded(w) {
  return w.loaded ? Promise.resolve() : new Promise((resolve) => {
    const on = (m) => { if ((isNode ? m : m.data) && (isNode ? m : m.data).cmd === 'loaded') { off(); resolve(); } };
    const off = isNode ? () => w.off('message', on) : () => w.removeEventListener('message', on);
    if (isNode) w.on('message', on); else w.addEventListener('message', on);
  });
}

function startLateSoon(rt, ms) {
  const timer = setTimeout(() => startLate(rt), ms);
  if (timer.unref) timer.unref();
}

/** Start the crew's put-off workers (once). */
function startLate(rt) {
  const late = rt.lateWorkers;
  rt.lateWorkers = null;
  if (late && !rt.terminated) for (const w of late) w.start();
}

/** rt, once its crew is up (or CREW_WAIT_MS later). The timer is what
 * keeps Node alive meanwhile: the booting workers are unreferenced. A
 * runtime shut down meanwhile (terminate(), its first worker failed, a
 * thread crashed) is not given out: the waiting call rejects with the error
 * the calls running on it got, instead of starting on it, or (restartable: a
 * parmap or mapKernel, in onFreshModule) runs again on a fresh module when
 * the library took that one down. */
function waitCrew(rt, restartable) {
  let timer;
  return Promise.race([rt.crewReady, rt.ended, new Promise((r) => { timer = setTimeout(r, CREW_WAIT_MS); })])
    .then(() => {
      clearTimeout(timer);
      rt.crewReady = null;
      if (rt.terminated) throw notBegunError(rt, restartable);
      return rt;
    });
}

/** The pool a call runs on when it is not the engine's own: calls with a
 * timeout, and calls that may await (o.viaWorkers: async functions, module
 * mode; lib/source.js), on the threaded and single engines (where Workers
 * exist); and `overflow`: an imap beyond the threaded engine's streams
 * (lib/imap.js maxThreadedStreams). */
export async function poolFor(rt, o, overflow = false) {
  if (rt.pool) return rt.pool;
  if (!o.timeout && !o.viaWorkers && !overflow) return null;
  if (!workersSupported()) return null;
  if (!rt.sidePool) rt.sidePool = newPool(host, rt.build === 'threaded' ? rt.threads : (config.threads || cpuCount()));
  // The only wait between a call's runtime() and its begin() that spans
  // event-loop turns: count it as activity, so that the module is not
  // recycled under the call meanwhile (recycleIfBig).
  rt.starting++;
  try {
    return await rt.sidePool;
  } finally {
    rt.starting--;
  }
}

let callsWhileLoading = 0;

/**
 * The loaded runtime (loads it on first use), for `use`:
 *  - 'module': what needs the module alone (info(), listKernels(), heapArray());
 *  - 'call': a call on the engine's threads (parmap, mapKernel, which run in
 *    onFreshModule: they may be rejected with a RunAgain);
 *  - 'stream': an imap, which also needs two pthreads of its own (its
 *    coordinator and its feeder: spare workers, which boot with the crew).
 * Threaded engine: the first call, and calls made while the module loads,
 * run at once on the crew members already up; later calls, and an imap
 * made once the module is loaded, wait (a bounded time) for the crew and
 * the spares, so that a call's parallelism does not depend on how soon
 * after the start it came (and an imap's first item is not left waiting
 * for a pthread to boot). Asking for the module alone neither waits nor
 * uses up the first call's turn (`await info()` before the first call
 * would have cost that call ~40 ms of crew start-up).
 */
export function runtime(use = 'module') {
  const call = use !== 'module';
  if (state) {
    state.handedOut++;
    const wait = call && (state.calls++ > 0 || use === 'stream') && state.crewReady;
    return wait ? waitCrew(state, use === 'call') : Promise.resolve(state);
  }
  if (call) callsWhileLoading++;
  if (!loading) {
    loading = load().then((rt) => {
      rt.calls = callsWhileLoading;
      callsWhileLoading = 0;
      state = rt;
      return rt;
    }, (e) => {
      loading = null;
      callsWhileLoading = 0;
      throw e;
    });
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
 * pthreads, so it never grows; size it with configure({ threads })).
 * restartable: the caller runs in onFreshModule (a module the library took
 * down throws its RunAgain, else the module's end error). */
export function begin(rt, threads, restartable = false) {
  if (rt.terminated) throw notBegunError(rt, restartable);
  if (rt.build === 'threaded' && threads > rt.crew) threads = rt.crew;
  if (rt.active++ === 0) setIdle(rt, false);
  else if (rt.lateWorkers) startLate(rt);   // a second call at once: it needs the crew
  keepSpares(rt);
  return threads;
}

/**
 * Threaded: keep SPARE_WORKERS pthread workers loaded and unused, so that a
 * thread a call starts (an imap's coordinator and feeder, the coordinator of
 * a call that starts while the kept one is busy) starts at once. Without a
 * spare, pthread_create waits for a new worker to boot (20-60 ms here:
 * imap's first result came that late).
 */
const SPARE_WORKERS = 2;
function keepSpares(rt) {
  if (rt.build !== 'threaded' || rt.terminated) return;
  const P = rt.M.PThread;
  while (P.unusedWorkers.length < SPARE_WORKERS) bootSpare(P);
}

/** One more pthread worker, loading. It goes to the front of
 * unusedWorkers: pthread_create takes the last one, a loaded one. */
function bootSpare(P) {
  P.allocateUnusedWorker();
  const w = P.unusedWorkers.pop();
  P.unusedWorkers.unshift(w);
  P.loadWasmModuleToWorker(w);
}

/**
 * Threaded: a map's turn on a coordinator pthread. Each map runs on one
 * (the kept coordinator, or a pthread started for it while that one is
 * busy: src/job.c), and each pthread is a worker of its own: 300 calls at
 * once started ~250 workers (2 GB, 6 s). At most one more map than the
 * crew's threads runs at once (more would not run sooner: they share the
 * crew and the cores); the others wait here, in order. Resolves when the
 * map may start; rejects with an AbortError if its signal aborts first, or
 * with the runtime's error if it is shut down meanwhile. Each turn taken
 * is given back with endMapTurn.
 */
export function mapTurn(rt, signal) {
  if (rt.terminated) return Promise.reject(notBegunError(rt, true));
  if (rt.mapsRunning < rt.crew + 1) {
    rt.mapsRunning++;
    return Promise.resolve();
  }
  return new Promise((resolve, reject) => {
    const entry = {
      resolve: () => { done(); resolve(); },
      reject: (e) => { done(); reject(e); },
    };
    const onAbort = () => {
      const i = rt.mapsWaiting.indexOf(entry);
      if (i >= 0) rt.mapsWaiting.splice(i, 1);
      entry.reject(abortError(signal));
    };
    const done = () => { if (signal) signal.removeEventListener('abort', onAbort); };
    if (signal) signal.addEventListener('abort', onAbort, { once: true });
    rt.mapsWaiting.push(entry);
  });
}

/** A map's turn ends: the next waiting map takes it. */
export function endMapTurn(rt) {
  const next = rt.mapsWaiting.shift();
  if (next) next.resolve();
  else rt.mapsRunning--;
}

export function end(rt) {
  // The first call's result goes to its caller first (creating the workers
  // takes the main thread a few ms).
  if (rt.lateWorkers) startLateSoon(rt, 0);
  if (--rt.active === 0) {
    setIdle(rt, true);
    recycleIfBig(rt);
  }
}

/**
 * Memory a call used is given back when it ends. A WebAssembly memory never
 * shrinks, and an idle worker's isolate may never collect the garbage a huge
 * value left: once a call has grown the module's heap past RECYCLE_BYTES
 * (pool.js: a map over 10^7 values), or a thread encoded a value of over
 * 64 MB (a 200 MB string; runtime.js PMW_BIG_SCRATCH), the module is unloaded
 * as soon as nothing uses it (no call running or about to start, no
 * heapArray() alive), and the next call loads a fresh one. The workers
 * engine does the same per worker (pool.js). Threaded and single engines.
 */

function recycleIfBig(rt) {
  if (rt.build === 'workers' || rt.terminated || rt.heapArrays > 0 || rt.starting > 0 || rt.jobs.size > 0) return;
  // Read and clear the flag first: a realm that saw a huge value (runtime.js)
  if (!rt.M._pmw_big_values(-1) && rt.pmw.heap().U8.length <= RECYCLE_BYTES) return;
  const handedOut = rt.handedOut;
  // After the current turn: a call that has its runtime but has not begun
  // yet (it awaits between the two) shows in handedOut.
  const timer = setTimeout(() => {
    if (state !== rt || rt.active > 0 || rt.starting > 0 || rt.jobs.size > 0 || rt.handedOut !== handedOut || rt.heapArrays > 0) return;
    unload(rt, new ParmapError('parmap: the module was unloaded to give its memory back', { code: 'ECANCELED', itemCode: STATUS.ECANCELED }));
  }, 0);
  if (timer.unref) timer.unref();
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
  return new ParmapError('parmap: terminate() was called: the call was stopped before it finished', { code: 'ECANCELED', itemCode: STATUS.ECANCELED });
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

/**
 * What a call that had not started yet on a module taken down by the
 * library (retire; a crashed thread) is rejected with: nothing of it ran,
 * so onFreshModule runs it again on a fresh module instead of failing it
 * for another call's runaway function. terminate() fails every call.
 */
class RunAgain {
  constructor(err) { this.err = err; }
}

/** How many modules one call tries: a module that goes down every time
 * (its first thread cannot start here) must not make a call retry forever. */
const MODULES_PER_CALL = 3;

/** What a call that had not begun on rt meets once rt is down: its
 * RunAgain when the library took rt down and the caller runs in
 * onFreshModule (restartable), else rt's end error. */
function notBegunError(rt, restartable) {
  return (restartable && rt.runAgain) || rt.endError;
}

/** Runs start() (a call of the API), again on a fresh module while it is
 * rejected before it began (RunAgain), at most MODULES_PER_CALL times. */
export async function onFreshModule(start) {
  for (let tries = 1; ; tries++) {
    try {
      return await start();
    } catch (e) {
      if (!(e instanceof RunAgain)) throw e;
      if (tries >= MODULES_PER_CALL) throw e.err;
    }
  }
}

/** Take a runtime down now (never waits for a thread or worker).
 * runAgain: calls that had not started run again on a fresh module. */
function shutdown(rt, err, runAgain = false) {
  if (rt.terminated) return;
  rt.terminated = true;
  rt.runAgain = runAgain ? new RunAgain(err) : null;
  rt.endError = err;
  rt.endedNow();
  if (rt.pool) rt.pool.close(err);
  if (rt.sidePool) {
    const side = rt.sidePool;
    rt.sidePool = null;
    side.then((p) => p.close(err), () => {});
  }
  for (const h of [...rt.jobs.values()]) if (h.terminate) h.terminate(err);
  rt.jobs.clear();
  for (const entry of rt.mapsWaiting.splice(0)) entry.reject(notBegunError(rt, true));
  // The pthreads are terminated, not joined: a thread in a user's endless
  // loop would never join, and joining blocks the main thread. Not through
  // PThread.terminateAllThreads: it frees a running thread's data before its
  // worker has stopped, and that thread could then fault; Emscripten's
  // handler rethrows a worker's error on the main thread (an uncaught
  // exception in the caller's process, seen in the heap test). The module is
  // discarded anyway: its workers are silenced and terminated, nothing else.
  if (rt.build === 'threaded') stopPthreads(rt.M.PThread);
}

/** Silence and terminate every pthread worker of a module that is discarded. */
function stopPthreads(P) {
  for (const w of [...P.unusedWorkers, ...P.runningWorkers]) {
    w.onerror = () => {};
    w.onmessage = () => {};
    try { w.terminate(); } catch { /* gone already */ }
  }
  P.unusedWorkers.length = 0;
  P.runningWorkers.length = 0;
}

/**
 * The threaded engine cannot kill one pthread: when a thread will not stop
 * (an aborted call's function that never returns), the whole module goes.
 * Other calls running on it reject (ECANCELED, saying why); calls that had
 * not started (waiting for their turn) and later calls run on a fresh module.
 */
export function retire(rt, why) {
  unload(rt, new ParmapError(`parmap: the threaded module was terminated: ${why} kept a thread busy`, { code: 'ECANCELED', itemCode: STATUS.ECANCELED }));
}

/** Forget rt (the next call loads a fresh module) and take it down; calls
 * that had not started on it run again there. */
function unload(rt, err) {
  if (state === rt) { state = null; loading = null; }
  shutdown(rt, err, true);
}

/**
 * Node, threaded engine: a pthread's worker that exits by itself (a function
 * called process.exit, which ends only that worker thread, or a fatal error
 * in it) leaves the C pool waiting for a thread that is gone: every call
 * would hang. The module is retired instead: calls running on it reject
 * with code 'ECRASH', and the next call loads a fresh one. (Which item did
 * it is not known: the threads share one memory. The workers engine
 * isolates such items: only theirs fail.) Every worker the module makes is
 * watched: the preloaded ones here, later ones through allocateUnusedWorker.
 * An error a function leaves behind in its thread (a throw in a timer it
 * set) ends that worker thread in Node, and Emscripten's handler rethrew it
 * on the main thread, which ended the caller's process: the handler now only
 * keeps the message for the ECRASH error.
 */
function watchThreads(rt) {
  if (!isNode) return;
  const P = rt.M.PThread;
  const quiet = (w) => { w.onerror = (e) => { w.pmwError = String((e && e.message) || e); }; };
  const watch = (w) => {
    if (!w || w.pmwWatched) return;
    w.pmwWatched = true;
    w.on('exit', (code) => {
      if (rt.terminated) return;
      const why = w.pmwError ? `failed: ${w.pmwError}` : `exited (code ${code}): a function called process.exit`;
      unload(rt, new ParmapError(`parmap: the threaded module was terminated: one of its threads ${why}; ` +
        'the workers engine (configure({ build: \'workers\' })) fails only the item that does this',
      { code: 'ECRASH', itemCode: STATUS.ECRASH }));
    });
  };
  for (const w of [...P.unusedWorkers, ...P.runningWorkers]) { watch(w); quiet(w); }
  const load = P.loadWasmModuleToWorker;
  P.loadWasmModuleToWorker = function (w) {
    const r = load.apply(this, arguments);
    quiet(w);   // after Emscripten set its own
    return r;
  };
  const allocate = P.allocateUnusedWorker;
  P.allocateUnusedWorker = function () {
    allocate.apply(this, arguments);
    watch(P.unusedWorkers[P.unusedWorkers.length - 1]);
  };
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
