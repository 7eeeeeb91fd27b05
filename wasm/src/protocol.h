/*
 * protocol.h - the protocol between the glue (C) and the package's
 * JavaScript (js/ and lib/), declared once.
 *
 * Every number both sides must agree on is listed here as an X-macro. C
 * builds its enums and switches from these lists; protocol.c turns the same
 * lists (plus the struct offsets the JavaScript reads, and the core's
 * statuses, parmap.h PM_STATUS_MAP) into one JSON object that the module
 * exports (pmw_protocol_json). js/protocol.js reads it once per realm and
 * hands it to the rest of the JavaScript as PMW (runtime) and rt.pmw.P (lib):
 * no number of this header is written again on the JavaScript side.
 *
 * Adding an entry: add it here (and, for a job field or a ring field, the
 * expression that reads it); JavaScript sees it by its name. Names are
 * spelled the same on both sides (grep finds both).
 */
#ifndef PMW_PROTOCOL_H
#define PMW_PROTOCOL_H

#include "parmap.h"        /* PM_STATUS_MAP */
#include "parmap_value.h"  /* PM_MSGPACK_EXT_ERROR */

/* What the main thread reads back from a job: pmw_job_get(job, PMW_GET_<name>).
 * The second column is the value (job.c, with `j` the job). JS:
 * rt.pmw.get.<name>(job). */
#define PMW_JOB_FIELDS(X)                                                            \
    X(status, j->status)                                                             \
    X(done, (double)j->report.done)                                                  \
    X(failed, (double)j->report.failed)                                              \
    /* first failing item noted by the glue (raise mode), -1 if none */              \
    X(err_index, j->err_index == SIZE_MAX ? -1 : (double)j->err_index)               \
    X(err_code, j->err_code)                                                         \
    X(elapsed, j->report.elapsed_s)                                                  \
    /* seconds spent in the function, summed over threads (JS items) */            \
    X(busy, (double)atomic_load(&j->busy_ns) / 1e9)                                  \
    /* unordered map: chunks logged in completion order */                           \
    X(log_n, (double)atomic_load(&j->log_n))                                         \
    /* first failing item by the core's report, -1 if none */                        \
    X(first_error_index,                                                             \
      j->report.first_error_index == SIZE_MAX ? -1 : (double)j->report.first_error_index) \
    X(first_error_code, j->report.first_error_code)                                  \
    X(id, j->id)

/* Addresses in a stream's rings: pmw_ring_addr(job, PMW_RING_<which>,
 * PMW_RF_<field>) (stream.c, with `r` the ring and `j` the job). JS:
 * rt.pmw.ringAddr(job, 'out', 'head'). */
#define PMW_RINGS(X) X(in) X(out)
#define PMW_RING_FIELDS(X)                                                           \
    X(val, r->val)                 /* records (double) */                            \
    X(idx, r->idx)                 /* out ring: the item's index (double) */         \
    X(code, r->code)               /* out ring: the item's code (int32) */           \
    X(head, (void *)&r->head)      /* uint32, consumer */                            \
    X(tail, (void *)&r->tail)      /* uint32, producer */                            \
    X(waiting, (void *)&r->waiting) /* int32: the main thread waits on it */         \
    X(eof, (void *)&r->eof)        /* int32: no more records */

/* Posts to the main thread: Module.pmwPost(job id, PMW_POST_<name>). */
#define PMW_POSTS(X)                                                                 \
    X(DONE, 1)   /* the job ended: the coordinator let go of it */                   \
    X(IN, 2)     /* room in the in ring */                                           \
    X(OUT, 3)    /* results in the out ring */

/* An item's code when its JavaScript failed (C sees nonzero = failed). */
#define PMW_ITEM_CODES(X)                                                            \
    X(THREW, 1)  /* the function threw */                                            \
    X(SHAPE, 2)  /* the item does not fit star / kwstar */                           \
    X(ENCODE, 3) /* the result cannot be encoded */                                  \
    X(ASYNC, 4)  /* a plain function returned a promise (runs again on workers) */   \
    X(NOMEM, 5)  /* its result's block could not be allocated (heap full) */

/* pmw_job_new(kind, ...) */
#define PMW_KINDS(X) X(JS, 0) X(KERNEL, 1)

/* pmw_job_bytes(job, which, len) */
#define PMW_JOB_BYTES(X) X(SRC, 0) X(META, 1)

/* Statuses of the glue beside the core's (parmap.h PM_STATUS_MAP), which
 * JavaScript gets together as STATUS. */
#define PMW_STATUS_MAP(X)                                                            \
    /* a stream whose JavaScript source threw (the error stays on the JS side) */   \
    X(ESOURCE, -100, "the stream's source failed")

/* Records (pmw.h): a double, or a NaN-boxed reference to MessagePack bytes
 * in a block: high word NAN_HI | tag << TAG_SHIFT | (offset / 8), low word
 * the block's address. */
#define PMW_RECORD(X)                                                                \
    X(NAN_HI, 0x7FF80000)                                                            \
    X(NAN_MASK, 0xFFF80000)        /* high bits that say "a NaN" */                  \
    X(TAG_SHIFT, 17)                                                                 \
    X(TAG_MASK, 3)                                                                   \
    X(OFFSET_MASK, 0x1FFFF)        /* offset in 8-byte units: 17 bits */             \
    X(BLOCK_MAX, 1 << 20)          /* bytes of values in one block */
#define PMW_TAGS(X) X(VALUE, 1) X(ERROR, 2) X(UNDEF, 3)

/* MessagePack extension types the JavaScript codec shares with C (its
 * other types are JavaScript's own: js/codec.js). */
#define PMW_MSGPACK(X) X(EXT_ERROR_C, PM_MSGPACK_EXT_ERROR)

/* Fields of pmw_job that the JavaScript reads from the heap (as offsets):
 * runtime.js, in the thread that runs a chunk; `done` (int32: the
 * coordinator finished a stream, or a map told by_word), the main thread. */
#define PMW_JOB_OFFSETS(X) X(id) X(raise) X(src) X(src_len) X(meta) X(meta_len) X(done)
/* Fields of pmw_block's header, likewise. */
#define PMW_BLOCK_OFFSETS(X) X(refs) X(size)

/* ---------------------------------------------------------- C's names */

#define PMW__GET(name, ...) PMW_GET_##name,
#define PMW__RING(name) PMW_RING_##name,
#define PMW__RF(name, ...) PMW_RF_##name,
#define PMW__IS(name, value, ...) PMW_##name = value,
#define PMW__POST(name, value) PMW_POST_##name = value,
#define PMW__CODE(name, value) PMW_CODE_##name = value,
#define PMW__BYTES(name, value) PMW_BYTES_##name = value,
enum { PMW_JOB_FIELDS(PMW__GET) PMW_GET_COUNT };
enum { PMW_RINGS(PMW__RING) PMW_RING_COUNT };
enum { PMW_RING_FIELDS(PMW__RF) PMW_RF_COUNT };
enum { PMW_STATUS_MAP(PMW__IS) PMW_KINDS(PMW__IS) };
enum { PMW_POSTS(PMW__POST) PMW_ITEM_CODES(PMW__CODE) PMW_JOB_BYTES(PMW__BYTES) };
#undef PMW__GET
#undef PMW__RING
#undef PMW__RF
#undef PMW__IS
#undef PMW__POST
#undef PMW__CODE
#undef PMW__BYTES

#endif
