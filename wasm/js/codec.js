/*
 * codec.js (--pre-js, every realm): the value codec. MessagePack plus a few
 * extension types for JavaScript values, encoding into a private scratch
 * buffer (PmwEncoder) and decoding straight from the shared heap
 * (PmwDecoder). Errors inside values go through errors.js.
 */

// PMW_EXT_ERROR_C (protocol.js): the C value layer's error: [index, code, message].
// The other types are this codec's own (JavaScript values C never sees).
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

/** What encoding threw, as a PmwEncodeError: a value that throws when it is
 * read (a revoked Proxy, a getter that throws) cannot be sent either. */
function pmwAsEncodeError(e) {
  var isEnc = false;
  try { isEnc = e instanceof PmwEncodeError; } catch (x) { }
  return isEnc ? e : new PmwEncodeError('reading it threw ' + pmwSafeString(e));
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
  // Small at first, doubled as needed (ensure): every call makes one or two
  // encoders, and a zeroed 64 KB buffer each cost a small call ~60 us.
  this.buf = new Uint8Array(1024);
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
    throw pmwAsEncodeError(e);
  }
  return start;
};


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
