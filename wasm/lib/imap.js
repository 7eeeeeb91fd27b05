// imap.js - imap(): a parallel map over an iterable or async iterable,
// consumed as an async iterator. Semi-lazy with a bounded window: a pump
// (feed.js) pulls the items ahead of the consumer, in batches that follow the
// source's rate, but never too far ahead, so an endless stream runs in flat
// memory and a slow one is handed on item by item.
//
// Engines (one object each, same small interface, see ImapIterator.start):
//  - threaded: pm_imap runs in C on a coordinator pthread (src/stream.c);
//    batches go into the in ring, results come from the out ring; each side
//    only sends a message when the other waits (see stream.c);
//  - single: batches are mapped in slices on this thread (map.js runSlices);
//  - workers (and calls with a timeout): a call on the pool, lib/wmap.js.
//
// Lifecycle: one state, changed only by to(), which does everything a
// transition implies (stop the pump, stop the engine, close the source,
// release the event loop, wake the consumer), so every way of ending takes
// the same path:
//
//   idle ──next()──> running ──the source ended──> draining
//    │                 │                               │
//    │                 ├──── the engine finished ──────┴──> done
//    │                 ├──── source error, fn error (raise), timeout (raise),
//    │                 │     abort, terminate(), a bad item ──> failed ──> done
//    └──return()/throw()──┴── return() / throw() ─────────────> closed
//
// done, failed and closed are final (the first end wins: a late end from the
// engine after return() changes nothing). `failed` hands out the results
// that came before the error, throws the error once, then reads as done.
// `closed` drops what was not handed out.

import { checkOptions } from './options.js';
import { functionSource, checkAhead, checkFn } from './source.js';
import { runtime, begin, end, poolFor, retire } from './loader.js';
import { abortError, STATUS, ParmapError } from './errors.js';
import { newJsJob, writeItems, readResults, watchJob, endError, itemEncodeError, runSlices, freeJob } from './map.js';
import { WorkersImap } from './wmap.js';
import { Feed } from './feed.js';

const IN_CAP = 8192;     // records in the in ring (power of two)
const OUT_CAP = 8192;    // records in the out ring
const WINDOW = 16384;    // single and workers engines: items pulled ahead, at most
const GRACE_MS = 60;     // threaded: an abort or break waits this long for the threads to stop

// Allowed transitions (to() refuses anything else).
const NEXT = {
  idle: ['running', 'closed'],
  running: ['draining', 'done', 'failed', 'closed'],
  draining: ['done', 'failed', 'closed'],
  failed: ['done'],
  done: [],
  closed: [],
};

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
  const it = new ImapIterator(fn, source, o);
  const handle = new Imap(it);
  if (dropped) dropped.register(handle, it);
  return handle;
}

/**
 * What imap() hands out. Nothing of the stream points back to it, so an
 * iterator its caller drops without return() (read once, then forgotten; a
 * client that went away) is collected, and the stream is closed then as by
 * return(): its source is closed, its job freed and, threaded, its two
 * pthreads let go. Until then it only holds memory: it never keeps a
 * process alive. A consumer awaiting next() keeps it (its promise leads
 * back to the caller's frame).
 */
class Imap {
  constructor(it) { this.it = it; }
  [Symbol.asyncIterator]() { return this; }
  next() { return this.it.next(); }
  return(value) { return this.it.return(value); }
  throw(e) { return this.it.throw(e); }
}

const dropped = typeof FinalizationRegistry === 'function'
  ? new FinalizationRegistry((it) => { it.return().catch(() => {}); })
  : null;

class ImapIterator {
  constructor(fn, source, o) {
    this.fn = fn;
    this.source = source;
    this.o = o;
    this.state = 'idle';
    this.error = null;       // failed: thrown once after the queue
    this.queue = [];         // results not yet handed out
    this.qpos = 0;
    this.handed = 0;         // results handed to the consumer (read-ahead)
    this.started = null;     // promise of start()
    this.halted = null;      // promise: the engine stopped (final states)
    this.stopped = null;     // promise: that, and the source closed
    this.engine = null;
    this.feed = null;
    this.waiters = [];       // the consumer waiting for results or the end
    this.inNext = 0;         // next() calls not settled yet (keep-alive)
    this.slowNexts = 0;      // next() calls in nextSlow or queued for it
    this.lastNext = Promise.resolve();   // the last of them (next)
    this.filling = null;     // the engine's fill() under way (fill)
    this.woken = false;
    this.onAbort = null;
  }

  [Symbol.asyncIterator]() { return this; }

  next() {
    // The common case, a result already there, without an async function's
    // extra turns (unless earlier next() calls still wait: they come first).
    if (this.slowNexts === 0 && this.qpos < this.queue.length) return Promise.resolve({ value: this.take(), done: false });
    // next() called again before the last settled (Promise.all over next())
    // waits for it, as an async generator queues its requests: each gets the
    // next result in order (three at once came back 0, 4, 2 about once in
    // 300 on the threaded engine).
    this.slowNexts++;
    const p = this.lastNext.then(() => this.nextSlow());
    this.lastNext = p.then(() => { this.slowNexts--; }, () => { this.slowNexts--; });
    return p;
  }

  take() {
    const value = this.queue[this.qpos++];
    if (this.qpos === this.queue.length) { this.queue = []; this.qpos = 0; }
    this.handed++;
    if (this.feed && this.feed.waiter) this.feed.wake();   // it may be waiting for read-ahead room
    return value;
  }

  async nextSlow() {
    if (this.state === 'idle') {
      this.to('running');
      this.started = this.start().catch((e) => { this.to('failed', e); });
    }
    // Only a consumer waiting here keeps the process alive (an iterator
    // dropped between two next() calls must not). Counted: next() may be
    // called again before the first settles.
    this.inNext++;
    if (this.engine) this.engine.keepAlive(true);
    try {
      await this.started;
      for (;;) {
        if (this.qpos < this.queue.length) return { value: this.take(), done: false };
        if (this.state === 'failed') {
          // The engine lets go first (threaded: a runaway function may need
          // the module retired), so the caller's next call starts clean.
          await this.halted;
          if (this.state !== 'failed') continue;
          const e = this.error;
          this.to('done');
          throw e;
        }
        if (this.state === 'done' || this.state === 'closed') return { value: undefined, done: true };
        await this.fill();
      }
    } finally {
      if (--this.inNext === 0 && this.engine) this.engine.keepAlive(false);
    }
  }

  /** The engine's fill(), one at a time: next() may be called again before
   * the last settles (Promise.all over next()), and two fills at once could
   * end the stream while the other's results were still on their way (the
   * single engine lost them). Every waiting next() looks again after it. */
  fill() {
    if (!this.filling) this.filling = this.engine.fill().finally(() => { this.filling = null; });
    return this.filling;
  }

  async return(value) {
    // After return() the iterator is finished, whatever its state: results
    // still queued (the stream had ended: 'done') and an error not thrown
    // yet ('failed') are dropped, as they would be on a closed stream.
    if (!this.to('closed')) {
      if (this.state === 'failed') this.to('done');
      this.queue = [];
      this.qpos = 0;
    }
    if (this.started) await this.started;
    if (this.stopped) await this.stopped;
    return { value, done: true };
  }

  async throw(e) {
    await this.return();
    throw e;
  }

  /** Wait for results or a change of state (engines' fill()). A wake with
   * no one waiting is kept for the next wait: the waiter re-checks anyway. */
  wait() {
    if (this.woken) { this.woken = false; return Promise.resolve(); }
    // The pump may be holding back (read-ahead): a waiting consumer lifts that.
    if (this.feed && this.feed.waiter) this.feed.wake();
    return new Promise((r) => { this.waiters.push(r); });
  }

  wake() {
    if (!this.waiters.length) { this.woken = true; return; }
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }

  /** The engine ended the stream (err null: every result is in the queue).
   * Only a running stream ends so: after a final state the engine's own
   * end (e.g. a call finished by stop()) is an echo. */
  engineEnded(err) {
    if (this.state === 'running' || this.state === 'draining') this.to(err ? 'failed' : 'done', err);
  }

  /**
   * The one place where the state changes. Returns false (and does nothing)
   * for a transition NEXT does not allow, e.g. any end after the first.
   */
  to(next, err = null) {
    if (!NEXT[this.state].includes(next)) return false;
    const from = this.state;
    this.state = next;
    if (next === 'running' || next === 'draining') return true;
    if (from === 'failed') { this.error = null; return true; }   // the error was thrown
    // A final state: everything stops here.
    this.error = next === 'failed' ? err : null;
    if (next === 'closed') { this.queue = []; this.qpos = 0; }
    if (this.feed) this.feed.stop();
    if (this.onAbort) { this.o.signal.removeEventListener('abort', this.onAbort); this.onAbort = null; }
    if (this.rt) this.rt.jobs.delete(this);
    const engine = this.engine;
    // The start may still be under way (return() right after the first
    // next()): then the engine is stopped once it exists (start() checks).
    this.halted = engine ? engine.stop(next, this.o.signal && this.o.signal.aborted) : Promise.resolve();
    this.stopped = this.halted.then(() => this.closeSource());
    this.wake();
    return true;
  }

  /** Close the source unless it ended by itself. */
  async closeSource() {
    if (this.feed && this.feed.ended) return;
    const it = this.source.it;
    if (typeof it.return !== 'function') return;
    // The pump may be inside it.next(): an async generator queues return()
    // behind it.
    try { await it.return(); } catch { /* closing anyway */ }
  }

  async start() {
    const { signal } = this.o;
    if (signal) {
      // Listening from the start: an abort while the module still loads
      // (the first call after terminate(), say) rejects at once too.
      this.onAbort = () => this.to('failed', abortError(signal));
      signal.addEventListener('abort', this.onAbort, { once: true });
      if (signal.aborted) { this.onAbort(); return; }
    }
    const loading = runtime('stream');
    const parsing = checkAhead(this.fn);
    const rt = await loading;
    if (parsing) await parsing;
    const src = functionSource('imap', this.fn, rt.pmw.compile, this.o);   // sets o.viaWorkers: async fn, module mode
    const { o } = this;
    if (this.state !== 'running') return;   // return() or abort while loading
    let pool = await poolFor(rt, o);
    if (this.state !== 'running') return;
    if (!pool && rt.build === 'threaded' && rt.threadedStreams >= maxThreadedStreams(rt)) {
      pool = await poolFor(rt, o, true);
      if (this.state !== 'running') return;
    }
    let minAhead = 0, maxAhead = WINDOW, batchMs = 1;
    if (pool) {
      // The workers engine (or a call with a timeout on another one).
      const threads = o.threads || pool.size;
      this.engine = new WorkersImap(this, pool, rt.pmw, src, o, threads);
      minAhead = 8 * threads;
    } else if (rt.build === 'threaded') {
      const threads = o.threads || rt.threads;
      this.engine = new ThreadedImap(this, rt, src, o, threads);
      minAhead = 8 * threads;
      // Above what the in ring, the C window (64 Ki records) and the out
      // ring hold: a fast source is bounded by those, as before.
      maxAhead = 1 << 17;
    } else {
      this.engine = new SingleImap(this, rt, src, o);
      minAhead = 64;
      // Each batch is a job of its own here (~0.1 ms to set up and slice):
      // longer batches keep that small beside the source's time.
      batchMs = 8;
    }
    this.engine.start();
    this.engine.keepAlive(true);   // the consumer is waiting (nextSlow)
    // terminate() settles the stream whatever the engine is doing.
    this.terminated = (e) => this.engineEnded(e);
    rt.jobs.set(this, { terminate: this.terminated });
    this.rt = rt;
    if (this.state !== 'running') return;   // aborted while the engine started: stop() has it
    this.feed = new Feed(this.source, {
      room: () => this.engine.room(),
      flush: (items, base) => this.engine.flush(items, base),
      end: (e) => {
        if (!e) this.to('draining');
        this.engine.end(e);
      },
    }, { taken: () => this.handed, hungry: () => this.waiters.length > 0, minAhead, maxAhead, batchMs });
    this.feed.start();
  }
}

/* -------------------------------------------------------- threaded engine */

/**
 * How many imaps run on the threaded engine's pthreads at once. Each holds
 * two pthreads (its coordinator and its feeder: a worker each, kept by the
 * module afterwards) for as long as it runs: 50 at once started ~95
 * workers (900 MB), and once crashed a thread as it started ("memory access
 * out of bounds" in Emscripten's thread set-up). Further ones run on the
 * side pool of the workers engine, as calls with a timeout do: the same
 * results, no waiting (a queue could deadlock chained stages).
 */
function maxThreadedStreams(rt) {
  return Math.max(4, rt.crew);
}

class ThreadedImap {
  constructor(it, rt, src, o, threads) {
    this.it = it;
    this.rt = rt;
    this.src = src;
    this.o = o;
    this.threads = threads;
    this.job = 0;
    this.watch = null;
    this.alive = false;      // holding begin() (keeps the pthreads ref'ed)
    this.counted = false;    // counted in rt.threadedStreams
    this.over = false;       // stop() ran
    this.sourceError = null;
    this.inTail = 0;
  }

  start() {
    const { rt, o } = this;
    const { M } = rt;
    // begin() caps the threads to the crew and keeps Node alive while the
    // consumer waits; released between waits (keepAlive).
    this.threads = begin(rt, this.threads);
    this.alive = true;
    rt.threadedStreams++;
    this.counted = true;
    try {
      this.job = newJsJob('imap', rt, this.src, o, this.threads);
      if (M._pmw_stream_init(this.job, IN_CAP, OUT_CAP, o.total || 0) !== 0) throw new RangeError('imap: out of WebAssembly memory');
      const a = (which, field) => rt.pmw.ringAddr(this.job, which, field);
      // Heap indexes: records (double) >>> 3, counters and flags (32-bit) >>> 2.
      this.ring = {
        inVal: a('in', 'val') >>> 3, inHead: a('in', 'head') >>> 2, inTail: a('in', 'tail') >>> 2,
        inWaiting: a('in', 'waiting') >>> 2,
        outVal: a('out', 'val') >>> 3, outIdx: a('out', 'idx') >>> 3, outCode: a('out', 'code') >>> 2,
        outHead: a('out', 'head') >>> 2, outTail: a('out', 'tail') >>> 2, outWaiting: a('out', 'waiting') >>> 2,
        done: (this.job + rt.pmw.P.jobOffset.done) >>> 2,
      };
      this.watch = watchJob(rt, this.job, { onProgress: o.onProgress, signal: undefined });
      const { DONE, IN, OUT } = rt.pmw.P.post;
      this.watch.handler.onPost = (what) => {
        if (what === IN || what === DONE) this.it.feed && this.it.feed.wake();    // room in the in ring
        if (what === OUT || what === DONE) this.it.wake();                        // results in the out ring
      };
      this.writer = new rt.pmw.BlockWriter();
      this.releaser = new rt.pmw.Releaser();
      const rc = M._pmw_stream_start(this.job);
      if (rc !== 0) throw new Error(`imap: could not start (${rc})`);
    } catch (e) {
      this.release();
      throw e;
    }
  }

  keepAlive(on) {
    if (on === this.alive || (on && (this.over || this.rt.terminated))) return;
    this.alive = on;
    if (on) begin(this.rt, 1); else end(this.rt);
  }

  /** Free records in the in ring; 0 raises the ring's waiting flag (a post then wakes the feed). */
  room() {
    const { ring } = this;
    const H = this.rt.pmw.heap();
    if (this.rt.terminated || Atomics.load(H.I32, ring.done)) return 0;   // the end is on its way
    const head = Atomics.load(H.U32, ring.inHead);
    const free = IN_CAP - ((this.inTail - head) >>> 0);
    if (free > 0) return free;
    Atomics.store(H.I32, ring.inWaiting, 1);
    // Re-check: the coordinator may have taken records before it saw the flag.
    return IN_CAP - ((this.inTail - Atomics.load(H.U32, ring.inHead)) >>> 0);
  }

  flush(batch, base) {
    const { rt, ring } = this;
    const H = rt.pmw.heap();
    const mask = IN_CAP - 1;
    // The ring wraps: write in up to two runs.
    const start = this.inTail & mask;
    const first = Math.min(batch.length, IN_CAP - start);
    try {
      writeItems('imap', rt, this.job, first === batch.length ? batch : batch.slice(0, first), ring.inVal + start, this.writer, base);
      if (first < batch.length) writeItems('imap', rt, this.job, batch.slice(first), ring.inVal, this.writer, base + first);
    } catch (e) {
      throw itemEncodeError('imap', rt.pmw, e, base);
    }
    this.inTail = (this.inTail + batch.length) >>> 0;
    Atomics.store(H.U32, ring.inTail, this.inTail);
    Atomics.notify(H.I32, ring.inTail);
  }

  /** The source ended (err null) or failed: the coordinator drains the ring, then ends. */
  end(err) {
    this.sourceError = err;
    if (this.job && !this.rt.terminated) this.rt.M._pmw_stream_eof(this.job, err ? STATUS.ESOURCE : 0);
  }

  /** Wait for results or the end; decode what arrived into the queue. */
  async fill() {
    const { rt, ring, it } = this;
    for (;;) {
      if (this.watch.handler.terminated) {
        // terminate() or a retired module: the loop throws, never ends quietly.
        it.engineEnded(this.watch.handler.terminated);
        return;
      }
      const H = rt.pmw.heap();
      const head = Atomics.load(H.U32, ring.outHead);
      const tail = Atomics.load(H.U32, ring.outTail);
      if (tail !== head) { this.drain(head, tail); return; }
      if (Atomics.load(H.I32, ring.done)) {
        if (Atomics.load(H.U32, ring.outTail) !== head) continue;
        await this.finish();
        return;
      }
      const p = it.wait();
      Atomics.store(H.I32, ring.outWaiting, 1);
      if (Atomics.load(H.U32, ring.outTail) !== tail || Atomics.load(H.I32, ring.done)) { it.wake(); await p; continue; }
      await p;
      if (it.state !== 'running' && it.state !== 'draining') return;
    }
  }

  drain(head, tail) {
    const { rt, ring } = this;
    const H = rt.pmw.heap();
    const mask = OUT_CAP - 1;
    const out = this.it.queue;
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

  /** The coordinator finished: why. */
  async finish() {
    const { rt, o } = this;
    await this.watch.done;          // the coordinator has let go of the job
    if (this.watch.handler.terminated) { this.it.engineEnded(this.watch.handler.terminated); return; }
    const status = rt.pmw.job.status(this.job);
    let err;
    if (this.sourceError && status !== STATUS.OK && status !== STATUS.EITEM) err = this.sourceError;
    else err = endError('imap', rt, this.job, status, o, this.watch);
    this.it.engineEnded(err);
  }

  /**
   * Stop and release (the iterator reached a final state). The threads stop
   * between chunks; a function that never returns keeps one forever, and a
   * pthread cannot be killed alone: after a grace period the module is
   * retired (loader.js retire), which settles this job with the others.
   */
  async stop(state, aborted) {
    if (this.over) return;
    // Awaiting the coordinator below needs the event loop (its post): hold
    // it even when no consumer waits (a loop left with break at top level).
    this.keepAlive(true);
    this.over = true;
    const { rt } = this;
    if (this.job && this.watch && !rt.terminated && !this.watch.handler.ended && !this.watch.handler.terminated) {
      rt.M._pmw_cancel(this.job);
      const w = this.watch;
      const why = aborted ? 'an aborted imap whose function did not return' : 'an imap loop left early while its function did not return';
      setTimeout(() => {
        if (!w.handler.ended && !w.handler.terminated && !rt.terminated) retire(rt, why);
      }, GRACE_MS);
      await w.done;
    }
    this.release();
  }

  release() {
    if (this.watch) { this.watch.unwatch(); this.watch = null; }
    if (this.job) { freeJob(this.rt, this.job); this.job = 0; }
    if (this.counted) { this.counted = false; this.rt.threadedStreams--; }
    this.keepAlive(false);
  }
}

/* ------------------------------------------------- single-thread engine */

class SingleImap {
  constructor(it, rt, src, o) {
    this.it = it;
    this.rt = rt;
    this.src = src;
    this.o = o;
    this.ready = [];         // flushed items not yet mapped
    this.base = 0;           // stream index of ready[0]
    this.sourceOver = false;
    this.sourceError = null;
  }

  start() {}
  keepAlive() {}            // nothing here keeps the loop alive but the source and the slices
  room() { return Infinity; }   // the feed's read-ahead bounds `ready`
  flush(items) {
    for (let i = 0; i < items.length; i++) this.ready.push(items[i]);
    this.it.wake();
  }

  end(err) {
    this.sourceOver = true;
    this.sourceError = err;
    this.it.wake();
  }

  async stop() {}

  /** Map what the feed has handed on (all of it, up to WINDOW) in slices. */
  async fill() {
    const { rt, o, it } = this;
    if (rt.terminated) { it.engineEnded(rt.endError); return; }
    if (!this.ready.length) {
      if (this.sourceOver) { it.engineEnded(this.sourceError); return; }
      await it.wait();
      return;
    }
    const batch = this.ready.length <= WINDOW ? this.ready : this.ready.slice(0, WINDOW);
    this.ready = batch === this.ready ? [] : this.ready.slice(WINDOW);
    const base = this.base;
    this.base += batch.length;
    const job = newJsJob('imap', rt, this.src, o, 1);
    try {
      const recs = rt.M._pmw_job_records(job, batch.length) >>> 0;
      if (!recs) throw new RangeError('imap: out of WebAssembly memory');
      writeItems('imap', rt, job, batch, recs >>> 3, null, base);
      // Indexes and progress count from the stream's start.
      const sliceOpts = { ...o, onProgress: o.onProgress ? (p) => o.onProgress({
        ...p, done: base + p.done, total: o.total || null, eta: null,
      }) : undefined };
      const res = await runSlices(rt, job, sliceOpts, batch.length);
      if (rt.terminated) { it.engineEnded(rt.endError); return; }
      const err = endError('imap', rt, job, res.status, o, res.watch);
      const ran = res.status === STATUS.OK ? batch.length : Math.max(0, rt.pmw.job.err_index(job));
      const out = new Array(ran);
      readResults(rt, recs >>> 3, ran, out, 0, null);
      for (const v of out) if (v && v.name === 'ParmapError') v.index += base;
      if (err && typeof err.index === 'number') err.index += base;
      if (it.state === 'running' || it.state === 'draining') for (const v of out) it.queue.push(v);
      if (err) { it.engineEnded(err); return; }
    } catch (e) {
      it.engineEnded(e);
      return;
    } finally {
      if (!rt.terminated) rt.M._pmw_job_free(job);
    }
    if (this.sourceOver && !this.ready.length) it.engineEnded(this.sourceError);
  }
}
