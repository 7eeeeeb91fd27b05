/*
 * serial.c - the serial executor: no workers at all. wait() runs the job's
 * chunks on the caller's thread, in order, and streams are driven by their
 * consumer, so the same core code paths (chunking, errors, progress,
 * iterators) run without any thread. It is the test oracle for the other
 * executors and the only executor on targets without threads (WASI).
 */
#include "../core/internal.h"

static int serial_open(void *state, const pm__exec_config *cfg)
{
    (void)state;
    (void)cfg;
    return PM_OK;
}

static int serial_workers(const void *state)
{
    (void)state;
    return 0;
}

static int serial_submit(void *state, pm__job *job)
{
    (void)state;
    (void)job;
    return PM_OK;
}

static void serial_notify(void *state)
{
    (void)state;
}

static int serial_wait(void *state, pm__job *job, double seconds)
{
    (void)state;
    double deadline = seconds >= 0 ? pm__now() + seconds : 0;
    while (pm__job_step(job, 0) == PM__STEP_RAN)
        if (seconds >= 0 && pm__now() >= deadline)
            return 0; /* time for the caller's progress report */
    return 1;
}

static void serial_close(void *state)
{
    (void)state;
}

const pm__exec_methods pm__exec_serial = {
    .version = 6,
    .name = "serial",
    .state_size = 0,
    .open = serial_open,
    .workers = serial_workers,
    .submit = serial_submit,
    .notify = serial_notify,
    .wait = serial_wait,
    .close = serial_close,
    .worker_state = 1,
};
