// The free-variable check's quick scan (lib/freevars-scan.js), which keeps
// acorn off the first call: it may say "closed" only where acorn finds no
// free variable, so a user sees the same answers with it as without it.
// Checked on small functions of the kinds users write, on sources built to
// mislead a scanner (a regular expression holding a quote, a label, a key
// beside a shorthand), and then every source at once against acorn.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scanFunction } from '../lib/freevars-scan.js';
import { useParser, parserWait, findFreeVariables, closedByScan } from '../lib/freevars.js';

// Small, closed, and within what the scan reads: it answers without acorn.
const CLOSED = [
  '(x) => x * 2',
  'x => x + 1',
  'async => async + 1',
  '(a, b,) => a - b',
  '(a, ...rest) => rest.length + a',
  '() => Math.random()',
  'function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2) }',
  'function (x) { if (x > 1) { return x / 2 } else return -x }',
  'async function get(u) { return await fetch(u) }',
  'async (u) => (await fetch(u)).status',
  'async (x) => { await new Promise((r) => setTimeout(r, 1)); return x; }',
  '(x) => ({ value: x, square: x * x })',
  "(s) => s + ' units: ' + \"q\"",
  '(x) => x?.y?.z ?? x.w',
  '(x) => x.\n  toString()',
  '(xs) => xs.map((v) => v / 2).filter(function (w) { return w > 1 })',
  '(x) => (x + 1) / 2 + [x][0] / 3',
  '(x) => 1.5e3 * x + 0x1f + 1_000 + 10n.toString().length',
  '(x) => typeof x === "number" && !Number.isNaN(x) ? x : undefined',
  '(x) => { switch (x) { case 1: return true; default: return null } }',
  '(x) => [...x, ...[1, 2]]',
  'fetch() { return 1 }',   // a method named like a global: the name is not a use
];

// Not read by the scan (acorn decides): what it does not model.
const UNREAD = [
  '(x) => x /* half */ / 2',
  '(x) => x // note',
  '(x) => /a+/.test(x)',
  '(x) => `${x}`',
  "(x) => 'a\\'b' + x",
  '(x, k = 2) => x * k',
  '({ a }) => a',
  '([a, b]) => a + b',
  'function* g(x) { yield x }',
  '(é) => é',
  '(x) => x <!-- y',
  "(x) => { if (x) /'/.test(x) ? y : '' }",
  "async (x) => await /'/.test(x) ? y : ''",
  '(x) => (x) / /re/.source',
  '(x) => { this.#p }',
  '(x) => { a\\u0062 }',
];

// Uses a name that is neither its own nor a global: never "closed".
const FREE = [
  '(x) => x + y',
  '(x) => ({ [k]: x })',
  '(x) => ({ x, k })',
  '(x) => ({ a: x, k })',
  '(x) => x ? a : b',
  '(x) => c ? { a: x } : { b: x }',
  '(x) => x.y + z',
  '(x) => [...more, x]',
  '(x) => { let t = x; return t }',
  '(x) => { for (const v of x) total += v }',
  'async (x) => await (x) + k',
  '(x) => await (x)',
  '(x) => await in x',
  'foo(x) { return foo(x) }',   // a method's name is not in scope in its body
  '(x) => { out: for (;;) { break out } }',
  '(x) => helper(x)',
  'function (x) { return n }',
  'async x => { await\nk }',
];

test('the scan proves small closed functions closed, without acorn', () => {
  for (const src of CLOSED) assert.equal(closedByScan(src), true, src);
});

test('the scan gives up on what it does not model', () => {
  for (const src of UNREAD) assert.equal(scanFunction(src), null, src);
});

test('the scan never calls a function with a free variable closed', () => {
  for (const src of FREE) assert.equal(closedByScan(src), false, src);
});

test('the scan lists what it cannot vouch for as uses', () => {
  assert.deepEqual(scanFunction('(x) => ({ x, k })').uses, ['x', 'x', 'k']);
  assert.deepEqual(scanFunction('async (u) => (await fetch(u)).status').uses, ['u', 'fetch', 'u']);
  assert.deepEqual([...scanFunction('function f(a, ...b) { return (c) => a }').declared].sort(), ['a', 'b', 'c', 'f']);
});

test('every source the scan calls closed, acorn does too; acorn loads only for the others', async () => {
  let imports = 0;
  useParser(() => { imports++; return import('../dist/vendor/acorn.mjs'); });
  assert.equal(parserWait('(x) => x * 2'), null);
  assert.deepEqual(findFreeVariables('(x) => x * 2'), []);
  assert.equal(findFreeVariables('(x) => x + y'), null);   // acorn is needed, and not loaded
  assert.equal(imports, 0);
  const wait = parserWait('(x) => x + y');
  assert.ok(wait instanceof Promise);
  await wait;
  assert.equal(imports, 1);
  assert.equal(parserWait('(x) => x + y'), null);
  for (const src of [...CLOSED, ...FREE])   // acorn's answer, now it is loaded
    if (closedByScan(src)) assert.deepEqual(findFreeVariables(src), [], src);
  assert.deepEqual(findFreeVariables('(x) => x + y'), ['y']);
  assert.deepEqual(findFreeVariables('(x) => ({ x, k })'), ['k']);
});
