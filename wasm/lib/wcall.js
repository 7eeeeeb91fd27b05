// wcall.js - one call (parmap, imap or mapKernel) on the `workers` engine.
//
// A call cuts its items into chunks (tasks) as workers become free (the pool
// asks nextTask()), ships each as one transferable buffer (a Float64Array
// when the chunk is all numbers, else MessagePack bytes from the package's
// codec), and collects the results (onDone / onItem). Auto chunk sizes:
// small first chunks measure the function, then chunks of ~TARGET_MS of
// work, never more than a guided share of what is left.
//
// Failure handling, per item, like the C processes executor:
//  - timeout: the call runs in stream mode (results item by item), so the
//    item over the limit is known: it fails with ETIMEOUT, its worker is
//    replaced (pool.js), and the items of its chunk after it run again;
//  - a worker that dies in stream mode fails its running item with ECRASH;
//    in batch mode the whole chunk is retried item by item, alone, so only
//    the item that kills a worker again fails (ECRASH).
// Raise mode: the first failure ends the call (the rest is dropped, running
// chunks are stopped by the pool after a grace period).

import { ParmapError, itemError, STATUS } from './errors.js';
import { fnCostKey, kernelCostKey, knownCost, noteCost, oneThreadsWork } from './costs.js';

const TARGET_MS = 20;    // auto chunks: work per chunk (the guided cap keeps the tail short)
const FIRST_CHUNK = 16;  // auto chunks: before the first measurement
const FORGET_NOW_BYTES = 64 << 10;   // finish(): see there
const FORGET_BATCH = 64;
// Auto chunks: when all that is left would be one worker's work (costs.js:
// measured in this call, or carried from the last), it goes as one chunk. A
// bigger call still starts with small chunks: they set the workers going
// while this thread encodes.

let nextCallId = 1;

export class Call {
  /**
   * pool, pmw (main thread codec), api, o (checked options), threads,
   * kind 'js' | 'kernel', src + meta (js), kernel: { name, params, InType,
   * OutType, perItem } (kernel), sink: { results(base, values, arrival),
   * end(err) } where values is a Float64Array or an Array.
   */
  constructor(init) {
    Object.assign(this, init);
    this.id = nextCallId++;
    this.active = 0;
    this.timeout = this.o.timeout || 0;
    this.queue = [];         // tasks to run again first (retries)
    this.done = 0;           // items with a result
    this.failed = 0;
    this.parts = new Map();  // task -> items done so far in it (progress)
    this.costKey = this.kind === 'kernel' ? kernelCostKey(this.kernel.name) : fnCostKey(this.src);
    this.perItem = -1;       // measured ms per item (in this call)
    this.knownCost = knownCost(this.costKey);   // ... in earlier calls
    this.minNext = 0;        // auto chunks: the least size of the next one
    this.ended = false;
    this.taken = 0;          // items handed out from the source
    this.progressTimer = null;
    this.lastProgress = 0;
    this.t0 = performance.now();
  }

  /* ------------------------------------------------- what the pool asks */

  nextTask() {
    if (this.ended) return null;
    if (this.failAt) {
      // Raise mode after a failure: only what comes before it still runs.
      const i = this.queue.findIndex((t) => t.base < this.failAt.index);
      return i < 0 ? null : this.queue.splice(i, 1)[0];
    }
    if (this.queue.length) return this.queue.shift();
    const avail = this.available();
    if (avail <= 0) return null;
    let n = this.o.chunksize;
    if (!n) {
      // Guided: a share of what is left; before the first measurement an
      // even share (a small call goes out as one chunk per worker: 1-item
      // chunks cost it a round trip to a worker per item).
      const ways = this.perItem < 0 ? this.threads : 2 * this.threads;
      let guided = Math.max(1, Math.ceil(this.remaining() / ways));
      const cost = this.perItem >= 0 ? this.perItem : this.knownCost;
      if (this.sourceEnded() && oneThreadsWork(this.remaining(), cost)) guided = this.remaining();
      n = this.perItem < 0 ? FIRST_CHUNK : Math.max(1, Math.round(TARGET_MS / Math.max(this.perItem, 1e-6)));
      // A chunk far under the target grows the next at least 4x: small
      // chunks measure a fixed cost per chunk more than the function.
      n = Math.min(Math.max(n, this.minNext), guided);
    }
    if (avail < n && this.waitForMore()) return null;   // imap: wait for a fuller chunk
    n = Math.min(n, avail);
    const base = this.taken;
    const items = this.take(n);
    this.taken += n;
    return { call: this, base, n, items, stream: this.timeout > 0, dropped: false };
  }

  /** imap: whether a short chunk should wait for more items (a worker is
   * busy, so a later one gets a fuller chunk). */
  waitForMore() { return !this.sourceEnded() && this.active > 0; }

  /** The worker message for a task (and its transfer list). */
  message(task, first) {
    if (this.kind === 'kernel') {
      const { InType } = this.kernel;
      const items = task.items instanceof InType ? task.items : InType.from(task.items);
      const input = new Uint8Array(items.buffer, items.byteOffset, items.byteLength).slice();
      return {
        msg: { t: 'kernel', call: this.id, base: task.base, n: task.n, name: this.kernel.name, params: this.kernel.params,
          outSize: this.kernel.OutType.BYTES_PER_ELEMENT, input, raise: this.o.raise },
        transfer: [input.buffer],
      };
    }
    const { items, f64 } = this.encode(task);
    const msg = { t: 'run', call: this.id, base: task.base, n: task.n, items, f64, raise: this.o.raise,
      stream: task.stream, progress: !!this.o.onProgress, concurrency: this.o.concurrency };
    if (first) { msg.src = this.src; msg.meta = this.meta; }
    return { msg, transfer: [items.buffer] };
  }

  encode(task) {
    const xs = task.items, n = task.n;
    if (xs instanceof Float64Array) return { items: xs.slice(), f64: true };
    let allNum = true;
    for (let i = 0; i < n; i++) if (typeof xs[i] !== 'number') { allNum = false; break; }
    if (allNum) {
      const f = new Float64Array(n);
      for (let i = 0; i < n; i++) f[i] = xs[i];
      return { items: f, f64: true };
    }
    const enc = this.enc || (this.enc = new this.pmw.Encoder());
    enc.pos = 0;
    enc.head(0x90, n, 16, 0, 0xdc, 0xdd);
    for (let i = 0; i < n; i++) {
      try {
        enc.value(xs[i], 0);
      } catch (e) {
        throw this.encodeError(e, task.base + i);
      }
    }
    const items = enc.buf.slice(0, enc.pos);
    if (enc.buf.length > (8 << 20)) this.enc = null;
    return { items, f64: false };
  }

  encodeError(e, index) {
    e = this.pmw.asEncodeError(e);   // reading the item threw (a revoked Proxy): it cannot be sent either
    const err = new TypeError(`${this.api}: item ${index} cannot be sent to a worker: ${e.what}${e.path ? ` at item${e.path}` : ''}`);
    err.index = index;
    return err;
  }

  /* ----------------------------------------------------------- results */

  /** A worker's progress inside a chunk (k items of it done). */
  partial(task, k) {
    // Items that come back one by one are counted as they come (itemResult).
    if (!this.ended && !task.dropped && !task.stream && !task.settled) this.parts.set(task, k);
  }

  onDone(task, msg) {
    this.parts.delete(task);
    if (this.ended) return;
    if (msg.ran > 0) this.minNext = msg.ms < TARGET_MS / 4 ? Math.max(this.minNext, 4 * msg.ran) : 0;
    if (msg.ms >= 0 && msg.ran > 0) {
      // A chunk quicker than the clock's grain (coarsened in browsers) still
      // says how cheap its items are.
      const per = Math.max(msg.ms, 0.005) / msg.ran;
      this.perItem = this.perItem < 0 ? per : 0.25 * this.perItem + 0.75 * per;   // the JIT warms up: trust the latest
      noteCost(this.costKey, this.perItem);
    }
    if (msg.t === 'kdone') return this.kernelDone(task, msg);
    if (task.stream || msg.streamed) {
      // Items came one by one (or, async, as they settled); a raise stop leaves the rest of the chunk.
      return this.afterResults();
    }
    let values;
    if (msg.f64) values = msg.f64;
    else {
      const dec = this.dec || (this.dec = new this.pmw.Decoder());
      dec.reset(msg.bytes);
      dec.pos = 0;
      const head = msg.bytes[0];
      dec.pos = head < 0xa0 ? 1 : head === 0xdc ? 3 : 5;
      values = new Array(msg.ran);
      for (let i = 0; i < msg.ran; i++) values[i] = dec.value();
      if (msg.codes) {
        for (let i = 0; i < msg.ran; i++) {
          if (!msg.codes[i]) continue;
          values[i] = itemError(this.pmw, values[i]);
          this.failed++;
          if (this.o.raise) {
            this.done += i;
            this.sink.results(task.base, values.slice(0, i));
            return this.raiseAt(task.base + i, values[i]);
          }
        }
      }
    }
    this.done += msg.ran;
    this.sink.results(task.base, values);
    this.afterResults();
  }

  onItem(task, msg) {
    if (this.ended || task.dropped) return;
    let v;
    if (msg.bytes) {
      const dec = this.dec || (this.dec = new this.pmw.Decoder());
      dec.reset(msg.bytes);
      dec.pos = 1;
      v = dec.value();
      if (msg.code) v = itemError(this.pmw, v);
    } else v = msg.v;
    // Which items of the task have their result: with async functions they
    // settle out of order (a timeout or crash retries the others). Progress
    // counts them in itemResult.
    (task.settled || (task.settled = new Set())).add(msg.k);
    this.itemResult(task.base + msg.k, v, !!msg.code);
  }

  /** Async items of a batch task, as they settled: ks (their places in the
   * task), codes, and their values as one MessagePack array. */
  onItems(task, msg) {
    if (this.ended || task.dropped) return;
    const dec = this.dec || (this.dec = new this.pmw.Decoder());
    dec.reset(msg.bytes);
    const head = msg.bytes[0];
    dec.pos = head < 0xa0 ? 1 : head === 0xdc ? 3 : 5;
    const settled = task.settled || (task.settled = new Set());
    for (let i = 0; i < msg.ks.length; i++) {
      let v = dec.value();
      if (msg.codes[i]) v = itemError(this.pmw, v);
      settled.add(msg.ks[i]);
      this.itemResult(task.base + msg.ks[i], v, !!msg.codes[i]);
      if (this.ended) return;
    }
  }

  /** One item's result (or its ParmapError). */
  itemResult(index, v, failed) {
    if (failed) {
      this.failed++;
      if (this.o.raise) return this.raiseAt(index, v);
    }
    this.done++;
    this.sink.results(index, [v]);
    this.afterResults();
  }

  /**
   * Raise mode: the call ends with the failure of the lowest index, once
   * every item before it has its result (an imap consumer gets all of them
   * first, as on the other engines). Nothing after it starts any more.
   */
  raiseAt(index, err) {
    if (!this.failAt || index < this.failAt.index) this.failAt = { index, err };
    this.checkRaise();
  }

  checkRaise() {
    if (!this.failAt || this.ended) return false;
    const at = this.failAt.index;
    const before = (t) => t && t.call === this && !t.dropped && t.base < at;
    if (this.queue.some(before) || this.pool.workers.some((W) => before(W.task))) return false;
    this.fail(this.failAt.err);
    return true;
  }

  kernelDone(task, msg) {
    const { OutType, perItem } = this.kernel;
    const out = new OutType(msg.output.buffer, 0, task.n * perItem);
    if (msg.status !== STATUS.OK && msg.status !== STATUS.EITEM)
      return this.fail(new Error(`mapKernel: ${this.kernel.name} failed in a worker (status ${msg.status})`));
    if (msg.status === STATUS.EITEM && this.o.raise) {
      return this.raiseAt(msg.errIndex, new ParmapError(`mapKernel: ${this.kernel.name} failed on item ${msg.errIndex} (code ${msg.errCode})`,
        { index: msg.errIndex, itemCode: msg.errCode }));
    }
    if (msg.codes) {
      for (let i = 0; i < task.n; i++) {
        if (!msg.codes[i]) continue;
        this.failed++;
        this.sink.failure(task.base + i, msg.codes[i]);
        out.fill(0, i * perItem, (i + 1) * perItem);
      }
    }
    this.done += task.n;
    this.sink.results(task.base, out);
    this.afterResults();
  }

  afterResults() {
    if (this.checkRaise()) return;
    this.progress(false);
    if (!this.ended && this.sourceEnded() && this.done === this.taken && this.available() <= 0) this.finish(null);
  }

  /* ----------------------------------------------- runaway and crashes */

  onTimeout(task, k) {
    if (this.ended) return;
    const index = task.base + k;
    const err = new ParmapError(`${this.api}: item ${index} timed out after ${this.timeout} ms (its worker was terminated)`,
      { index, code: 'ETIMEOUT', itemCode: STATUS.ETIMEOUT });
    this.requeueUnsettled(task, k, false);
    this.itemResult(index, err, true);
  }

  /** k < 0: a worker running several items at once (async) died: which
   * one did it is unknown, so each unsettled item runs again alone. */
  onCrash(task, k, message) {
    if (this.ended) return;
    // A batch task whose async items had started coming back: the others
    // (one of them did it) run again, each alone.
    if ((k < 0 || (!task.stream && task.settled)) && task.n > 1) return this.requeueUnsettled(task, -1, true);
    if (k < 0) k = 0;
    if (task.stream || task.n === 1) {
      const at = task.n === 1 ? 0 : k;
      const index = task.base + at;
      const err = new ParmapError(`${this.api}: item ${index} crashed its worker (${message}); the worker was replaced`,
        { index, code: 'ECRASH', itemCode: STATUS.ECRASH });
      this.requeueAfter(task, at);
      if (this.kind === 'kernel') {
        if (this.o.raise) return this.raiseAt(index, err);
        this.failed++;
        this.done++;
        this.sink.failure(index, STATUS.ECRASH);
        this.sink.results(index, new this.kernel.OutType(this.kernel.perItem));
        return this.afterResults();
      }
      return this.itemResult(index, err, true);
    }
    // Which item did it? Run each alone to find out.
    for (let i = task.n - 1; i >= 0; i--) {
      this.queue.unshift({ call: this, base: task.base + i, n: 1, items: task.items.slice(i, i + 1), stream: this.kind !== 'kernel', dropped: false });
    }
  }

  /**
   * The items of a stream task without a result, but item `skip`, run
   * again, first: in runs of consecutive items, or each alone (`alone`).
   * (Items settle in order unless fn returns promises.)
   */
  requeueUnsettled(task, skip, alone) {
    const settled = task.settled || new Set();
    const retry = [];
    for (let i = task.n - 1; i >= 0; i--) {
      if (i === skip || settled.has(i)) continue;
      const last = retry[0];
      if (!alone && last && last.base === task.base + i + 1) {
        last.base--; last.n++; last.from = i;
      } else retry.unshift({ call: this, base: task.base + i, n: 1, from: i, stream: task.stream, dropped: false });
    }
    for (const t of retry) t.items = task.items.slice(t.from, t.from + t.n);
    this.queue.unshift(...retry);
    this.parts.delete(task);
  }

  /** The items of a task after the k-th run again, first. */
  requeueAfter(task, k) {
    if (k + 1 < task.n) {
      this.queue.unshift({ call: this, base: task.base + k + 1, n: task.n - k - 1, items: task.items.slice(k + 1), stream: task.stream, dropped: false });
    }
    this.parts.delete(task);
  }

  /* ---------------------------------------------------------- the end */

  start() {
    if (this.o.onProgress) {
      this.progressTimer = setInterval(() => this.progress(false), 100);
    }
    if (this.o.signal) {
      this.onAbort = () => this.fail(this.abortError());
      this.o.signal.addEventListener('abort', this.onAbort, { once: true });
    }
    this.pool.add(this);
    if (this.pool.fatalError) this.fail(new Error(`parmap: a worker could not start: ${this.pool.fatalError}`));
    this.afterResults();   // an empty call ends at once
  }

  progress(force) {
    const cb = this.o.onProgress;
    if (!cb || this.progressFailed) return;
    const now = performance.now();
    if (!force && now - this.lastProgress < 100) return;
    this.lastProgress = now;
    let done = this.done;
    for (const k of this.parts.values()) done += k;
    const elapsed = (now - this.t0) / 1000, rate = elapsed > 0 ? done / elapsed : 0;
    const total = this.progressTotal();
    try {
      cb({ done, total, failed: this.failed, elapsed, rate, eta: total !== null && rate > 0 ? Math.max(0, total - done) / rate : null });
    } catch (e) {
      this.progressFailed = true;
      this.fail(e);
    }
  }

  finish(err) {
    if (this.ended) return;
    if (!err) this.progress(true);
    this.ended = true;
    if (this.progressTimer) clearInterval(this.progressTimer);
    if (this.onAbort) this.o.signal.removeEventListener('abort', this.onAbort);
    this.pool.remove(this);
    // The workers drop this call's cached function: at once when its
    // args/kwargs are big (an idle worker would hold them), else with their
    // next chunk (a message each per call cost a small call ~10% of its
    // time), or at once when FORGET_BATCH are waiting (an idle worker after
    // a burst of calls at once would hold them all).
    const big = this.meta && this.meta.length > FORGET_NOW_BYTES;
    for (const W of this.pool.workers) {
      if (!W.known.delete(this.id)) continue;
      if (big && !W.task) W.h.post({ t: 'forget', forget: [this.id] });
      else W.forget.push(this.id);
      if (W.forget.length >= FORGET_BATCH && !W.task) {
        W.h.post({ t: 'forget', forget: W.forget });
        W.forget = [];
      }
    }
    this.sink.end(err);
  }

  fail(err) {
    this.finish(err || new Error(`${this.api}: failed`));
  }
}
