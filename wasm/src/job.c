/*
 * job.c - one call of the JavaScript API as C sees it (pmw_job), and the
 * functions the main thread calls to build, start, watch and free it.
 *
 * Threaded build: pmw_map_start() hands the call to a coordinator pthread
 * (the kept one, or a detached one when that is busy) that runs pm_map on
 * the warm pool (it is one of the call's threads) and posts progress and
 * completion to the main thread (MAIN_THREAD_ASYNC_EM_ASM), so
 * the main thread never blocks. Single-thread build: the main thread runs
 * pmw_map_slice() over consecutive ranges, a few milliseconds each, and
 * yields to its event loop between them.
 *
 * Ownership: the main thread creates and frees a job; the coordinator only
 * uses it between start and its "done" post, after which it never touches it.
 */
#include "pmw.h"

#include <emscripten.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __EMSCRIPTEN_PTHREADS__
#include <emscripten/threading.h>
#include <pthread.h>
#endif

/* The data of a block stays 8-aligned (records point at 8-byte units). */
_Static_assert(sizeof(pmw_block) % 8 == 0, "pmw_block header");

static pm_pool *pool;   /* the warm pool: main thread only */
static int pool_threads;

/* ------------------------------------------------------------ the pool */

/* Make the pool have at least `threads` background workers. Main thread, with no
 * call running (the JS side guarantees it). Returns that size or 0. */
EMSCRIPTEN_KEEPALIVE int pmw_pool_ensure(int threads)
{
    if (pool && pool_threads >= threads)
        return pool_threads;
    pm_pool_free(pool);
    pool = pmw__pool_new(threads);
    pool_threads = pool ? threads : 0;
    return pool_threads;
}

EMSCRIPTEN_KEEPALIVE void pmw_pool_free(void)
{
    pm_pool_free(pool);
    pool = NULL;
    pool_threads = 0;
}

EMSCRIPTEN_KEEPALIVE int pmw_threaded(void)
{
    return PMW_THREADED;
}

/* ------------------------------------------------------------- blocks */

EMSCRIPTEN_KEEPALIVE pmw_block *pmw_block_new(pmw_job *j, uint32_t size, int refs)
{
    pmw_block *b = malloc(sizeof *b + size);
    if (!b)
        return NULL;
    atomic_init(&b->refs, refs);
    b->size = size;
    b->pad = 0;
    pmw_block *head = atomic_load_explicit(&j->blocks, memory_order_relaxed);
    do
        b->next = head;
    while (!atomic_compare_exchange_weak_explicit(&j->blocks, &head, b, memory_order_release,
                                                  memory_order_relaxed));
    return b;
}

static void free_chain(pmw_block *b)
{
    while (b) {
        pmw_block *next = b->next;
        free(b);
        b = next;
    }
}

/* Free the blocks nothing points to any more. One sweeper per job (its
 * coordinator), so `kept` needs no lock; pushers only touch `blocks`. */
void pmw__sweep(pmw_job *j)
{
    pmw_block *fresh = atomic_exchange_explicit(&j->blocks, NULL, memory_order_acquire);
    pmw_block *keep = NULL;
    for (int pass = 0; pass < 2; pass++) {
        pmw_block *b = pass ? fresh : j->kept;
        while (b) {
            pmw_block *next = b->next;
            if (atomic_load_explicit(&b->refs, memory_order_acquire) <= 0) {
                free(b);
            } else {
                b->next = keep;
                keep = b;
            }
            b = next;
        }
    }
    j->kept = keep;
}

/* --------------------------------------------------------------- jobs */

static int next_id = 1;

EMSCRIPTEN_KEEPALIVE pmw_job *pmw_job_new(int kind, int threads, double chunksize, int raise,
                                          int unordered, int progress)
{
    pmw_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->id = next_id++;
    if (next_id > 0x3fffffff)
        next_id = 1;
    j->kind = kind;
    j->raise = raise;
    j->threads = threads > 0 ? threads : 1;
    j->chunksize = (long)chunksize;
    j->unordered = unordered;
    j->progress = progress;
    j->err_index = SIZE_MAX;
    if (!(j->cancel = pm_cancel_new()) || pthread_mutex_init(&j->err_lock, NULL) != 0) {
        pm_cancel_free(j->cancel);
        free(j);
        return NULL;
    }
    return j;
}

EMSCRIPTEN_KEEPALIVE void pmw_job_free(pmw_job *j)
{
    if (!j)
        return;
    free_chain(atomic_load(&j->blocks));
    free_chain(j->kept);
    free(j->recs);
    free(j->codes);
    free(j->src);
    free(j->meta);
    free(j->log);
    if (j->kin_owned)
        free(j->kin);
    if (j->kout_owned)
        free(j->kout);
    free(j->in.val);
    free(j->out.val);
    free(j->out.idx);
    free(j->out.code);
    pthread_mutex_destroy(&j->err_lock);
    pm_cancel_free(j->cancel);
    free(j);
}

/* Room for the function's source (which PMW_BYTES_SRC) or the meta bytes
 * (PMW_BYTES_META); the main thread writes them. Returns the address or 0. */
EMSCRIPTEN_KEEPALIVE void *pmw_job_bytes(pmw_job *j, int which, int len)
{
    void *p = malloc((size_t)len + 1);
    if (!p)
        return NULL;
    if (which == PMW_BYTES_SRC) {
        free(j->src);
        j->src = p;
        j->src_len = len;
    } else {
        free(j->meta);
        j->meta = p;
        j->meta_len = len;
    }
    return p;
}

/* A map over n records (in place). Returns the records' address or 0. */
EMSCRIPTEN_KEEPALIVE double *pmw_job_records(pmw_job *j, double n)
{
    size_t count = (size_t)n;
    j->n = count;
    j->recs = malloc((count ? count : 1) * sizeof *j->recs);
    j->codes = calloc(count ? count : 1, sizeof *j->codes);
    if (j->unordered)
        j->log = malloc((count ? count : 1) * 2 * sizeof *j->log);
    if (!j->recs || !j->codes || (j->unordered && !j->log))
        return NULL;
    return j->recs;
}

EMSCRIPTEN_KEEPALIVE int *pmw_job_codes(pmw_job *j)
{
    return j->codes;
}

EMSCRIPTEN_KEEPALIVE uint32_t *pmw_job_log(pmw_job *j)
{
    return j->log;
}

/* A kernel map, in two steps. The caller first fills params[] (in the
 * kernel's order) at pmw_job_params(), then:
 *  1. pmw_job_kernel(j, name): finds the kernel and sizes its records;
 *     returns the output elements per item, or 0 (unknown kernel, bad
 *     output length parameter);
 *  2. pmw_job_kernel_arrays(j, n, in, out): the input (n items) and output
 *     (n records) arrays. A nonzero `in` / `out` is the caller's heap array
 *     (heapArray() in JavaScript), used in place and never freed by the job:
 *     the zero-copy path. A zero one is allocated here and freed with the
 *     job. Returns the input's address, or 0 when out of memory. */
EMSCRIPTEN_KEEPALIVE double *pmw_job_params(pmw_job *j)
{
    return j->params;
}

static size_t ktype_size(pm_ktype t)
{
    switch (t) {
    case PM_K_I8: case PM_K_U8: case PM_K_U8C: return 1;
    case PM_K_I16: case PM_K_U16: return 2;
    case PM_K_I32: case PM_K_U32: case PM_K_F32: return 4;
    case PM_K_F64: return 8;
    }
    return 0;
}

EMSCRIPTEN_KEEPALIVE int pmw_job_kernel(pmw_job *j, const char *name)
{
    const pm_kernel *k = pm_kernel_find(name);
    if (!k)
        return 0;
    int len = pm_kernel_out_len(k, j->params);
    if (len <= 0)
        return 0;
    j->kernel = k;
    j->in_stride = ktype_size(k->in_type);
    j->out_stride = ktype_size(k->out_type) * (size_t)len;
    return len;
}

EMSCRIPTEN_KEEPALIVE void *pmw_job_kernel_arrays(pmw_job *j, double n, void *in, void *out)
{
    j->n = (size_t)n;
    j->kin_owned = in == NULL;
    j->kout_owned = out == NULL;
    j->kin = in ? in : malloc(j->n ? j->n * j->in_stride : 1);
    /* zeroed: a failed item's output stays zero (exception: 'return') */
    j->kout = out ? out : calloc(j->n ? j->n : 1, j->out_stride);
    j->codes = calloc(j->n ? j->n : 1, sizeof *j->codes);
    if (!j->kin || !j->kout || !j->codes)
        return NULL;
    return j->kin;
}

EMSCRIPTEN_KEEPALIVE void *pmw_job_kernel_out(pmw_job *j)
{
    return j->kout;
}

EMSCRIPTEN_KEEPALIVE double pmw_job_kernel_stride(pmw_job *j)
{
    return (double)j->out_stride;
}

/* Everything the main thread reads back after a call: what is a
 * PMW_GET_* (protocol.h PMW_JOB_FIELDS, which also says how each is read). */
EMSCRIPTEN_KEEPALIVE double pmw_job_get(pmw_job *j, int what)
{
    switch (what) {
#define PMW__GET(name, value) case PMW_GET_##name: return value;
        PMW_JOB_FIELDS(PMW__GET)
#undef PMW__GET
    }
    return 0;
}

/* The record of the first failing item (raise mode), written at *rec. */
EMSCRIPTEN_KEEPALIVE void pmw_job_err_rec(pmw_job *j, double *rec)
{
    *rec = j->err_rec;
}

EMSCRIPTEN_KEEPALIVE void pmw_cancel(pmw_job *j)
{
    pm_cancel_request(j->cancel);
    atomic_store(&j->closing, 1);
#ifdef __EMSCRIPTEN_PTHREADS__
    emscripten_futex_wake(&j->in.tail, INT32_MAX);
    emscripten_futex_wake(&j->out.head, INT32_MAX);
#endif
}

void pmw__note_error(pmw_job *j, size_t index, int code, double rec)
{
    pthread_mutex_lock(&j->err_lock);
    if (index < j->err_index) {
        j->err_index = index;
        j->err_code = code;
        j->err_rec = rec;
    }
    pthread_mutex_unlock(&j->err_lock);
}

/* ----------------------------------------------------- main-thread posts */

void pmw__post_progress(void *user, const pm_progress *p)
{
    pmw_job *j = user;
    MAIN_THREAD_ASYNC_EM_ASM({ Module["pmwProgress"]($0, $1, $2, $3, $4, $5, $6); }, j->id,
                             (double)p->done, (double)p->total, (double)p->failed, p->elapsed_s,
                             p->rate, p->eta_s);
}

void pmw__post(pmw_job *j, int what)
{
    MAIN_THREAD_ASYNC_EM_ASM({ Module["pmwPost"]($0, $1); }, j->id, what);
}

/* --------------------------------------------------------------- maps */

static int run_map(pmw_job *j, size_t start, size_t count, int reporting)
{
    pm_opts o = {
        .pool = pool,
        .chunksize = j->chunksize,
        .on_error = j->raise ? PM_RAISE : PM_RETURN,
        .codes = j->codes + start,
        .on_progress = reporting ? pmw__post_progress : NULL,
        .progress_user = j,
        .cancel = j->cancel,
        /* the call's threads, the coordinator (this thread) included */
        .threads = j->threads,
    };
    j->offset = start;
    if (j->kind == PMW_KERNEL)
        return pm_map(pmw__kernel_fn, j, j->kin + start * j->in_stride, j->in_stride,
                      j->kout + start * j->out_stride, j->out_stride, count, &o, &j->report);
    return pm_map_batch(pmw__batch, j, j->recs + start, sizeof(double), j->recs + start,
                        sizeof(double), count, &o, &j->report);
}

#ifdef __EMSCRIPTEN_PTHREADS__
/* The whole map, on a coordinator thread (its DONE post is the caller's). */
static void map_whole(pmw_job *j)
{
    j->status = run_map(j, 0, j->n, j->progress);
    if (j->status == PM_EITEM && j->err_index == SIZE_MAX) {
        /* a kernel or a failure noted nowhere else: take the core's word */
        j->err_index = j->report.first_error_index;
        j->err_code = j->report.first_error_code;
    }
}

/* Tell the main thread the map ended: by the job's `done` word when its
 * JavaScript awaits that word (Atomics.waitAsync: no proxying queue, no
 * message event), else by a post. The last touch of j on this thread: the
 * wake only names the word's address, which may be freed by then. */
static void tell_done(pmw_job *j)
{
    if (j->done_by_word) {
        atomic_store(&j->done, 1);
        emscripten_futex_wake(&j->done, INT32_MAX);
    } else {
        pmw__post(j, PMW_POST_DONE);
    }
}

static void *map_main(void *arg)
{
    pmw_job *j = arg;
    map_whole(j);
    tell_done(j);
    return NULL;
}

static int start_detached(void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    return rc == 0 ? PM_OK : PM_ESYS;
}
#endif

#ifdef __EMSCRIPTEN_PTHREADS__
/* The kept coordinator: a thread that waits for the next call instead of
 * ending. A thread per call cost a small call a post to its worker, the
 * thread's set-up and its exit, about a quarter of it. One call at a time
 * runs on it; a call that starts while it is busy gets a thread of its own.
 * Lock order: kept_lock is a leaf (nothing else is taken while holding it;
 * the main thread holds it only to hand a job over). */
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t kept_cv = PTHREAD_COND_INITIALIZER;
static _Atomic(pmw_job *) kept_job;   /* handed over, not taken yet (read unlocked: the spin) */
static int kept_busy;       /* the coordinator runs a map */
static int kept_started;

/* After a call the kept coordinator watches for the next one this long (ms)
 * before it sleeps, when there is a core to spare: small calls in a row then
 * find it awake (no futex wake for the main thread to pay, no wake-up delay
 * of a sleeping thread on an idle core), as OpenMP's threads spin before they
 * block. Small call, threaded, alternating: Node 0.050 -> 0.028 ms (blocks
 * in one process), Chromium 0.117 -> 0.094 (pages). Costs up to this much of
 * one core after each call. */
#define KEPT_SPIN_MS 0.2

static void *kept_main(void *arg)
{
    (void)arg;
    int spin = emscripten_num_logical_cores() > 1;
    pthread_mutex_lock(&kept_lock);
    for (;;) {
        if (!kept_job && spin) {
            pthread_mutex_unlock(&kept_lock);
            double until = emscripten_get_now() + KEPT_SPIN_MS;
            while (!atomic_load_explicit(&kept_job, memory_order_relaxed) && emscripten_get_now() < until)
                ;
            pthread_mutex_lock(&kept_lock);
        }
        while (!kept_job)
            pthread_cond_wait(&kept_cv, &kept_lock);
        pmw_job *j = kept_job;
        kept_job = NULL;
        kept_busy = 1;
        pthread_mutex_unlock(&kept_lock);
        map_whole(j);
        /* Free again before the post: the main thread starts its next call
         * as soon as it reads DONE, and must find this thread takeable even
         * if it has not got back to its wait yet (else that call would
         * start a thread of its own: 1 call in 12 did). */
        pthread_mutex_lock(&kept_lock);
        kept_busy = 0;
        pthread_mutex_unlock(&kept_lock);
        tell_done(j);
        pthread_mutex_lock(&kept_lock);
    }
    return NULL;
}

/* Main thread: give j to the kept coordinator (starting it the first time).
 * 1: handed over; 0: it is busy. */
static int hand_to_kept(pmw_job *j)
{
    int handed = 0;
    pthread_mutex_lock(&kept_lock);
    if (!kept_started || (!kept_busy && !kept_job)) {
        kept_job = j;
        handed = 1;
        pthread_cond_signal(&kept_cv);
    }
    pthread_mutex_unlock(&kept_lock);
    if (handed && !kept_started) {
        if (start_detached(kept_main, NULL) != PM_OK) {
            pthread_mutex_lock(&kept_lock);
            kept_job = NULL;
            pthread_mutex_unlock(&kept_lock);
            return 0;
        }
        kept_started = 1;
    }
    return handed;
}
#endif

/* Threaded build: start the whole map on a coordinator and return at once.
 * Returns PM_OK (then the end is told: by_word, j->done turns 1 and is
 * notified; else a PMW_POST_DONE post follows) or an error. */
EMSCRIPTEN_KEEPALIVE int pmw_map_start(pmw_job *j, int by_word)
{
#ifdef __EMSCRIPTEN_PTHREADS__
    j->pool = pool;
    j->done_by_word = by_word;
    if (!pool)
        return PM_ENOMEM;
    return hand_to_kept(j) ? PM_OK : start_detached(map_main, j);
#else
    (void)j;
    (void)by_word;
    return PM_ENOTSUP;
#endif
}

/* Single-thread build (works in both): run items [start, start + count) here
 * and now. Returns the status; the report describes this slice. */
EMSCRIPTEN_KEEPALIVE int pmw_map_slice(pmw_job *j, double start, double count)
{
    j->pool = pool;
    if (!pool)
        return PM_ENOMEM;
    j->status = run_map(j, (size_t)start, (size_t)count, 0);
    if (j->status == PM_EITEM && j->err_index == SIZE_MAX) {
        j->err_index = (size_t)start + j->report.first_error_index;
        j->err_code = j->report.first_error_code;
    }
    return j->status;
}

/* ------------------------------------------------------------ kernels */

/* JSON describing every kernel, for listKernels(): built once. */
EMSCRIPTEN_KEEPALIVE const char *pmw_kernels_json(void)
{
    static char *json;
    if (json)
        return json;
    size_t cap = 256, len = 0;
    for (const pm_kernel *k = pm_kernel_first(); k; k = k->next)
        cap += 256 + strlen(k->name) + strlen(k->params) + (k->doc ? strlen(k->doc) : 0) +
               32 * PM_KERNEL_MAX_PARAMS;
    char *s = malloc(cap);
    if (!s)
        return "[]";
    len += (size_t)snprintf(s + len, cap - len, "[");
    for (const pm_kernel *k = pm_kernel_first(); k; k = k->next) {
        int nparams = *k->params ? 1 : 0;
        for (const char *p = k->params; *p; p++)
            nparams += *p == ',';
        len += (size_t)snprintf(s + len, cap - len,
                                "%s{\"name\":\"%s\",\"in\":%d,\"out\":%d,\"params\":\"%s\","
                                "\"doc\":\"%s\",\"defaults\":[",
                                k == pm_kernel_first() ? "" : ",", k->name, (int)k->in_type,
                                (int)k->out_type, k->params, k->doc ? k->doc : "");
        for (int i = 0; i < nparams && i < PM_KERNEL_MAX_PARAMS; i++)
            len += (size_t)snprintf(s + len, cap - len, "%s%.17g", i ? "," : "", k->defaults[i]);
        len += (size_t)snprintf(s + len, cap - len, "]}");
    }
    snprintf(s + len, cap - len, "]");
    json = s;
    return json;
}

EMSCRIPTEN_KEEPALIVE const char *pmw_strerror(int status)
{
    return pm_err_name(status);
}

pm_pool *pmw__current_pool(void)
{
    return pool;
}
