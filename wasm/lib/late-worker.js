// late-worker.js - a pthread worker whose start is put off: the threaded
// engine's crew and spare workers (lib/loader.js startCrew).
//
// Why: the C pool starts its crew's pthreads at load, and Emscripten then
// creates their workers at once. Each one's boot is 20-30 ms of CPU, and
// they would all boot while the first call's coordinator (a worker loaded
// before them) runs the call: on a 2-core machine that made a small first
// call 8-15 ms slower in Node and ~15 ms on an isolated page. A LateWorker
// stands in for the Worker until start(); Emscripten uses it like the real
// one (listeners, posts, ref/unref, terminate), and it hands everything over
// when the real worker is made. The crew's members run their thread once
// their worker has loaded, as before, and join any call then running.

export class LateWorker {
  /** `create()` makes the real Worker (Emscripten's own allocation). */
  constructor(create) {
    this.create = create;
    this.real = null;
    this.dead = false;      // terminated before it started
    this.listeners = [];    // [method, event, fn] to replay on the real one
    this.posts = [];        // [message, transfer] to post once it exists
    this.referenced = null; // Node: the last ref()/unref() asked, if any
    // Set by Emscripten and by lib/loader.js, as on a real Worker.
    this.onmessage = null;
    this.onerror = null;
  }

  /** Make the real worker now (no-op when made already or terminated). */
  start() {
    if (this.real || this.dead) return;
    let w;
    try {
      w = this.create();
    } catch (e) {
      // No worker: its pthread never runs and the crew is one short.
      this.dead = true;
      if (this.onerror) this.onerror(e);
      return;
    }
    this.real = w;
    for (const [method, event, fn] of this.listeners) w[method](event, fn);
    // A browser's Worker calls its own onmessage / onerror; Emscripten set
    // them here. (In Node Emscripten listens with on() and calls them itself.)
    if (typeof w.on !== 'function') {
      w.onmessage = (e) => { if (this.onmessage) this.onmessage(e); };
      w.onerror = (e) => { if (this.onerror) this.onerror(e); };
    }
    if (this.referenced === false) w.unref();
    for (const [message, transfer] of this.posts) w.postMessage(message, transfer);
    this.listeners = this.posts = null;
  }

  on(event, fn) { return this.listen('on', event, fn); }
  off(event, fn) { return this.unlisten('off', 'on', event, fn); }
  addEventListener(event, fn) { this.listen('addEventListener', event, fn); }
  removeEventListener(event, fn) { this.unlisten('removeEventListener', 'addEventListener', event, fn); }

  listen(method, event, fn) {
    if (this.real) this.real[method](event, fn);
    else if (!this.dead) this.listeners.push([method, event, fn]);
    return this;
  }

  unlisten(method, added, event, fn) {
    if (this.real) this.real[method](event, fn);
    else if (!this.dead) this.listeners = this.listeners.filter(([m, e, f]) => m !== added || e !== event || f !== fn);
    return this;
  }

  postMessage(message, transfer) {
    if (this.real) this.real.postMessage(message, transfer);
    else if (!this.dead) this.posts.push([message, transfer]);
  }

  ref() {
    if (this.real) this.real.ref();
    else this.referenced = true;
  }

  unref() {
    if (this.real) this.real.unref();
    else this.referenced = false;
  }

  terminate() {
    if (this.real) return this.real.terminate();
    this.dead = true;
    this.listeners = this.posts = null;
    return Promise.resolve(0);
  }
}
