// app.js - the demo page: wires the controls to parmap-wasm.
//
// On load it asks the package which build runs (info()) and says why in the
// banner; the thread choices follow (1..cores with the threaded build, 1 with
// the single-thread one). A run is a sequence of mapKernel calls (Mandelbrot,
// see render.js) or one parmap call (a typed-in function, see jsmode.js),
// with an AbortController behind Cancel and the progress reports feeding the
// bar and the numbers (stats.js). The state of the page is also written to
// <body data-state="loading|ready|running|done|cancelled|error"> for tests.

import { parmap, mapKernel, info, configure } from 'parmap-wasm';

// ?build=threaded|workers|single forces an engine (the default: the best
// this page allows).
const forced = new URLSearchParams(location.search).get('build');
if (forced) configure({ build: forced });
import { renderMandelbrot } from './render.js';
import { EXAMPLES, RANGES, TIMEOUTS, compileFunction, rangeItems, summarise } from './jsmode.js';
import { Tracker, Baselines, formatDuration } from './stats.js';

const $ = (id) => document.getElementById(id);
const els = {
  form: $('controls'), banner: $('banner'), status: $('status'),
  run: $('run'), cancel: $('cancel'), compare: $('compare'),
  threads: $('threads'), chunk: $('chunk'), threadsNote: $('threads-note'),
  view: $('view'), size: $('size'), maxIter: $('maxiter'),
  example: $('example'), fn: $('fn'), from: $('from'), to: $('to'), timeout: $('timeout'),
  canvas: $('canvas'), mandelbrotView: $('mandelbrot-view'), functionView: $('function-view'),
  mandelbrotOptions: $('mandelbrot-options'), functionOptions: $('function-options'),
  progressBox: $('progress-box'), resultSummary: $('result-summary'), resultList: $('result-list'), speedup: $('stat-speedup'),
};
const tracker = new Tracker({
  progress: $('progress'), done: $('stat-done'), unit: $('stat-unit'), rate: $('stat-rate'), eta: $('stat-eta'), elapsed: $('stat-elapsed'),
});
const baselines = new Baselines();
let running = null; // { controller } while a run is on
let build = null;
let parallel = false; // threaded or workers engine

function setState(state, message) {
  document.body.dataset.state = state;
  if (message !== undefined) els.status.textContent = message;
  els.status.classList.toggle('error', state === 'error');
}

const mode = () => els.form.elements.mode.value;

function showMode() {
  const m = mode();
  els.mandelbrotOptions.hidden = m !== 'mandelbrot';
  els.mandelbrotView.hidden = m !== 'mandelbrot';
  els.functionOptions.hidden = m !== 'function';
  els.functionView.hidden = m !== 'function';
}

function loadExample() {
  els.fn.value = EXAMPLES[els.example.value];
  [els.from.value, els.to.value] = RANGES[els.example.value];
  els.timeout.value = String(TIMEOUTS[els.example.value] || 0);
}

/* ------------------------------------------------------------ the banner */

async function start() {
  setState('loading');
  let i;
  try {
    i = await info();
  } catch (e) {
    els.banner.dataset.build = 'error';
    els.banner.textContent = `The WebAssembly module did not load: ${e.message}`;
    setState('error', 'The package could not be loaded; see the banner.');
    return;
  }
  build = i.build;
  els.banner.dataset.build = i.build;
  if (i.build === 'threaded') {
    els.banner.innerHTML = `<strong>Threaded build</strong>: ${i.cpuCount} web-worker threads share one WebAssembly memory. ` +
      'This page is <em>cross-origin isolated</em> (served with COOP/COEP headers), so the browser allows SharedArrayBuffer.';
  } else if (i.build === 'workers') {
    els.banner.innerHTML = `<strong>Workers engine</strong>: ${i.threads} dedicated web workers run in parallel, each with ` +
      'its own WebAssembly instance; chunks travel as transferable buffers. This page is <em>not cross-origin isolated</em> ' +
      '(no COOP/COEP headers), so there is no SharedArrayBuffer, and none is needed.';
  } else {
    els.banner.innerHTML = '<strong>Single-thread build</strong>: the same API runs on this page\'s own thread, in short ' +
      `slices (${forced === 'single' ? 'asked for with <code>?build=single</code>' : 'this browser has no Web Workers'}).`;
  }
  parallel = i.build !== 'single';
  const max = parallel ? Math.max(1, i.threads) : 1;
  for (let t = 1; t <= max; t++) els.threads.add(new Option(String(t), String(t), false, t === max));
  els.threads.disabled = max === 1;
  els.threadsNote.hidden = parallel;
  els.threadsNote.textContent = 'One thread: the single-thread build runs (see above).';
  setIdle();
  setState('ready', `Ready: ${i.build} build, up to ${max} thread${max > 1 ? 's' : ''}.`);
}

/* --------------------------------------------------------------- running */

function setIdle() {
  running = null;
  els.run.disabled = false;
  els.cancel.disabled = true;
  els.compare.disabled = !parallel || Number(els.threads.value) < 2;
  for (const f of els.form.querySelectorAll('fieldset')) f.disabled = false;
  els.threads.disabled = !parallel || els.threads.options.length < 2;
}

function setRunning(controller) {
  running = { controller };
  const hadFocus = els.form.contains(document.activeElement);
  els.run.disabled = true;
  els.compare.disabled = true;
  els.cancel.disabled = false;
  for (const f of els.form.querySelectorAll('fieldset')) f.disabled = true;
  // The focused button is now disabled: keep the keyboard on the form.
  if (hadFocus) els.cancel.focus({ preventScroll: true });
}

/** The work a run does, without how (threads, chunks): the key of its 1-thread time. */
function workKey() {
  if (mode() === 'mandelbrot') return `m:${els.view.value}:${els.size.value}:${els.maxIter.value}`;
  return `f:${els.fn.value.trim()}:${els.from.value}:${els.to.value}`;
}

async function runMandelbrot(threads, chunksize, signal) {
  const [width, height] = els.size.value.split('x').map(Number);
  const maxIter = Math.round(Number(els.maxIter.value));
  if (!(maxIter >= 16 && maxIter <= 100000)) throw new RangeError('Max. iterations must be from 16 to 100000');
  const { canvas } = els;
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  const ctx = canvas.getContext('2d', { alpha: false }); // opaque: cheaper to composite
  ctx.fillStyle = getComputedStyle(canvas).getPropertyValue('--canvas-bg') || '#111';
  ctx.fillRect(0, 0, width, height);
  tracker.start(height, 'rows');
  const r = await renderMandelbrot({
    mapKernel, ctx, width, height, maxIter, view: els.view.value, threads, chunksize, signal,
    onRows: (done) => tracker.update(done),
  });
  return `${width}×${height}, ${r.blocks} blocks`;
}

async function runFunction(threads, chunksize, signal) {
  const fn = compileFunction(els.fn.value);
  const items = rangeItems(Number(els.from.value), Number(els.to.value));
  tracker.start(items.length, 'items');
  els.resultSummary.textContent = 'Running…';
  els.resultList.textContent = '';
  const timeout = Number(els.timeout.value);
  if (!(timeout >= 0)) throw new RangeError('The timeout must be 0 (none) or a number of milliseconds');
  const results = await parmap(fn, items, {
    threads, chunksize, signal,
    onProgress: ({ done }) => tracker.update(done),
    // With a timeout, items over it fail (ETIMEOUT) in place and the rest goes on.
    ...(timeout > 0 ? { timeout, exception: 'return' } : {}),
  });
  const { summary, list } = summarise(items, results);
  els.resultSummary.textContent = summary;
  els.resultList.textContent = list;
  return `${items.length.toLocaleString('en-US')} items`;
}

function showNoResults(why) {
  els.resultSummary.textContent = why;
  els.resultList.textContent = '';
}

/** One run with `threads` threads; resolves with its seconds, or null when it
 * did not finish. */
async function run(threads) {
  if (running) return null;
  const controller = new AbortController();
  const chunksize = Number(els.chunk.value);
  const key = workKey();
  const m = mode();
  setRunning(controller);
  // One column (phones): bring the progress and the picture into view.
  const box = els.progressBox.getBoundingClientRect();
  if (box.top < 0 || box.top > innerHeight * 0.6) els.progressBox.scrollIntoView({ block: 'start', behavior: 'smooth' });
  setState('running', `Running with ${threads} thread${threads > 1 ? 's' : ''}…`);
  els.speedup.textContent = '–';
  let seconds = null;
  try {
    const t0 = performance.now();
    const what = m === 'mandelbrot'
      ? await runMandelbrot(threads, chunksize, controller.signal)
      : await runFunction(threads, chunksize, controller.signal);
    seconds = (performance.now() - t0) / 1000;
    tracker.update(tracker.total);
    tracker.stop();
    baselines.record(key, threads, seconds);
    const s = baselines.speedup(key, seconds);
    els.speedup.textContent = !parallel ? '– (single-thread build)'
      : threads === 1 ? '1.00× (this is the 1-thread run)'
      : s ? `${s.toFixed(2)}× (1 thread: ${formatDuration(seconds * s)})` : 'no 1-thread run yet';
    document.body.dataset.seconds = seconds.toFixed(4);
    setState('done', `Done in ${formatDuration(seconds)} with ${threads} thread${threads > 1 ? 's' : ''} (${what}).`);
  } catch (e) {
    tracker.stop();
    if (e && e.name === 'AbortError') {
      const drawn = typeof e.rowsDrawn === 'number' ? `, ${e.rowsDrawn.toLocaleString('en-US')} drawn` : '';
      setState('cancelled', `Cancelled after ${formatDuration(tracker.elapsed())}: ` +
        `${tracker.done.toLocaleString('en-US')} of ${tracker.total.toLocaleString('en-US')} ${tracker.unit} were done${drawn}.`);
      if (m === 'function') showNoResults('Cancelled: no results.');
    } else {
      setState('error', `Error: ${e && e.message ? e.message : e}`);
      if (m === 'function') showNoResults('No results.');
    }
  } finally {
    const focusRun = document.activeElement === els.cancel || document.activeElement === document.body;
    setIdle();
    if (focusRun) els.run.focus({ preventScroll: true }); // the picture stays in view
  }
  return seconds;
}

async function compare() {
  const n = Number(els.threads.value);
  const t1 = await run(1);
  if (t1 === null) return;
  await run(n);
}

/* ---------------------------------------------------------------- events */

els.form.addEventListener('submit', (e) => {
  e.preventDefault();
  if (!running && build) run(Number(els.threads.value));
});
els.cancel.addEventListener('click', () => running && running.controller.abort());
els.compare.addEventListener('click', () => compare());
els.threads.addEventListener('change', () => setIdle());
for (const r of els.form.elements.mode) r.addEventListener('change', showMode);
els.example.addEventListener('change', loadExample);
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && running) {
    running.controller.abort();
  } else if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && !running && build) {
    e.preventDefault();
    run(Number(els.threads.value));
  }
});

loadExample();
showMode();
start();
