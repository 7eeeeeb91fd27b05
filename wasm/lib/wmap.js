// wmap.js - parmap, mapKernel and imap on the `workers` engine (pool.js,
// wcall.js): the sources the calls cut their chunks from, and the sinks
// their results go to.

import { Call } from './wcall.js';
import { abortError } from './errors.js';
import { encodeMeta } from './map.js';
import { yieldToLoop } from './loader.js';

class ListCall extends Call {
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

const WINDOW = 16384;   // items pulled ahead of the consumer, at most

class StreamCall extends Call {
  available() { return this.it.pending.length - this.it.pendingPos; }
  remaining() { return Math.max(this.available(), this.threads * 64); }
  take(n) {
    const it = this.it;
    const items = it.pending.slice(it.pendingPos, it.pendingPos + n);
    it.pendingPos += n;
    if (it.pendingPos > 4096 && it.pendingPos * 2 > it.pending.length) {
      it.pending = it.pending.slice(it.pendingPos);
      it.pendingPos = 0;
    }
    if (it.wakePump) { const w = it.wakePump; it.wakePump = null; w(); }
    return items;
  }
  sourceEnded() { return this.it.sourceDone; }
  progressTotal() { return this.o.total === undefined ? null : this.o.total; }
  abortError() { return abortError(this.o.signal); }
}

/**
 * The workers half of an ImapIterator (imap.js): `it` gets a call, a pump
 * pulling the source into it.pending, and results into it.queue in order.
 */
export function startImapWorkers(it, pool, pmw, src, o, threads) {
  const meta = encodeMeta('imap', pmw, o);
  it.pending = [];
  it.pendingPos = 0;
  it.pulled = 0;
  it.wakePump = null;
  it.wakeOut = null;
  it.reorder = new Map();
  it.nextOut = 0;
  const wake = () => { if (it.wakeOut) { const w = it.wakeOut; it.wakeOut = null; w(); } };
  const call = new StreamCall({
    pool, pmw, api: 'imap', o, threads, kind: 'js', src, meta, it,
    sink: {
      results: (base, values) => {
        if (!o.ordered) {
          for (let i = 0; i < values.length; i++) it.queue.push(values[i]);
        } else {
          it.reorder.set(base, values);
          let v;
          while ((v = it.reorder.get(it.nextOut)) !== undefined) {
            it.reorder.delete(it.nextOut);
            for (let i = 0; i < v.length; i++) it.queue.push(v[i]);
            it.nextOut += v.length;
          }
        }
        wake();
      },
      end: (err) => {
        it.wEnded = true;
        it.wError = err;
        wake();
        if (it.wakePump) { const w = it.wakePump; it.wakePump = null; w(); }
      },
    },
  });
  it.call = call;
  call.start();
  it.pump = pumpSource(it, call).catch((e) => { if (!call.ended) call.fail(e); });
}

async function pumpSource(it, call) {
  const { source } = it;
  for (;;) {
    if (call.ended || it.closed) return;
    // Back-pressure: items pulled but not yet handed to the consumer.
    if (it.pulled - it.handed >= WINDOW) {
      await new Promise((r) => { it.wakePump = r; });
      continue;
    }
    const r = source.async ? await source.it.next() : source.it.next();
    if (call.ended || it.closed) return;
    if (r.done) {
      it.sourceDone = true;
      call.pool.dispatch();
      call.afterResults();
      return;
    }
    it.pending.push(r.value);
    it.pulled++;
    const avail = it.pending.length - it.pendingPos;
    // Idle workers are given work here; busy ones take it when they finish.
    if (call.active === 0 || (avail & 63) === 0) call.pool.dispatch();
    if (!source.async && (it.pulled & 1023) === 0) await yieldToLoop();
  }
}

/** Wait for results or the end (imap.js fill() on the workers engine). */
export async function fillWorkers(it) {
  for (;;) {
    if (it.qpos < it.queue.length) return;
    if (it.wEnded) {
      it.finished = true;
      it.error = it.wError;
      it.cleanup();
      if (!it.sourceDone) await it.closeSource();
      return;
    }
    if (it.wakePump) { const w = it.wakePump; it.wakePump = null; w(); }
    await new Promise((r) => { it.wakeOut = r; });
  }
}

