/*
 * threads.c - the threads executor: a crew (crew.c) of threads - 1 pthreads
 * that run chunks right here. Like OpenMP's master thread, the caller is one
 * of the `threads`: wait() runs the job on the calling thread before it
 * blocks. That makes a small map on a warm pool cost a few microseconds (the
 * caller usually finishes it before a worker has even woken up) and lets an
 * item function use the same pool without deadlock (its own call can always
 * make progress by itself).
 */
#include "crew.h"

#include <stdlib.h>
#include <string.h>

static int local_step(void *owner, pm__job *job, int worker)
{
    (void)owner;
    return pm__job_step(job, worker);
}

static int threads_open(void *state, const pm__exec_config *cfg)
{
    int rc = pm__crew_open(state, cfg->threads - 1, local_step, NULL);
    /* A pool (the default one above all) may live until exit: let its
     * threads finish starting up first, or a program that exits at once
     * leaves one inside thread start-up (LeakSanitizer then reports what
     * glibc had allocated for it). A call's own threads need no wait, nor
     * can a pool opened on Emscripten's main thread wait (the npm package
     * opens its pool there): its threads start once that thread returns. */
    if (rc == PM_OK && cfg->pool_opts && pm__may_wait_for_thread_start())
        pm__crew_settle(state);
    return rc;
}

static int threads_workers(const void *state)
{
    return ((const pm__crew *)state)->size;
}

static int threads_submit(void *state, pm__job *job)
{
    pm__crew_submit(state, job);
    return PM_OK;
}

static void threads_notify(void *state)
{
    pm__crew_notify(state);
}

static int threads_wait(void *state, pm__job *job, double seconds)
{
    return pm__crew_wait(state, job, seconds, 1);
}

static void threads_close(void *state)
{
    pm__crew_close(state);
}

const pm__exec_methods pm__exec_threads = {
    .version = 6,
    .name = "threads",
    .state_size = sizeof(pm__crew),
    .open = threads_open,
    .workers = threads_workers,
    .submit = threads_submit,
    .notify = threads_notify,
    .wait = threads_wait,
    .close = threads_close,
    .worker_state = 1,
    .shares = 1,
};

/*
 * Per-worker state kept with a pool (pm_pool_new with worker_init /
 * worker_exit): `threads` crew members, each running worker_init once in its
 * own thread as the pool starts and worker_exit once as it is freed, with
 * exit record i written by member i. The caller of a call only waits
 * (isolated): it has no state of its own, and an item must always find one.
 * So an expensive init costs once per thread for the pool's whole life.
 */
typedef struct kept {
    pm__crew crew;              /* first: the crew's own functions take this */
    pm_worker_init_fn init;
    pm_worker_exit_fn exit;
    void *user;
    unsigned char *results;
    size_t size;
    void **states;              /* per member */
} kept;

static int kept_start(void *owner, int index)
{
    kept *k = owner;
    void *state = NULL;
    if (k->init && k->init(k->user, &state) != 0)
        return -1;
    k->states[index] = state;
    return 0;
}

static void kept_stop(void *owner, int index)
{
    kept *k = owner;
    unsigned char *result = k->results ? k->results + (size_t)index * k->size : NULL;
    if (result)
        memset(result, 0, k->size);
    if (k->exit)
        k->exit(k->user, k->states[index], result);
}

static int kept_step(void *owner, pm__job *job, int worker)
{
    kept *k = owner;
    void *saved = pm__kept_state_swap(k->states[worker]);
    int r = pm__job_step(job, worker);
    pm__kept_state_swap(saved);
    return r;
}

static int kept_open(void *state, const pm__exec_config *cfg)
{
    kept *k = state;
    const pm_opts *o = cfg->pool_opts;
    if (!o)
        return PM_EINVAL; /* only pools keep states */
    if (!pm__may_wait_for_thread_start())
        return PM_ENOTSUP; /* the inits below could never run: see platform.h */
    k->init = o->worker_init;
    k->exit = o->worker_exit;
    k->user = o->worker_user;
    k->results = o->exit_results;
    k->size = o->exit_size;
    if (!(k->states = calloc((size_t)cfg->threads, sizeof *k->states)))
        return PM_ENOMEM;
    k->crew.member_start = kept_start;
    k->crew.member_stop = kept_stop;
    int rc = pm__crew_open(&k->crew, cfg->threads, kept_step, k);
    if (rc != PM_OK)
        return rc;
    /* Every init ran (or failed) once the members settled. */
    pm__crew_settle(&k->crew);
    return atomic_load(&k->crew.start_failed) ? PM_EWORKERINIT : PM_OK;
}

static int kept_wait(void *state, pm__job *job, double seconds)
{
    return pm__crew_wait(state, job, seconds, 0);
}

static void kept_close(void *state)
{
    kept *k = state;
    pm__crew_close(&k->crew); /* the members run their exits as they quit */
    free(k->states);
}

const pm__exec_methods pm__exec_threads_kept = {
    .version = 6,
    .name = "threads (state kept)",
    .isolated = 1,
    .state_size = sizeof(kept),
    .open = kept_open,
    .workers = threads_workers,
    .submit = threads_submit,
    .notify = threads_notify,
    .wait = kept_wait,
    .close = kept_close,
    .worker_state = 1,
};
