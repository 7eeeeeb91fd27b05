/*
 * pmw.h - the glue between parmap's C core and the JavaScript package
 * (parmap-wasm). What the files share:
 *  - batch.c:  the batch function that runs a whole chunk with ONE call into
 *              JavaScript (the item function runs in the worker's own JS
 *              realm), and the warm pool it runs on (an ordinary pm_pool);
 *  - job.c:    a job (one parmap / mapKernel call): its records, value
 *              blocks, errors, the coordinator thread running pm_map;
 *  - stream.c: imap: rings between the main thread and the C stream, the
 *              coordinator running pm_imap;
 *  - protocol.h / protocol.c: every number C and JavaScript share (job
 *              fields, ring fields, posts, item codes, the record layout
 *              below), declared once and exported to JavaScript as JSON.
 *
 * Records. Every item and result crosses as one 8-byte record: a double
 * when the value is a number, else a NaN-boxed reference to MessagePack bytes
 * in a "block" of the heap: high word 0x7FF80000 | tag << 17 | (offset / 8),
 * low word the block's address; the value starts at block + 16 + offset
 * (the numbers: protocol.h PMW_RECORD, PMW_TAGS).
 * Plain NaNs are always stored as 0x7FF80000_00000000 (tag 0), so a number
 * can never be mistaken for a reference. runtime.js reads and writes them.
 *
 * Blocks. A block is malloc'd memory with a 16-byte header (next, refs,
 * size), pushed on its job's lock-free list when created (by the main thread
 * for items, by workers for results). A map frees them all when the job is
 * freed; a stream frees those whose refs fell to 0 as it goes (sweep), so
 * memory stays flat on endless streams.
 *
 * Only the library's public headers are included: the glue is a client of
 * parmap like any other program (CMakeLists.txt gives it no path into src/).
 */
#ifndef PMW_H
#define PMW_H

#include "parmap.h"
#include "parmap_kernel.h"
#include "protocol.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __EMSCRIPTEN_PTHREADS__
#define PMW_THREADED 1
#else
#define PMW_THREADED 0
#endif

typedef struct pmw_block {
    struct pmw_block *next;
    atomic_int refs;          /* records still pointing into it (streams) */
    uint32_t size;            /* bytes after the header */
    uint32_t pad;
} pmw_block;                  /* 16 bytes: the data stays 8-aligned */

/* A ring of records between two threads: one producer, one consumer.
 * head/tail only grow (mod 2^32); capacity is a power of two. */
typedef struct pmw_ring {
    double *val;
    double *idx;              /* output rings: the item's index */
    int32_t *code;            /* output rings: the item's code */
    uint32_t cap;
    _Atomic uint32_t head;    /* consumer */
    _Atomic uint32_t tail;    /* producer */
    atomic_int waiting;       /* the main thread waits on this ring */
    atomic_int eof;           /* producer: no more records */
} pmw_ring;

typedef struct pmw_job {
    /* --- read by runtime.js from the heap (protocol.h PMW_JOB_OFFSETS) --- */
    int32_t id;               /* JS-side handle and per-worker cache key */
    int32_t raise;            /* stop at the first failing item */
    char *src;                /* the function's source, UTF-8 */
    int32_t src_len;
    unsigned char *meta;      /* MessagePack {args, kwargs, star, kwstar} */
    int32_t meta_len;
    /* --- C side --- */
    int32_t kind;             /* PMW_JS or PMW_KERNEL */
    int threads;              /* requested, >= 1 */
    long chunksize;           /* 0: auto */
    int unordered;
    int progress;             /* report progress to the main thread */
    size_t n;                 /* map: items */
    size_t offset;            /* map: index of records[0] in this slice (single-thread) */
    size_t total;             /* stream: progress total hint */
    double *recs;             /* map: n records, items in, results out (in place) */
    int *codes;               /* map: n item codes */
    pm_cancel *cancel;
    pm_pool *pool;
    _Atomic(pmw_block *) blocks;  /* pushed by anyone */
    pmw_block *kept;          /* the sweeper's: blocks still referenced */
    size_t swept_at;          /* records seen when it last swept */
    /* first failing item (raise mode) and its record */
    pthread_mutex_t err_lock;
    size_t err_index;
    double err_rec;
    int err_code;
    /* unordered map: chunks in completion order, (base, count) pairs */
    uint32_t *log;
    atomic_uint log_n;
    /* time spent in the function, all threads (batch.c): what the items cost */
    atomic_ullong busy_ns;
    /* outcome */
    pm_report report;
    int status;
    /* kernel */
    const pm_kernel *kernel;
    double params[PM_KERNEL_MAX_PARAMS];
    unsigned char *kin, *kout;
    int kin_owned, kout_owned;  /* 0: the caller's heap array (zero-copy) */
    size_t in_stride, out_stride;
    /* stream */
    pmw_ring in, out;
    atomic_int closing;       /* the consumer went away: everyone leaves */
    atomic_int done;          /* the coordinator finished (a stream; a map told by_word) */
    int done_by_word;         /* map: its end is told by `done`, not a post */
    int source_status;        /* set by the main thread with in.eof */
    int source_paused;        /* the feeder was told PM_SOURCE_LATER since the last record */
} pmw_job;

/* batch.c */
/* The warm pool: `threads` background workers (threaded build). */
pm_pool *pmw__pool_new(int threads);
/* A JS job's batch function (pm_batch_fn): a chunk per call into JavaScript. */
size_t pmw__batch(void *user, size_t first, size_t count, const void *in, void *out, int *codes);
int pmw__kernel_fn(void *user, const void *in, void *out);

/* job.c */
void pmw__note_error(pmw_job *j, size_t index, int code, double rec);
void pmw__sweep(pmw_job *j);
void pmw__post_progress(void *user, const pm_progress *p);
void pmw__post(pmw_job *j, int what);   /* what: PMW_POST_* */
pm_pool *pmw__current_pool(void);

#endif
