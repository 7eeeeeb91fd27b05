/*
 * job.c - running a task (a chunk of items) where we are. Shared by the
 * local executors (threads, serial: take, run here, finish) and by a forked
 * worker process, which runs tasks the same way on its side of the fork.
 */
#include "internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void pm__task_record(const pm__job *job, pm__task *task, size_t k, int code)
{
    (void)job;
    if (task->codes)
        task->codes[k] = code;
    if (code && !task->failed++) {
        task->first_failed = task->base + k;
        task->first_code = code;
    }
}

/* Whether any code is nonzero: a branch-free reduction the compiler
 * vectorises, so that the common all-ok slice costs next to nothing. */
static int any_failed(const int *codes, size_t n)
{
    int acc = 0;
    for (size_t k = 0; k < n; k++)
        acc |= codes[k];
    return acc != 0;
}

size_t pm__batch_call(const pm__job *job, size_t first, size_t count, const unsigned char *in,
                      unsigned char *out, int *codes, int zeroed, int *failed)
{
    if (!zeroed)
        memset(codes, 0, count * sizeof *codes);
    int any = 0;
    size_t k = 0;
    while (k < count) {
        size_t left = count - k;
        size_t r = job->batch(job->user, first + k, left, in + k * job->in_stride,
                              out ? out + k * job->out_stride : NULL, codes + k);
        if (r == 0 || r > left) { /* a broken batch function: say so per item */
            for (size_t j = k; j < count; j++)
                codes[j] = PM_EINVAL;
            if (failed)
                *failed = 1;
            return job->raise ? k + 1 : count;
        }
        /* The one scan of the codes: while they are still in the cache. */
        if (any_failed(codes + k, r)) {
            any = 1;
            if (job->raise)
                for (size_t j = k; j < k + r; j++)
                    if (codes[j]) {
                        if (failed)
                            *failed = 1;
                        return j + 1;
                    }
        }
        k += r;
    }
    if (failed)
        *failed = any;
    return count;
}

/* A batch job here. Without the caller's codes array, the chunk goes in
 * slices whose codes fit a buffer on the stack, kept zeroed between slices
 * (only failures are cleared): codes then cost one vectorised scan in the
 * cache instead of a memset and a scan streaming beside the records, and
 * nothing is allocated, at one call per BATCH_SLICE items. The slice is small
 * enough that its codes are still in L1 after the call streamed its records
 * through (2048 codes came back from L2: the scan was 11% of a trivial map). */
#define BATCH_SLICE 512

static size_t task_run_batch(const pm__job *job, pm__task *task)
{
    int scratch[BATCH_SLICE];
    if (!task->codes)
        memset(scratch, 0, sizeof scratch);
    size_t ran = 0;
    while (ran < task->count) {
        size_t left = task->count - ran;
        size_t n = task->codes || left < BATCH_SLICE ? left : BATCH_SLICE;
        int *codes = task->codes ? task->codes + ran : scratch;
        int failed = 0;
        size_t r = pm__batch_call(job, task->base + ran, n, task->in + ran * job->in_stride,
                                  task->out ? task->out + ran * job->out_stride : NULL, codes,
                                  codes == scratch, &failed);
        if (failed)
            for (size_t k = 0; k < r; k++)
                if (codes[k]) {
                    pm__task_record(job, task, ran + k, codes[k]);
                    if (codes == scratch)
                        codes[k] = 0;
                }
        if (codes == scratch && r < n)
            memset(scratch, 0, sizeof scratch); /* (a broken call's PM_EINVALs) */
        ran += r;
        if (r < n)
            break; /* PM_RAISE stopped at a failure */
    }
    return ran;
}

void pm__task_run(const pm__job *job, pm__task *task)
{
    const unsigned char *ip = task->in;
    unsigned char *op = task->out;
    size_t k;
    task->failed = 0;
    task->first_failed = SIZE_MAX;
    task->first_code = 0;
    task->signal = 0; /* nothing here can kill a process but the caller's own */
    task->signal_index = SIZE_MAX;
    if (job->batch) {
        task->ran = task_run_batch(job, task);
        return;
    }
    for (k = 0; k < task->count; k++) {
        int code = job->fn(job->user, ip, op);
        pm__task_record(job, task, k, code);
        if (code && job->raise) {
            k++;
            break;
        }
        ip += job->in_stride;
        if (op)
            op += job->out_stride;
    }
    task->ran = k;
}

/* ------------------------------------------------------ per-worker state */

/* The state of the worker this thread is being, while parmap runs its items
 * (pm_worker_state). Saved and restored around each chunk: an item's nested
 * call runs chunks with states of its own on the same thread. */
#if PM_HAVE_THREADS
static _Thread_local void *current_state;
#else
static void *current_state;
#endif

/* The state of the pool thread running this item, when its pool keeps
 * states (pm__exec_threads_kept): what pm_worker_state() gives when the call
 * has none of its own. */
#if PM_HAVE_THREADS
static _Thread_local void *kept_state;
#else
static void *kept_state;
#endif

void *pm__kept_state_swap(void *state)
{
    void *old = kept_state;
    kept_state = state;
    return old;
}

void *pm_worker_state(void)
{
    return current_state ? current_state : kept_state;
}

int pm__ws_setup(pm__job *job, const pm_opts *o, int nws)
{
    if (!o->worker_init && !o->worker_exit)
        return PM_OK;
    job->ws = calloc((size_t)nws, sizeof *job->ws);
    if (!job->ws)
        return PM_ENOMEM;
    job->nws = nws;
    job->worker_init = o->worker_init;
    job->worker_exit = o->worker_exit;
    job->worker_user = o->worker_user;
    job->exit_results = o->exit_results;
    job->exit_size = o->exit_size;
    job->exit_capacity = o->exit_capacity;
    return PM_OK;
}

void pm__ws_free(pm__job *job)
{
    free(job->ws);
    job->ws = NULL;
}

size_t pm__ws_count(pm__job *job)
{
    size_t n = atomic_load(&job->ws_results);
    return n < job->exit_capacity ? n : job->exit_capacity;
}

size_t pm__ws_dropped(pm__job *job)
{
    size_t n = atomic_load(&job->ws_results);
    return n > job->exit_capacity ? n - job->exit_capacity : 0;
}

void pm__ws_deliver(pm__job *job, const void *record)
{
    /* Claimed, then copied: claims never collide, so records that arrive
     * at once (recycling in a crew thread, the end of the call in the
     * caller's) need no lock. Past the capacity a record is only counted:
     * a worker process recycled many times can outnumber any buffer sized
     * before the call. */
    size_t i = atomic_fetch_add(&job->ws_results, 1);
    if (i < job->exit_capacity)
        memcpy(job->exit_results + i * job->exit_size, record, job->exit_size);
}

void *pm__ws_set_current(void *state)
{
    void *old = current_state;
    current_state = state;
    return old;
}

/* Start worker `worker` (its first chunk is taken): 1 ok, 0 its init failed. */
static int ws_start(pm__job *job, int worker)
{
    pm__wslot *w = &job->ws[worker];
    void *state = NULL;
    if (job->worker_init && job->worker_init(job->worker_user, &state) != 0) {
        w->phase = 2; /* no exit for a worker that has no state */
        atomic_store(&job->ws_failed, 1);
        return 0;
    }
    w->state = state;
    /* Counted before the phase flips, so that a job never looks finished
     * while this worker owes its exit (the executor reads ws_live). */
    atomic_fetch_add(&job->ws_live, 1);
    w->phase = 1;
    return 1;
}

/* The job ended for this worker: run its exit here, in its own thread. */
static void ws_exit(pm__job *job, int worker)
{
    pm__wslot *w = &job->ws[worker];
    if (job->worker_exit) {
        unsigned char *result = NULL;
        if (job->exit_results) {
            size_t i = atomic_fetch_add(&job->ws_results, 1);
            /* The capacity was checked against the workers, so this holds;
             * a miscount must not write past the caller's buffer. */
            if (i < job->exit_capacity) {
                result = job->exit_results + i * job->exit_size;
                memset(result, 0, job->exit_size);
            }
        }
        if (!job->exit_results || result)
            job->worker_exit(job->worker_user, w->state, result);
    }
    w->phase = 2;
    w->state = NULL;
    atomic_fetch_sub(&job->ws_live, 1);
}

int pm__job_step(pm__job *job, int worker)
{
    pm__task task;
    int r = job->take(job, worker, SIZE_MAX, &task);
    if (r != PM__STEP_RAN) {
        if (r == PM__STEP_END && pm__ws_owes(job, worker))
            ws_exit(job, worker);
        return r;
    }
    if (job->ws && job->ws[worker].phase == 0 && !ws_start(job, worker)) {
        /* Its items cannot run without their state: they fail with the
         * init's status, and the job stops (finish() sees ws_failed). */
        task.failed = 0;
        task.first_failed = SIZE_MAX;
        task.first_code = 0;
        task.signal = 0;
        task.signal_index = SIZE_MAX;
        for (size_t k = 0; k < task.count; k++)
            pm__task_record(job, &task, k, PM_EWORKERINIT);
        task.ran = task.count;
        job->finish(job, worker, &task);
        return PM__STEP_RAN;
    }
    void *saved = current_state;
    current_state = job->ws ? job->ws[worker].state : NULL;
    pm__task_run(job, &task);
    current_state = saved;
    job->finish(job, worker, &task);
    return PM__STEP_RAN;
}

int pm__refuse(void *user, const void *in, void *out)
{
    (void)user;
    (void)in;
    (void)out;
    return PM_EINVAL;
}

/* ------------------------------------------- the executor interface's */

void pm_job_info_get(const pm_job *job, pm_job_info *info)
{
    *info = (pm_job_info){
        .fn = job->fn,
        .batch = job->batch,
        .user = job->user,
        .in_stride = job->in_stride,
        .out_stride = job->out_stride,
        .raise = job->raise,
        .cancel = job->cancel,
        .timeout_s = job->timeout_s,
        .recycle_items = job->recycle_items,
        .recycle_rss = job->recycle_rss,
        .limit = job->limit,
        .caller_waits = job->caller_waits,
        .codec = job->codec,
        .worker_state = job->ws != NULL,
        .exit_size = job->exit_results ? job->exit_size : 0,
    };
}

int pm_job_step(pm_job *job, int worker)
{
    return pm__job_step(job, worker);
}

int pm_job_take(pm_job *job, int worker, size_t max_items, pm_task *task)
{
    return job->take(job, worker, max_items, task);
}

void pm_job_finish(pm_job *job, int worker, pm_task *task)
{
    job->finish(job, worker, task);
}

void pm_task_run(const pm_job *job, pm_task *task)
{
    pm__task_run(job, task);
}

void pm_task_record(const pm_job *job, pm_task *task, size_t k, int code)
{
    pm__task_record(job, task, k, code);
}

void pm_task_run_strided(const pm_job *job, pm_task *task, size_t in_stride, size_t out_stride)
{
    /* What running items reads of a job, with the other record sizes (not
     * the executor's bookkeeping fields, which may change meanwhile). */
    pm__job run = {.fn = job->fn, .batch = job->batch, .user = job->user,
                   .raise = job->raise, .codec = job->codec,
                   .in_stride = in_stride, .out_stride = out_stride};
    pm__task_run(&run, task);
}

int pm_job_refused(const pm_job *job)
{
    return job->fn == pm__refuse;
}

/* ----------------------- per-worker state for workers that run elsewhere */

int pm_job_worker_enter(pm_job *job, int worker, void **saved)
{
    *saved = current_state;
    if (!job->ws) {
        current_state = NULL; /* as pm__job_step: a call without state has none */
        return PM_OK;
    }
    if (worker < 0 || worker >= job->nws)
        return PM_EINVAL;
    /* phase 2 here means its init failed: a worker that ran its exit
     * enters nothing more (its source of tasks said END). */
    if (job->ws[worker].phase == 2 || (job->ws[worker].phase == 0 && !ws_start(job, worker)))
        return PM_EWORKERINIT;
    current_state = job->ws[worker].state;
    return PM_OK;
}

void pm_job_worker_leave(void *saved)
{
    current_state = saved;
}

int pm_job_worker_exit(pm_job *job, int worker, void *record, size_t size)
{
    if (worker < 0 || !pm__ws_owes(job, worker))
        return 0;
    pm__wslot *w = &job->ws[worker];
    int wrote = 0;
    if (job->worker_exit) {
        if (record)
            memset(record, 0, size);
        job->worker_exit(job->worker_user, w->state, record);
        wrote = record != NULL;
    }
    w->phase = 2;
    w->state = NULL;
    atomic_fetch_sub(&job->ws_live, 1);
    return wrote;
}

void pm_job_exit_deliver(pm_job *job, const void *record)
{
    if (job->exit_results)
        pm__ws_deliver(job, record);
}

void pm_job_worker_failed(pm_job *job)
{
    atomic_store(&job->ws_failed, 1); /* finish() stops the job */
}
