/*
 * batch.c - how parmap-wasm runs JavaScript items on the C core: a batch
 * function (pm_map_batch / pm_imap_batch) on an ordinary threads pool.
 *
 * Each call of the batch function runs a whole chunk with ONE call into
 * JavaScript (EM_JS runs in the calling pthread's web-worker realm, where
 * runtime.js keeps the compiled function). Crossing wasm->JS once per chunk
 * instead of once per item is what makes a trivial function cost
 * nanoseconds. Kernels are plain C and stay per-item pm_fn functions.
 *
 * One warm pool serves every call; a call's `threads` caps the workers it
 * uses (opts.threads on a pool, parmap.h). Only public headers are used here:
 * the glue is a client of the library like any other.
 */
#include "pmw.h"

#include <emscripten.h>
#include <stdlib.h>

/* Runs `count` items of the job in JavaScript: reads records at in_, writes
 * results at out_ and a code per item; returns how many ran (fewer only when
 * raise mode stopped at a failing item, which is then the last). Defined in
 * runtime.js. */
EM_JS(int, pmw_js_run, (pmw_job *job, double base, int count, const void *in_, void *out_,
                        int *codes), {
    return pmwRunChunk(job, base, count, in_, out_, codes);
});

size_t pmw__batch(void *user, size_t first, size_t count, const void *in, void *out, int *codes)
{
    pmw_job *j = user;
    /* maps run in slices in the single-thread build: `first` counts from
     * the slice's start */
    size_t base = j->recs ? j->offset + first : first;
    if (count > INT32_MAX)
        count = INT32_MAX; /* never: chunks are far smaller; the core calls again */
    double t0 = emscripten_get_now();
    size_t ran = (size_t)pmw_js_run(j, (double)base, (int)count, in, out, codes);
    atomic_fetch_add_explicit(&j->busy_ns, (unsigned long long)((emscripten_get_now() - t0) * 1e6),
                              memory_order_relaxed);
    if (j->raise) {
        /* Raise mode: keep the first failing item's record (its error) for
         * the main thread. A stream's record may be gone by the time the
         * consumer sees the failure, so it is kept here for both. */
        for (size_t k = 0; k < ran; k++)
            if (codes[k]) {
                pmw__note_error(j, base + k, codes[k], ((const double *)out)[k]);
                break;
            }
    }
    if (j->log) {
        /* unordered map: ranges in completion order for the main thread */
        unsigned slot = atomic_fetch_add_explicit(&j->log_n, 1, memory_order_relaxed);
        j->log[2 * slot] = (uint32_t)base;
        j->log[2 * slot + 1] = (uint32_t)ran;
    }
    return ran;
}

int pmw__kernel_fn(void *user, const void *in, void *out)
{
    pmw_job *j = user;
    return j->kernel->fn(j->params, in, out);
}

pm_pool *pmw__pool_new(int threads)
{
    /* Threaded: `threads` background workers, for maps the coordinator is
     * one of a call's threads, and a stream's coordinator (its consumer)
     * helps only when it has no result to deliver (stream.c).
     * Single-thread: the caller runs everything. */
    return pm_pool_new(&(pm_opts){
        .backend = PMW_THREADED ? PM_THREADS : PM_SERIAL,
        .threads = PMW_THREADED ? threads + 1 : 1,
    });
}

/* Set by a realm whose scratch buffer one huge value grew (runtime.js
 * PmwBlockWriter.shrink), read and cleared at a call's end: that realm then
 * holds garbage its idle isolate may never collect, and the loader (or the
 * workers pool) replaces it to give the memory back. set: 1 to set, -1 to
 * read and clear. Shared by every pthread of the threaded build. */
static _Atomic int big_values;

EMSCRIPTEN_KEEPALIVE int pmw_big_values(int set)
{
    if (set > 0) {
        atomic_store(&big_values, 1);
        return 1;
    }
    return atomic_exchange(&big_values, 0);
}
