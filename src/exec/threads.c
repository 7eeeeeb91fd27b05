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

static int local_step(void *owner, pm__job *job, int worker)
{
    (void)owner;
    return pm__job_step(job, worker);
}

static int threads_open(void *state, const pm__exec_config *cfg)
{
    return pm__crew_open(state, cfg->threads - 1, local_step, NULL);
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
