// source.js - what a call's `fn` is, checked on the main thread before any
// work starts. Two ways to give it:
//  - a function, shipped by its source text: workers compile it with
//    new Function in their own realm, so it must be self-contained, and the
//    page must allow eval;
//  - module mode, { module: URL, export: 'name' }: every worker imports the
//    ES module and calls that export. Nothing is evaluated from a string, so
//    this works under a Content-Security-Policy without 'unsafe-eval'.
// Async functions and module mode run on the workers engine (o.viaWorkers,
// lib/loader.js poolFor): its workers own their event loop and can await,
// while the threaded engine's pthreads run items inside a call from C and
// the single engine inside a slice of pm_map, neither of which can await.
// (A pthread's worker could import a module, Node's and a classic one
// included, but a pthread could not wait for it mid-call.)

import { findFreeVariables, parserWait } from './freevars.js';

const checked = new Map(); // source -> null (fine) or the Error to throw
// source -> its free variables, found by checkAhead while the engine loaded
// (taken by that call's functionSource, whose answer `checked` then keeps).
const parsedAhead = new Map();

/**
 * Before a call's check (functionSource, which is synchronous): null when
 * it can answer at once, which is the rule once acorn is loaded, and for
 * the small closed functions its quick scan reads (freevars.js parserWait).
 * Else acorn loads, and parses fn as soon as it is there, so that
 * functionSource finds the answer ready; the promise returned settles then.
 * The first call runs this while the engine loads, when the main thread
 * idles (the threaded engine waits ~20 ms for its pthread worker); after
 * the load, acorn's first parse (3-16 ms cold) would delay the call.
 * Errors are left for functionSource to report.
 */
export function checkAhead(fn) {
  if (typeof fn !== 'function') return null;
  const src = Function.prototype.toString.call(fn);
  if (checked.has(src) || parsedAhead.has(src)) return null;
  const wait = parserWait(src);
  return wait && wait.then(() => {
    if (checked.has(src) || parsedAhead.has(src)) return;
    const free = findFreeVariables(src);
    if (free && parsedAhead.size < 64) parsedAhead.set(src, free);   // (a failed load leaves its calls' here)
  }).catch(() => {});
}

// Sources of plain functions found to return promises (lib/map.js): their
// later calls go straight to the workers engine.
const asyncSources = new Set();
export function learnAsync(src) {
  if (asyncSources.size > 512) asyncSources.delete(asyncSources.values().next().value);
  asyncSources.add(src);
}

// How module mode travels as a "source": a prefix no function's source text
// can start with, then JSON [url, exportName] (lib/worker.js reads it).
export const MODULE_MARK = '\0parmap-module:';

/** The TypeError for a `fn` that is neither a function nor a module mode object. */
export function checkFn(api, fn) {
  if (typeof fn === 'function' || isModuleFn(fn)) return;
  throw new TypeError(`${api}: fn must be a function or { module: URL, export: 'name' }, got ${fn === null ? 'null' : typeof fn}`);
}

function isModuleFn(fn) {
  return fn !== null && typeof fn === 'object' && 'module' in fn;
}

/** Module mode: { module, export = 'default' } as its marker source. */
function moduleSource(api, fn, o) {
  for (const k of Object.keys(fn))
    if (k !== 'module' && k !== 'export') throw new RangeError(`${api}: fn { module, export }: unknown key ${k}`);
  const name = fn.export === undefined ? 'default' : fn.export;
  if (typeof name !== 'string' || !name) throw new TypeError(`${api}: fn.export must be the name of an export (a string), got ${typeof name}`);
  const m = fn.module;
  let url;
  if (m instanceof URL) url = m;
  else if (typeof m === 'string') {
    const base = typeof document === 'object' && document && document.baseURI ? document.baseURI
      : typeof location === 'object' && location && location.href ? location.href : undefined;
    try {
      // Node: an absolute path works too; a relative one has no sound base
      // (the caller's file is unknown here): new URL('./x.js', import.meta.url).
      url = base ? new URL(m, base) : m.startsWith('/') ? new URL(m, 'file:///') : new URL(m);
    } catch {
      throw new RangeError(`${api}: fn.module must be a URL (e.g. new URL('./work.js', import.meta.url)), got '${m}'`);
    }
  } else throw new TypeError(`${api}: fn.module must be a URL or a string, got ${m === null ? 'null' : typeof m}`);
  if (!/^(https?|file|blob|data):$/.test(url.protocol))
    throw new RangeError(`${api}: fn.module must be an http(s), file, blob or data URL, got ${url.protocol}`);
  if (o) o.viaWorkers = true;
  return MODULE_MARK + JSON.stringify([url.href, name]);
}

/** Did this error come from a Content-Security-Policy refusing eval? */
function evalRefused(e) {
  return e instanceof EvalError || /unsafe-eval|Content Security Policy/i.test(String(e && e.message));
}

/** Names compilers give the helpers they call from code compiled for an
 * older target (TypeScript's __awaiter, esbuild's __async, Babel's
 * _asyncToGenerator...): a function's source then uses them undefined. */
function compilerHelper(name) {
  return /^__[a-z]\w*$/.test(name) ||
    /^_?(asyncToGenerator|regeneratorRuntime|defineProperty|objectSpread2?|toConsumableArray|slicedToArray|classCallCheck|createClass|typeof|objectWithoutProperties)$/.test(name);
}

/** istanbul's per-file counter function (cov_1x2y3z().s[4]++). */
const coverageCounter = (name) => /^cov_[a-z0-9]+$/i.test(name);

function nativeName(fn) {
  const name = String(fn.name).replace(/^bound /, '');
  return name ? ` (${name})` : '';
}

/**
 * The function's source (or module mode's marker), or throws a TypeError:
 * not a function, a built-in or bound function (no source), a generator
 * function, a class, or a function using a variable that is neither its own
 * nor a global: a closure that would fail in the worker. An EvalError when
 * the page forbids eval (CSP), pointing to module mode. Sets o.viaWorkers
 * for what must run on the workers engine (async functions, module mode).
 */
export function functionSource(api, fn, compile, o) {
  if (isModuleFn(fn)) return moduleSource(api, fn, o);
  checkFn(api, fn);
  const src = Function.prototype.toString.call(fn);
  const kind = Object.prototype.toString.call(fn);
  if (/\{\s*\[native code\]\s*\}\s*$/.test(src)) {
    // A bound function's name starts with 'bound ' (bind sets it so).
    if (/^bound /.test(String(fn.name)))
      throw new TypeError(`${api}: fn is a bound function${nativeName(fn)}, which has no source to ship to the workers: ` +
        'pass a function of your own, and the values it was bound to with option args (fn(item, ...args))');
    throw new TypeError(`${api}: fn is a built-in function${nativeName(fn)}, which has no source to ship to the ` +
      `workers: wrap it in a function of your own, e.g. x => Math.sqrt(x)`);
  }
  if (kind === '[object GeneratorFunction]' || kind === '[object AsyncGeneratorFunction]')
    throw new TypeError(`${api}: fn is a generator function: it must return its result (or a promise of it)`);
  if (/^class[\s{]/.test(src)) throw new TypeError(`${api}: fn is a class, not a function`);
  let known = checked.get(src);
  if (known === undefined) {
    known = null;
    try {
      compile(src);
      // (findFreeVariables is null only while acorn is needed and not
      // loaded; a call's check waits for it: checkAhead)
      const free = parsedAhead.get(src) || findFreeVariables(src) || [];
      if (free.length) {
        const name = free.find(coverageCounter) || free.find(compilerHelper) || free[0];
        const also = free.filter((v) => v !== name);
        const why = coverageCounter(name)
          ? ', a counter that coverage instrumentation (istanbul: nyc, jest --coverage) put into its source, which ' +
            'is not defined in the worker: measure coverage with V8 instead (c8, jest --coverageProvider=v8), or ' +
            'leave this file out of the instrumentation'
          : compilerHelper(name)
            ? ', a helper your compiler (TypeScript, Babel, esbuild...) put into its source, which is not defined in ' +
              'the worker: compile for a newer target (ES2017 or later, where async functions, spread and classes ' +
              'are native), or use module mode'
            : ', which is not defined in the worker: functions are shipped by source and must be self-contained; ' +
              'pass it through args/kwargs';
        known = new TypeError(`${api}: the function uses \`${name}\`${why}` + (also.length ? ` (also uses: ${also.join(', ')})` : ''));
        known.variable = name;
      }
    } catch (e) {
      known = evalRefused(e)
        ? new EvalError(`${api}: this page's Content-Security-Policy forbids eval ('unsafe-eval'), which a function ` +
          `shipped by its source needs (workers compile it with new Function): use module mode instead, ` +
          `${api}({ module: new URL('./work.js', import.meta.url), export: 'name' }, items) (${e.message})`)
        : new TypeError(`${api}: fn's source does not compile on its own (${e.message}); functions are shipped by source`);
    }
    parsedAhead.delete(src);
    if (checked.size > 512) checked.delete(checked.keys().next().value);
    checked.set(src, known);
  }
  if (known) throw known;
  if (o && (kind === '[object AsyncFunction]' || asyncSources.has(src))) o.viaWorkers = true;
  return src;
}
