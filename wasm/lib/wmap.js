// wmap.js - parmap, mapKernel and imap on the `workers` engine (pool.js,
// wcall.js): the sources the calls cut their chunks from, and the sinks
// their results go to.

import { Call } from './wcall.js';
import { abortError } from './errors.js';
import { encodeMeta } from './map.js';

class ListCall extends Call {
  constructor(init) {
    super(init);
    // More workers than items would never run anything, and the pool grows
    // to a call's threads for good: { threads: 1000 } over 5 items started
    // 1000 workers (the call took over 15 s).
    this.threads = Math.max(1, Math.min(this.threads, this.list.length));
  }

  available() { return this.list.length - this.taken; }
  remaining() { return this.list.length - this.taken; }
  take(n) {
    const xs = this.list;
    return Array.isArray(xs) ? xs.slice(this.taken, this.taken + n) : xs.subarray(this.taken, this.taken + n);
  }
  sourceEnded() { return true; }
  progressTotal() { return this.list.length; }
  abortError() { return abortError(this.o.signal); }
}

function settle() {
  let resolve, reject;
  const promise = new Promise((a, b) => { resolve = a; reject = b; });
  return { promise, resolve, reject };
}

/** parmap on the pool: resolves to the results (item or completion order). */
export function parmapWorkers(pool, pmw, api, src, o, list, threads) {
  const meta = encodeMeta(api, pmw, o);
  const n = list.length;
  const pieces = [];   // { base, values } in arrival order
  const s = settle();
  const call = new ListCall({
    pool, pmw, api, o, threads, kind: 'js', src, meta, list,
    sink: {
      results: (base, values) => pieces.push({ base, values }),
      end: (err) => {
        if (err) return s.reject(err);
        s.resolve(o.ordered ? assemble(pieces, n) : arrival(pieces, n));
      },
    },
  });
  try {
    call.start();
  } catch (e) {
    call.fail(e);
  }
  return s.promise;
}

/** Results in item order: a double array when every piece is numbers
 * (see map.js resultArray for why it is built this way). */
function assemble(pieces, n) {
  if (pieces.every((p) => p.values instanceof Float64Array)) {
    const out = [0.5];
    out.length = n;
    for (const { base, values } of pieces) for (let i = 0; i < values.length; i++) out[base + i] = values[i];
    return n ? out : [];
  }
  const out = new Array(n);
  for (const { base, values } of pieces) for (let i = 0; i < values.length; i++) out[base + i] = values[i];
  return out;
}

function arrival(pieces, n) {
  const out = new Array(n);
  let k = 0;
  for (const { values } of pieces) for (let i = 0; i < values.length; i++) out[k++] = values[i];
  return out;
}

/** mapKernel on the pool: the output typed array (and failures). */
export function kernelWorkers(pool, pmw, o, threads, kernel, data, outView) {
  const { OutType, perItem } = kernel;
  const n = data.length;
  // A heap array as out: a fresh view each time (the main thread's heap may
  // grow during the call, which detaches older views).
  const plain = outView ? null : new OutType(n * perItem);
  const view = () => plain || outView();
  const failures = [];
  const s = settle();
  const call = new ListCall({
    pool, pmw, api: 'mapKernel', o, threads, kind: 'kernel', kernel, list: data,
    sink: {
      results: (base, values) => view().set(values, base * perItem),
      failure: (index, code) => failures.push({ index, code }),
      end: (err) => {
        if (err) return s.reject(err);
        const out = view();
        if (failures.length) {
          failures.sort((a, b) => a.index - b.index);
          Object.defineProperty(out, 'failures', { value: failures });
        }
        s.resolve(out);
      },
    },
  });
  call.start();
  return s.promise;
}

/* ---------------------------------------------------------------- imap */

class StreamCall extends Call {
  available() { return this.w.pending.length - this.w.pendingPos; }
  remaining() { return Math.max(this.available(), this.threads * 64); }
  take(n) {
    const w = this.w;
    const items = w.pending.slice(w.pendingPos, w.pendingPos + n);
    w.pendingPos += n;
    if (w.pendingPos > 4096 && w.pendingPos * 2 > w.pending.length) {
      w.pending = w.pending.slice(w.pendingPos);
      w.pendingPos = 0;
    }
    return items;
  }
  sourceEnded() { return this.w.sourceDone; }
  // A chunk waits for more items only while they come fast: the feed
  // (feed.js) already hands a slow source on item by item.
  waitForMore() { return super.waitForMore() && this.w.it.feed && this.w.it.feed.fast(); }
  progressTotal() { return this.o.total === undefined ? null : this.o.total; }
  abortError() { return abortError(this.o.signal); }
}

/**
 * imap on the pool: the engine object of an ImapIterator (imap.js). The feed
 * flushes batches into `pending`, idle workers take chunks of it, results
 * go to it.queue in stream order (or as they come, ordered: false).
 */
export class WorkersImap {
  constructor(it, pool, pmw, src, o, threads) {
    this.it = it;
    this.pool = pool;
    this.pending = [];
    this.pendingPos = 0;
    this.sourceDone = false;
    this.reorder = new Map();
    this.nextOut = 0;
    const meta = encodeMeta('imap', pmw, o);
    this.call = new StreamCall({
      pool, pmw, api: 'imap', o, threads, kind: 'js', src, meta, w: this,
      sink: {
        results: (base, values) => {
          const q = it.queue;
          if (!o.ordered) {
            for (let i = 0; i < values.length; i++) q.push(values[i]);
          } else {
            this.reorder.set(base, values);
            let v;
            while ((v = this.reorder.get(this.nextOut)) !== undefined) {
              this.reorder.delete(this.nextOut);
              for (let i = 0; i < v.length; i++) q.push(v[i]);
              this.nextOut += v.length;
            }
          }
          it.wake();
        },
        end: (err) => { it.engineEnded(err); },
      },
    });
  }

  start() { this.call.start(); }

  /** Whether this call keeps the pool's workers ref'ed (pool.js refresh). */
  keepAlive(on) {
    if (this.call.keepAlive === on) return;
    this.call.keepAlive = on;
    this.pool.refresh();
  }

  room() { return Infinity; }   // the feed's read-ahead bounds `pending`

  flush(items) {
    for (let i = 0; i < items.length; i++) this.pending.push(items[i]);
    this.pool.dispatch();
  }

  end(err) {
    if (err) { this.call.fail(err); return; }
    this.sourceDone = true;
    this.pool.dispatch();
    this.call.afterResults();
  }

  async fill() {
    if (this.it.qpos < this.it.queue.length || this.call.ended) return;
    await this.it.wait();
  }

  async stop() {
    if (!this.call.ended) this.call.finish(null);
  }
}
