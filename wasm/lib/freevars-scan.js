// freevars-scan.js - the common case of the free-variable check without
// acorn: a small function over its parameters and globals, such as
// (x) => x * 2 or async (u) => (await fetch(u)).status. Loading acorn and
// its first parse cost a cold page 20-30 ms of main-thread time (Node 5-8 ms),
// most of a first call's budget; a scan of the source's tokens proves such a
// function closed in microseconds (freevars.js findFreeVariables).
//
// It answers only "closed" or "cannot tell" (null), never "uses x": the
// caller goes to acorn for everything else, and acorn's answer (with the
// variable's name) stays the only one a user sees. To be sure of "closed"
// it reads only what it models exactly:
//  - ASCII source of identifiers, numbers, punctuators and one-line strings
//    without escapes; a comment, a template, a regular expression, a
//    private name or an escape makes it give up;
//  - declarations: the parameters of arrows and of `function`s whose lists
//    are plain names (a default or a pattern makes it give up), and the
//    name of a `function`. A name declared anywhere counts everywhere, as
//    in freevars.js (block scopes ignored); `let`, `const`, `var`, `catch`
//    and labels are not read, so their names look used and it gives up;
//  - every other identifier is a use, except a keyword, a property name
//    after `.` or `?.`, an object literal's key (`{ k: v }`), and the
//    `async` and `await` it can tell are operators.

const KEYWORDS = new Set(['break', 'case', 'catch', 'class', 'const', 'continue', 'debugger', 'default', 'delete', 'do',
  'else', 'enum', 'export', 'extends', 'false', 'finally', 'for', 'function', 'if', 'import', 'in', 'instanceof', 'new',
  'null', 'return', 'super', 'switch', 'this', 'throw', 'true', 'try', 'typeof', 'var', 'void', 'while', 'with']);
// (let, static, yield, of, get, set, async and await may be plain names in
// a script: they count as uses, but for the operators told apart below.)

// Names after which a `/` starts a regular expression (`await /x/.test(s)`).
const NOT_OPERANDS = new Set([...KEYWORDS, 'await', 'yield', 'of', 'let', 'async']);
// A `(` after one of these closes with a `)` that a regular expression may follow.
const STATEMENT_HEADS = new Set(['if', 'while', 'for', 'with']);
const PUNCTUATORS = '()[]{},;:?.+-*%=<>!&|^~/';
const OPEN = { ')': '(', ']': '[', '}': '{' };

const isIdStart = (c) => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c === 36;
const isDigit = (c) => c >= 48 && c <= 57;
const isIdPart = (c) => isIdStart(c) || isDigit(c);

/**
 * The tokens of src: { kind: 'id' | 'num' | 'str' | 'p', text, nl (a line
 * break before it), open (the innermost bracket it is in), match (a
 * bracket's partner) }, or null for source outside what the scan models.
 */
function tokenize(src) {
  if (src.includes('<!--') || src.includes('-->')) return null;   // a script's HTML-like comments
  const toks = [];
  const brackets = [];   // indexes of the open brackets
  let nl = false;
  for (let i = 0; i < src.length;) {
    const c = src.charCodeAt(i);
    if (c === 32 || c === 9) { i++; continue; }
    if (c === 10 || c === 13) { nl = true; i++; continue; }
    let j = i + 1, kind = 'p';
    const prev = toks[toks.length - 1];
    if (isIdStart(c)) {
      while (j < src.length && isIdPart(src.charCodeAt(j))) j++;
      kind = 'id';
    } else if (isDigit(c) || (c === 46 && isDigit(src.charCodeAt(i + 1)))) {
      // 1.5e3, 0x1f, 1_000, 10n, 1..toString: a number may only be followed
      // by punctuation, so what this swallows is at most a property name.
      while (j < src.length && (isIdPart(src.charCodeAt(j)) || src.charCodeAt(j) === 46)) j++;
      kind = 'num';
    } else if (c === 39 || c === 34) {
      const end = src.indexOf(src[i], j);
      if (end < 0 || /[\\\n\r]/.test(src.slice(j, end))) return null;
      j = end + 1;
      kind = 'str';
    } else if (src.startsWith('...', i)) j = i + 3;
    else if (src.startsWith('=>', i)) j = i + 2;
    else if (c === 63 && src.charCodeAt(i + 1) === 46 && !isDigit(src.charCodeAt(i + 2))) j = i + 2;   // ?.
    else if (c === 47) {
      // A division only after an operand: elsewhere a `/` starts a regular
      // expression or it is a comment.
      const next = src.charCodeAt(i + 1);
      if (next === 47 || next === 42 || !prev) return null;
      const operand = (prev.kind === 'id' && !NOT_OPERANDS.has(prev.text)) || prev.kind === 'num' || prev.text === ']' ||
        (prev.text === ')' && !prev.afterHead);
      if (!operand) return null;
    } else if (!PUNCTUATORS.includes(src[i])) return null;
    const tok = { kind, text: src.slice(i, j), nl, open: brackets.length ? toks[brackets[brackets.length - 1]].text : '', match: -1 };
    nl = false;
    i = j;
    if (kind === 'p') {
      if (tok.text === '(' || tok.text === '[' || tok.text === '{') {
        tok.head = tok.text === '(' && !!prev && prev.kind === 'id' && STATEMENT_HEADS.has(prev.text);
        brackets.push(toks.length);
      } else if (OPEN[tok.text]) {
        const at = brackets.pop();
        if (at === undefined || toks[at].text !== OPEN[tok.text]) return null;
        toks[at].match = toks.length;
        tok.match = at;
        tok.afterHead = toks[at].head;
      }
    }
    toks.push(tok);
  }
  return brackets.length ? null : toks;
}

/** Adds the names of a plain parameter list, toks[from..to) (a, b, ...c), to
 * `declared`; false for anything else (a default, a pattern). */
function plainParams(toks, from, to, declared) {
  for (let k = from; k < to; k += 2) {
    if (toks[k].text === '...') k++;
    const t = toks[k];
    if (!t || t.kind !== 'id' || KEYWORDS.has(t.text)) return false;
    if (k + 1 < to && toks[k + 1].text !== ',') return false;
    declared.add(t.text);
  }
  return true;
}

/** Is toks[k], an `async` or `await`, the operator (not a plain name)? */
function isOperator(toks, k) {
  const next = toks[k + 1];
  if (!next || next.nl) return false;
  if (toks[k].text === 'async') {
    // async function, async x =>, async (...) =>: with a plain name
    // `async`, each would be a syntax error.
    if (next.text === 'function') return true;
    if (next.kind === 'id') return !!toks[k + 2] && toks[k + 2].text === '=>';
    return next.text === '(' && next.match > 0 && !!toks[next.match + 1] && toks[next.match + 1].text === '=>';
  }
  // await x, await 1, await 'u': with a plain name `await`, two operands in
  // a row would be a syntax error (but `await in x` or `await (x)` would not).
  return next.kind === 'num' || next.kind === 'str' || (next.kind === 'id' && next.text !== 'in' && next.text !== 'instanceof');
}

/**
 * What a function's source declares and uses, as far as this scan can
 * tell: { declared: Set, uses: [names] }, or null when it cannot.
 */
export function scanFunction(src) {
  const toks = tokenize(src);
  if (!toks) return null;
  const declared = new Set();
  for (let k = 0; k < toks.length; k++) {
    const t = toks[k];
    if (t.text === '=>') {
      const prev = toks[k - 1];
      if (prev.kind === 'id') declared.add(prev.text);
      else if (prev.text !== ')' || !plainParams(toks, prev.match + 1, k - 1, declared)) return null;
    } else if (t.kind === 'id' && t.text === 'function') {
      let at = k + 1;
      if (toks[at] && toks[at].kind === 'id') declared.add(toks[at++].text);
      const open = toks[at];
      if (!open || open.text !== '(' || !plainParams(toks, at + 1, open.match, declared)) return null;   // function* too
    }
  }
  const uses = [];
  for (let k = 0; k < toks.length; k++) {
    const t = toks[k];
    if (t.kind !== 'id' || KEYWORDS.has(t.text)) continue;
    const prev = toks[k - 1], next = toks[k + 1];
    if (prev && (prev.text === '.' || prev.text === '?.')) continue;   // a property
    if (next && next.text === ':' && t.open === '{' && prev && (prev.text === '{' || prev.text === ',')) continue;   // a key (or a label)
    if ((t.text === 'async' || t.text === 'await') && isOperator(toks, k)) continue;
    uses.push(t.text);
  }
  return { declared, uses };
}
