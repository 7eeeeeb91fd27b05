/*
 * threads.c - the threads executor: a fixed set of pthreads that run the
 * chunks of every job submitted to it (one job for a plain pm_map, several at
 * once when a pm_pool is shared). Like OpenMP's master thread, the caller is
 * one of the `threads`: it starts threads - 1 workers, and wait() runs the
 * job on the calling thread before it blocks. That makes a small map on a
 * warm pool cost a few microseconds (the caller usually finishes it before a
 * worker has even woken up) and lets an item function use the same pool
 * without deadlock (its own call can always make progress).
 *
 * Design (after zstd's pool.c and libuv's threadpool.c): one mutex guards the
 * job list, the epoch and every job's exec_* fields. A worker walks the list
 * and calls a job's step() WITHOUT the lock until the job says IDLE or END.
 * When it found nothing to run it sleeps on work_cv, but only while `epoch` is
 * unchanged: submit() and notify() bump the epoch under the lock, so work
 * that appears between "found nothing" and "sleep" is never missed.
 * A job leaves the list in wait(), once a worker has seen END and no worker is
 * inside step() any more; only then may the core free it.
 *
 * Lock order: this executor's lock is never held while calling step(), so a
 * job's own locks are never taken inside it (no ordering to respect).
 */
#include "../core/internal.h"

#include <stdlib.h>

typedef struct threads_state threads_state;

typedef struct worker {
    threads_state *pool;
    int index;
    pm__thread thread;
} worker;

struct threads_state {
    pm__mutex lock;
    pm__cond work_cv;      /* workers: a job was submitted, notified, or quit */
    pm__cond done_cv;      /* wait(): a job may have ended */
    int lock_ready, work_ready, done_ready;
    pm__job *jobs;         /* submitted jobs, oldest first */
    unsigned long epoch;   /* bumped whenever there may be new work */
    int quit;
    int nworkers;          /* requested */
    int started;           /* threads actually running (join these) */
    worker *workers;
};

/* Run every job's chunks as worker `w` until none has work. Called and
 * returns with the lock held. Returns 1 when it ran anything. */
static int run_jobs(threads_state *s, worker *w)
{
    int ran = 0;
    for (pm__job *job = s->jobs; job; job = job->exec_next) {
        if (job->exec_ended)
            continue;
        job->exec_inside++; /* pins the job in the list while unlocked */
        pm__mutex_unlock(&s->lock);
        int r;
        while ((r = pm__job_step(job, w->index)) == PM__STEP_RAN)
            ran = 1;
        pm__mutex_lock(&s->lock);
        job->exec_inside--;
        if (r == PM__STEP_END)
            job->exec_ended = 1;
        if (job->exec_ended && job->exec_inside == 0)
            pm__cond_broadcast(&s->done_cv);
    }
    return ran;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    threads_state *s = w->pool;
    pm__mutex_lock(&s->lock);
    while (!s->quit) {
        unsigned long seen = s->epoch;
        if (run_jobs(s, w))
            continue;
        /* Nothing ran: sleep until something changes (see the epoch rule). */
        while (!s->quit && s->epoch == seen)
            pm__cond_wait(&s->work_cv, &s->lock);
    }
    pm__mutex_unlock(&s->lock);
    return NULL;
}

static void threads_close(void *state)
{
    threads_state *s = state;
    if (s->lock_ready && s->work_ready) {
        pm__mutex_lock(&s->lock);
        s->quit = 1;
        pm__cond_broadcast(&s->work_cv);
        pm__mutex_unlock(&s->lock);
    }
    for (int i = 0; i < s->started; i++)
        pm__thread_join(s->workers[i].thread);
    s->started = 0;
    free(s->workers);
    s->workers = NULL;
    if (s->done_ready)
        pm__cond_destroy(&s->done_cv);
    if (s->work_ready)
        pm__cond_destroy(&s->work_cv);
    if (s->lock_ready)
        pm__mutex_destroy(&s->lock);
    s->lock_ready = s->work_ready = s->done_ready = 0;
}

static int threads_open(void *state, const pm__exec_config *cfg)
{
    threads_state *s = state;
    int rc;
    if ((rc = pm__mutex_init(&s->lock)) != PM_OK)
        return rc;
    s->lock_ready = 1;
    if ((rc = pm__cond_init(&s->work_cv)) != PM_OK)
        return rc;
    s->work_ready = 1;
    if ((rc = pm__cond_init(&s->done_cv)) != PM_OK)
        return rc;
    s->done_ready = 1;
    s->nworkers = cfg->threads - 1; /* the caller is the last one */
    s->workers = calloc((size_t)s->nworkers + 1, sizeof *s->workers);
    if (!s->workers)
        return PM_ENOMEM;
    for (int i = 0; i < s->nworkers; i++) {
        s->workers[i].pool = s;
        s->workers[i].index = i;
        if ((rc = pm__thread_start(&s->workers[i].thread, worker_main, &s->workers[i])) != PM_OK)
            return rc; /* the caller closes: joins the ones that started */
        s->started++;
    }
    return PM_OK;
}

static int threads_workers(const void *state)
{
    return ((const threads_state *)state)->nworkers;
}

static void threads_submit(void *state, pm__job *job)
{
    threads_state *s = state;
    job->exec_next = NULL;
    job->exec_inside = 0;
    job->exec_ended = 0;
    pm__mutex_lock(&s->lock);
    pm__job **tail = &s->jobs;
    while (*tail)
        tail = &(*tail)->exec_next;
    *tail = job;
    s->epoch++;
    pm__cond_broadcast(&s->work_cv);
    pm__mutex_unlock(&s->lock);
}

static void threads_notify(void *state)
{
    threads_state *s = state;
    pm__mutex_lock(&s->lock);
    s->epoch++;
    pm__cond_broadcast(&s->work_cv);
    pm__mutex_unlock(&s->lock);
}

static int threads_wait(void *state, pm__job *job, double seconds)
{
    threads_state *s = state;
    double deadline = seconds >= 0 ? pm__now() + seconds : 0;
    pm__mutex_lock(&s->lock);
    if (!job->exec_ended) {
        /* Help: run chunks here, as worker number nworkers, until there are
         * none left (or it is time to return for a progress report). */
        job->exec_inside++;
        pm__mutex_unlock(&s->lock);
        int r;
        while ((r = pm__job_step(job, s->nworkers)) == PM__STEP_RAN)
            if (seconds >= 0 && pm__now() >= deadline)
                break;
        pm__mutex_lock(&s->lock);
        job->exec_inside--;
        if (r == PM__STEP_END)
            job->exec_ended = 1;
        if (r == PM__STEP_RAN) {
            pm__mutex_unlock(&s->lock);
            return 0;
        }
    }
    while (!(job->exec_ended && job->exec_inside == 0)) {
        if (seconds < 0) {
            pm__cond_wait(&s->done_cv, &s->lock);
            continue;
        }
        double left = deadline - pm__now();
        if (left <= 0) {
            pm__mutex_unlock(&s->lock);
            return 0;
        }
        pm__cond_timedwait(&s->done_cv, &s->lock, left);
    }
    for (pm__job **p = &s->jobs; *p; p = &(*p)->exec_next) {
        if (*p == job) {
            *p = job->exec_next;
            break;
        }
    }
    pm__mutex_unlock(&s->lock);
    return 1;
}

const pm__exec_methods pm__exec_threads = {
    .version = 1,
    .name = "threads",
    .state_size = sizeof(threads_state),
    .open = threads_open,
    .workers = threads_workers,
    .submit = threads_submit,
    .notify = threads_notify,
    .wait = threads_wait,
    .close = threads_close,
};
