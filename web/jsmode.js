// jsmode.js - the "JavaScript function" mode: example functions, turning the
// textarea's text into a function, and a short account of the results.
//
// parmap ships a function to the workers by its source text, so the text
// typed here is compiled once on the page (to report syntax errors at once)
// and the package checks that it is self-contained before any work starts.

export const EXAMPLES = {
  prime: `// true when n is a prime number
(n) => {
  if (n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) {
    if (n % d === 0) return false;
  }
  return true;
}`,
  collatz: `// steps of the Collatz sequence from n down to 1
(n) => {
  let steps = 0;
  while (n > 1) {
    n = n % 2 ? 3 * n + 1 : n / 2;
    steps++;
  }
  return steps;
}`,
  double: `// the cheapest function there is: what the pool costs per item
(x) => x * 2`,
  digits: `// sum of the decimal digits of n squared
(n) => {
  let s = 0;
  for (const c of String(BigInt(n) ** 2n)) s += c.charCodeAt(0) - 48;
  return s;
}`,
  runaway: `// every 2500th item loops forever: only a timeout stops it
// (its worker is terminated and replaced; the other items finish)
(n) => {
  if (n % 2500 === 1234) for (;;);
  let s = 0;
  for (let d = 1; d <= 2000; d++) s += n % d;
  return s;
}`,
};

/** Default ranges per example: [from, to). */
export const RANGES = {
  prime: [1, 2000001],
  collatz: [1, 1000001],
  double: [0, 1000000],
  digits: [1, 300001],
  runaway: [0, 10000],
};

/** Default timeout per item (ms, 0: none) per example. */
export const TIMEOUTS = { runaway: 200 };

export const MAX_ITEMS = 10_000_000; // the heap is fixed (128 MB); 8 bytes per item and result

/** The function in `text` (an expression such as `(n) => n * 2` or
 * `function f(n) { ... }`), or throws a SyntaxError/TypeError with a message
 * for the page. */
export function compileFunction(text) {
  const src = text.trim();
  if (!src) throw new TypeError('Type a function, e.g. (n) => n * 2');
  let fn;
  try {
    // eslint-disable-next-line no-new-func -- the user's own code, on the user's page
    fn = new Function(`return (\n${src}\n);`)();
  } catch (e) {
    throw new SyntaxError(`The function does not compile: ${e.message}`);
  }
  if (typeof fn !== 'function') throw new TypeError(`The text must be a function expression, e.g. (n) => n * 2 (it gave a ${typeof fn})`);
  return fn;
}

/** from..to (excluded) as a Float64Array, which parmap copies into the heap
 * in one go. */
export function rangeItems(from, to) {
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to)) throw new RangeError('From and To must be whole numbers');
  if (to <= from) throw new RangeError('To must be greater than From');
  if (to - from > MAX_ITEMS) throw new RangeError(`At most ${MAX_ITEMS.toLocaleString('en-US')} numbers at a time`);
  const items = new Float64Array(to - from);
  for (let i = 0; i < items.length; i++) items[i] = from + i;
  return items;
}

function show(v) {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (v === undefined || typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 60 ? s.slice(0, 57) + '…' : s;
  } catch {
    return String(v);
  }
}

/**
 * What to show of `results` (results[i] is fn(items[i])): a summary line and
 * a list. Booleans: how many are true and which items (primes); numbers: the
 * sum and the largest with its item; anything else: the first pairs.
 */
export function summarise(items, results) {
  const failed = [];
  for (let i = 0; i < results.length; i++) {
    const r = results[i];
    if (r instanceof Error && typeof r.code === 'string') failed.push(i);
  }
  if (failed.length) {
    const bad = new Set(failed);
    const ok = results.filter((_, i) => !bad.has(i));
    const okItems = Array.from(items).filter((_, i) => !bad.has(i));
    const rest = summarise(okItems, ok);
    const codes = [...new Set(failed.map((i) => results[i].code))].join(', ');
    return {
      summary: `${failed.length.toLocaleString('en-US')} item${failed.length > 1 ? 's' : ''} failed (${codes}): ` +
        `${failed.slice(0, 20).map((i) => items[i]).join(', ')}${failed.length > 20 ? ', …' : ''}. ` + rest.summary,
      list: rest.list,
    };
  }
  const n = results.length;
  const LIST = 200;
  if (n && results.every((r) => typeof r === 'boolean')) {
    const hits = [];
    let count = 0;
    for (let i = 0; i < n; i++) {
      if (results[i]) {
        if (hits.length < LIST) hits.push(items[i]);
        count++;
      }
    }
    let last = [];
    for (let i = n - 1; i >= 0 && last.length < 5 && count > LIST; i--) if (results[i]) last.unshift(items[i]);
    return {
      summary: `${count.toLocaleString('en-US')} of ${n.toLocaleString('en-US')} numbers give true.`,
      list: hits.join(', ') + (count > LIST ? `, … ${last.join(', ')}` : ''),
    };
  }
  if (n && results.every((r) => typeof r === 'number')) {
    let sum = 0, best = 0;
    for (let i = 0; i < n; i++) {
      sum += results[i];
      if (results[i] > results[best]) best = i;
    }
    const pairs = [];
    for (let i = 0; i < Math.min(n, 20); i++) pairs.push(`f(${items[i]}) = ${show(results[i])}`);
    return {
      summary: `${n.toLocaleString('en-US')} results; sum ${sum.toLocaleString('en-US')}; ` +
        `largest f(${items[best]}) = ${show(results[best])}.`,
      list: pairs.join(', ') + (n > 20 ? ', …' : ''),
    };
  }
  const pairs = [];
  for (let i = 0; i < Math.min(n, 20); i++) pairs.push(`f(${items[i]}) = ${show(results[i])}`);
  return { summary: `${n.toLocaleString('en-US')} results.`, list: pairs.join(', ') + (n > 20 ? ', …' : '') };
}
