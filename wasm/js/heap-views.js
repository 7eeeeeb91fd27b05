/*
 * heap-views.js (--pre-js, every realm): this realm's typed-array views of
 * the module's memory, rebuilt when the memory grew.
 */

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
