// options.js - checking the arguments of parmap / imap / mapKernel before any
// work starts: a TypeError for a wrong type, a RangeError for a bad value,
// each naming the option.

const KNOWN = new Set(['threads', 'chunksize', 'ordered', 'star', 'kwstar', 'args', 'kwargs', 'exception',
  'total', 'onProgress', 'signal', 'timeout', 'concurrency']);

// Items a worker keeps in flight when fn returns promises (async functions,
// module mode): enough to hide I/O-like waits (16 items of 1 ms overlap into
// ~1 ms), few enough that one worker does not start a flood of requests.
export const DEFAULT_CONCURRENCY = 16;

function isPlainObject(v) {
  if (v === null || typeof v !== 'object') return false;
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

function intOption(api, name, v, min, max) {
  if (typeof v !== 'number') throw new TypeError(`${api}: option ${name} must be a number, got ${typeof v}`);
  if (!Number.isInteger(v) || v < min || v > max)
    throw new RangeError(`${api}: option ${name} must be an integer from ${min} to ${max}, got ${v}`);
  return v;
}

/**
 * Validated options with defaults. `extra` (mapKernel) lists more allowed
 * names (the kernel's parameters); anything else is a RangeError so that a
 * typo (`chunkSize`) is not silently ignored.
 */
export function checkOptions(api, opts, extra) {
  if (opts === undefined || opts === null) opts = {};
  if (typeof opts !== 'object') throw new TypeError(`${api}: options must be an object, got ${typeof opts}`);
  for (const k of Object.keys(opts)) {
    if (!KNOWN.has(k) && !(extra && extra.has(k)))
      throw new RangeError(`${api}: unknown option ${k} (known: ${[...KNOWN, ...(extra || [])].join(', ')})`);
  }
  const o = {
    threads: undefined, chunksize: 0, ordered: true, star: false, kwstar: false, args: [], kwargs: undefined,
    raise: true, total: undefined, onProgress: undefined, signal: undefined, timeout: 0,
    concurrency: DEFAULT_CONCURRENCY,
  };
  if (opts.concurrency !== undefined) o.concurrency = intOption(api, 'concurrency', opts.concurrency, 1, 65536);
  if (opts.threads !== undefined) o.threads = intOption(api, 'threads', opts.threads, 1, 1024);
  if (opts.chunksize !== undefined && opts.chunksize !== 0)
    o.chunksize = intOption(api, 'chunksize', opts.chunksize, 1, 2 ** 31 - 1);
  if (opts.ordered !== undefined) {
    if (typeof opts.ordered !== 'boolean') throw new TypeError(`${api}: option ordered must be a boolean, got ${typeof opts.ordered}`);
    o.ordered = opts.ordered;
  }
  if (opts.star !== undefined) {
    if (opts.star !== true && opts.star !== false && opts.star !== null)
      throw new TypeError(`${api}: option star must be false, true or null, got ${String(opts.star)}`);
    o.star = opts.star;
  }
  if (opts.kwstar !== undefined) {
    if (typeof opts.kwstar !== 'boolean') throw new TypeError(`${api}: option kwstar must be a boolean, got ${typeof opts.kwstar}`);
    o.kwstar = opts.kwstar;
  }
  if (opts.args !== undefined) {
    if (opts.args === null || typeof opts.args !== 'object' || typeof opts.args[Symbol.iterator] !== 'function' ||
        typeof opts.args === 'string')
      throw new TypeError(`${api}: option args must be an array, got ${opts.args === null ? 'null' : typeof opts.args}`);
    o.args = Array.from(opts.args);
  }
  if (opts.kwargs !== undefined) {
    if (!isPlainObject(opts.kwargs) && !(opts.kwargs instanceof Map))
      throw new TypeError(`${api}: option kwargs must be a plain object, got ${opts.kwargs === null ? 'null' : typeof opts.kwargs}`);
    o.kwargs = opts.kwargs instanceof Map ? Object.fromEntries(opts.kwargs) : { ...opts.kwargs };
  }
  if (opts.exception !== undefined) {
    if (typeof opts.exception !== 'string') throw new TypeError(`${api}: option exception must be 'raise' or 'return', got ${typeof opts.exception}`);
    if (opts.exception !== 'raise' && opts.exception !== 'return')
      throw new RangeError(`${api}: option exception must be 'raise' or 'return', got '${opts.exception}'`);
    o.raise = opts.exception === 'raise';
  }
  if (opts.total !== undefined && opts.total !== null) o.total = intOption(api, 'total', opts.total, 0, Number.MAX_SAFE_INTEGER);
  if (opts.onProgress !== undefined && opts.onProgress !== null) {
    if (typeof opts.onProgress !== 'function') throw new TypeError(`${api}: option onProgress must be a function, got ${typeof opts.onProgress}`);
    o.onProgress = opts.onProgress;
  }
  if (opts.signal !== undefined && opts.signal !== null) {
    const s = opts.signal;
    if (typeof s !== 'object' || typeof s.aborted !== 'boolean' || typeof s.addEventListener !== 'function')
      throw new TypeError(`${api}: option signal must be an AbortSignal`);
    o.signal = s;
  }
  if (opts.timeout !== undefined) {
    const t = opts.timeout;
    if (typeof t !== 'number' || !(t > 0) || t > 2 ** 31 - 1)
      throw new RangeError(`${api}: option timeout must be a positive number of milliseconds (up to 2^31-1), got ${
        typeof t === 'number' ? t : t === null ? 'null' : typeof t}`);
    o.timeout = t;
  }
  return o;
}

/** The items of parmap as an array (TypeError when not iterable). Typed
 * arrays are kept as they are (the Float64Array fast path). */
export function toList(api, items) {
  if (Array.isArray(items) || ArrayBuffer.isView(items) && !(items instanceof DataView)) return items;
  if (items === null || items === undefined || typeof items[Symbol.iterator] !== 'function') {
    const what = items === null ? 'null' : typeof items;
    const hint = items && typeof items[Symbol.asyncIterator] === 'function' ? ' (async iterables go to imap)' : '';
    throw new TypeError(`${api}: items must be an iterable (an array, a typed array, a generator...), got ${what}${hint}`);
  }
  return Array.from(items);
}
