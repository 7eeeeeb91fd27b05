/*
 * protocol.js (--pre-js, every realm, first): the numbers the JavaScript
 * shares with the C glue, read from the module itself. They are declared
 * once, in src/protocol.h (and parmap.h's PM_STATUS_MAP); src/protocol.c
 * exports them as JSON (pmw_protocol_json), parsed here once per realm:
 *  - the main thread and each worker of the workers engine: before the
 *    module's factory resolves (below);
 *  - a pthread: at its first chunk (pmwRunChunk calls pmwProtocol()).
 * What hot code reads is copied into plain variables (PMW_NAN_HI, ...);
 * the rest stays in the table, PMW (Module.pmw.P for lib/).
 */

var PMW = null;
// records (src/pmw.h): NaN-boxing and blocks
var PMW_NAN_HI, PMW_NAN_MASK, PMW_TAG_SHIFT, PMW_TAG_MASK, PMW_OFFSET_MASK, PMW_BLOCK_MAX;
var PMW_TAG_VALUE, PMW_TAG_ERROR, PMW_TAG_UNDEF;
var PMW_BLOCK_HDR, PMW_BLOCK_REFS, PMW_BLOCK_SIZE;
// fields of a job read from the heap; PMW_JOB_END: past the last of them
var PMW_JOB_ID, PMW_JOB_RAISE, PMW_JOB_SRC, PMW_JOB_SRC_LEN, PMW_JOB_META, PMW_JOB_META_LEN, PMW_JOB_END;
// item codes (C sees nonzero = failed)
var PMW_CODE_THREW, PMW_CODE_SHAPE, PMW_CODE_ENCODE, PMW_CODE_ASYNC, PMW_CODE_NOMEM;
// MessagePack extension type of the C value layer's errors (parmap_value.h)
var PMW_EXT_ERROR_C;

/** The protocol table (parsed on first use in this realm). */
function pmwProtocol() {
  if (PMW !== null) return PMW;
  var p = _pmw_protocol_json();
  if (!p) throw new Error('parmap: the module could not describe its protocol (src/protocol.c: text too small)');
  var P = JSON.parse(UTF8ToString(p));
  var R = P.record, T = P.tag, J = P.jobOffset, B = P.block, C = P.code;
  PMW_NAN_HI = R.NAN_HI; PMW_NAN_MASK = R.NAN_MASK; PMW_TAG_SHIFT = R.TAG_SHIFT; PMW_TAG_MASK = R.TAG_MASK;
  PMW_OFFSET_MASK = R.OFFSET_MASK; PMW_BLOCK_MAX = R.BLOCK_MAX; PMW_EXT_ERROR_C = P.msgpack.EXT_ERROR_C;
  PMW_TAG_VALUE = T.VALUE; PMW_TAG_ERROR = T.ERROR; PMW_TAG_UNDEF = T.UNDEF;
  PMW_BLOCK_HDR = B.HDR; PMW_BLOCK_REFS = B.refs; PMW_BLOCK_SIZE = B.size;
  PMW_JOB_ID = J.id; PMW_JOB_RAISE = J.raise; PMW_JOB_SRC = J.src; PMW_JOB_SRC_LEN = J.src_len;
  PMW_JOB_META = J.meta; PMW_JOB_META_LEN = J.meta_len;
  PMW_JOB_END = 0;
  for (var k in J) PMW_JOB_END = Math.max(PMW_JOB_END, J[k] + 8);
  PMW_CODE_THREW = C.THREW; PMW_CODE_SHAPE = C.SHAPE; PMW_CODE_ENCODE = C.ENCODE; PMW_CODE_ASYNC = C.ASYNC;
  PMW_CODE_NOMEM = C.NOMEM;
  // Named readers of a job (pmw_job_get): pmwJobGet.status(job), ...
  pmwJobGet = {};
  Object.keys(P.get).forEach(function (name) {
    var what = P.get[name];
    pmwJobGet[name] = function (job) { return _pmw_job_get(job, what); };
  });
  PMW = P;
  return P;
}

var pmwJobGet = null;

/** The address of a field of one of a stream's rings, by names:
 * pmwRingAddr(job, 'out', 'head') (src/protocol.h PMW_RING_FIELDS). */
function pmwRingAddr(job, which, field) {
  var P = pmwProtocol();
  if (!(which in P.ring) || !(field in P.ringField)) throw new Error('parmap: no ring field ' + which + '.' + field);
  return _pmw_ring_addr(job, P.ring[which], P.ringField[field]) >>> 0;
}

// Loaded before the module's factory resolves (MODULARIZE returns
// Module.ready): the main thread, a worker of the workers engine. Not in a
// pthread, whose ready promise resolves before its thread is set up: there
// pmwRunChunk loads it at the first chunk.
Module['ready'] = Module['ready'].then(function (M) {
  if (!(typeof ENVIRONMENT_IS_PTHREAD != 'undefined' && ENVIRONMENT_IS_PTHREAD)) pmwProtocol();
  return M;
});
