/*
 * runtime.js - linked into the Emscripten module with --pre-js, so it runs in
 * EVERY realm that loads the module: the main thread and each pthread's web
 * worker. It holds what both sides need:
 *  - the value codec: MessagePack (plus a few extension types for JavaScript
 *    values), encoding into a private scratch buffer and decoding straight
 *    from the shared heap;
 *  - records: numbers travel as plain doubles, everything else as a
 *    NaN-boxed reference to encoded bytes in a heap block (layout in
 *    src/pmw.h);
 *  - the worker side of a call: pmwRunChunk, which the C executor calls once
 *    per chunk (EM_JS in src/batch.c, the batch function). It compiles the user's function from
 *    its source once per worker, builds the arguments (star / kwstar / args /
 *    kwargs), and loops over the chunk. It runs inside a call from C and
 *    cannot await: a promise result fails its item (PMW_CODE_ASYNC) and
 *    lib/map.js moves the call to the workers engine, which awaits
 *    (lib/worker.js runAsync);
 *  - errors as data both ways (pmwErrorFields / pmwRebuildError): class,
 *    message, stack, own cause, AggregateError's errors, own properties.
 * The main thread reaches it as Module.pmw (index.js).
 */

/* ------------------------------------------------------------ heap views */

// With ALLOW_MEMORY_GROWTH the memory may have grown (another thread's
// malloc, or ours): this realm's views must then be rebuilt before touching
// anything past their end. Shared memory (threaded build): the old views
// stay valid, only short, so a view is rebuilt only when an address past its
// end is needed (reading wasmMemory.buffer is slow: it was 10% of a trivial
// map when done per chunk). Unshared memory (single-thread build): growth
// detaches the old buffer, its views read as empty.
//
// These are our own views, not Emscripten's HEAP*: with pthreads + growth,
// Emscripten rewrites every HEAP* use in JS into GROWABLE_HEAP_*(), which
// reads wasmMemory.buffer each time: per item, that made a trivial map 5x
// slower.
var pmwHeap = { U8: null, I32: null, U32: null, F64: null };
function pmwViews(end) {
  var u8 = pmwHeap.U8;
  if (u8 === null || u8.length === 0 || (end !== undefined && end > u8.length)) {
    var buf = wasmMemory.buffer;
    pmwHeap.U8 = new Uint8Array(buf);
    pmwHeap.I32 = new Int32Array(buf);
    pmwHeap.U32 = new Uint32Array(buf);
    pmwHeap.F64 = new Float64Array(buf);
  }
}

/* -------------------------------------------------------------- records */

var PMW_NAN_HI = 0x7ff80000;
var PMW_TAG_VALUE = 1;
var PMW_TAG_ERROR = 2;
var PMW_TAG_UNDEF = 3;
var PMW_BLOCK_HDR = 16;
var PMW_BIG_SCRATCH = 64 << 20; // a scratch buffer past this: pmw_big_values (src/batch.c)
var PMW_BLOCK_MAX = 1 << 20; // offsets are stored in 17 bits of 8-byte units
var PMW_JOB_ID = 0, PMW_JOB_RAISE = 4, PMW_JOB_SRC = 8, PMW_JOB_SRC_LEN = 12,
  PMW_JOB_META = 16, PMW_JOB_META_LEN = 20;

// Error codes of items (C sees nonzero = failed).
var PMW_CODE_THREW = 1, PMW_CODE_SHAPE = 2, PMW_CODE_ENCODE = 3, PMW_CODE_ASYNC = 4, PMW_CODE_NOMEM = 5;

/* ---------------------------------------------------------------- codec */

var PMW_EXT_ERROR_C = 1;   // the C value layer's error: [index, code, message]
var PMW_EXT_JSERROR = 2;   // a JavaScript error: map {name, message, stack, ...}
var PMW_EXT_UNDEFINED = 3;
var PMW_EXT_BIGINT = 4;    // decimal text
var PMW_EXT_TYPED = 5;     // [type byte][raw bytes]
var PMW_EXT_DATE = 6;      // float64 milliseconds
var PMW_EXT_MAP = 7;       // msgpack array [k, v, k, v...]
var PMW_EXT_SET = 8;       // msgpack array
var PMW_EXT_REGEXP = 9;    // msgpack array [source, flags]
var PMW_MAX_DEPTH = 256;

var PMW_TYPED = [ArrayBuffer, Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array,
  Int32Array, Uint32Array, Float32Array, Float64Array,
  typeof BigInt64Array != 'undefined' ? BigInt64Array : null,
  typeof BigUint64Array != 'undefined' ? BigUint64Array : null, DataView];

/** An encoding failure: what could not be encoded and where. The path
 * (".a[2].b") is built while the error unwinds out of the nested values
 * (pmwAtPath), so encoding pays nothing for it when nothing fails. */
function PmwEncodeError(what) {
  this.what = what;
  this.path = '';
}

function pmwAtPath(e, step) {
  if (e instanceof PmwEncodeError) e.path = step + e.path;
  return e;
}

function pmwDescribe(v) {
  if (typeof v === 'function') return 'a function' + (v.name ? ' (' + v.name + ')' : '');
  if (typeof v === 'symbol') return 'a symbol (' + String(v.description) + ')';
  if (v && typeof v.then === 'function') return 'a Promise';
  var c = v && v.constructor && v.constructor.name;
  return 'a ' + (c || typeof v);
}

var pmwTextEncoder = new TextEncoder();
var pmwTextDecoder = new TextDecoder();

/** Encoder: appends MessagePack to a private growable buffer. */
function PmwEncoder() {
  this.buf = new Uint8Array(1 << 16);
  this.view = new DataView(this.buf.buffer);
  this.pos = 0;
}

PmwEncoder.prototype.ensure = function (n) {
  if (this.pos + n <= this.buf.length) return;
  var size = this.buf.length * 2;
  while (size < this.pos + n) size *= 2;
  var b = new Uint8Array(size);
  b.set(this.buf.subarray(0, this.pos));
  this.buf = b;
  this.view = new DataView(b.buffer);
};

PmwEncoder.prototype.byte = function (b) {
  this.ensure(1);
  this.buf[this.pos++] = b;
};

PmwEncoder.prototype.head = function (b, n, small, b8, b16, b32) {
  // A length-prefixed header: fix form when n < small, else 8/16/32-bit.
  this.ensure(5);
  var buf = this.buf;
  if (n < small) buf[this.pos++] = b | n;
  else if (b8 && n < 256) { buf[this.pos++] = b8; buf[this.pos++] = n; }
  else if (n < 65536) { buf[this.pos++] = b16; this.view.setUint16(this.pos, n); this.pos += 2; }
  else { buf[this.pos++] = b32; this.view.setUint32(this.pos, n); this.pos += 4; }
};

PmwEncoder.prototype.number = function (v) {
  this.ensure(9);
  var buf = this.buf;
  if (Number.isInteger(v) && !(v === 0 && 1 / v < 0)) {
    if (v >= 0 && v < 128) { buf[this.pos++] = v; return; }
    if (v < 0 && v >= -32) { buf[this.pos++] = v & 0xff; return; }
    if (v >= 0 && v <= 0xffffffff) {
      if (v < 256) { buf[this.pos++] = 0xcc; buf[this.pos++] = v; }
      else if (v < 65536) { buf[this.pos++] = 0xcd; this.view.setUint16(this.pos, v); this.pos += 2; }
      else { buf[this.pos++] = 0xce; this.view.setUint32(this.pos, v); this.pos += 4; }
      return;
    }
    if (v < 0 && v >= -2147483648) {
      if (v >= -128) { buf[this.pos++] = 0xd0; this.view.setInt8(this.pos, v); this.pos += 1; }
      else if (v >= -32768) { buf[this.pos++] = 0xd1; this.view.setInt16(this.pos, v); this.pos += 2; }
      else { buf[this.pos++] = 0xd2; this.view.setInt32(this.pos, v); this.pos += 4; }
      return;
    }
  }
  buf[this.pos++] = 0xcb;
  this.view.setFloat64(this.pos, v);
  this.pos += 8;
};

PmwEncoder.prototype.string = function (s) {
  var n = s.length;
  if (n < 32) {
    // Short strings: ASCII straight in, the rest through TextEncoder.
    this.ensure(1 + n);
    var start = this.pos + 1, buf = this.buf, i = 0;
    for (; i < n; i++) {
      var c = s.charCodeAt(i);
      if (c >= 0x80) break;
      buf[start + i] = c;
    }
    if (i === n) { buf[this.pos] = 0xa0 | n; this.pos = start + n; return; }
  }
  // Worst case 3 bytes per UTF-16 unit; header up to 5 bytes.
  this.ensure(5 + 3 * n);
  var hdr = n * 3 < 32 ? 1 : n * 3 < 256 ? 2 : n * 3 < 65536 ? 3 : 5;
  // The destination bounded to what the string can need: Node's encodeInto
  // writes nothing at all into a view longer than 2 GB (a scratch buffer
  // grown for huge values), and a short read must never pass unnoticed.
  var r = pmwTextEncoder.encodeInto(s, this.buf.subarray(this.pos + hdr, this.pos + hdr + 3 * n));
  var len = r.written, at = this.pos;
  if (r.read !== n) {
    var u8 = pmwTextEncoder.encode(s);
    this.buf.set(u8, at + hdr);
    len = u8.length;
  }
  // Write the header in the size class reserved (a non-minimal length is
  // still valid MessagePack).
  if (hdr === 1) this.buf[at] = 0xa0 | len;
  else if (hdr === 2) { this.buf[at] = 0xd9; this.buf[at + 1] = len; }
  else if (hdr === 3) { this.buf[at] = 0xda; this.view.setUint16(at + 1, len); }
  else { this.buf[at] = 0xdb; this.view.setUint32(at + 1, len); }
  this.pos = at + hdr + len;
};

PmwEncoder.prototype.ext = function (type, fill) {
  // ext 32 header, length patched after the payload is written.
  this.ensure(6);
  var at = this.pos;
  this.buf[at] = 0xc9;
  this.buf[at + 5] = type;
  this.pos += 6;
  fill.call(this);
  this.view.setUint32(at + 1, this.pos - at - 6);
};

PmwEncoder.prototype.bytes = function (u8) {
  this.ensure(u8.length);
  this.buf.set(u8, this.pos);
  this.pos += u8.length;
};

PmwEncoder.prototype.value = function (v, depth) {
  switch (typeof v) {
    case 'number': return this.number(v);
    case 'string': return this.string(v);
    case 'boolean': return this.byte(v ? 0xc3 : 0xc2);
    case 'undefined': this.ensure(3); this.buf[this.pos++] = 0xd4; this.buf[this.pos++] = PMW_EXT_UNDEFINED; this.buf[this.pos++] = 0; return;
    case 'bigint': { var t = v.toString(); return this.ext(PMW_EXT_BIGINT, function () { this.bytes(pmwTextEncoder.encode(t)); }); }
    case 'object': break;
    default: throw new PmwEncodeError(pmwDescribe(v));
  }
  if (v === null) return this.byte(0xc0);
  if (depth > PMW_MAX_DEPTH) throw new PmwEncodeError('a value nested deeper than ' + PMW_MAX_DEPTH + ' levels (a cycle?)');
  var d = depth + 1, i, n;
  if (Array.isArray(v)) {
    n = v.length;
    this.head(0x90, n, 16, 0, 0xdc, 0xdd);
    for (i = 0; i < n; i++) {
      try {
        this.value(v[i], d);
      } catch (e) {
        throw pmwAtPath(e, '[' + i + ']');
      }
    }
    return;
  }
  if (v instanceof PmwErrorBox) return this.ext(PMW_EXT_JSERROR, function () { this.object(v.f, d); });
  var proto = Object.getPrototypeOf(v);
  if (proto === Object.prototype || proto === null) return this.object(v, d);
  if (v instanceof Uint8Array && proto === Uint8Array.prototype || (typeof Buffer != 'undefined' && Buffer.isBuffer(v))) {
    this.head(0, v.length, 0, 0xc4, 0xc5, 0xc6);
    return this.bytes(new Uint8Array(v.buffer, v.byteOffset, v.length));
  }
  if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) {
    var code = -1;
    for (i = 0; i < PMW_TYPED.length; i++) if (PMW_TYPED[i] && v instanceof PMW_TYPED[i]) { code = i; break; }
    if (code >= 0) {
      var raw = v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
      return this.ext(PMW_EXT_TYPED, function () { this.byte(code); this.bytes(raw); });
    }
  }
  if (v instanceof Date) return this.ext(PMW_EXT_DATE, function () { this.number(v.getTime()); });
  if (v instanceof Error) return this.ext(PMW_EXT_JSERROR, function () { this.object(pmwErrorFields(v), d); });
  if (v instanceof Map) {
    var kv = [];
    v.forEach(function (val, key) { kv.push(key, val); });
    return this.ext(PMW_EXT_MAP, function () { this.value(kv, d); });
  }
  if (v instanceof Set) { var items = Array.from(v); return this.ext(PMW_EXT_SET, function () { this.value(items, d); }); }
  if (v instanceof RegExp) return this.ext(PMW_EXT_REGEXP, function () { this.value([v.source, v.flags], d); });
  if (typeof v.then === 'function' || v instanceof WeakMap || v instanceof WeakSet ||
      (typeof WeakRef != 'undefined' && v instanceof WeakRef))
    throw new PmwEncodeError(pmwDescribe(v));
  // Any other object (a class instance): its own enumerable properties, as
  // structured clone does.
  return this.object(v, d);
};

PmwEncoder.prototype.object = function (v, d) {
  var keys = Object.keys(v), n = keys.length;
  this.head(0x80, n, 16, 0, 0xde, 0xdf);
  for (var i = 0; i < n; i++) {
    var k = keys[i];
    this.string(k);
    try {
      this.value(v[k], d);
    } catch (e) {
      throw pmwAtPath(e, '.' + k);
    }
  }
};

/** Encode one value at the current position (8-aligned); returns its offset
 * or throws PmwEncodeError (the position is then restored). */
PmwEncoder.prototype.encode = function (v) {
  var start = (this.pos + 7) & ~7;
  this.ensure(start - this.pos);
  this.pos = start;
  try {
    this.value(v, 0);
  } catch (e) {
    this.pos = start;
    throw e;
  }
  return start;
};

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

/** Decoder over the heap (or any Uint8Array). */
function PmwDecoder() {
  this.u8 = null;
  this.view = null;
  this.pos = 0;
}

PmwDecoder.prototype.reset = function (u8) {
  if (this.u8 !== u8) {
    this.u8 = u8;
    this.view = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  }
};

PmwDecoder.prototype.str = function (n) {
  var u8 = this.u8, p = this.pos, end = p + n;
  this.pos = end;
  if (n < 48) {
    var s = '';
    for (; p < end; p++) {
      var c = u8[p];
      if (c >= 0x80) break;
      s += String.fromCharCode(c);
    }
    if (p === end) return s;
    return s + pmwTextDecoder.decode(u8.slice(p, end));
  }
  // TextDecoder refuses views of shared memory in browsers: copy first.
  return pmwTextDecoder.decode(u8.slice(p, end));
};

PmwDecoder.prototype.arr = function (n) {
  var a = new Array(n);
  for (var i = 0; i < n; i++) a[i] = this.value();
  return a;
};

PmwDecoder.prototype.map = function (n) {
  var o = {};
  for (var i = 0; i < n; i++) {
    var k = this.value();
    var v = this.value();
    if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
    else o[k] = v;
  }
  return o;
};

PmwDecoder.prototype.ext = function (type, n) {
  var start = this.pos, end = start + n, v, p;
  switch (type) {
    case PMW_EXT_UNDEFINED: v = undefined; break;
    case PMW_EXT_BIGINT: v = BigInt(this.str(n)); break;
    case PMW_EXT_DATE: v = new Date(this.value()); break;
    case PMW_EXT_MAP: { p = this.value(); v = new Map(); for (var i = 0; i < p.length; i += 2) v.set(p[i], p[i + 1]); break; }
    case PMW_EXT_SET: v = new Set(this.value()); break;
    case PMW_EXT_REGEXP: p = this.value(); v = new RegExp(p[0], p[1]); break;
    case PMW_EXT_JSERROR: v = pmwRebuildError(this.value()); break;
    case PMW_EXT_ERROR_C: p = this.value(); v = pmwRebuildError({ name: 'Error', message: p[2], code: p[1], index: p[0] }); break;
    case PMW_EXT_TYPED: {
      var code = this.u8[start], ctor = PMW_TYPED[code];
      var copy = this.u8.slice(start + 1, end).buffer;
      v = ctor === ArrayBuffer ? copy : ctor === DataView ? new DataView(copy) : new ctor(copy);
      break;
    }
    default: throw new Error('parmap: unknown MessagePack extension type ' + type);
  }
  this.pos = end;
  return v;
};

PmwDecoder.prototype.value = function () {
  var u8 = this.u8, b = u8[this.pos++], view = this.view, v, n;
  if (b < 0x80) return b;
  if (b >= 0xe0) return b - 256;
  if (b < 0x90) return this.map(b & 15);
  if (b < 0xa0) return this.arr(b & 15);
  if (b < 0xc0) return this.str(b & 31);
  var p = this.pos;
  switch (b) {
    case 0xc0: return null;
    case 0xc2: return false;
    case 0xc3: return true;
    case 0xcb: this.pos = p + 8; return view.getFloat64(p);
    case 0xca: this.pos = p + 4; return view.getFloat32(p);
    case 0xcc: this.pos = p + 1; return u8[p];
    case 0xcd: this.pos = p + 2; return view.getUint16(p);
    case 0xce: this.pos = p + 4; return view.getUint32(p);
    case 0xcf: this.pos = p + 8; return Number(view.getBigUint64(p));
    case 0xd0: this.pos = p + 1; return view.getInt8(p);
    case 0xd1: this.pos = p + 2; return view.getInt16(p);
    case 0xd2: this.pos = p + 4; return view.getInt32(p);
    case 0xd3: this.pos = p + 8; return Number(view.getBigInt64(p));
    case 0xd9: this.pos = p + 1; return this.str(u8[p]);
    case 0xda: this.pos = p + 2; return this.str(view.getUint16(p));
    case 0xdb: this.pos = p + 4; return this.str(view.getUint32(p));
    case 0xc4: n = u8[p]; this.pos = p + 1 + n; return u8.slice(p + 1, p + 1 + n);
    case 0xc5: n = view.getUint16(p); this.pos = p + 2 + n; return u8.slice(p + 2, p + 2 + n);
    case 0xc6: n = view.getUint32(p); this.pos = p + 4 + n; return u8.slice(p + 4, p + 4 + n);
    case 0xdc: this.pos = p + 2; return this.arr(view.getUint16(p));
    case 0xdd: this.pos = p + 4; return this.arr(view.getUint32(p));
    case 0xde: this.pos = p + 2; return this.map(view.getUint16(p));
    case 0xdf: this.pos = p + 4; return this.map(view.getUint32(p));
    case 0xd4: this.pos = p + 1; return this.ext(view.getInt8(p), 1);
    case 0xd5: this.pos = p + 1; return this.ext(view.getInt8(p), 2);
    case 0xd6: this.pos = p + 1; return this.ext(view.getInt8(p), 4);
    case 0xd7: this.pos = p + 1; return this.ext(view.getInt8(p), 8);
    case 0xd8: this.pos = p + 1; return this.ext(view.getInt8(p), 16);
    case 0xc7: n = u8[p]; this.pos = p + 2; return this.ext(view.getInt8(p + 1), n);
    case 0xc8: n = view.getUint16(p); this.pos = p + 3; return this.ext(view.getInt8(p + 2), n);
    case 0xc9: n = view.getUint32(p); this.pos = p + 5; return this.ext(view.getInt8(p + 4), n);
  }
  throw new Error('parmap: malformed MessagePack (byte 0x' + b.toString(16) + ')');
};

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

/* -------------------------------------------------- records <-> values */

/**
 * Collects encoded values for a batch of records and writes them into heap
 * blocks: the values of a chunk (or of a batch of items) share one block of
 * at most PMW_BLOCK_MAX bytes, with one malloc, not one per value.
 */
function PmwBlockWriter(keepLost) {
  this.enc = new PmwEncoder();
  // Per pending value: its record index (8-byte units) and the high word
  // the record gets (tag and offset in the block), in typed arrays rather
  // than JS arrays: no per-value allocation, no length resets.
  this.recs = new Uint32Array(1024);
  this.his = new Uint32Array(1024);
  this.n = 0;
  // keepLost: a block that cannot be allocated does not throw (a throw out
  // of a pthread's chunk would end the process); its records are listed in
  // `lost` instead, and `lostBytes` says how big it was (pmwRunChunk).
  this.keepLost = !!keepLost;
  this.lost = [];
  this.lostBytes = 0;
}

/** Encode v for record `rec`; throws PmwEncodeError (nothing pending then). */
PmwBlockWriter.prototype.add = function (job, v, rec, tag) {
  if (this.enc.pos > PMW_BLOCK_MAX - 4096) this.flush(job);
  var off = this.enc.encode(v);
  if (this.enc.pos > PMW_BLOCK_MAX && this.n) {
    // Did not fit: flush what came before, then this one alone at 0.
    var bytes = this.enc.buf.slice(off, this.enc.pos);
    this.enc.pos = off;
    this.flush(job);
    this.enc.bytes(bytes);
    off = 0;
  }
  if (this.n === this.recs.length) {
    var recs = new Uint32Array(2 * this.n), his = new Uint32Array(2 * this.n);
    recs.set(this.recs);
    his.set(this.his);
    this.recs = recs;
    this.his = his;
  }
  this.recs[this.n] = rec;
  this.his[this.n] = (PMW_NAN_HI | (tag << 17) | (off >>> 3)) >>> 0;
  this.n++;
};

/** Allocate a block for the pending values, copy them, point the records
 * at them. Throws when out of memory. */
PmwBlockWriter.prototype.flush = function (job) {
  var n = this.n;
  if (!n) { this.shrink(); return; }
  var size = this.enc.pos;
  this.n = 0;
  this.enc.pos = 0;
  var block = _pmw_block_new(job, size, n) >>> 0;
  if (!block) {
    if (!this.keepLost) throw new RangeError('parmap: out of WebAssembly memory (' + size + ' bytes of values)');
    for (var j = 0; j < n; j++) this.lost.push(this.recs[j]);
    this.lostBytes = Math.max(this.lostBytes, size);
    this.shrink();
    return;
  }
  pmwViews(block + PMW_BLOCK_HDR + size);
  pmwHeap.U8.set(this.enc.buf.subarray(0, size), block + PMW_BLOCK_HDR);
  var U = pmwHeap.U32, recs = this.recs, his = this.his;
  for (var i = 0; i < n; i++) {
    var r = recs[i];
    U[2 * r] = block;
    U[2 * r + 1] = his[i];
  }
  this.shrink();
};

/** Memory a call used is given back: a scratch buffer that one huge value
 * grew (a 200 MB string: 600 MB here) is not kept for the next chunk. */
PmwBlockWriter.prototype.shrink = function () {
  this.enc.pos = 0;
  if (this.enc.buf.length > (8 << 20)) {
    // The old buffer is garbage that an idle worker may keep for ever: say
    // so, and this realm is replaced at the call's end (pool.js, loader.js).
    if (this.enc.buf.length > PMW_BIG_SCRATCH) _pmw_big_values(1);
    this.enc = new PmwEncoder();
  }
};

/** Write a number, NaN (canonical) or undefined record. */
function pmwPutPlain(F, U, r, v) {
  if (v === v) F[r] = v;
  else { U[2 * r] = 0; U[2 * r + 1] = PMW_NAN_HI; }
}

/** Is the record at r (8-byte units) a reference? Returns the tag or 0. */
function pmwTag(U, r) {
  var hi = U[2 * r + 1];
  if ((hi & 0xfff80000) !== PMW_NAN_HI) return 0;
  return (hi >>> 17) & 3;
}

var pmwDecoder = new PmwDecoder();

/** Decode a referenced value (tag 1 or 2) at record r. */
function pmwDecodeRef(U, r) {
  var hi = U[2 * r + 1], block = U[2 * r];
  pmwViews(block + PMW_BLOCK_HDR);
  pmwViews(block + PMW_BLOCK_HDR + pmwHeap.U32[(block + 8) >> 2]);
  pmwDecoder.reset(pmwHeap.U8);
  pmwDecoder.pos = block + PMW_BLOCK_HDR + (hi & 0x1ffff) * 8;
  return pmwDecoder.value();
}

/** Counts reference releases per block and applies them in one atomic op
 * per run of records in the same block (streams free blocks at refs 0). */
function PmwReleaser() {
  this.block = 0;
  this.count = 0;
}
PmwReleaser.prototype.add = function (block) {
  if (block !== this.block) {
    this.flush();
    this.block = block;
  }
  this.count++;
};
PmwReleaser.prototype.flush = function () {
  if (this.count) Atomics.sub(pmwHeap.I32, (this.block + 4) >> 2, this.count);
  this.block = 0;
  this.count = 0;
};

/* ------------------------------------------------------- the worker side */

var pmwFnCache = new Map();   // source text -> compiled function (this realm)
var pmwJobCache = new Map();  // job id -> { call, raise }

/** Compile a function from its source text in this realm. Throws SyntaxError
 * or TypeError. Method shorthand (`f(x) { ... }`) is accepted too. */
function pmwCompile(src) {
  var f = pmwFnCache.get(src);
  if (f) return f;
  try {
    f = new Function('return (' + src + '\n);')();
  } catch (e) {
    if (!(e instanceof SyntaxError)) throw e;
    var o;
    try { o = new Function('return ({' + src + '\n});')(); } catch (e2) { throw e; }
    f = o[Object.keys(o)[0]];
  }
  if (typeof f !== 'function') throw new TypeError('parmap: the source does not evaluate to a function');
  if (pmwFnCache.size > 256) pmwFnCache.delete(pmwFnCache.keys().next().value);
  pmwFnCache.set(src, f);
  return f;
}

function PmwShapeError(msg) {
  var e = new TypeError(msg);
  e.pmwShape = true;
  return e;
}

function pmwKind(v) {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : 'a ' + typeof v;
}

/**
 * The call for one item, by parmapper's table (DESIGN.md): star false | true
 * | null, kwstar, args, kwargs; when keywords are in play the merged keyword
 * object is one extra last argument.
 */
function pmwMakeCall(fn, meta) {
  var star = meta.star, kwstar = !!meta.kwstar, args = meta.args || [], kwargs = meta.kwargs;
  var hasKw = kwargs !== undefined || kwstar;
  if (star === false && !kwstar && !args.length && !hasKw) return fn;
  var nargs = args.length;
  return function (item) {
    var val = item, kw = kwargs, pos;
    if (kwstar) {
      var kwvals;
      if (star === null) kwvals = item;
      else {
        if (!Array.isArray(item) || item.length !== 2)
          throw PmwShapeError('kwstar=true expects each item as [' + (star ? 'args' : 'value') + ', keywords], got ' + pmwKind(item));
        val = item[0];
        kwvals = item[1];
      }
      if (kwvals === null || typeof kwvals !== 'object' || Array.isArray(kwvals))
        throw PmwShapeError('kwstar=true expects the keywords of each item as an object, got ' + pmwKind(kwvals));
      kw = Object.assign({}, kwargs, kwvals);
    }
    if (star === true) {
      if (!Array.isArray(val))
        throw PmwShapeError('star=true expects each item' + (kwstar ? "'s arguments" : '') + ' as an array of arguments, got ' + pmwKind(val));
      pos = val.concat(args);
    } else if (star === null) {
      pos = nargs ? args.slice() : [];
    } else {
      pos = [val];
      for (var i = 0; i < nargs; i++) pos.push(args[i]);
    }
    if (hasKw) pos.push(kw === undefined ? {} : kw);
    return fn.apply(undefined, pos);
  };
}

function pmwJob(job) {
  var id = pmwHeap.I32[(job + PMW_JOB_ID) >> 2];
  var J = pmwJobCache.get(id);
  if (J) return J;
  var srcPtr = pmwHeap.U32[(job + PMW_JOB_SRC) >> 2], srcLen = pmwHeap.I32[(job + PMW_JOB_SRC_LEN) >> 2];
  var metaPtr = pmwHeap.U32[(job + PMW_JOB_META) >> 2];
  pmwViews(srcPtr + srcLen);
  pmwViews(metaPtr + pmwHeap.I32[(job + PMW_JOB_META_LEN) >> 2]);
  var src = pmwUtf8(srcPtr, srcLen);
  var meta = { star: false };
  if (metaPtr) {
    var dec = new PmwDecoder();
    dec.reset(pmwHeap.U8);
    dec.pos = metaPtr;
    meta = dec.value();
  }
  var fn = pmwCompile(src);
  J = { call: pmwMakeCall(fn, meta), raise: pmwHeap.I32[(job + PMW_JOB_RAISE) >> 2] !== 0 };
  if (pmwJobCache.size > 32) pmwJobCache.delete(pmwJobCache.keys().next().value);
  pmwJobCache.set(id, J);
  return J;
}

function pmwUtf8(ptr, len) {
  return pmwTextDecoder.decode(pmwHeap.U8.slice(ptr, ptr + len));
}

/** What a failed item sends back: its error's fields plus the index. A
 * thrown non-Error value (a string, a number, an object, null, undefined)
 * goes as `thrown`, the ParmapError's cause on the other side, when it can
 * be encoded. */
function pmwItemError(e, index, code) {
  var f;
  if (e instanceof Error) f = pmwErrorFields(e);
  else {
    f = { name: 'Error', message: 'a non-Error value was thrown: ' + pmwSafeString(e) };
    if (pmwSendable(e)) f.thrown = e;
  }
  if (code === PMW_CODE_THREW && e instanceof ReferenceError) {
    var m = /^(\S+) is not defined$/.exec(f.message);
    if (m) {
      f.original = { name: f.name, message: f.message };
      f.name = 'ReferenceError';
      f.message = 'parmap: the function uses `' + m[1] + '`, which is not defined in the worker: functions are ' +
        'shipped by source and must be self-contained; pass it through args/kwargs';
    }
  }
  f.index = index;
  f.itemCode = code;
  if (code === PMW_CODE_SHAPE) f.shape = true;
  if (code === PMW_CODE_ASYNC) f.async = true;
  if (code === PMW_CODE_NOMEM) f.errorCode = 'ENOMEM';
  return f;
}

/** Is r a promise or another thenable? */
function pmwThenable(r) {
  return r !== null && (typeof r === 'object' || typeof r === 'function') && typeof r.then === 'function';
}

/**
 * A plain (not `async`) function returned a thenable where items run
 * synchronously (threaded and single engines: pmwRunChunk runs inside a call
 * from C and cannot await). Its outcome is dropped (a rejection must not
 * become an unhandled one, which would end a pthread) and the item fails
 * with code PMW_CODE_ASYNC: parmap then runs the call again on the workers
 * engine, which awaits (lib/map.js); imap reports it (a stream cannot be
 * replayed).
 */
function pmwAsyncResult(r) {
  try { Promise.resolve(r).then(null, function () { }); } catch (x) { }
  return new TypeError('parmap: fn returned a promise but is not declared async: the threaded and single engines ' +
    'run plain functions synchronously; declare it `async` (or use module mode), and parmap awaits it on its workers');
}

/**
 * Results whose block could not be allocated (w.lost: records of this
 * chunk's output) fail their items with PMW_CODE_NOMEM: an error value, small
 * enough to fit where the results did not, takes each one's place. Returns
 * whether any item failed so.
 */
function pmwFailLost(w, job, base, oi, ci, count) {
  var any = false;
  for (var round = 0; round < 2 && w.lost.length; round++) {
    var lost = w.lost, bytes = w.lostBytes;
    w.lost = [];
    w.lostBytes = 0;
    pmwViews();
    for (var j = 0; j < lost.length; j++) {
      var kk = lost[j] - oi;
      if (kk < 0 || kk >= count) continue;
      any = true;
      pmwHeap.I32[ci + kk] = PMW_CODE_NOMEM;
      var U = pmwHeap.U32;
      U[2 * lost[j]] = 0;
      U[2 * lost[j] + 1] = (PMW_NAN_HI | (PMW_TAG_UNDEF << 17)) >>> 0;
      if (round === 0) {
        var e = new RangeError('parmap: item ' + (base + kk) + ': its result does not fit in the WebAssembly heap (' +
          bytes + ' bytes of encoded values in its batch); return smaller values, or use the workers engine, ' +
          'where each worker has a heap of its own');
        w.add(job, pmwItemError(e, base + kk, PMW_CODE_NOMEM), lost[j], PMW_TAG_ERROR);
      }
    }
    w.flush(job);
  }
  w.lost = [];
  return any;
}

function pmwSafeString(v) {
  try { return String(v); } catch (e) { return typeof v; }
}

var pmwWriter = null;
var pmwReleaser = null;

/**
 * Run items [0, count) of a chunk: read records at inP, write results at
 * outP (may be the same), codes at codesP. base is the index of the first
 * item. Returns how many ran. Called by C (src/exec.c) on the thread that
 * took the chunk, so this realm is that worker's.
 */
function pmwRunChunk(job, base, count, inP, outP, codesP) {
  pmwViews(Math.max(inP, outP) + 8 * count);
  pmwViews(job + 64);
  pmwViews(codesP + 4 * count);
  if (!pmwWriter) { pmwWriter = new PmwBlockWriter(true); pmwReleaser = new PmwReleaser(); }
  var J, k = 0, ii = inP >>> 3, oi = outP >>> 3, ci = codesP >>> 2;
  var w = pmwWriter, rel = pmwReleaser;
  try {
    J = pmwJob(job);
  } catch (e) {
    // The function does not compile here: every item of the chunk fails.
    J = { call: function () { throw e; }, raise: pmwHeap.I32[(job + PMW_JOB_RAISE) >> 2] !== 0 };
  }
  var call = J.call, raise = J.raise, F = pmwHeap.F64, U = pmwHeap.U32, I = pmwHeap.I32;
  for (; k < count; k++) {
    var x = F[ii + k], r, code = 0;
    if (x !== x) {
      var tag = pmwTag(U, ii + k);
      if (tag === PMW_TAG_UNDEF) x = undefined;
      else if (tag !== 0) {
        var blk = U[2 * (ii + k)];
        x = pmwDecodeRef(U, ii + k);
        rel.add(blk);
      }
    }
    try {
      r = call(x);
    } catch (e) {
      code = e && e.pmwShape ? PMW_CODE_SHAPE : PMW_CODE_THREW;
      r = e;
    }
    if (code === 0 && typeof r === 'number') {
      // A number: the common case, kept short. Nothing was malloc'd, so the
      // views need no check.
      if (r === r) F[oi + k] = r;
      else { U[2 * (oi + k)] = 0; U[2 * (oi + k) + 1] = PMW_NAN_HI; }
      I[ci + k] = 0;
      continue;
    }
    if (code === 0 && pmwThenable(r)) {
      code = PMW_CODE_ASYNC;
      r = pmwAsyncResult(r);
    }
    if (code === 0) {
      if (r === undefined) { U[2 * (oi + k)] = 0; U[2 * (oi + k) + 1] = (PMW_NAN_HI | (PMW_TAG_UNDEF << 17)) >>> 0; }
      else {
        try {
          w.add(job, r, oi + k, PMW_TAG_VALUE);
        } catch (e) {
          if (!(e instanceof PmwEncodeError)) throw e;
          code = PMW_CODE_ENCODE;
          r = new TypeError('parmap: item ' + (base + k) + ': the result cannot be sent back: ' + e.what +
            (e.path ? ' at result' + e.path : ''));
        }
      }
    }
    if (code !== 0) {
      try {
        w.add(job, pmwItemError(r, base + k, code), oi + k, PMW_TAG_ERROR);
      } catch (e) {
        w.add(job, { name: 'Error', message: 'parmap: the error could not be encoded', index: base + k }, oi + k, PMW_TAG_ERROR);
      }
    }
    I[ci + k] = code;
    if (w.lost.length && pmwFailLost(w, job, base, oi, ci >>> 0, count) && raise) { k++; break; }
    // A promise ends the chunk there: the call is run again elsewhere.
    if (code !== 0 && (raise || code === PMW_CODE_ASYNC)) { k++; break; }
    // w.add may have flushed a block (a malloc): the memory may have grown.
    if (F !== pmwHeap.F64) { pmwViews(); F = pmwHeap.F64; U = pmwHeap.U32; I = pmwHeap.I32; }
  }
  w.flush(job);
  if (w.lost.length) pmwFailLost(w, job, base, oi, ci, count);
  rel.flush();
  return k;
}

/* ------------------------------------------------- for the main thread */

Module['pmw'] = {
  views: pmwViews,
  // The live views (fields replaced when the memory grew); `end`: make sure
  // addresses below it are covered (default: the whole memory now).
  heap: function (end) { pmwViews(end === undefined ? wasmMemory.buffer.byteLength : end); return pmwHeap; },
  Encoder: PmwEncoder,
  Decoder: PmwDecoder,
  BlockWriter: PmwBlockWriter,
  Releaser: PmwReleaser,
  EncodeError: PmwEncodeError,
  compile: pmwCompile,
  makeCall: pmwMakeCall,
  putPlain: pmwPutPlain,
  tag: pmwTag,
  decodeRef: pmwDecodeRef,
  rebuildError: pmwRebuildError,
  errorFields: pmwErrorFields,
  itemError: pmwItemError,
  thenable: pmwThenable,
  CODE_ASYNC: PMW_CODE_ASYNC,
  describe: pmwDescribe,
  NAN_HI: PMW_NAN_HI,
  TAG_VALUE: PMW_TAG_VALUE,
  TAG_ERROR: PMW_TAG_ERROR,
  TAG_UNDEF: PMW_TAG_UNDEF,
  BLOCK_HDR: PMW_BLOCK_HDR,
};
