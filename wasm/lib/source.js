// source.js - shipping a function by its source text. Workers compile it
// with new Function in their own realm, so it must be self-contained: this
// checks what can be checked on the main thread, before any work starts.

import { findFreeVariables } from './freevars.js';

const checked = new Map(); // source -> null (fine) or the Error to throw

function nativeName(fn) {
  return fn.name ? ` (${fn.name.replace(/^bound /, '')})` : '';
}

/**
 * The function's source, or throws a TypeError: not a function, a built-in or
 * bound function (no source), an async or generator function (workers run
 * items synchronously), a class, or a function using a variable that is
 * neither its own nor a global: a closure that would fail in the worker.
 */
export function functionSource(api, fn, compile) {
  if (typeof fn !== 'function') throw new TypeError(`${api}: fn must be a function, got ${fn === null ? 'null' : typeof fn}`);
  const src = Function.prototype.toString.call(fn);
  const kind = Object.prototype.toString.call(fn);
  if (/\{\s*\[native code\]\s*\}\s*$/.test(src))
    throw new TypeError(`${api}: fn is a built-in or bound function${nativeName(fn)}, which has no source to ship to the ` +
      `workers: wrap it in a function of your own, e.g. x => Math.sqrt(x)`);
  if (kind === '[object AsyncFunction]' || kind === '[object AsyncGeneratorFunction]')
    throw new TypeError(`${api}: fn is an async function: workers run each item synchronously, so fn must return its result (not a Promise)`);
  if (kind === '[object GeneratorFunction]')
    throw new TypeError(`${api}: fn is a generator function: it must return its result directly`);
  if (/^class[\s{]/.test(src)) throw new TypeError(`${api}: fn is a class, not a function`);
  let known = checked.get(src);
  if (known === undefined) {
    known = null;
    try {
      compile(src);
      const free = findFreeVariables(src);
      if (free.length) {
        const name = free[0];
        known = new TypeError(`${api}: the function uses \`${name}\`, which is not defined in the worker: functions are ` +
          'shipped by source and must be self-contained; pass it through args/kwargs' +
          (free.length > 1 ? ` (also uses: ${free.slice(1).join(', ')})` : ''));
        known.variable = name;
      }
    } catch (e) {
      known = new TypeError(`${api}: fn's source does not compile on its own (${e.message}); functions are shipped by source`);
    }
    if (checked.size > 512) checked.delete(checked.keys().next().value);
    checked.set(src, known);
  }
  if (known) throw known;
  return src;
}
