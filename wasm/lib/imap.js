// imap.js - imap(): a parallel map over an iterable or async iterable,
// consumed as an async iterator. Semi-lazy with a bounded window: the items
// are pulled ahead of the consumer, but never more than a fixed number, so an
// endless stream runs in flat memory.
//
// Threaded build: pm_imap runs in C on a coordinator pthread (src/stream.c).
// This side pumps the source into the in ring and drains the out ring; each
// side only sends a message when the other waits (see stream.c).
// Single-thread build: windows of items are pulled and mapped in slices on
// this thread (lib/map.js runSlices), results handed out as slices finish.

import { checkOptions } from './options.js';
import { functionSource, checkFn } from './source.js';
import { runtime, begin, end, yieldToLoop, poolFor, retire } from './loader.js';
import { abortError, STATUS, ParmapError } from './errors.js';
import { newJsJob, writeItems, readResults, watchJob, endError, itemEncodeError, runSlices, freeJob } from './map.js';
import { startImapWorkers, fillWorkers } from './wmap.js';

const IN_CAP = 8192;     // records in the in ring (power of two)
const OUT_CAP = 8192;    // records in the out ring
const WINDOW = 16384;    // single-thread build: items per window
const PULL_MS = 8;       // pumping a sync iterator: yield this often
const GRACE_MS = 60;     // threaded: an abort or break waits this long for the threads to stop

function sourceIterator(api, items) {
  if (items !== null && items !== undefined) {
    if (typeof items[Symbol.asyncIterator] === 'function') return { it: items[Symbol.asyncIterator](), async: true };
    if (typeof items[Symbol.iterator] === 'function') return { it: items[Symbol.iterator](), async: false };
  }
  throw new TypeError(`${api}: items must be an iterable or an async iterable, got ${items === null ? 'null' : typeof items}`);
}

/**
 * imap(fn, items, opts) -> an async iterator of the results. Arguments are
 * checked now (TypeError / RangeError thrown at once); the map starts at the
 * first next().
 */
export function imap(fn, items, opts) {
  const o = checkOptions('imap', opts);
  checkFn('imap', fn);
  const source = sourceIterator('imap', items);
  return new ImapIterator(fn, source, o);
}

class ImapIterator {
  constructor(fn, source, o) {
    this.fn = fn;
    this.source = source;
    this.o = o;
    this.started = null;     // promise of the start
    this.queue = [];         // decoded results not yet handed out
    this.qpos = 0;
    this.finished = false;   // no more results: return done (or throw `error` once)
    this.error = null;
    this.closed = false;     // return() / abort: stop pulling the source
    this.sourceDone = false;
    this.handed = 0;         // results handed to the consumer (workers engine: back-pressure)
    this.wakePump = null;
  }

  [Symbol.asyncIterator]() { return this; }

  next() {
    // The common case, a result already decoded, without an async function's
    // extra turns.
    if (this.qpos < this.queue.length) {
      const value = this.queue[this.qpos++];
      if (this.qpos === this.queue.length) { this.queue = []; this.qpos = 0; }
      this.handed++;
      if (this.wakePump !== null) { const w = this.wakePump; this.wakePump = null; w(); }
      return Promise.resolve({ value, done: false });
    }
    return this.nextSlow();
  }

  async nextSlow() {
    if (!this.started) this.started = this.start();
    await this.started;
    for (;;) {
      if (this.qpos < this.queue.length) {
        const value = this.queue[this.qpos++];
        if (this.qpos === this.queue.length) { this.queue = []; this.qpos = 0; }
        this.handed++;
        return { value, done: false };
      }
      if (this.finished) {
        if (this.error) { const e = this.error; this.error = null; throw e; }
        return { value: undefined, done: true };
      }
      await this.fill();
    }
  }

  async return(value) {
    this.closed = true;
    if (this.started) {
      await this.started.catch(() => {});
      await this.shutdown();
    }
    this.finished = true;
    this.queue = [];
    this.error = null;
    await this.closeSource();
    return { value, done: true };
  }

  async throw(e) {
    await this.return();
    throw e;
  }

  async closeSource() {
    if (this.sourceDone) return;
    this.sourceDone = true;
    const it = this.source.it;
    if (typeof it.return === 'function') {
      try { await it.return(); } catch { /* closing anyway */ }
    }
  }

  async start() {
    this.rt = await runtime();
    this.src = functionSource('imap', this.fn, this.rt.pmw.compile, this.o);   // sets o.viaWorkers: async fn, module mode
    if (this.o.signal && this.o.signal.aborted) throw abortError(this.o.signal);
    if (this.o.signal) {
      this.onAbort = () => {
        this.closed = true;
        if (this.cancel) this.cancel();
        this.retireIfStuck('an aborted imap whose function did not return');
      };
      this.o.signal.addEventListener('abort', this.onAbort, { once: true });
    }
    const pool = await poolFor(this.rt, this.o);
    if (pool) {
      // The workers engine (or a call with a timeout): lib/wmap.js.
      begin(this.rt, 1);
      this.began = true;
      this.workers = true;
      startImapWorkers(this, pool, this.rt.pmw, this.src, this.o, this.o.threads || pool.size);
      return;
    }
    this.threads = begin(this.rt, this.o.threads || this.rt.threads);
    this.began = true;
    try {
      if (this.rt.build === 'threaded') this.startThreaded();
      else this.single = { index: 0 };
    } catch (e) {
      this.cleanup();
      throw e;
    }
  }

  cleanup() {
    if (this.job) { freeJob(this.rt, this.job); this.job = 0; }
    if (this.watch) { this.watch.unwatch(); this.watch = null; }
    if (this.onAbort) { this.o.signal.removeEventListener('abort', this.onAbort); this.onAbort = null; }
    if (this.began) { this.began = false; end(this.rt); }
  }

  /* ------------------------------------------------ threaded build */

  /** Threaded: the threads stop between chunks; a function that never
   * returns keeps one forever, and a pthread cannot be killed alone: after a
   * grace period the module is retired (loader.js retire), which settles
   * this iterator with the others. */
  retireIfStuck(why) {
    const w = this.watch, rt = this.rt;
    if (!w || this.workers) return;
    setTimeout(() => {
      if (!w.handler.ended && !w.handler.terminated && !rt.terminated) retire(rt, why);
    }, GRACE_MS);
  }

  startThreaded() {
    const { rt, o } = this;
    const { M } = rt;
    this.job = newJsJob('imap', rt, this.src, o, this.threads);
    if (M._pmw_stream_init(this.job, IN_CAP, OUT_CAP, o.total || 0) !== 0) throw new RangeError('imap: out of WebAssembly memory');
    const a = (which, field) => M._pmw_ring_addr(this.job, which, field) >>> 0;
    this.ring = {
      inVal: a(0, 0) >>> 3, inHead: a(0, 3) >>> 2, inTail: a(0, 4) >>> 2, inWaiting: a(0, 5) >>> 2,
      outVal: a(1, 0) >>> 3, outIdx: a(1, 1) >>> 3, outCode: a(1, 2) >>> 2, outHead: a(1, 3) >>> 2,
      outTail: a(1, 4) >>> 2, outWaiting: a(1, 5) >>> 2, done: a(1, 7) >>> 2,
    };
    this.inTail = 0;
    this.wakeIn = null;
    this.wakeOut = null;
    this.doneSeen = false;
    this.watch = watchJob(rt, this.job, { onProgress: o.onProgress, signal: undefined });
    this.watch.handler.onPost = (what) => {
      if ((what === 2 || what === 1) && this.wakeIn) { const w = this.wakeIn; this.wakeIn = null; w(); }
      if ((what === 3 || what === 1) && this.wakeOut) { const w = this.wakeOut; this.wakeOut = null; w(); }
    };
    this.cancel = () => { if (this.job) M._pmw_cancel(this.job); };
    this.watch.handler.cancel = this.cancel;
    this.writer = new rt.pmw.BlockWriter();
    this.releaser = new rt.pmw.Releaser();
    const rc = M._pmw_stream_start(this.job);
    if (rc !== 0) throw new Error(`imap: could not start (${rc})`);
    this.pump = this.pumpSource().catch((e) => { this.sourceError = e; });
  }

  /** Pull the source into the in ring, as far as there is room. */
  async pumpSource() {
    const { rt, ring, source } = this;
    const { M } = rt;
    const H = rt.pmw.heap();
    const cap = IN_CAP, mask = cap - 1;
    let index = 0;
    let status = 0;
    try {
      for (;;) {
        if (this.closed) { status = STATUS.ECANCELED; break; }
        const head = Atomics.load(H.U32, ring.inHead);
        let free = cap - ((this.inTail - head) >>> 0);
        if (free === 0) {
          const p = new Promise((r) => { this.wakeIn = r; });
          Atomics.store(H.I32, ring.inWaiting, 1);
          if (Atomics.load(H.U32, ring.inHead) !== head || Atomics.load(H.I32, ring.done)) { this.wakeIn = null; continue; }
          await p;
          continue;
        }
        // A batch: as many items as there is room for (async sources publish
        // every 64 so workers start early; sync ones every ~PULL_MS).
        const batch = [];
        let ended = false;
        const t0 = performance.now();
        while (batch.length < free) {
          const r = source.async ? await source.it.next() : source.it.next();
          if (r.done) { ended = true; break; }
          batch.push(r.value);
          if (this.closed) break;
          if (source.async ? batch.length >= 64 : (batch.length & 255) === 0 && performance.now() - t0 > PULL_MS) break;
        }
        if (batch.length) {
          // The ring wraps: write in up to two runs.
          const start = this.inTail & mask;
          const first = Math.min(batch.length, cap - start);
          try {
            writeItems('imap', rt, this.job, first === batch.length ? batch : batch.slice(0, first), ring.inVal + start, this.writer, index);
            if (first < batch.length) writeItems('imap', rt, this.job, batch.slice(first), ring.inVal, this.writer, index + first);
          } catch (e) {
            throw itemEncodeError('imap', rt.pmw, e, index);
          }
          index += batch.length;
          this.inTail = (this.inTail + batch.length) >>> 0;
          Atomics.store(H.U32, ring.inTail, this.inTail);
          Atomics.notify(H.I32, ring.inTail);
        }
        if (ended) { this.sourceDone = true; break; }
        if (!source.async) await yieldToLoop();
      }
    } catch (e) {
      this.sourceError = e;
      status = STATUS.ESOURCE;
    }
    if (this.job && !rt.terminated) M._pmw_stream_eof(this.job, status);
  }

  /** Wait for results (or the end) and decode what arrived into the queue. */
  async fill() {
    if (this.single) return this.fillSingle();
    if (this.workers) return fillWorkers(this);
    const { rt, ring } = this;
    const H = rt.pmw.heap();
    for (;;) {
      if (this.watch.handler.terminated) {
        // terminate(): the module is gone; the loop throws, never ends quietly.
        this.closed = true;
        this.finished = true;
        this.error = this.o.signal && this.o.signal.aborted ? abortError(this.o.signal) : this.watch.handler.terminated;
        this.cleanup();
        if (!this.sourceDone) await this.closeSource();
        return;
      }
      const head = Atomics.load(H.U32, ring.outHead);
      const tail = Atomics.load(H.U32, ring.outTail);
      if (tail !== head) {
        this.drain(head, tail);
        return;
      }
      if (Atomics.load(H.I32, ring.done)) {
        if (Atomics.load(H.U32, ring.outTail) !== head) continue;
        await this.finishThreaded();
        return;
      }
      const p = new Promise((r) => { this.wakeOut = r; });
      Atomics.store(H.I32, ring.outWaiting, 1);
      if (Atomics.load(H.U32, ring.outTail) !== tail || Atomics.load(H.I32, ring.done)) { this.wakeOut = null; continue; }
      await p;
    }
  }

  drain(head, tail) {
    const { rt, ring } = this;
    const H = rt.pmw.heap();
    const mask = OUT_CAP - 1;
    const out = this.queue;
    let h = head;
    while (h !== tail) {
      const k = h & mask;
      const run = Math.min(((tail - h) >>> 0), OUT_CAP - k);
      const at = out.length;
      readResults(rt, ring.outVal + k, run, out, at, this.releaser);
      // Failed items: the index is the stream's (the out ring's index records).
      for (let i = 0; i < run; i++) {
        const v = out[at + i];
        if (v instanceof ParmapError) v.index = H.F64[ring.outIdx + k + i];
      }
      h = (h + run) >>> 0;
    }
    this.releaser.flush();
    Atomics.store(H.U32, ring.outHead, h);
    Atomics.notify(H.I32, ring.outHead);
  }

  async finishThreaded() {
    const { rt } = this;
    await this.watch.done;          // the coordinator has let go of the job
    this.closed = true;
    await this.pump;
    const status = rt.M._pmw_job_get(this.job, 0);
    let err = null;
    if (status === STATUS.ESOURCE && this.sourceError) err = this.sourceError;
    else if (status === STATUS.ECANCELED && !(this.o.signal && this.o.signal.aborted) && !this.sourceError) err = null;
    else if (this.sourceError && status !== STATUS.OK && status !== STATUS.EITEM) err = this.sourceError;
    else err = endError('imap', rt, this.job, status, this.o, this.watch);
    this.finished = true;
    this.error = err;
    this.cleanup();
    if (!this.sourceDone) await this.closeSource();
  }

  async shutdown() {
    if (this.workers) {
      if (this.call && !this.call.ended) this.call.finish(null);
      this.finished = true;
      this.cleanup();
      return;
    }
    if (this.finished || !this.job) { this.cleanup(); return; }
    if (this.single) { this.cleanup(); return; }
    if (this.rt.terminated) { this.finished = true; this.cleanup(); return; }
    this.rt.M._pmw_cancel(this.job);
    if (this.wakeIn) { const w = this.wakeIn; this.wakeIn = null; w(); }
    this.retireIfStuck('an imap loop left early while its function did not return');
    await this.watch.done;
    await this.pump;
    this.finished = true;
    this.cleanup();
  }

  /* ------------------------------------------- single-thread build */

  async fillSingle() {
    const { rt, o, source } = this;
    if (this.closed && !(o.signal && o.signal.aborted)) { this.finished = true; this.cleanup(); return; }
    if (o.signal && o.signal.aborted) { this.finish(abortError(o.signal)); return; }
    // Pull a window.
    const batch = [];
    let ended = false;
    try {
      while (batch.length < WINDOW) {
        const r = source.async ? await source.it.next() : source.it.next();
        if (r.done) { ended = true; break; }
        batch.push(r.value);
      }
    } catch (e) {
      this.finish(e);
      return;
    }
    if (ended) this.sourceDone = true;
    if (batch.length) {
      const base = this.single.index;
      const job = newJsJob('imap', rt, this.src, o, 1);
      try {
        const recs = rt.M._pmw_job_records(job, batch.length) >>> 0;
        if (!recs) throw new RangeError('imap: out of WebAssembly memory');
        writeItems('imap', rt, job, batch, recs >>> 3, new rt.pmw.BlockWriter(), base);
        // Indexes of errors count from the stream's start.
        const sliceOpts = { ...o, onProgress: o.onProgress ? (p) => o.onProgress({
          ...p, done: base + p.done, total: o.total || null, eta: null,
        }) : undefined };
        const res = await runSlices(rt, job, sliceOpts, batch.length);
        const err = endError('imap', rt, job, res.status, o, res.watch);
        const ran = res.status === 0 ? batch.length : Math.max(0, rt.M._pmw_job_get(job, 3));
        const out = new Array(ran);
        readResults(rt, recs >>> 3, ran, out, 0, null);
        for (const v of out) if (v && v.name === 'ParmapError') v.index += base;
        if (err && typeof err.index === 'number') err.index += base;
        this.queue.push(...out);
        this.single.index += batch.length;
        if (err) { this.finish(err); return; }
      } catch (e) {
        this.finish(e);
        return;
      } finally {
        rt.M._pmw_job_free(job);
      }
    }
    if (ended) { this.finished = true; this.cleanup(); }
  }

  finish(err) {
    this.finished = true;
    this.error = err;
    this.cleanup();
    this.closeSource();
  }
}
