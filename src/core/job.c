/*
 * job.c - running a task (a chunk of items) where we are. Shared by the
 * local executors (threads, serial: take, run here, finish) and by a forked
 * worker process, which runs tasks the same way on its side of the fork.
 */
#include "internal.h"

#include <stdint.h>

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

int pm__job_step(pm__job *job, int worker)
{
    pm__task task;
    int r = job->take(job, worker, SIZE_MAX, &task);
    if (r != PM__STEP_RAN)
        return r;
    pm__task_run(job, &task);
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
