/*
 * runtime.js - the JavaScript linked into the Emscripten module with
 * --pre-js, so it runs in EVERY realm that loads the module: the main thread
 * and each pthread's web worker (and each worker of the workers engine). It
 * is several files, one concern each, concatenated in this order
 * (CMakeLists.txt RUNTIME_JS):
 *  - protocol.js:   the numbers shared with C (src/protocol.h), read once
 *                   per realm from the module (pmw_protocol_json);
 *  - heap-views.js: this realm's views of the memory;
 *  - codec.js:      MessagePack for JavaScript values;
 *  - errors.js:     errors as data both ways;
 *  - records.js:    records <-> values (NaN-boxed references to blocks);
 *  - chunk.js:      the worker side of a call (pmwRunChunk);
 *  - runtime.js:    this file, last: what the main thread sees of it all, as
 *                   Module.pmw (lib/loader.js).
 */

/* ------------------------------------------------- for the main thread */

Module['pmw'] = {
  // The protocol shared with C (src/protocol.h): statuses, posts, item
  // codes, kinds, ... by name (protocol.js).
  get P() { return pmwProtocol(); },
  // Readers of a job's outcome by name: job.status(ptr), job.err_index(ptr), ...
  get job() { pmwProtocol(); return pmwJobGet; },
  ringAddr: pmwRingAddr,
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
  thrownCode: pmwThrownCode,
  encodeWhy: pmwEncodeWhy,
  asEncodeError: pmwAsEncodeError,
  describe: pmwDescribe,
  syncStdio: pmwSyncStdio,
  // Record layout (getters: the values come with the protocol).
  get NAN_HI() { return PMW_NAN_HI; },
  get TAG_SHIFT() { return PMW_TAG_SHIFT; },
  get TAG_VALUE() { return PMW_TAG_VALUE; },
  get TAG_ERROR() { return PMW_TAG_ERROR; },
  get TAG_UNDEF() { return PMW_TAG_UNDEF; },
};
