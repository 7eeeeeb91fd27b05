/*
 * chunk.js (--pre-js, every realm): the worker side of a call. pmwRunChunk
 * is what the C executor calls once per chunk (EM_JS in src/batch.c, the
 * batch function). It compiles the user's function from its source once per
 * worker, builds the arguments (star / kwstar / args / kwargs), and loops
 * over the chunk. It runs inside a call from C and cannot await: a promise
 * result fails its item (PMW_CODE_ASYNC) and lib/map.js moves the call to
 * the workers engine, which awaits (lib/worker.js runAsync).
 */

var pmwFnCache = new Map();   // source text -> compiled function (this realm)
var pmwJobCache = new Map();  // job id -> { call, raise }

/** esbuild's keepNames helper (tsx, vitest, bundlers with keepNames): it
 * names a function declared inside the user's function, from that
 * function's own source (`__name(inner, "inner")`), where nothing defines
 * it. Each compiled function gets it as a name in scope, not a global (the
 * main thread's check knows it: lib/freevars.js COMPILE_SCOPE). */
function pmwSetName(target, value) {
  return Object.defineProperty(target, 'name', { value: value, configurable: true });
}

/** Compile a function from its source text in this realm. Throws SyntaxError
 * or TypeError. Method shorthand (`f(x) { ... }`) is accepted too. */
function pmwCompile(src) {
  var f = pmwFnCache.get(src);
  if (f) return f;
  try {
    f = new Function('__name', 'return (' + src + '\n);')(pmwSetName);
  } catch (e) {
    if (!(e instanceof SyntaxError)) throw e;
    var o;
    try { o = new Function('__name', 'return ({' + src + '\n});')(pmwSetName); } catch (e2) { throw e; }
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
  try {
    return pmwItemErrorFields(e, index, code);
  } catch (x) {
    // A thrown value that throws when looked at (a revoked Proxy, a getter
    // that throws): its text, as far as it can be had, and the index.
    return { name: 'Error', message: 'a value was thrown that cannot be read: ' + pmwSafeString(e), index: index, itemCode: code };
  }
}

/** A thrown error's own code: SHAPE for a star/kwstar mismatch (never
 * throws, whatever was thrown). */
function pmwThrownCode(e) {
  try { return e && e.pmwShape ? PMW_CODE_SHAPE : PMW_CODE_THREW; } catch (x) { return PMW_CODE_THREW; }
}

/** Why a result cannot be sent back, from what encoding it threw. */
function pmwEncodeWhy(e) {
  e = pmwAsEncodeError(e);
  return e.what + (e.path ? ' at result' + e.path : '');
}

function pmwItemErrorFields(e, index, code) {
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
  try {
    return r !== null && (typeof r === 'object' || typeof r === 'function') && typeof r.then === 'function';
  } catch (e) {
    return false;   // a revoked Proxy: encoding it fails the item (pmwEncodeWhy)
  }
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
      U[2 * lost[j] + 1] = (PMW_NAN_HI | (PMW_TAG_UNDEF << PMW_TAG_SHIFT)) >>> 0;
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

var pmwWriter = null;
var pmwReleaser = null;

/**
 * Node, in a worker thread: what a function prints goes straight to the
 * process's stdout / stderr. A Node worker's process.stdout hands each
 * write to the main thread and waits, in the worker's event loop, for the
 * go-ahead to send the next. A pthread never returns to that loop while it
 * lives (between chunks it waits in C): only its first console.log ever
 * arrived. A workers-engine worker returns to it, but its last lines could
 * still be on the way when the program ended (they were lost). Synchronous
 * writes to the file descriptors keep every line, written before the item's
 * result is. Called once per thread: a pthread at its first chunk (below),
 * a workers-engine worker by lib/worker.js, with Node's fs.
 */
function pmwSyncStdio(fs) {
  [[process.stdout, 1], [process.stderr, 2]].forEach(function (s) {
    var stream = s[0], fd = s[1];
    stream.write = function (chunk, encoding, cb) {
      if (typeof encoding === 'function') { cb = encoding; encoding = undefined; }
      var bytes = typeof chunk === 'string' ? Buffer.from(chunk, encoding || 'utf8') : chunk;
      for (var off = 0; off < bytes.length;) {
        try {
          off += fs.writeSync(fd, bytes, off, bytes.length - off);
        } catch (e) {
          if (e.code !== 'EAGAIN') break;   // a closed pipe: the line is lost, as it would be
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);   // a full pipe: wait for room
        }
      }
      if (cb) cb();
      return true;
    };
  });
}

/** A pthread's Node fs: not `require('fs')` as such (this file is in the
 * browser glue too, and bundlers would try to resolve it); Emscripten's
 * worker script gives a Node pthread a global require. */
function pmwNodeFs() {
  return typeof process.getBuiltinModule === 'function' ? process.getBuiltinModule('fs') : globalThis['require']('fs');
}

/**
 * Run items [0, count) of a chunk: read records at inP, write results at
 * outP (may be the same), codes at codesP. base is the index of the first
 * item. Returns how many ran. Called by C (src/batch.c) on the thread that
 * took the chunk, so this realm is that worker's.
 */
function pmwRunChunk(job, base, count, inP, outP, codesP) {
  if (PMW === null) {   // a pthread's first chunk
    pmwProtocol();
    if (ENVIRONMENT_IS_NODE && ENVIRONMENT_IS_PTHREAD) pmwSyncStdio(pmwNodeFs());
  }
  pmwViews(Math.max(inP, outP) + 8 * count);
  pmwViews(job + PMW_JOB_END);
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
      code = pmwThrownCode(e);
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
      if (r === undefined) { U[2 * (oi + k)] = 0; U[2 * (oi + k) + 1] = (PMW_NAN_HI | (PMW_TAG_UNDEF << PMW_TAG_SHIFT)) >>> 0; }
      else {
        try {
          w.add(job, r, oi + k, PMW_TAG_VALUE);
        } catch (e) {
          code = PMW_CODE_ENCODE;
          r = new TypeError('parmap: item ' + (base + k) + ': the result cannot be sent back: ' + pmwEncodeWhy(e));
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
    if (w.lost.length && pmwFailLost(w, job, base, oi, ci, count) && raise) { k++; break; }
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
