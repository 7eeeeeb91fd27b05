/*
 * records.js (--pre-js, every realm): records <-> values. Numbers travel as
 * plain doubles, everything else as a NaN-boxed reference to encoded bytes
 * in a heap block (layout: src/pmw.h; numbers: src/protocol.h, read by
 * protocol.js).
 */

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
  // `lost` instead, and `lostBytes` says how big it was (chunk.js).
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
  this.his[this.n] = (PMW_NAN_HI | (tag << PMW_TAG_SHIFT) | (off >>> 3)) >>> 0;
  this.n++;
};

/** Allocate a block for the pending values, copy them, point the records
 * at them. Out of memory: throws, or (keepLost) lists the records in `lost`. */
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

var PMW_BIG_SCRATCH = 64 << 20; // a scratch buffer past this: pmw_big_values (src/batch.c)

/** Write a number, NaN (canonical) or undefined record. */
function pmwPutPlain(F, U, r, v) {
  if (v === v) F[r] = v;
  else { U[2 * r] = 0; U[2 * r + 1] = PMW_NAN_HI; }
}

/** Is the record at r (8-byte units) a reference? Returns the tag or 0. */
function pmwTag(U, r) {
  var hi = U[2 * r + 1];
  if ((hi & PMW_NAN_MASK) !== PMW_NAN_HI) return 0;
  return (hi >>> PMW_TAG_SHIFT) & PMW_TAG_MASK;
}

var pmwDecoder = new PmwDecoder();

/** Decode a referenced value (tag 1 or 2) at record r. */
function pmwDecodeRef(U, r) {
  var hi = U[2 * r + 1], block = U[2 * r];
  pmwViews(block + PMW_BLOCK_HDR);
  pmwViews(block + PMW_BLOCK_HDR + pmwHeap.U32[(block + PMW_BLOCK_SIZE) >> 2]);
  pmwDecoder.reset(pmwHeap.U8);
  pmwDecoder.pos = block + PMW_BLOCK_HDR + (hi & PMW_OFFSET_MASK) * 8;
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
  if (this.count) Atomics.sub(pmwHeap.I32, (this.block + PMW_BLOCK_REFS) >> 2, this.count);
  this.block = 0;
  this.count = 0;
};
