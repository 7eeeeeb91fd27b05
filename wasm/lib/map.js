// map.js - parmap() and mapKernel(): a whole array at once.
//
// The main thread encodes the items into records in the heap (numbers as
// doubles, anything else MessagePack in blocks; runtime.js), then:
//  - threaded build: C starts a coordinator pthread running pm_map on the
//    warm pool; progress and the end arrive as posts; the main thread only
//    awaits;
//  - single-thread build: the main thread runs the map in slices of a few
//    milliseconds (pm_map over a range) and yields to the event loop between
//    them.
// Then it decodes the results in place and frees the job.

import { checkOptions, toList } from './options.js';
import { functionSource, checkAhead, learnAsync } from './source.js';
import { runtime, begin, end, yieldToLoop, poolFor, retire, mapTurn, endMapTurn, onFreshModule } from './loader.js';
import { parmapWorkers, kernelWorkers } from './wmap.js';
import { ParmapError, itemError, abortError, statusError, STATUS } from './errors.js';
import { heapOf, pin, unpin, freshView } from './heap.js';
import { fnCostKey, knownCost, noteCost, oneThreadsWork } from './costs.js';

const SLICE_MS = 8; // single-thread build: time between two yields
const ABORT_GRACE_MS = 60; // threaded: an abort waits this long for the threads to stop

/* ----------------------------------------------------------- job helpers */

/** The function's source (which 'SRC') or the meta bytes ('META') of a job. */
export function writeBytes(M, job, which, bytes) {
  const p = M._pmw_job_bytes(job, M.pmw.P.bytes[which], bytes.length) >>> 0;
  if (!p) throw new RangeError('parmap: out of WebAssembly memory');
  M.pmw.heap().U8.set(bytes, p);
}

/** Encode {star, kwstar, args, kwargs} once per call. A call without args
 * or kwargs (most) takes the bytes made once for its star/kwstar: never
 * written to (copied into the heap, or cloned into a worker's message). */
const plainMeta = new Map();   // `${star}|${kwstar}` -> bytes
export function encodeMeta(api, pmw, o) {
  const plain = o.args.length === 0 && o.kwargs === undefined;
  const key = `${o.star}|${o.kwstar}`;
  if (plain && plainMeta.has(key)) return plainMeta.get(key);
  const bytes = encodeMetaBytes(api, pmw, o);
  if (plain) plainMeta.set(key, bytes);
  return bytes;
}

function encodeMetaBytes(api, pmw, o) {
  const enc = new pmw.Encoder();
  for (const [name, v] of [['args', o.args], ['kwargs', o.kwargs]]) {
    try {
      enc.encode(v);
    } catch (e) {
      if (!(e instanceof pmw.EncodeError)) throw e;
      throw new TypeError(`${api}: option ${name} cannot be sent to the workers: ${e.what}${e.path ? ` at ${name}${e.path}` : ''}`);
    }
  }
  enc.pos = 0;
  enc.encode({ star: o.star, kwstar: o.kwstar, args: o.args, kwargs: o.kwargs });
  return enc.buf.slice(0, enc.pos);
}

/** The function's source as UTF-8; the last one is kept (calls of one
 * function in a row are the common case: a small call spent ~3 us here). */
const utf8 = new TextEncoder();
let lastSrc = null, lastSrcBytes = null;
function srcBytes(src) {
  if (src !== lastSrc) { lastSrcBytes = utf8.encode(src); lastSrc = src; }
  return lastSrcBytes;
}

/** A JS job with its function and meta; throws (and frees) on failure. */
export function newJsJob(api, rt, src, o, threads) {
  const { M, pmw } = rt;
  const meta = encodeMeta(api, pmw, o);
  const job = M._pmw_job_new(pmw.P.kind.JS, threads, o.chunksize, o.raise ? 1 : 0, o.ordered ? 0 : 1, o.onProgress ? 1 : 0) >>> 0;
  if (!job) throw new RangeError(`${api}: out of WebAssembly memory`);
  try {
    writeBytes(M, job, 'SRC', srcBytes(src));
    writeBytes(M, job, 'META', meta);
  } catch (e) {
    M._pmw_job_free(job);
    throw e;
  }
  return job;
}

export function itemEncodeError(api, pmw, e, index) {
  if (!(e instanceof pmw.EncodeError)) return e;
  const err = new TypeError(`${api}: item ${index} cannot be sent to a worker: ${e.what}${e.path ? ` at item${e.path}` : ''}`);
  err.index = index;
  return err;
}

/** Write items into records starting at record index r0 (8-byte units).
 * w: the BlockWriter for values other than numbers and undefined, or null
 * to make one at the first such value (a call of numbers needs none: making
 * one, three zeroed buffers, was ~3 us of a small call). */
export function writeItems(api, rt, job, list, r0, w, base = 0) {
  const { pmw } = rt;
  let H = pmw.heap();
  const n = list.length;
  if (list instanceof Float64Array) {
    H.F64.set(list, r0);
    // A NaN with a payload could look like a reference: store them canonical.
    const U = H.U32, hiNaN = pmw.NAN_HI;
    for (let i = 0; i < n; i++) {
      if (list[i] !== list[i]) { U[2 * (r0 + i)] = 0; U[2 * (r0 + i) + 1] = hiNaN; }
    }
    return;
  }
  let F = H.F64, U = H.U32;
  const undefHi = (pmw.NAN_HI | (pmw.TAG_UNDEF << pmw.TAG_SHIFT)) >>> 0;
  for (let i = 0; i < n; i++) {
    const v = list[i];
    if (typeof v === 'number') {
      if (v === v) F[r0 + i] = v; else { U[2 * (r0 + i)] = 0; U[2 * (r0 + i) + 1] = pmw.NAN_HI; }
    } else if (v === undefined) {
      U[2 * (r0 + i)] = 0; U[2 * (r0 + i) + 1] = undefHi;
    } else {
      if (w === null) w = new pmw.BlockWriter();
      try {
        w.add(job, v, r0 + i, pmw.TAG_VALUE);
      } catch (e) {
        throw itemEncodeError(api, pmw, e, base + i);
      }
      if (F !== H.F64) { F = H.F64; U = H.U32; }
    }
  }
  if (w !== null) w.flush(job);
}

/** Decode result records [r0, r0+n) into out[at..] (ParmapError for failed
 * items), releasing block references when `rel` is given (streams). */
export function readResults(rt, r0, n, out, at, rel) {
  const { pmw } = rt;
  const H = pmw.heap();
  const F = H.F64, U = H.U32;
  for (let i = 0; i < n; i++) {
    const r = r0 + i;
    const x = F[r];
    if (x === x) { out[at + i] = x; continue; }
    const tag = pmw.tag(U, r);
    if (tag === 0) out[at + i] = NaN;
    else if (tag === pmw.TAG_UNDEF) out[at + i] = undefined;
    else {
      const block = U[2 * r];
      const v = pmw.decodeRef(U, r);
      out[at + i] = tag === pmw.TAG_ERROR ? itemError(pmw, v) : v;
      if (rel) rel.add(block);
    }
  }
}

/**
 * The n results at record r0 as a new Array. Numeric results (the common
 * case) go into an array made with double elements from the start (`[0.5]`,
 * then `length = n`), filled with the raw doubles: `new Array(n)` starts
 * with small-integer elements and V8 converts the whole array at the first
 * fractional number, which measured 12-15 ms per 10^6 results against ~5 ms
 * this way. When a record is not a plain number, the results go into a
 * generic array instead: storing an object into the double array would
 * teach its allocation site (V8 tracks one per literal) to make generic
 * arrays, and every later numeric map would then box its numbers (measured:
 * 2x slower after one map with mixed results).
 */
export function resultArray(rt, r0, n) {
  const F = rt.pmw.heap().F64;
  if (n > 0 && F[r0] === F[r0]) {
    const out = [0.5];
    out.length = n;
    let i = 0;
    for (; i < n; i++) {
      const x = F[r0 + i];
      if (x !== x) break;
      out[i] = x;
    }
    if (i === n) return out;
  }
  const out = new Array(n);
  readResults(rt, r0, n, out, 0, null);
  return out;
}

/** Wires a job to the main thread's post handlers; returns its promise of
 * completion and an unregister function. */
export function watchJob(rt, job, o, onCancel) {
  const { M } = rt;
  const id = rt.pmw.job.id(job);
  const { DONE } = rt.pmw.P.post;
  let resolveDone;
  const done = new Promise((r) => { resolveDone = r; });
  let progressError = null;
  const handler = {
    progress: o.onProgress ? (p) => {
      if (progressError) return;
      try { o.onProgress(p); } catch (e) { progressError = e; M._pmw_cancel(job); }
    } : null,
    post: (what) => {
      if (what === DONE) {
        handler.ended = true;
        resolveDone();
        if (rt.orphans && rt.orphans.delete(job)) { rt.jobs.delete(id); M._pmw_job_free(job); }
      }
      if (handler.onPost) handler.onPost(what);
    },
    cancel: () => { M._pmw_cancel(job); if (onCancel) onCancel(); },
    // terminate() (or an abort whose function does not stop) took the module down.
    terminate: (err) => {
      handler.terminated = err;
      if (handler.dropWait) handler.dropWait();
      resolveDone();
      if (handler.onPost) handler.onPost(DONE);
    },
    onPost: null,
    dropWait: null,   // runThreaded: stops awaiting the done word
    ended: false,
    terminated: null,
  };
  rt.jobs.set(id, handler);
  let abortListener = null;
  let abortTimer = null;
  if (o.signal) {
    // The workers stop within a chunk; a function that never returns keeps
    // its pthread forever, and a pthread cannot be killed alone: after a
    // grace period the call rejects and the module is retired (terminated,
    // the next call loads a fresh one).
    abortListener = () => {
      M._pmw_cancel(job);
      abortTimer = setTimeout(() => {
        if (handler.ended || handler.terminated) return;
        retire(rt, 'an aborted call whose function did not return');
      }, ABORT_GRACE_MS);
    };
    o.signal.addEventListener('abort', abortListener, { once: true });
  }
  return {
    done,
    handler,
    progressError: () => progressError,
    unwatch: () => {
      if (!handler.ended && !handler.terminated) {
        // Still running on some thread (imap stopped waiting): free it when it ends.
        (rt.orphans || (rt.orphans = new Set())).add(job);
      } else rt.jobs.delete(id);
      if (abortListener) o.signal.removeEventListener('abort', abortListener);
      if (abortTimer) clearTimeout(abortTimer);
    },
  };
}

/** The error that ends a failed call, or null. */
export function endError(api, rt, job, status, o, w) {
  const { M, pmw } = rt;
  if (w && w.handler && w.handler.terminated) return o.signal && o.signal.aborted ? abortError(o.signal) : w.handler.terminated;
  if (w && w.progressError()) return w.progressError();
  if (status === STATUS.OK) return null;
  if (status === STATUS.ECANCELED || (o.signal && o.signal.aborted)) return abortError(o.signal);
  if (status === STATUS.EITEM) {
    const index = pmw.job.err_index(job);
    const rec = M._malloc(8) >>> 0;
    M._pmw_job_err_rec(job, rec);
    const H = pmw.heap();
    const tag = pmw.tag(H.U32, rec >>> 3);
    let err;
    if (tag === pmw.TAG_ERROR) {
      err = itemError(pmw, pmw.decodeRef(H.U32, rec >>> 3));
      if (index >= 0) err.index = index;   // the core's word (a stream's item knows no index in the worker)
    }
    else err = new ParmapError(`${api}: item ${index} failed (code ${pmw.job.err_code(job)})`, { index, itemCode: pmw.job.err_code(job) });
    M._free(rec);
    return err;
  }
  return statusError(M, status, api);
}

/* --------------------------------------------------------------- parmap */

/**
 * parmap(fn, items, opts) -> Promise of the results, in item order (or in
 * completion order with ordered: false). A call whose module the library
 * took down before it began (another call's runaway function) runs on a
 * fresh module (loader.js onFreshModule).
 */
export function parmap(fn, items, opts) {
  return onFreshModule(() => parmapOnce(fn, items, opts));
}

async function parmapOnce(fn, items, opts) {
  const o = checkOptions('parmap', opts);
  const loading = runtime('call');
  const parsing = checkAhead(fn);
  const rt = await loading;
  if (parsing) await parsing;
  const src = functionSource('parmap', fn, rt.pmw.compile, o);
  const list = toList('parmap', items);
  if (o.signal && o.signal.aborted) throw abortError(o.signal);
  const pool = await poolFor(rt, o);
  if (pool) return onWorkers(rt, pool, src, o, list);
  if (o.viaWorkers) throw noWorkersError();
  const n = list.length;
  // Threaded: a small call of a function known to be cheap runs on the
  // coordinator alone (waking the crew would cost more than it saves).
  const costKey = fnCostKey(src);
  const alone = rt.build === 'threaded' && !o.chunksize && oneThreadsWork(n, knownCost(costKey));
  const threads = begin(rt, alone ? 1 : o.threads || rt.threads, true);
  let job = 0, promised = null;
  try {
    job = newJsJob('parmap', rt, src, o, threads);
    const recs = rt.M._pmw_job_records(job, n) >>> 0;
    if (!recs) throw new RangeError(`parmap: out of WebAssembly memory for ${n} items`);
    writeItems('parmap', rt, job, list, recs >>> 3, null);
    const status = rt.build === 'threaded' ? await runThreaded(rt, job, o, alone) : await runSlices(rt, job, o, n);
    // What an item costs: the time spent in the function over n (the
    // threads' wake-ups and the hops do not count). A lower figure is taken
    // at once, a higher one a quarter of the way: one slow call (a
    // collection, a busy machine) does not undo the rule, and a function
    // that became slow is spread again after a call or two.
    if (rt.build === 'threaded' && status.status === 0 && n > 0) {
      const cost = rt.pmw.job.busy(job) * 1000 / n, known = knownCost(costKey);
      noteCost(costKey, known < 0 || cost < known ? cost : known + (cost - known) / 4);
    }
    const w = status.watch;
    const err = endError('parmap', rt, job, status.status, o, w);
    if (err && err.pmwAsync) promised = err;
    else if (err) throw err;
    else {
      const out = resultArray(rt, recs >>> 3, n);
      if (!o.raise) promised = out.find((v) => v instanceof ParmapError && v.pmwAsync) || null;
      if (!promised) {
        if (!o.ordered && rt.build === 'threaded') return completionOrder(rt, job, out);
        return out;
      }
    }
  } finally {
    if (job) freeJob(rt, job);
    end(rt);
  }
  return rerunAwaiting(rt, src, o, list, promised);
}

/** A call on the workers engine: its own, or the side pool. */
async function onWorkers(rt, pool, src, o, list) {
  begin(rt, 1, true);
  try {
    return await parmapWorkers(pool, rt.pmw, 'parmap', src, o, list, o.threads || pool.size);
  } finally {
    end(rt);
  }
}

/**
 * A plain function returned a promise on the threaded or single engine,
 * where items run synchronously inside C and cannot be awaited. Every chunk
 * stopped at its first promise (runtime.js pmwRunChunk), so the call is run
 * again, whole, on the workers engine, which awaits; the source is
 * remembered, so its later calls go there at once. The items called before
 * (at most one chunk's worth per thread) are called again, and onProgress
 * counts from 0 again: a function declared `async` is recognised up front
 * and never is.
 */
async function rerunAwaiting(rt, src, o, list, promised) {
  learnAsync(src);
  o.viaWorkers = true;
  if (o.signal && o.signal.aborted) throw abortError(o.signal);
  const pool = await poolFor(rt, o);
  if (!pool) throw promised;
  return onWorkers(rt, pool, src, o, list);
}

function noWorkersError() {
  return new TypeError('parmap: async functions and module mode run on workers, and this environment has no Web Workers');
}

/** Free a job, unless its module was terminated (its threads may have died
 * holding malloc's lock: no C may run there any more) or a thread may still
 * use it (a runaway the call stopped waiting for: freed when it ends). */
export function freeJob(rt, job) {
  if (rt.terminated) return;
  if (rt.orphans && rt.orphans.has(job)) return;
  rt.M._pmw_job_free(job);
}

function completionOrder(rt, job, out) {
  const nlog = rt.pmw.job.log_n(job);
  const log = rt.M._pmw_job_log(job) >>> 2;
  const U = rt.pmw.heap().U32;
  const res = [];
  for (let c = 0; c < nlog; c++) {
    const base = U[log + 2 * c], count = U[log + 2 * c + 1];
    for (let i = 0; i < count; i++) res.push(out[base + i]);
  }
  return res.length === out.length ? res : out;
}

/** Threaded: one coordinator runs it all (once it is the map's turn:
 * loader.js mapTurn); we await its end. short: the call is known to be a
 * few microseconds of work (lib/costs.js: the coordinator runs it alone). */
export async function runThreaded(rt, job, o, short = false) {
  await mapTurn(rt, o.signal);
  if (rt.terminated || (o.signal && o.signal.aborted)) {
    endMapTurn(rt);
    throw rt.terminated ? rt.endError : abortError(o.signal);
  }
  const w = watchJob(rt, job, o);
  try {
    // The end comes by the job's `done` word where Atomics.waitAsync exists
    // (not Firefox): no proxying queue or message event on the way, about a
    // fifth of a small call. A call reporting progress keeps the post, which
    // follows its progress posts in one queue (its last report comes first).
    const byWord = HAS_WAIT_ASYNC && !o.onProgress;
    const rc = rt.M._pmw_map_start(job, byWord ? 1 : 0);
    if (rc !== 0) throw statusError(rt.M, rc, 'starting the map');
    // (A spin needs a core for the coordinator meanwhile: not with one thread.)
    if (byWord) awaitDoneWord(rt, job, w.handler, short && rt.active === 1 && rt.crew > 1 ? SPIN_MS : 0);
    await w.done;
    if (w.handler.terminated) return { status: STATUS.ECANCELED, watch: w };
    return { status: rt.pmw.job.status(job), watch: w };
  } finally {
    w.unwatch();
    endMapTurn(rt);
  }
}

const HAS_WAIT_ASYNC = typeof Atomics.waitAsync === 'function';

/** How long the main thread reads a short call's done word before it awaits
 * it. Such a call (the coordinator alone on a cheap function, no other call
 * running) usually ends within ~30 us: reading the word that long spares
 * registering a waitAsync, the coordinator's wake of an async waiter and a
 * turn of the event loop (Node, alternating processes: 0.092 -> 0.056 ms;
 * Chromium, pages, once the coordinator too watches for the next call
 * (src/job.c KEPT_SPIN_MS): 0.108 -> 0.048; alone it changed nothing
 * there, the coordinator's wake-up being the longer wait). The main thread
 * is busy that long at most, once per such call. */
const SPIN_MS = 0.05;

/** Hands the job's end, told by its `done` word, to its handler as the post
 * would; first reads the word for up to spinMs. A wake-up is not the end:
 * the coordinator of the previous job at this address may notify its word
 * after the main thread saw it set (and freed that job), so the word is
 * read again. The wait is dropped if the module is terminated first. */
function awaitDoneWord(rt, job, handler, spinMs) {
  const I32 = rt.pmw.heap().I32, at = (job + rt.pmw.P.jobOffset.done) >>> 2;
  if (spinMs > 0) {
    const until = performance.now() + spinMs;
    while (Atomics.load(I32, at) === 0 && performance.now() < until);
  }
  const wait = () => {
    if (handler.terminated) return;
    if (Atomics.load(I32, at) !== 0) { handler.post(rt.pmw.P.post.DONE); return; }
    const r = Atomics.waitAsync(I32, at, 0);
    if (r.async) r.value.then(wait);
    else wait();
  };
  handler.dropWait = () => Atomics.notify(I32, at);
  wait();
}

/** Single-thread: slices of ~SLICE_MS, progress from here. */
export async function runSlices(rt, job, o, n, onSlice) {
  const { M } = rt;
  // The first slice is small: a slow function must not hold the thread for
  // 64 of its items before the first measurement.
  let start = 0, slice = 4, done = 0, failed = 0, status = 0, last = 0;
  const t0 = performance.now();
  let progressError = null;
  const progress = (force) => {
    if (!o.onProgress || progressError) return;
    const now = performance.now();
    if (!force && now - last < 100) return;
    last = now;
    const elapsed = (now - t0) / 1000, rate = elapsed > 0 ? done / elapsed : 0;
    try {
      o.onProgress({ done, total: n, failed, elapsed, rate, eta: rate > 0 ? (n - done) / rate : null });
    } catch (e) { progressError = e; }
  };
  let lastYield = performance.now();
  while (start < n) {
    if (o.signal && o.signal.aborted) { status = STATUS.ECANCELED; break; }
    if (rt.terminated) { status = STATUS.ECANCELED; break; }   // terminate() between two slices
    if (progressError) break;
    const count = Math.min(slice, n - start);
    const ts = performance.now();
    status = M._pmw_map_slice(job, start, count);
    const dt = performance.now() - ts;
    const ran = rt.pmw.job.done(job);
    done += ran;
    failed += rt.pmw.job.failed(job);
    if (onSlice) onSlice(start, ran);
    start += count;
    if (status !== 0) break;
    // Aim for SLICE_MS per slice.
    slice = Math.max(1, Math.min(1 << 20, Math.round(count * Math.min(4, SLICE_MS / Math.max(dt, 0.05)))));
    progress(false);
    if (performance.now() - lastYield > SLICE_MS) { await yieldToLoop(); lastYield = performance.now(); }
  }
  progress(true);
  // endError: a terminated call rejects with terminate()'s error, as on the other engines.
  const handler = rt.terminated ? { terminated: rt.endError } : null;
  return { status, watch: { progressError: () => progressError, handler } };
}

/* ------------------------------------------------------------ mapKernel */

const KTYPES = [null, Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
  Float32Array, Float64Array];

let kernelList = null;

/** The kernels compiled into the module: [{ name, input, output, params:
 * {name: default}, doc }]. */
export async function listKernels() {
  const rt = await runtime();
  return kernels(rt).map((k) => ({
    name: k.name, input: KTYPES[k.in].name, output: KTYPES[k.out].name,
    params: Object.fromEntries(k.paramNames.map((p, i) => [p, k.defaults[i]])), doc: k.doc,
  }));
}

function kernels(rt) {
  if (!kernelList) {
    kernelList = JSON.parse(rt.M.UTF8ToString(rt.M._pmw_kernels_json())).map((k) => ({
      ...k, paramNames: k.params ? k.params.split(',') : [],
    }));
  }
  return kernelList;
}

/**
 * mapKernel(name, input, opts) -> Promise of a typed array: the C kernel
 * `name` over every element of `input`, on the worker threads, without any
 * JavaScript per item. opts: threads, chunksize, exception, onProgress,
 * signal, out, and the kernel's parameters by name.
 *
 * Copies: an ordinary typed array (or array) is copied into the heap once,
 * and the output out of it once into a new typed array. A heap array
 * (heapArray()) as input is read in place; a heap array as `out` is written
 * in place and the promise resolves to a view of it: no copy at all.
 */
export async function mapKernel(name, input, opts) {
  // Heap arrays are pinned from the call on (before any await), so that a
  // free() right after the call waits for it instead of pulling the memory
  // away underneath.
  const pinned = [];
  try {
    const inHeap = heapOf(input, 'mapKernel', 'input');
    const outOpt = opts !== null && typeof opts === 'object' ? opts.out : undefined;
    const outHeap = outOpt !== undefined && outOpt !== null ? heapOf(outOpt, 'mapKernel', 'option out') : null;
    for (const s of [inHeap, outHeap]) if (s && !pinned.includes(s)) { pin(s); pinned.push(s); }
    return await onFreshModule(() => runKernel(name, input, opts, inHeap, outOpt, outHeap));
  } finally {
    for (const s of pinned) unpin(s);
  }
}

async function runKernel(name, input, opts, inHeap, outOpt, outHeap) {
  if (typeof name !== 'string') throw new TypeError(`mapKernel: name must be a string, got ${typeof name}`);
  const rt = await runtime('call');
  const k = kernels(rt).find((x) => x.name === name);
  if (!k) throw new RangeError(`mapKernel: no kernel named '${name}' (have: ${kernels(rt).map((x) => x.name).join(', ')})`);
  const o = checkOptions('mapKernel', opts, new Set([...k.paramNames, 'out']));
  if (o.timeout)
    throw new RangeError('mapKernel: option timeout is not supported: a kernel is C code run a chunk at a time, with no ' +
      'JavaScript between its items; stop a call with option signal instead');
  for (const opt of ['star', 'kwstar', 'args', 'kwargs', 'total', 'ordered', 'concurrency'])
    if (opts && opts[opt] !== undefined) throw new RangeError(`mapKernel: option ${opt} does not apply to kernels`);
  const InType = KTYPES[k.in], OutType = KTYPES[k.out];
  if (inHeap && inHeap.type !== InType)
    throw new TypeError(`mapKernel: input is a heap array of ${inHeap.type.name}, but ${name} takes ${InType.name} ` +
      '(heap arrays are used in place, never converted)');
  if (!inHeap && !(ArrayBuffer.isView(input) && !(input instanceof DataView)) && !Array.isArray(input))
    throw new TypeError(`mapKernel: input must be a typed array (${InType.name}), an array of numbers or a heap array`);
  const data = inHeap ? null : input instanceof InType ? input : InType.from(input);
  const n = inHeap ? inHeap.length : data.length;
  const params = k.paramNames.map((p, i) => {
    const v = opts ? opts[p] : undefined;
    if (v === undefined) return k.defaults[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new TypeError(`mapKernel: parameter ${p} must be a finite number, got ${typeof v === 'number' ? v : typeof v}`);
    return v;
  });
  if (outOpt !== undefined && outOpt !== null) {
    if (!outHeap) throw new TypeError(`mapKernel: option out must be a heap array (heapArray(${OutType.name}, length)), got ${describe(outOpt)}`);
    if (outHeap.type !== OutType)
      throw new TypeError(`mapKernel: option out must be a heap array of ${OutType.name} for ${name}, got ${outHeap.type.name}`);
  }
  if (o.signal && o.signal.aborted) throw abortError(o.signal);
  const { M } = rt;
  if ((inHeap && inHeap.rt !== rt) || (outHeap && outHeap.rt !== rt))   // terminate() while we awaited
    throw new TypeError('mapKernel: a heap array belongs to a module that is no longer loaded');
  if (rt.pool) {
    begin(rt, 1, true);
    try {
      const kernel = { name, params: Float64Array.from(params), InType, OutType, perItem: kernelPerItem(rt, name, params) };
      if (!kernel.perItem) throw new RangeError(`mapKernel: ${name}: bad parameters (the output length per item must be >= 1)`);
      const src = inHeap ? freshView(inHeap) : data;
      if (outHeap && outHeap.length !== n * kernel.perItem)
        throw new RangeError(`mapKernel: option out must have ${n * kernel.perItem} elements (${n} items x ${kernel.perItem}), got ${outHeap.length}`);
      const res = await kernelWorkers(rt.pool, rt.pmw, o, o.threads || rt.pool.size, kernel, src, outHeap ? () => freshView(outHeap) : null);
      return res;
    } finally {
      end(rt);
    }
  }
  const threads = begin(rt, o.threads || rt.threads, true);
  let job = 0;
  try {
    job = M._pmw_job_new(rt.pmw.P.kind.KERNEL, threads, o.chunksize, o.raise ? 1 : 0, 0, o.onProgress ? 1 : 0) >>> 0;
    if (!job) throw new RangeError('mapKernel: out of WebAssembly memory');
    const pp = M._pmw_job_params(job) >>> 3;
    rt.pmw.heap().F64.set(params, pp);
    const nameBytes = new TextEncoder().encode(name + '\0');
    const namePtr = M._malloc(nameBytes.length) >>> 0;
    if (!namePtr) throw new RangeError('mapKernel: out of WebAssembly memory');
    rt.pmw.heap().U8.set(nameBytes, namePtr);
    const perItem = M._pmw_job_kernel(job, namePtr);
    M._free(namePtr);
    if (!perItem) throw new RangeError(`mapKernel: ${name}: bad parameters (the output length per item must be >= 1)`);
    if (outHeap) {
      if (outHeap.length !== n * perItem)
        throw new RangeError(`mapKernel: option out must have ${n * perItem} elements (${n} items x ${perItem}), got ${outHeap.length}`);
      // Different records over the same bytes would race between threads.
      if (inHeap && overlap(inHeap, outHeap) && !(inHeap === outHeap && perItem === 1))
        throw new RangeError('mapKernel: option out overlaps input (only the same array with one output element per item may be both)');
    }
    const kin = M._pmw_job_kernel_arrays(job, n, inHeap ? inHeap.ptr : 0, outHeap ? outHeap.ptr : 0) >>> 0;
    if (!kin) throw new RangeError(`mapKernel: out of WebAssembly memory for ${n} items`);
    if (!inHeap) rt.pmw.heap(kin + data.byteLength).U8.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), kin);
    const status = rt.build === 'threaded' ? await runThreaded(rt, job, o) : await runSlices(rt, job, o, n);
    const err = kernelError(rt, job, status, o, name);
    if (err) throw err;
    const kout = M._pmw_job_kernel_out(job) >>> 0;
    const out = outHeap ? freshView(outHeap)
      : new OutType(rt.pmw.heap().U8.slice(kout, kout + n * perItem * OutType.BYTES_PER_ELEMENT).buffer);
    if (!o.raise) {
      const codes = M._pmw_job_codes(job) >>> 2;
      const I = rt.pmw.heap().I32;
      const failures = [];
      for (let i = 0; i < n; i++) {
        if (!I[codes + i]) continue;
        failures.push({ index: i, code: I[codes + i] });
        out.fill(0, i * perItem, (i + 1) * perItem);   // whatever the kernel wrote before failing
      }
      if (failures.length) Object.defineProperty(out, 'failures', { value: failures });
    }
    return out;
  } finally {
    if (job) freeJob(rt, job);
    end(rt);
  }
}

/** Output elements per item of a kernel with these parameters (asked of
 * the C registry; 0: bad parameters). */
function kernelPerItem(rt, name, params) {
  const { M } = rt;
  const job = M._pmw_job_new(rt.pmw.P.kind.KERNEL, 1, 0, 1, 0, 0) >>> 0;
  if (!job) throw new RangeError('mapKernel: out of WebAssembly memory');
  try {
    rt.pmw.heap().F64.set(params, M._pmw_job_params(job) >>> 3);
    const nameBytes = new TextEncoder().encode(name + '\0');
    const namePtr = M._malloc(nameBytes.length) >>> 0;
    rt.pmw.heap().U8.set(nameBytes, namePtr);
    const perItem = M._pmw_job_kernel(job, namePtr);
    M._free(namePtr);
    return perItem;
  } finally {
    M._pmw_job_free(job);
  }
}

function overlap(a, b) {
  const aEnd = a.ptr + a.length * a.type.BYTES_PER_ELEMENT, bEnd = b.ptr + b.length * b.type.BYTES_PER_ELEMENT;
  return a.ptr < bEnd && b.ptr < aEnd;
}

function describe(v) {
  if (v === null) return 'null';
  if (typeof v !== 'object') return typeof v;
  const c = v.constructor && v.constructor.name;
  return c ? `${/^[AEIOU]/.test(c) ? 'an' : 'a'} ${c}` : 'an object';
}

function kernelError(rt, job, status, o, name) {
  const { M } = rt;
  if (status.watch && status.watch.progressError()) return status.watch.progressError();
  if (status.status === STATUS.OK) return null;
  if (status.status === STATUS.ECANCELED || (o.signal && o.signal.aborted)) return abortError(o.signal);
  if (status.status === STATUS.EITEM) {
    const get = rt.pmw.job;
    let index = get.err_index(job);
    let code = get.err_code(job);
    if (index < 0) { index = get.first_error_index(job); code = get.first_error_code(job); }
    return new ParmapError(`mapKernel: ${name} failed on item ${index} (code ${code})`, { index, itemCode: code });
  }
  return statusError(M, status.status, 'mapKernel');
}
