// freevars.js - which variables a function's source uses without declaring
// them: a closure over outer variables, which cannot work once the function
// is shipped by source to a worker. Found statically with acorn (vendored in
// dist/vendor by the build, and loaded only when a source needs it: a quick
// scan answers for most small functions, freevars-scan.js), so the call
// fails with a clear TypeError before any work starts. Without acorn the
// check is skipped and the worker's ReferenceError is mapped to the same
// message (runtime.js).
//
// Conservative by design: a name declared anywhere in the function counts as
// declared (block scopes are ignored), globals of this realm and of a worker
// are allowed, and `typeof x` never counts, so valid functions are never
// refused; the rare closure that slips through still gets the runtime error.

import { scanFunction } from './freevars-scan.js';

let parser = null;   // acorn; false: it could not be loaded
let importParser = null;   // the host's import of acorn (useParser)
let wanted = false;
let loading = null;
let settle;
const settled = new Promise((r) => { settle = r; });

function load() {
  if (!loading) {
    loading = (async () => {
      try {
        parser = await importParser();
      } catch {
        parser = false;
      }
      settle();
    })();
  }
}

/** How to import acorn (the host's literal import, which bundlers follow).
 * Nothing loads until a source needs it (parserWait). */
export function useParser(importFn) {
  importParser = importFn;
  if (wanted) load();
}

/**
 * null when findFreeVariables(src) can answer now: acorn is loaded (or
 * failed to), or the scan proves src closed without it (freevars-scan.js),
 * which keeps acorn off the first call of most programs. Else a promise
 * that resolves once it can, and the load starts (or will, at useParser).
 */
export function parserWait(src) {
  if (parser !== null || closedByScan(src)) return null;
  wanted = true;
  if (importParser) load();
  return settled;
}

// Names a worker realm has that this realm may not (Emscripten's Node worker
// sets self, require, Module, location, importScripts, postMessage).
const WORKER_GLOBALS = new Set(['self', 'require', 'importScripts', 'postMessage', 'location', 'close', 'name',
  'onmessage', 'arguments', 'undefined', 'NaN', 'Infinity', 'globalThis', 'navigator', 'performance']);

function parse(src) {
  const opts = { ecmaVersion: 'latest', sourceType: 'script', allowHashBang: false };
  try {
    return parser.parseExpressionAt(`(${src}\n)`, 0, opts);
  } catch (e) {
    return parser.parseExpressionAt(`({${src}\n})`, 0, opts); // method shorthand
  }
}

// Names every compiled function has in scope (js/chunk.js pmwCompile).
const COMPILE_SCOPE = new Set(['__name']);

const isGlobal = (name) => WORKER_GLOBALS.has(name) || COMPILE_SCOPE.has(name) || name in globalThis;

/** Does the scan alone show that src uses only its own names and globals? */
export function closedByScan(src) {
  const scan = scanFunction(src);
  return !!scan && scan.uses.every((name) => scan.declared.has(name) || isGlobal(name));
}

/** Free variable names of the function source, in order of first use;
 * null while acorn is needed and not loaded (parserWait). */
export function findFreeVariables(src) {
  if (!parser) return parser === false || closedByScan(src) ? [] : null;
  let ast;
  try { ast = parse(src); } catch { return []; }
  const declared = new Set();
  const refs = [];
  const skipKeys = new Set(['type', 'start', 'end', 'loc', 'range', 'raw']);

  function pattern(p) {
    if (!p) return;
    switch (p.type) {
      case 'Identifier': declared.add(p.name); break;
      case 'ObjectPattern':
        for (const prop of p.properties) {
          if (prop.type === 'RestElement') pattern(prop.argument);
          else { if (prop.computed) visit(prop.key); pattern(prop.value); }
        }
        break;
      case 'ArrayPattern': for (const el of p.elements) pattern(el); break;
      case 'RestElement': pattern(p.argument); break;
      case 'AssignmentPattern': pattern(p.left); visit(p.right); break;
      default: visit(p); // a member expression target in a for-in/of head
    }
  }

  function fn(node) {
    if (node.id) declared.add(node.id.name);
    for (const p of node.params) pattern(p);
    visit(node.body);
  }

  function children(node) {
    for (const k of Object.keys(node)) {
      if (skipKeys.has(k)) continue;
      const v = node[k];
      if (Array.isArray(v)) { for (const c of v) if (c && typeof c.type === 'string') visit(c); }
      else if (v && typeof v.type === 'string') visit(v);
    }
  }

  function visit(node) {
    if (!node) return;
    switch (node.type) {
      case 'Identifier': refs.push(node.name); return;
      case 'FunctionExpression': case 'FunctionDeclaration': case 'ArrowFunctionExpression': fn(node); return;
      case 'ClassDeclaration': case 'ClassExpression':
        if (node.id) declared.add(node.id.name);
        visit(node.superClass); visit(node.body); return;
      case 'VariableDeclarator': pattern(node.id); visit(node.init); return;
      case 'CatchClause': pattern(node.param); visit(node.body); return;
      case 'MemberExpression': visit(node.object); if (node.computed) visit(node.property); return;
      case 'Property': case 'MethodDefinition': case 'PropertyDefinition':
        if (node.computed) visit(node.key);
        if (node.type === 'Property' && node.shorthand && node.value.type === 'Identifier') { refs.push(node.value.name); return; }
        visit(node.value); return;
      case 'LabeledStatement': visit(node.body); return;
      case 'BreakStatement': case 'ContinueStatement': case 'MetaProperty': case 'PrivateIdentifier': return;
      case 'UnaryExpression':
        if (node.operator === 'typeof' && node.argument.type === 'Identifier') return;
        visit(node.argument); return;
      default: children(node);
    }
  }
  visit(ast);
  const free = [];
  for (const name of refs) {
    if (declared.has(name) || isGlobal(name) || free.includes(name)) continue;
    free.push(name);
  }
  return free;
}
