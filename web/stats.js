// stats.js - the live numbers under the progress bar: done/total, rate, ETA
// and elapsed time, from the progress reports of a run (onProgress), and the
// speedup of a run against the 1-thread run of the same work.
//
// Rate and ETA are computed here from done / elapsed of the whole run rather
// than taken from one call's report, because a Mandelbrot run is a sequence
// of calls (one per block of rows) and the page shows the run, not the call.

const RENDER_MS = 100;

export function formatDuration(s) {
  if (!Number.isFinite(s) || s < 0) return '–';
  if (s < 10) return `${s.toFixed(2)} s`;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${String(Math.round(s - 60 * m)).padStart(2, '0')} s`;
}

export function formatCount(n) {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–';
}

/** 1234567 -> "1.23 M" (rates). */
export function formatSI(x) {
  if (!Number.isFinite(x)) return '–';
  const units = [[1e9, 'G'], [1e6, 'M'], [1e3, 'k']];
  for (const [v, u] of units) if (Math.abs(x) >= v) return `${(x / v).toPrecision(3)} ${u}`;
  return x >= 100 ? x.toFixed(0) : x.toPrecision(3);
}

/**
 * A run's progress. The bar and the numbers are written on every report, and
 * the elapsed time also ticks by itself (reports come ~10 times a second while
 * work runs, but not while, say, a slow first item is computed).
 */
export class Tracker {
  constructor(els) {
    this.els = els; // { progress, done, unit, rate, eta, elapsed }
    this.timer = 0;
    this.total = 0;
    this.done = 0;
    this.unit = 'items';
    this.t0 = 0;
    this.rendered = 0;
    this.pending = 0;
  }

  start(total, unit) {
    this.stop();
    this.total = total;
    this.unit = unit;
    this.done = 0;
    this.t0 = performance.now();
    this.els.progress.value = 0;
    this.els.progress.textContent = '0%';
    this.timer = setInterval(() => this.renderElapsed(), 250);
    this.render();
  }

  elapsed() {
    return (performance.now() - this.t0) / 1000;
  }

  /** A progress report: `done` items of the run finished. The page is
   * redrawn at most every RENDER_MS (reports of a Mandelbrot run come from
   * many calls; on a machine with as many cores as threads, every repaint
   * takes time from a worker), and at once for the last one. */
  update(done) {
    if (done < this.done) return; // reports of one call can arrive late
    this.done = Math.min(done, this.total);
    const wait = RENDER_MS - (performance.now() - this.rendered);
    if (wait <= 0 || this.done === this.total) this.render();
    else if (!this.pending) this.pending = setTimeout(() => this.render(), wait);
  }

  render() {
    const { els } = this;
    if (this.pending) clearTimeout(this.pending);
    this.pending = 0;
    this.rendered = performance.now();
    const frac = this.total > 0 ? this.done / this.total : 0;
    els.progress.value = frac;
    els.progress.textContent = `${Math.round(frac * 100)}%`;
    els.done.textContent = `${formatCount(this.done)} / ${formatCount(this.total)}`;
    els.unit.textContent = this.unit;
    const t = this.elapsed();
    const rate = t > 0 ? this.done / t : NaN;
    els.rate.textContent = this.done > 0 ? `${formatSI(rate)} ${this.unit}/s` : '–';
    els.eta.textContent = this.done > 0 && this.done < this.total ? formatDuration((this.total - this.done) / rate)
      : this.done >= this.total && this.total > 0 ? '0 s' : '–';
    this.renderElapsed();
  }

  renderElapsed() {
    this.els.elapsed.textContent = formatDuration(this.elapsed());
  }

  /** The run ended (done, cancelled or failed): show the last report, then
   * freeze the numbers. */
  stop() {
    if (this.pending) this.render();
    if (this.timer) clearInterval(this.timer);
    this.timer = 0;
    if (this.done < this.total) this.els.eta.textContent = '–'; // it will not finish
  }
}

/**
 * Times of 1-thread runs by the work they did (mode and parameters, not the
 * thread count or chunk size), for the speedup of later runs of that work.
 */
export class Baselines {
  constructor() {
    this.times = new Map();
  }

  record(key, threads, seconds) {
    if (threads === 1) this.times.set(key, seconds);
  }

  /** t1 / t, or null when the work was never run with 1 thread. */
  speedup(key, seconds) {
    const t1 = this.times.get(key);
    return t1 && seconds > 0 ? t1 / seconds : null;
  }
}
