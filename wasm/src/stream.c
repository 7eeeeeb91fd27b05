/*
 * stream.c - imap in the threaded build: pm_imap driven by a coordinator
 * pthread, fed from and drained to the main thread through two rings of
 * records in the shared heap.
 *
 *   main thread --in ring--> feeder (core) -> workers (batch.c) -> coordinator
 *   (pm_iter_next) --out ring--> main thread
 *
 * Each ring has one producer and one consumer. The main thread never blocks:
 * when it finds the in ring full or the out ring empty it raises the ring's
 * `waiting` flag, re-checks, and awaits a post; the other side posts (one
 * MAIN_THREAD_ASYNC_EM_ASM) only when it finds the flag raised, so a busy
 * stream costs no message per item. The C side blocks on a futex with a
 * short timeout, so `closing` (the consumer left, or abort) is seen within
 * ~50 ms even if a wake-up is missed.
 *
 * Memory stays flat: the core bounds what is in flight (window), the rings
 * are fixed, and the coordinator sweeps value blocks whose records were all
 * consumed (job.c).
 */
#include "pmw.h"

#include <emscripten.h>
#include <stdlib.h>
#include <string.h>

#ifdef __EMSCRIPTEN_PTHREADS__
#include <emscripten/threading.h>
#include <pthread.h>

#define POLL_MS 50.0
#define SWEEP_EVERY 4096

static int ring_init(pmw_ring *r, uint32_t cap, int with_meta)
{
    r->cap = cap;
    r->val = malloc(cap * sizeof *r->val);
    if (with_meta) {
        r->idx = malloc(cap * sizeof *r->idx);
        r->code = malloc(cap * sizeof *r->code);
    }
    return r->val && (!with_meta || (r->idx && r->code)) ? PM_OK : PM_ENOMEM;
}

/* The stream's source, called by the core's feeder thread. */
static int source(void *src, void *item)
{
    pmw_job *j = src;
    pmw_ring *r = &j->in;
    uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    for (;;) {
        uint32_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (head != tail) {
            memcpy(item, &r->val[head & (r->cap - 1)], sizeof(double));
            atomic_store_explicit(&r->head, head + 1, memory_order_release);
            j->source_paused = 0;
            /* The main thread waits for room: tell it once half is free. */
            if (atomic_load_explicit(&r->waiting, memory_order_relaxed) &&
                r->cap - (tail - head - 1) >= r->cap / 2 && atomic_exchange(&r->waiting, 0))
                pmw__post(j, PMW_POST_IN);
            return 1;
        }
        if (atomic_load_explicit(&r->eof, memory_order_acquire)) {
            if (atomic_load_explicit(&r->tail, memory_order_acquire) != head)
                continue; /* records pushed just before eof */
            return j->source_status ? j->source_status : 0;
        }
        if (atomic_load(&j->closing))
            return PM_ECANCELED;
        /* Empty: the records so far go to the workers now, not when the
         * source's next batch fills their chunk (a burst, then a pause);
         * the next call waits. */
        if (!j->source_paused) {
            j->source_paused = 1;
            return PM_SOURCE_LATER;
        }
        /* The main thread may be waiting for room that is there now. */
        if (atomic_load_explicit(&r->waiting, memory_order_relaxed) && atomic_exchange(&r->waiting, 0))
            pmw__post(j, PMW_POST_IN);
        emscripten_futex_wait(&r->tail, tail, POLL_MS);
    }
}

/* Push one result; waits while the ring is full. 0, or -1 when closing. */
static int push_result(pmw_job *j, double val, size_t index, int code)
{
    pmw_ring *r = &j->out;
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    for (;;) {
        uint32_t head = atomic_load_explicit(&r->head, memory_order_acquire);
        if (tail - head < r->cap)
            break;
        if (atomic_load(&j->closing))
            return -1;
        if (atomic_load_explicit(&r->waiting, memory_order_relaxed) && atomic_exchange(&r->waiting, 0))
            pmw__post(j, PMW_POST_OUT);
        emscripten_futex_wait(&r->head, head, POLL_MS);
    }
    uint32_t k = tail & (r->cap - 1);
    r->val[k] = val;
    r->idx[k] = (double)index;
    r->code[k] = code;
    atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
    if (atomic_load_explicit(&r->waiting, memory_order_relaxed) && atomic_exchange(&r->waiting, 0))
        pmw__post(j, PMW_POST_OUT);
    return 0;
}

static void *stream_main(void *arg)
{
    pmw_job *j = arg;
    pm_opts o = {
        .pool = j->pool,
        .chunksize = j->chunksize,
        .unordered = j->unordered,
        .on_error = j->raise ? PM_RAISE : PM_RETURN,
        .on_progress = j->progress ? pmw__post_progress : NULL,
        .progress_user = j,
        .total = j->total,
        .cancel = j->cancel,
        /* `threads` background workers, and this thread (the consumer),
         * which only delivers: a function that never returns must not
         * hold back the results before it, nor the consumer's own exit
         * (abort, break) */
        .threads = j->threads + 1,
        .consumer_only = 1,
    };
    pm_iter *it = pm_imap_batch(pmw__batch, j, source, j, sizeof(double), sizeof(double), &o);
    int r = PM_ENOMEM;
    size_t index = 0, seen = 0;
    int code = 0;
    double val;
    if (it) {
        while ((r = pm_iter_next(it, &val, &index, &code)) == 1) {
            if (push_result(j, val, index, code) < 0) {
                r = PM_ECANCELED;
                break;
            }
            if (++seen - j->swept_at >= SWEEP_EVERY) {
                j->swept_at = seen;
                pmw__sweep(j);
            }
        }
        if (r == PM_EITEM && j->err_index == SIZE_MAX) {
            j->err_rec = val;
            j->err_index = index;
            j->err_code = code;
        }
        pm_iter_report(it, &j->report);
        pm_iter_free(it);
    }
    j->status = r;
    pmw__sweep(j);
    atomic_store(&j->out.eof, 1);
    atomic_store(&j->done, 1);
    pmw__post(j, PMW_POST_DONE); /* last touch of j on this thread */
    return NULL;
}

/* Rings of in_cap and out_cap records (powers of two). Returns PM_OK. */
EMSCRIPTEN_KEEPALIVE int pmw_stream_init(pmw_job *j, int in_cap, int out_cap, double total)
{
    j->total = (size_t)total;
    if (ring_init(&j->in, (uint32_t)in_cap, 0) != PM_OK || ring_init(&j->out, (uint32_t)out_cap, 1) != PM_OK)
        return PM_ENOMEM;
    return PM_OK;
}

EMSCRIPTEN_KEEPALIVE int pmw_stream_start(pmw_job *j)
{


    j->pool = pmw__current_pool();
    if (!j->pool)
        return PM_ENOMEM;
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, stream_main, j);
    pthread_attr_destroy(&attr);
    return rc == 0 ? PM_OK : PM_ESYS;
}

#else /* single-thread build: imap runs as windows of map slices (index.js) */

EMSCRIPTEN_KEEPALIVE int pmw_stream_init(pmw_job *j, int in_cap, int out_cap, double total)
{
    (void)j; (void)in_cap; (void)out_cap; (void)total;
    return PM_ENOTSUP;
}

EMSCRIPTEN_KEEPALIVE int pmw_stream_start(pmw_job *j)
{
    (void)j;
    return PM_ENOTSUP;
}

#endif

/* Ring addresses for the main thread: which is PMW_RING_in or _out, field a
 * PMW_RF_* (protocol.h PMW_RING_FIELDS). */
EMSCRIPTEN_KEEPALIVE void *pmw_ring_addr(pmw_job *j, int which, int field)
{
    pmw_ring *r = which == PMW_RING_out ? &j->out : &j->in;
    switch (field) {
#define PMW__FIELD(name, addr) case PMW_RF_##name: return addr;
        PMW_RING_FIELDS(PMW__FIELD)
#undef PMW__FIELD
    }
    return NULL;
}

EMSCRIPTEN_KEEPALIVE void pmw_stream_eof(pmw_job *j, int status)
{
    j->source_status = status;
    atomic_store(&j->in.eof, 1);
#ifdef __EMSCRIPTEN_PTHREADS__
    emscripten_futex_wake(&j->in.tail, INT32_MAX);
#endif
}
