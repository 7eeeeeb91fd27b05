// pool.js - the `workers` engine's pool: N dedicated workers (lib/worker.js),
// each with its own instance of the single-thread module, all instantiated
// from one compiled WebAssembly.Module. No SharedArrayBuffer: chunks go out
// and results come back as one transferable buffer each.
//
// The pool knows the calls that want workers (lib/wcall.js) and hands idle
// workers their chunks, round robin, at most `threads` workers per call. It
// is also where runaway code is stopped, since a worker in a loop hears no
// message: the only way is to terminate it.
//  - timeout: calls with a timeout run in stream mode (the worker answers
//    item by item), so the pool knows which item each worker runs and since
//    when (with async functions, which items are in flight and since when);
//    a watchdog terminates a worker whose item is over the limit (the other
//    items it had in flight run again elsewhere).
//  - a call that ends early (abort, a failure in raise mode, imap's break,
//    terminate()) leaves its running chunks a short grace period, then their
//    workers are terminated.
//  - a worker that dies (an uncaught error, a trap, out of memory) is
//    replaced; the call of its chunk decides what failed (wcall.js).
// Every replacement is asynchronous (new Worker never blocks), so nothing
// here ever blocks the main thread. In Node, idle workers are unref'ed: a
// script exits by itself.

export const GRACE_MS = 50;   // an ended call's chunks get this long before their worker is killed

// Cold start: the first worker boots alone (workers that boot together share
// the cores and all come up late). The others start this long after it is
// ready, or as soon as the first call ends, or when a second call comes: on
// a 2-core machine, one booting beside the first call's chunk (20 ms of CPU)
// delayed that call's messages by 1-4 ms (Node: first call 39 -> 35 ms).
export const LATE_MS = 10;

// Memory a call used is given back when it ends. A WebAssembly memory never
// shrinks, so a worker whose heap grew past this (a 200 MB result) says so
// with its chunk's result and is replaced once idle; the threaded and single
// engines unload their module the same way (loader.js recycleIfBig).
export const RECYCLE_BYTES = 256 * 1024 * 1024;

let nextWorkerId = 1;

export class Pool {
  /**
   * size: workers; module: the compiled single-thread WebAssembly.Module
   * (or its promise);
   * dist: URL of dist/; glue: URL of the browser glue (null in Node);
   * spawn(): a Worker-like object (host-node.js / host-web.js spawner) with
   * post(msg, transfer), terminate(), ref(), unref() and the callbacks
   * onmessage(msg), ondeath(message); bootAtOnce: how many workers may boot
   * at the same time when the pool grows (the cores).
   */
  constructor({ size, module, dist, glue, spawn, bootAtOnce = 2 }) {
    this.size = size;
    this.bootAtOnce = Math.max(1, bootAtOnce);
    this.module = module;
    this.dist = dist;
    this.glue = glue;
    this.spawnImpl = spawn;
    this.workers = [];
    this.calls = [];          // calls wanting workers, round robin
    this.rr = 0;
    this.closed = false;
    this.everReady = false;   // a worker has said 'ready' (cold start is over)
    this.watchdog = null;
    // Cold start: one worker boots alone, the others later (LATE_MS; grow()
    // waits for that too).
    this.warm = false;
    this.lateTimer = null;
    this.lateMs = Infinity;
    this.spawn();
  }

  spawn() {
    const W = { id: nextWorkerId++, ready: false, dead: false, task: null, known: new Set(), forget: [], itemK: 0, itemStart: 0, graceTimer: null,
      overdue: null };   // { task, k, at }: the item the watchdog saw over its time
    W.h = this.spawnImpl();
    W.h.onmessage = (msg) => this.onMessage(W, msg);
    W.h.ondeath = (message) => this.onDeath(W, message);
    if (!this.holding()) W.h.unref();
    // The module may still be compiling (a promise): the worker boots and
    // loads its glue meanwhile.
    W.h.post({ t: 'load', dist: this.dist, glue: this.glue });
    Promise.resolve(this.module).then((module) => {
      if (!W.dead) W.h.post({ t: 'init', module, recycleBytes: RECYCLE_BYTES });
    }, () => {});
    this.workers.push(W);
    return W;
  }

  /** Make sure there are at least n workers (never blocks: they start in
   * the background, at most bootAtOnce at a time, the next as one is ready:
   * 200 booting at once on 2 cores took 5 s, and slowed every call made
   * meanwhile as much). */
  grow(n) {
    if (n > this.size) this.size = n;
    if (!this.warm) return;   // the rest follows the first worker (warmUp)
    let booting = 0;
    for (const W of this.workers) if (!W.ready) booting++;
    while (!this.closed && this.workers.length < this.size && booting++ < this.bootAtOnce) this.spawn();
  }

  /** Start the workers put off at cold start (once). */
  warmUp() {
    if (this.warm) return;
    this.warm = true;
    if (this.lateTimer) { clearTimeout(this.lateTimer); this.lateTimer = null; }
    this.grow(this.size);
  }

  /** warmUp() in ms (0: at the next turn), unless sooner; only once the
   * first worker is ready (until then, it boots alone). */
  warmSoon(ms) {
    if (this.warm || !this.workers.some((W) => W.ready)) return;
    if (this.lateTimer && ms >= this.lateMs) return;
    clearTimeout(this.lateTimer);
    this.lateMs = ms;
    this.lateTimer = setTimeout(() => this.warmUp(), ms);
    if (this.lateTimer.unref) this.lateTimer.unref();
  }

  /** Whether Node's event loop must stay up: a call waits for workers. An
   * imap whose consumer is not waiting in next() says it need not
   * (call.keepAlive false): an iterator dropped half-way must not keep the
   * process alive. */
  holding() {
    for (const c of this.calls) if (c.keepAlive !== false) return true;
    return false;
  }

  /** Ref or unref the workers after holding() may have changed. */
  refresh() {
    const hold = this.holding();
    for (const W of this.workers) {
      if (W.dead) continue;
      if (hold || (W.task && W.task.call.keepAlive !== false)) W.h.ref(); else W.h.unref();
    }
  }

  add(call) {
    // While calls wait, every worker keeps Node's event loop alive (one
    // still starting up included); idle ones do not.
    this.calls.push(call);
    if (this.calls.length > 1) this.warmSoon(0);
    this.refresh();
    this.grow(call.threads);
    this.dispatch();
  }

  remove(call) {
    const i = this.calls.indexOf(call);
    if (i >= 0) this.calls.splice(i, 1);
    // (after the call's result is delivered: a Worker's start takes ~1 ms here)
    if (this.calls.length === 0) this.warmSoon(0);
    if (!this.holding()) for (const W of this.workers) if (!W.task) W.h.unref();
    // Its chunks still running: a grace period, then their workers go.
    for (const W of this.workers) {
      if (W.task && W.task.call === call && !W.graceTimer) {
        W.graceTimer = setTimeout(() => { W.graceTimer = null; if (W.task && W.task.call === call) this.kill(W); }, GRACE_MS);
      }
    }
    this.dispatch();
  }

  /** Whether W may be given a chunk now. The first worker is given the
   * first chunk while it still boots: the chunk waits in the worker until
   * its module is up (worker.js), instead of the worker saying 'ready' and
   * waiting for the chunk (a round trip: 1-2 ms on an idle page, 5-6 on a
   * busy one). Only that one: a replacement booting later must not hold a
   * chunk that a running worker would take sooner. */
  idle(W) {
    return !W.dead && !W.task && (W.ready || (!this.everReady && W === this.workers[0]));
  }

  /** Give idle workers work. */
  dispatch() {
    if (this.closed) return;
    for (const W of this.workers) {
      if (!this.idle(W)) continue;
      const n = this.calls.length;
      let given = false;
      for (let j = 0; j < n && !given; j++) {
        const call = this.calls[(this.rr + j) % n];
        if (call.active >= call.threads) continue;
        const task = call.nextTask();
        if (!task) continue;
        this.rr = (this.rr + j + 1) % n;
        this.start(W, task);
        given = true;
      }
      if (!given) break;
    }
  }

  start(W, task) {
    const { call } = task;
    let msg;
    try {
      msg = call.message(task, !W.known.has(call.id));
    } catch (e) {
      call.fail(e);   // an item that cannot be sent (TypeError naming it)
      return;
    }
    W.task = task;
    call.active++;
    W.itemK = 0;
    W.itemStart = performance.now();
    if (call.keepAlive !== false) W.h.ref();
    W.known.add(call.id);
    if (W.forget.length) { msg.msg.forget = W.forget; W.forget = []; }
    W.h.post(msg.msg, msg.transfer);
    if (task.stream && call.timeout) this.armWatchdog();
  }

  finish(W) {
    const task = W.task;
    W.task = null;
    W.inflight = null;
    if (W.graceTimer) { clearTimeout(W.graceTimer); W.graceTimer = null; }
    if (task) task.call.active--;
    if (!W.dead && !this.holding()) W.h.unref();
    return task;
  }

  onMessage(W, msg) {
    if (W.dead) return;
    switch (msg.t) {
      case 'ready':
        W.ready = true;
        this.everReady = true;
        W.itemStart = performance.now();   // (a chunk given while it booted starts now: timeouts)
        this.dispatch();
        this.grow(this.size);   // the next of a growing pool boots (once warm)
        this.warmSoon(this.calls.length > 1 ? 0 : LATE_MS);
        return;
      case 'fatal':
        this.onDeath(W, msg.message, true);
        return;
      case 'crash':
        this.onDeath(W, msg.message);
        return;
      case 'p':
        if (W.task) W.task.call.partial(W.task, msg.k);
        return;
      case 's':
        // An async item started: several may be in flight (worker.js runAsync).
        if (!W.task) return;
        if (!W.inflight) W.inflight = new Map();
        if (!W.inflight.has(msg.k)) W.inflight.set(msg.k, performance.now());
        return;
      case 'items':
        // Async items of a batch task, as they settle (worker.js runAsync).
        if (W.task) W.task.call.onItems(W.task, msg);
        return;
      case 'item': {
        const task = W.task;
        if (!task) return;
        if (W.inflight) W.inflight.delete(msg.k);
        W.itemK = msg.k + 1;
        W.itemStart = performance.now();
        task.call.onItem(task, msg);
        return;
      }
      case 'done':
      case 'kdone': {
        const task = this.finish(W);
        if (task) task.call.onDone(task, msg);
        if (msg.recycle) this.kill(W);   // idle now: its replacement starts with a small heap
        this.dispatch();
        return;
      }
    }
  }

  /** A worker died by itself (or asked to be replaced after a trap). */
  onDeath(W, message, fatal) {
    if (W.dead) return;
    const task = W.task;
    const k = W.inflight ? -1 : W.itemK;   // -1: several items ran at once, which one is unknown
    if (fatal || !W.ready) {
      // It could not even start (a script refused by the page's CSP, a
      // missing file): replacing it would only fail again, in a loop.
      this.kill(W, false);
      this.fatalError = message;
      for (const call of [...this.calls]) call.fail(new Error(`parmap: a worker could not start: ${message}`));
      return;
    }
    this.kill(W);
    if (task) task.call.onCrash(task, k, message);
    this.dispatch();
  }

  /** Terminate a worker and start its replacement (unless closed). */
  kill(W, respawn = true) {
    if (W.dead) return;
    W.dead = true;
    const task = this.finish(W);
    if (task) task.dropped = true;
    try { W.h.terminate(); } catch { /* gone already */ }
    const i = this.workers.indexOf(W);
    if (i >= 0) this.workers.splice(i, 1);
    if (respawn && !this.closed && !this.fatalError && this.workers.length < this.size) this.spawn();
  }

  /** Timed calls: terminate the worker whose item ran over. */
  armWatchdog() {
    if (this.watchdog) return;
    this.watchdog = setInterval(() => {
      const now = performance.now();
      let any = false;
      for (const W of [...this.workers]) {
        const task = W.task;
        if (!task || !task.stream || !task.call.timeout || !W.ready) continue;
        any = true;
        // The item over the limit: the one running (items in order), or the
        // oldest of those in flight (async items overlap).
        let k = W.itemK, since = W.itemStart;
        if (W.inflight) {
          k = -1;
          for (const [j, t] of W.inflight) if (k < 0 || t < since) { k = j; since = t; }
        }
        if (k >= 0 && now - since > task.call.timeout) {
          // Killed when seen over its time on two ticks, with the worker's
          // messages that came meanwhile handled in between: a main thread
          // that was busy (a module loading, a collection) finds items over
          // time that ended long ago, their 'item' message still queued.
          const o = W.overdue;
          if (o && o.task === task && o.k === k && now - o.at >= 1) {
            this.kill(W);
            task.call.onTimeout(task, k);
          } else if (!o || o.task !== task || o.k !== k) {
            W.overdue = { task, k, at: now };
          }
        } else {
          W.overdue = null;
        }
      }
      if (!any) { clearInterval(this.watchdog); this.watchdog = null; }
      this.dispatch();
    }, 5);
  }

  /** Stop everything at once: workers are terminated (never waited for). */
  close(err) {
    this.closed = true;
    if (this.lateTimer) { clearTimeout(this.lateTimer); this.lateTimer = null; }
    if (this.watchdog) { clearInterval(this.watchdog); this.watchdog = null; }
    for (const call of [...this.calls]) call.fail(err);
    for (const W of [...this.workers]) {
      W.dead = true;
      if (W.graceTimer) clearTimeout(W.graceTimer);
      try { W.h.terminate(); } catch { /* gone already */ }
    }
    this.workers = [];
  }
}
