// worker.js - one dedicated worker of the `workers` engine (lib/pool.js):
// a Web Worker in browsers, a worker_threads Worker in Node. It owns its own
// instance of the single-thread module, instantiated from the compiled
// WebAssembly.Module the main thread posts (compiled once for all workers).
//
// Messages in:
//   { t: 'load', dist, glue }               sent at spawn: start loading the
//        Emscripten glue now, while the main thread still compiles the module
//   { t: 'init', module, recycleBytes } -> { t: 'ready' } or { t: 'fatal', message }
//   Every 'done' / 'kdone' below also says `recycle`: the heap grew past
//   recycleBytes, replace this worker once idle.
//   { t: 'run', call, src?, meta?, forget?, base, n, items, f64, raise, stream, concurrency }
//        items: a Float64Array (numbers) or the MessagePack bytes of an array
//        (transferred). Batch mode answers once per chunk:
//          { t: 'done', call, base, ran, f64 | bytes, codes, ms }
//        stream mode (calls with a timeout, items retried alone) answers each
//        item as it finishes: { t: 'item', call, k, v | bytes, code }, then
//        { t: 'done', call, base, ran, ms }. The main thread therefore always
//        knows which item is running: the one after the last it heard of.
//        When fn returns promises (async functions, module mode), items
//        overlap, up to `concurrency` per worker, and come back as they
//        settle (runAsync): batch mode as { t: 'items', call, ks, codes,
//        bytes }, stream mode as 'item' plus { t: 's', call, k } as item k
//        starts; then { t: 'done', streamed: true, ... }.
//        src may be module mode's marker (lib/source.js): the module is
//        imported, once per worker, before the first chunk runs.
//   { t: 'kernel', call, base, n, name, params, input, raise }
//        -> { t: 'kdone', call, base, status, output, codes, errIndex, errCode }
//   { t: 'forget', forget }                only the `forget` below: for a
//        call with big args/kwargs at once, for others once 64 wait for an
//        idle worker (else they ride on the next 'run')
// Any message may carry `forget`: ids of ended calls whose cached function
// to drop first.
// While a chunk runs with progress asked for, { t: 'p', call, k } every
// ~100 ms (k = items of the chunk done).
//
// Nothing here can be interrupted from outside but by terminating the worker:
// that is how the pool stops runaway items (timeout, abort, terminate()).

// In Node, worker-node.js sets pmwWorkerHost (the port, the glue) before
// importing this file; nothing here names a `node:` module, so browser
// bundlers can take this file as it is. The browser bundle's worker,
// worker-web.js, sets pmwWorkerGlue (the glue, included).
const host = globalThis.pmwWorkerHost || null;
const isNode = host !== null;
const port = isNode ? host.port : self;   // where messages go

let M = null;        // the module instance
let pmw = null;      // its runtime (codec, compile, makeCall)
let CODE = null;     // item codes (src/protocol.h PMW_ITEM_CODES)
const calls = new Map();   // call id -> { call, raise }
let enc = null;
let recycleBytes = Infinity;   // pool.js RECYCLE_BYTES, sent with 'init'
let bigValue = false;          // takeBytes: the encoder grew past 64 MB

/** Whether this worker's heap has grown past what it keeps: the pool then
 * replaces it once its chunk is done (memory is given back). */
function bigHeap() {
  // (this realm's encoder, or runtime.js's writers, grew for a huge value)
  const big = bigValue;
  bigValue = false;
  return M !== null && (M._pmw_big_values(-1) !== 0 || big || pmw.heap().U8.length > recycleBytes);
}

/** The Emscripten factory, loading (the 'load' message). */
let factoryLoading = null;
function loadFactory(msg) {
  if (isNode) return Promise.resolve().then(() => host.loadFactory(msg.dist));
  // dist/worker.js includes it (worker-web.js).
  if (globalThis.pmwWorkerGlue) return Promise.resolve(globalThis.pmwWorkerGlue);
  // The glue's URL as the main thread knows it (bundlers may have moved
  // it); not a literal specifier, so bundlers leave this import alone.
  const glue = msg.glue || new URL('web/parmap-st.mjs', msg.dist).href;
  return import(/* webpackIgnore: true */ /* @vite-ignore */ glue).then((m) => m.default);
}

async function init(msg) {
  if (msg.recycleBytes) recycleBytes = msg.recycleBytes;
  const instantiateWasm = (imports, done) => {
    WebAssembly.instantiate(msg.module, imports).then((inst) => done(inst, msg.module));
    return {};
  };
  const factory = await factoryLoading;
  M = await factory({ instantiateWasm });
  if (!M._pmw_pool_ensure(1)) throw new Error('parmap: the worker could not start its pool');
  pmw = M.pmw;
  if (host && host.fs) pmw.syncStdio(host.fs);
  CODE = pmw.P.code;
  enc = new pmw.Encoder();
}

const MODULE_MARK = '\0parmap-module:';   // lib/source.js: module mode

/** The call's function: compiled from its source, or (module mode) the
 * export of an imported module, which is why this may return a promise. */
function callOf(msg) {
  const J = calls.get(msg.call);
  if (J) return J;
  if (msg.src.startsWith(MODULE_MARK)) return importCall(msg);
  let fn;
  try {
    fn = pmw.compile(msg.src);
  } catch (e) {
    return remember(msg, () => { throw e; });   // every item fails with it
  }
  return remember(msg, fn);
}

async function importCall(msg) {
  const [url, name] = JSON.parse(msg.src.slice(MODULE_MARK.length));
  let fn;
  try {
    const ns = await import(url);
    fn = ns[name];
    if (typeof fn !== 'function') {
      throw new TypeError(`parmap: module ${url} has no function export '${name}' (its exports: ${
        Object.keys(ns).join(', ') || 'none'})`);
    }
  } catch (e) {
    return remember(msg, () => { throw e; });
  }
  return remember(msg, fn);
}

function remember(msg, fn) {
  let meta = { star: false };
  if (msg.meta) {
    const dec = new pmw.Decoder();
    dec.reset(msg.meta);
    dec.pos = 0;
    meta = dec.value();
  }
  // An async function goes straight to runAsync; a plain one that returns
  // a promise switches there at its first.
  const J = { call: pmw.makeCall(fn, meta), async: Object.prototype.toString.call(fn) === '[object AsyncFunction]' };
  // Kept until the main thread says to forget it (it sends a call's source
  // only to a worker it believes lacks it: lib/pool.js W.known), which also
  // bounds how many are kept (lib/wcall.js finish).
  calls.set(msg.call, J);
  return J;
}

function decodeItems(msg) {
  if (msg.f64) return msg.items;
  const dec = new pmw.Decoder();
  dec.reset(msg.items);
  dec.pos = 0;
  return dec.value();
}

/** What a failed item sends back: runtime.js's error fields (class, stack,
 * own cause and properties, a non-Error thrown value), with its index. */
function failure(e, index, code) {
  return pmw.itemError(e, index, code);
}

/** Encode one value; on failure the error fields take its place (CODE.ENCODE). */
function encodeOne(v, index, code) {
  const at = enc.pos;
  try {
    enc.value(v, 0);
    return code;
  } catch (e) {
    enc.pos = at;
    const err = new TypeError('parmap: item ' + index + ': the result cannot be sent back: ' + pmw.encodeWhy(e));
    enc.value(failure(err, index, CODE.ENCODE), 0);
    return CODE.ENCODE;
  }
}

function takeBytes() {
  const out = enc.buf.slice(0, enc.pos);
  enc.pos = 0;
  // Memory a call used is given back: do not keep a huge scratch buffer
  // (and past 64 MB, have this worker replaced: bigHeap()).
  if (enc.buf.length > (8 << 20)) {
    if (enc.buf.length > (64 << 20)) bigValue = true;
    enc = new pmw.Encoder();
  }
  return out;
}

function run(msg, J) {
  const call = J.call, n = msg.n, base = msg.base, raise = msg.raise, stream = msg.stream, progress = msg.progress;
  const items = decodeItems(msg);
  if (J.async) return runAsync(msg, J, items, 0, null, null, null);
  const t0 = performance.now();
  let lastP = t0;
  let f64 = stream ? null : new Float64Array(n);
  let vals = null;
  const codes = stream ? null : new Int32Array(n);
  let k = 0;
  for (; k < n; k++) {
    let r, code = 0;
    try {
      r = call(items[k]);
    } catch (e) {
      code = pmw.thrownCode(e);
      r = failure(e, base + k, code);
    }
    if (code === 0 && typeof r !== 'number' && pmw.thenable(r)) {
      // The first promise: the rest of the chunk is awaited (this item's
      // promise included), and so are the call's later chunks.
      J.async = true;
      const done = stream ? null : vals || Array.from(f64.subarray(0, k));
      return runAsync(msg, J, items, k, r, done, codes);
    }
    if (stream) {
      if (code === 0 && typeof r === 'number') port.postMessage({ t: 'item', call: msg.call, k, v: r, code: 0 });
      else {
        enc.pos = 0;
        enc.head(0x90, 1, 16, 0, 0xdc, 0xdd);
        code = encodeOne(r, base + k, code);
        const bytes = takeBytes();
        port.postMessage({ t: 'item', call: msg.call, k, bytes, code }, [bytes.buffer]);
      }
    } else {
      codes[k] = code;
      if (vals === null && code === 0 && typeof r === 'number') f64[k] = r;
      else {
        if (vals === null) { vals = Array.from(f64.subarray(0, k)); f64 = null; }
        vals[k] = r;
      }
    }
    if (code !== 0 && raise) { k++; break; }
    if (progress && (k & 15) === 15) {
      const now = performance.now();
      if (now - lastP > 100) { lastP = now; port.postMessage({ t: 'p', call: msg.call, k: k + 1 }); }
    }
  }
  const ms = performance.now() - t0;
  if (stream) { port.postMessage({ t: 'done', recycle: bigHeap(), call: msg.call, base, ran: k, ms }); return; }
  if (vals === null) {
    const out = k === n ? f64 : f64.slice(0, k);
    port.postMessage({ t: 'done', recycle: bigHeap(), call: msg.call, base, ran: k, f64: out, codes: null, ms }, [out.buffer]);
    return;
  }
  enc.pos = 0;
  enc.head(0x90, k, 16, 0, 0xdc, 0xdd);
  let anyFail = false;
  for (let i = 0; i < k; i++) {
    codes[i] = encodeOne(vals[i], base + i, codes[i]);
    if (codes[i]) anyFail = true;
    if (codes[i] && raise && i < k - 1) {
      // An encoding failure in raise mode ends the chunk there.
      k = i + 1;
      break;
    }
  }
  const bytes = takeBytes();
  const c = anyFail ? codes.slice(0, k) : null;
  const transfer = [bytes.buffer];
  if (c) transfer.push(c.buffer);
  // A raise cut above left the header saying more items than follow: the
  // main thread reads only `ran` of them.
  port.postMessage({ t: 'done', recycle: bigHeap(), call: msg.call, base, ran: k, bytes, codes: c, ms }, transfer);
}

/**
 * A chunk whose function returns promises: items start in order, at most
 * msg.concurrency (default 16) in flight in this worker, and settle in any
 * order. From k0 on (items before it ran synchronously: `done` holds their
 * results, `codes` their codes; `first` is item k0's promise, already
 * started). Results go back as they settle, not at the end of the chunk:
 * one slow item must not hold back the others (an imap consumer would wait
 * for it). Batch mode gathers what settled in one turn of the event loop
 * into one { t: 'items', call, ks, codes, bytes } message (trivial async
 * functions still cost one message per chunk); stream mode (a timeout)
 * says { t: 's', k } as each item starts and { t: 'item', k } as it
 * settles, so the pool knows which items are in flight and since when.
 * Either way the chunk ends with { t: 'done', streamed: true, ran, ms }.
 * Raise mode: after a failure nothing more starts, and the chunk ends once
 * every item before the failure has settled.
 */
function runAsync(msg, J, items, k0, first, done, codes) {
  const call = J.call, n = msg.n, base = msg.base, raise = msg.raise, stream = msg.stream;
  const limit = msg.concurrency || 16;
  const t0 = performance.now();
  const inflight = new Set();
  let next = k0, failAt = -1, over = false, pumping = false;
  let pend = [], flushing = false;   // batch mode: settled, not yet sent

  const flush = () => {
    flushing = false;
    if (!pend.length) return;
    const batch = pend;
    pend = [];
    const ks = new Int32Array(batch.length), cs = new Int32Array(batch.length);
    enc.pos = 0;
    enc.head(0x90, batch.length, 16, 0, 0xdc, 0xdd);
    for (let i = 0; i < batch.length; i++) {
      ks[i] = batch[i][0];
      cs[i] = encodeOne(batch[i][1], base + ks[i], batch[i][2]);
    }
    const bytes = takeBytes();
    port.postMessage({ t: 'items', call: msg.call, ks, codes: cs, bytes }, [bytes.buffer, ks.buffer, cs.buffer]);
  };
  const settle = (k, v, code) => {
    if (over) return;   // this chunk already ended (raise mode)
    inflight.delete(k);
    if (code) v = failure(v, base + k, code);
    if (stream) postItem(msg, k, v, code);
    else {
      pend.push([k, v, code]);
      if (!flushing) { flushing = true; soon(flush); }
    }
    if (code && raise && (failAt < 0 || k < failAt)) failAt = k;
    pump();
  };
  const begin = (k, r, started) => {
    inflight.add(k);
    if (stream) port.postMessage({ t: 's', call: msg.call, k });
    if (!started) {
      try {
        r = call(items[k]);
      } catch (e) {
        return settle(k, e, pmw.thrownCode(e));
      }
    }
    if (!pmw.thenable(r)) return settle(k, r, 0);
    Promise.resolve(r).then((v) => settle(k, v, 0), (e) => settle(k, e, CODE.THREW));
  };
  const finished = () => {
    if (failAt >= 0) {
      for (const k of inflight) if (k < failAt) return false;
      return true;
    }
    return next >= n && inflight.size === 0;
  };
  function pump() {
    if (pumping) return;   // settle() from a synchronous result: the loop below goes on
    pumping = true;
    while (!over && failAt < 0 && next < n && inflight.size < limit) begin(next++, null, false);
    pumping = false;
    if (!over && finished()) {
      over = true;
      flush();
      port.postMessage({ t: 'done', recycle: bigHeap(), call: msg.call, base, ran: failAt >= 0 ? failAt + 1 : n, streamed: true,
        ms: performance.now() - t0 });
    }
  }
  // The items that ran before the first promise (batch mode; stream mode sent them).
  if (done) for (let k = 0; k < k0; k++) pend.push([k, done[k], codes[k]]);
  if (first !== null) begin(next++, first, true);
  pump();
}

// Soon, but after the promise jobs of this turn (which may settle more items).
const soon = typeof setImmediate === 'function' ? setImmediate : (f) => setTimeout(f, 0);

/** Stream mode: one item's result. */
function postItem(msg, k, r, code) {
  if (code === 0 && typeof r === 'number') { port.postMessage({ t: 'item', call: msg.call, k, v: r, code: 0 }); return; }
  enc.pos = 0;
  enc.head(0x90, 1, 16, 0, 0xdc, 0xdd);
  code = encodeOne(r, msg.base + k, code);
  const bytes = takeBytes();
  port.postMessage({ t: 'item', call: msg.call, k, bytes, code }, [bytes.buffer]);
}

function kernel(msg) {
  const { n, base } = msg;
  const t0 = performance.now();
  const job = M._pmw_job_new(pmw.P.kind.KERNEL, 1, 0, msg.raise ? 1 : 0, 0, 0) >>> 0;
  if (!job) throw new RangeError('parmap: out of WebAssembly memory in a worker');
  try {
    pmw.heap(0).F64.set(msg.params, M._pmw_job_params(job) >>> 3);
    const nameBytes = new TextEncoder().encode(msg.name + '\0');
    const namePtr = M._malloc(nameBytes.length) >>> 0;
    pmw.heap().U8.set(nameBytes, namePtr);
    const perItem = M._pmw_job_kernel(job, namePtr);
    M._free(namePtr);
    const kin = M._pmw_job_kernel_arrays(job, n, 0, 0) >>> 0;
    if (!kin) throw new RangeError(`mapKernel: out of WebAssembly memory for ${n} items in a worker`);
    pmw.heap().U8.set(msg.input, kin);
    const status = n ? M._pmw_map_slice(job, 0, n) : 0;
    const kout = M._pmw_job_kernel_out(job) >>> 0;
    const outBytes = perItem * n * msg.outSize;
    const output = pmw.heap().U8.slice(kout, kout + outBytes);
    let codes = null;
    if (!msg.raise) codes = pmw.heap().I32.slice(M._pmw_job_codes(job) >>> 2, (M._pmw_job_codes(job) >>> 2) + n);
    const get = pmw.job;
    let errIndex = get.err_index(job), errCode = get.err_code(job);
    if (errIndex < 0) { errIndex = get.first_error_index(job); errCode = get.first_error_code(job); }
    const transfer = [output.buffer];
    if (codes) transfer.push(codes.buffer);
    port.postMessage({ t: 'kdone', recycle: bigHeap(), call: msg.call, base, status, output, codes, ran: n, ms: performance.now() - t0,
      errIndex: errIndex >= 0 ? base + errIndex : -1, errCode }, transfer);
  } finally {
    M._pmw_job_free(job);
  }
}

function onMessage(msg) {
  try {
    if (msg.forget) for (const id of msg.forget) calls.delete(id);
    switch (msg.t) {
      case 'run': {
        const J = callOf(msg);
        if (typeof J.then === 'function') {
          // Module mode's first chunk: the import first.
          J.then((j) => onMessageSafe(msg, () => run(msg, j)));
          break;
        }
        run(msg, J);
        break;
      }
      case 'kernel': kernel(msg); break;
      case 'crash': throw new Error('parmap test: a worker crash asked for');
    }
  } catch (e) {
    // A trap in a kernel, out of memory, a bug: this worker's state is not
    // to be trusted any more. The pool replaces it (the item's chunk is
    // retried item by item, so only the one that does this again fails).
    port.postMessage({ t: 'crash', call: msg.call, message: String(e && e.message || e) });
  }
}

function onMessageSafe(msg, f) {
  try {
    f();
  } catch (e) {
    port.postMessage({ t: 'crash', call: msg.call, message: String(e && e.message || e) });
  }
}

let ready = null;
const early = [];
const listener = (ev) => {
  const msg = isNode ? ev : ev.data;
  if (msg.t === 'load') {
    factoryLoading = loadFactory(msg);
    factoryLoading.catch(() => {});   // init reports it
    return;
  }
  if (msg.t === 'init') {
    ready = init(msg).then(() => {
      port.postMessage({ t: 'ready' });
      for (const m of early.splice(0)) onMessage(m);
    }, (e) => port.postMessage({ t: 'fatal', message: String(e && e.stack || e) }));
    return;
  }
  if (!M) { early.push(msg); return; }
  onMessage(msg);
};
if (isNode) port.on('message', listener);
else self.onmessage = listener;
