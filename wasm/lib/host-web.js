// host-web.js - what the loader needs from a browser (or any non-Node
// realm): where the files are, how to compile the .wasm, how to start a
// worker. Nothing here names a `node:` module, so a browser bundle built
// from this package never sees one (Node's counterpart: host-node.js).
//
// Every asset is written as a literal `new URL('../dist/...', import.meta.url)`:
// that exact form is what Vite and webpack recognise, so they copy the file
// into the build and rewrite the URL; a URL computed at run time is invisible
// to them (Vite then produced `.../undefined`). Unbundled pages get plain
// URLs beside this file. configure({ baseURL }) overrides them all.

export const node = false;

/** The browser's URLs of the package's files (literal for the bundlers). */
function assetURL(name) {
  switch (name) {
    case 'parmap-mt.mjs': return new URL('../dist/web/parmap-mt.mjs', import.meta.url);
    case 'parmap-mt.wasm': return new URL('../dist/web/parmap-mt.wasm', import.meta.url);
    case 'parmap-st.mjs': return new URL('../dist/web/parmap-st.mjs', import.meta.url);
    case 'parmap-st.wasm': return new URL('../dist/web/parmap-st.wasm', import.meta.url);
    default: throw new Error(`parmap: no such file of the package: ${name}`);
  }
}

/** URL (string) of a file of dist/web/, from baseURL when one was configured. */
export function fileURL(name, baseURL) {
  return (baseURL ? new URL(`web/${name}`, baseURL) : assetURL(name)).href;
}

export function cpuCount() {
  const n = typeof navigator === 'object' && navigator ? navigator.hardwareConcurrency : 0;
  return n > 0 ? n : 1;
}

/** The compiled module of `variant` ('st' | 'mt'). Streaming compile where
 * the server sends application/wasm: it compiles while the bytes arrive. */
export async function compile(variant, baseURL) {
  const url = fileURL(`parmap-${variant}.wasm`, baseURL);
  const res = await fetch(url);
  if (!res.ok) throw new Error(`parmap: could not load ${url} (${res.status})`);
  if (typeof WebAssembly.compileStreaming === 'function' &&
      (res.headers.get('Content-Type') || '').split(';')[0].trim() === 'application/wasm')
    return WebAssembly.compileStreaming(res);
  return WebAssembly.compile(await res.arrayBuffer());
}

/** The Emscripten factory of `variant` and the options it needs here. */
export async function factory(variant, baseURL) {
  const js = fileURL(`parmap-${variant}.mjs`, baseURL);
  // Not a literal specifier on purpose: the glue must stay the very file the
  // pthread workers import too (mainScriptUrlOrBlob), not a bundled copy.
  const { default: f } = await import(/* webpackIgnore: true */ /* @vite-ignore */ js);
  return {
    factory: f,
    options: {
      // (Emscripten's own pthread worker script, parmap-mt.worker.js, is not
      // used: see startPthreadWorker)
      locateFile: (p) => fileURL(p, baseURL),
      mainScriptUrlOrBlob: js,
    },
  };
}

/** A pthread's worker (lib/loader.js makes the glue start every one with
 * this; the first one before the glue has loaded: the glue adopts it). It is
 * a module worker of the glue itself, which runs Emscripten's worker script
 * in a worker of this name (scripts/pthread-worker.cmake): one request, where
 * Emscripten's parmap-mt.worker.js, a classic worker, imports the glue only
 * once the main thread has loaded it too (two requests in a row, 15-25 ms
 * each on a cold page). A module worker also suits dev servers (Vite's) that
 * serve every script as a module. */
export function startPthreadWorker(baseURL) {
  return moduleWorker(new URL(fileURL('parmap-mt.mjs', baseURL)), { type: 'module', name: 'parmap-pthread' });
}

/**
 * A module worker running the script at `url`. A browser starts workers
 * only from scripts of the page's own origin; from another one (the package
 * on a CDN: configure({ baseURL }), or the bundle imported from there), the
 * worker is a same-origin blob: module that imports the script, which a
 * module fetch may do across origins when the server allows it (CORS, as
 * CDNs do). Such a page's Content-Security-Policy must then allow
 * `worker-src blob:`. The worker's messages wait until the import has run
 * (a module worker hears none before its module graph has run).
 */
function moduleWorker(url, options) {
  if (sameOrigin(url)) return new Worker(url, options);
  // (one blob: per script, kept: every worker that replaces another reuses it)
  let blob = importers.get(url.href);
  if (!blob) {
    blob = URL.createObjectURL(new Blob([`import ${JSON.stringify(url.href)};`], { type: 'text/javascript' }));
    importers.set(url.href, blob);
  }
  return new Worker(blob, options);
}
const importers = new Map();   // script URL -> blob: URL of a module importing it

/** Whether a worker may start from `url` as it is: not an http(s) URL of
 * another origin (webpack's import.meta.url is the source's file: URL; the
 * worker URL it writes is the page's). */
function sameOrigin(url) {
  const here = typeof location === 'object' && location ? location.origin : null;
  return here === null || !/^https?:$/.test(url.protocol) || url.origin === here;
}

/** acorn for the free-variable check (bundlers bundle it as a chunk). */
export function parser() {
  return import('../dist/vendor/acorn.mjs');
}

// The same file as below, by a name bundlers do not see (they would copy it
// as an asset besides bundling it as the worker).
const WORKER_JS = './worker.js';

/** The `workers` engine's worker script and how to talk to it. */
export function spawner(baseURL) {
  const glue = fileURL('parmap-st.mjs', baseURL);
  return {
    glue,
    spawn() {
      // Written out in full: bundlers (Vite, webpack) find a worker's file
      // by this literal form. With a baseURL (a page whose bundler does not
      // copy the package's files, e.g. esbuild; a CDN), the worker is the
      // package's own lib/worker.js beside that dist/. From another origin
      // (a CDN), through a blob: (moduleWorker).
      const w = baseURL ? moduleWorker(new URL('../lib/worker.js', baseURL), { type: 'module' })
        : !sameOrigin(new URL(import.meta.url)) ? moduleWorker(new URL(WORKER_JS, import.meta.url), { type: 'module' })
          : new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
      const h = {
        onmessage: null, ondeath: null, dead: false,
        post: (m, t) => w.postMessage(m, t || []),
        terminate: () => { h.dead = true; w.terminate(); },
        ref: () => {},
        unref: () => {},
      };
      w.onmessage = (ev) => h.onmessage(ev.data);
      // An uncaught error in a Web Worker does not end it; treat it as a crash
      // all the same: its state is not to be trusted.
      w.onerror = (ev) => { ev.preventDefault(); if (!h.dead) h.ondeath(String(ev.message || 'an uncaught error in the worker')); };
      w.onmessageerror = () => { if (!h.dead) h.ondeath('a message from the worker could not be read'); };
      return h;
    },
  };
}

/** Where a relative baseURL is resolved: the page (or the worker's script). */
export function baseForRelative() {
  if (typeof document === 'object' && document && document.baseURI) return document.baseURI;
  if (typeof location === 'object' && location && location.href) return location.href;
  return undefined;
}
