// feed.js - imap's pump: pulls the source ahead of the consumer and hands it
// to the engine (imap.js threaded / single, wmap.js workers) in batches, on
// every engine the same way.
//
// Batches follow the source's measured rate, as the C core's feeder does
// (src/core/imap.c next_size, chunker.c pm__chunker_for_rate): a batch holds
// about BATCH_MS of the source's time, so a fast source goes in batches of
// thousands (one ring write or message per batch, not per item) and a slow
// one item by item, each handed on as soon as it is produced. The rate is
// unknown at first: the first batch is one item. A source slower than its
// measure (a burst, then a pause) does not hold a part-filled batch back: a
// timer hands it on FLUSH_MS after the batch should have been full.
//
// Read-ahead: at most about AHEAD_MS of the source's time is pulled beyond
// what the consumer has taken (never fewer than `minAhead` items, never more
// than `maxAhead`). That is plenty to keep workers busy, and it is what lets
// an abandoned iterator go quiet: once the consumer stops taking, the pump
// soon stops calling the source, and a slow source's timers no longer keep
// the process alive. A consumer waiting for a result lifts the time bound
// (up to maxAhead): the engine may need more items to finish a chunk (the C
// core's feeder fills its chunks from the in ring), and a waiting consumer
// must not wait on the pump.

import { yieldToLoop } from './loader.js';

const BATCH_MS = 1;     // source time per batch (pm__chunker_for_rate: 2 x GROW_BELOW_S)
const FLUSH_MS = 2;     // a part-filled batch waits at most this long beyond its expected time
const AHEAD_MS = 500;   // source time pulled ahead of the consumer, at most

export class Feed {
  /**
   * source: { it, async } (imap.js sourceIterator). engine: room() -> items
   * it can take now (0: it calls feed.wake() when that changes), flush(items,
   * base) (may throw: the feed then ends with that error), end(err) (the
   * source ended, err null, or failed). taken(): items the consumer has
   * taken; hungry(): whether it waits for a result now. minAhead / maxAhead:
   * read-ahead bounds in items. batchMs: source time per batch (default
   * BATCH_MS; more where a batch costs more).
   */
  constructor(source, engine, { taken, hungry, minAhead, maxAhead, batchMs = BATCH_MS }) {
    this.source = source;
    this.engine = engine;
    this.taken = taken;
    this.hungry = hungry;
    this.minAhead = minAhead;
    this.maxAhead = maxAhead;
    this.batchMs = batchMs;
    this.flushMs = batchMs + FLUSH_MS;
    this.msPerItem = 0;     // measured source time per item (0: not yet)
    this.pulled = 0;        // items pulled from the source
    this.sent = 0;          // items flushed to the engine
    this.batch = [];
    this.timer = null;
    this.stopped = false;
    this.waiter = null;
    this.woken = false;
    this.ended = false;     // the source said done or threw (it needs no return())
    this.failed = null;     // flush() threw this
  }

  /** Start pumping; the promise settles when the pump has stopped. */
  start() {
    this.done = this.run();
    return this.done;
  }

  /** Stop pulling (the consumer left or the stream failed); idempotent. */
  stop() {
    this.stopped = true;
    this.clearTimer();
    this.wake();
  }

  /** Room may have appeared (engine) or the consumer took items. */
  wake() {
    if (this.waiter) { const w = this.waiter; this.waiter = null; w(); } else this.woken = true;
  }

  /** Items per batch at the measured rate. */
  batchSize() {
    if (!(this.msPerItem > 0)) return 1;
    return Math.max(1, Math.floor(this.batchMs / this.msPerItem));
  }

  /** Whether the next batch is expected within flushMs (a chunk may wait
   * for it, wcall.js waitForMore). */
  fast() { return this.msPerItem > 0 && this.msPerItem * this.batchSize() <= this.flushMs; }

  /** Items that may still be pulled ahead of the consumer. */
  aheadRoom() {
    // A hungry consumer lifts the time bound, never maxAhead: an async source
    // that resolves at once would otherwise keep the pump in microtasks
    // forever, and the engine's messages (results) would never get in.
    let limit = this.maxAhead;
    if (this.msPerItem > 0 && !this.hungry()) limit = Math.min(limit, Math.max(this.minAhead, Math.floor(AHEAD_MS / this.msPerItem)));
    return limit - (this.pulled - this.taken());
  }

  async wait() {
    if (this.woken) { this.woken = false; return; }
    await new Promise((r) => { this.waiter = r; });
    this.woken = false;
  }

  clearTimer() {
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null; }
  }

  /** Hand the batch so far to the engine. */
  flush() {
    this.clearTimer();
    const items = this.batch;
    if (!items.length || this.stopped) return;
    this.batch = [];
    const base = this.sent;
    this.sent += items.length;
    try {
      this.engine.flush(items, base);
    } catch (e) {
      this.failed = e;
      this.stop();
    }
  }

  async run() {
    const { it, async } = this.source;
    let err = null;
    try {
      for (;;) {
        if (this.stopped) break;
        const room = Math.min(this.aheadRoom(), this.engine.room());
        if (room <= 0) { await this.wait(); continue; }
        const size = Math.min(room, this.batchSize());
        const t0 = performance.now();
        let k = 0;
        while (k < size) {
          const r = async ? await it.next() : it.next();
          if (this.stopped) break;
          if (r.done) { this.ended = true; break; }
          this.batch.push(r.value);
          this.pulled++;
          k++;
          // An async source may pause: the items so far go on after flushMs.
          if (async && k < size && this.timer === null && this.batch.length === 1)
            this.timer = setTimeout(() => { this.timer = null; this.flush(); }, this.flushMs);
        }
        if (k > 0) {
          // Smoothed like imap.c's src_sec_per_item (0.7 old, 0.3 new).
          const ms = (performance.now() - t0) / k;
          this.msPerItem = this.msPerItem > 0 ? 0.7 * this.msPerItem + 0.3 * ms : ms;
        }
        this.flush();
        if (this.ended || this.stopped) break;
        // A sync source never yields by itself: let the consumer and the
        // engine's messages in between batches (a batch is ~BATCH_MS).
        if (!async) await yieldToLoop();
      }
    } catch (e) {
      // The source threw: what it gave before still goes on.
      this.ended = true;
      err = e;
      this.flush();
    }
    this.clearTimer();
    if (this.failed) err = this.failed;
    if (this.ended || this.failed) this.engine.end(err);
  }
}
