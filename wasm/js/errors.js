/*
 * errors.js (--pre-js, every realm): errors as data both ways
 * (pmwErrorFields / pmwRebuildError): class, message, stack, own cause,
 * AggregateError's errors, own properties.
 */

/*
 * Errors travel faithfully (issue 16): an error's class name, message, stack,
 * its own `cause`, an AggregateError's `errors` and its other own enumerable
 * properties (`code`, `errno`, custom fields) cross as data and are rebuilt on
 * the other side (pmwRebuildError). A part that cannot be encoded (a
 * function, a cycle) is left out rather than failing the whole error. The
 * fields are built eagerly, nested errors as PmwErrorBox, so a cycle through
 * `cause` ends at PMW_ERR_NEST_MAX instead of recursing for ever.
 */
var PMW_ERR_NEST_MAX = 8;
var pmwErrNest = 0;      // errors being converted right now (nesting)
var pmwProbe = null;     // scratch encoder: can this value be sent?
var PMW_NOT_SENT = {};

function PmwErrorBox(f) {
  this.f = f;
}

/** Can v be encoded? (Tried on a scratch encoder; the error path only.) */
function pmwSendable(v) {
  var enc = pmwProbe || (pmwProbe = new PmwEncoder());
  var at = enc.pos;
  pmwErrNest++;
  try {
    enc.value(v, 0);
    return true;
  } catch (x) {
    return false;
  } finally {
    pmwErrNest--;
    enc.pos = at;
    if (at === 0 && enc.buf.length > (1 << 20)) pmwProbe = null;
  }
}

/** What of v goes along with an error: a nested error as its fields, a
 * sendable value as it is, else PMW_NOT_SENT. */
function pmwCarry(v) {
  if (v instanceof Error) return new PmwErrorBox(pmwErrorFields(v));
  return pmwSendable(v) ? v : PMW_NOT_SENT;
}

function pmwErrorFields(e) {
  var o = { name: pmwSafeString(e.name), message: pmwSafeString(e.message) };
  try { if (typeof e.stack === 'string') o.stack = e.stack; } catch (x) { }
  if (e.code !== undefined && (typeof e.code === 'string' || typeof e.code === 'number')) o.code = e.code;
  if (typeof e.index === 'number') o.index = e.index;
  if (pmwErrNest >= PMW_ERR_NEST_MAX) return o;
  pmwErrNest++;
  try {
    var keys = Object.keys(e), props = null, c, i;
    for (i = 0; i < keys.length; i++) {
      var k = keys[i];
      if (k === 'stack' || k === 'message' || k === 'cause' || k === 'errors' || k === 'pmwShape') continue;
      try { c = pmwCarry(e[k]); } catch (x) { continue; }   // a throwing getter
      if (c === PMW_NOT_SENT) continue;
      if (!props) props = {};
      props[k] = c;
    }
    if (props) o.props = props;
    if (Object.prototype.hasOwnProperty.call(e, 'cause')) {
      c = pmwCarry(e.cause);
      if (c !== PMW_NOT_SENT) o.cause = c;
    }
    if (Array.isArray(e.errors)) {
      o.errors = e.errors.map(function (x) {
        var y = pmwCarry(x);
        return y === PMW_NOT_SENT ? 'parmap: not sendable: ' + pmwDescribe(x) : y;
      });
    }
  } finally {
    pmwErrNest--;
  }
  return o;
}


var PMW_ERRORS = { Error: Error, TypeError: TypeError, RangeError: RangeError, SyntaxError: SyntaxError,
  ReferenceError: ReferenceError, EvalError: EvalError, URIError: URIError };

/** A JS Error from its encoded fields, of the same class where it is a
 * built-in one, with its own cause, errors (AggregateError) and properties
 * (pmwErrorFields). The fields stay available as .pmwFields (not
 * enumerable: the error's own keys are the original's). */
function pmwRebuildError(f) {
  var Ctor = PMW_ERRORS[f.name] || Error, e;
  if (f.name === 'AggregateError' && typeof AggregateError === 'function') e = new AggregateError(f.errors || [], f.message);
  else e = new Ctor(f.message);
  if (!PMW_ERRORS[f.name] && e.name !== f.name) {
    try { Object.defineProperty(e, 'name', { value: f.name, configurable: true, writable: true }); } catch (x) { }
  }
  if (f.stack) { try { Object.defineProperty(e, 'stack', { value: f.stack, configurable: true, writable: true }); } catch (x) { } }
  if (f.code !== undefined) e.code = f.code;
  if (f.index !== undefined) e.index = f.index;
  if (f.props) {
    for (var k in f.props) {
      if (k === '__proto__') continue;
      try { e[k] = f.props[k]; } catch (x) { }
    }
  }
  if ('cause' in f) Object.defineProperty(e, 'cause', { value: f.cause, configurable: true, writable: true, enumerable: false });
  if (f.errors && !(typeof AggregateError === 'function' && e instanceof AggregateError))
    Object.defineProperty(e, 'errors', { value: f.errors, configurable: true, writable: true, enumerable: false });
  Object.defineProperty(e, 'pmwFields', { value: f, configurable: true, writable: true, enumerable: false });
  return e;
}


function pmwSafeString(v) {
  try { return String(v); } catch (e) { return typeof v; }
}
