/*
 * parmap_exec.h - the executor interface: how parmap's core runs the chunks
 * of a call on workers, for libraries that bring workers of their own (a
 * cluster scheduler, a GPU stream, an event loop, MPI: libparmap_mpi is built
 * on this header). Users who never write an executor never need it.
 *
 * The split (SQLite's VFS idea): the core turns each pm_map / pm_imap call
 * into a *job*, something a worker calls step on to run one chunk, and talks
 * to an executor only through a const table of methods. The executor never
 * knows whether the job is an array map or a stream, ordered or not, with
 * progress or not: the core's job does that.
 *
 * Using one:
 *
 *     static const pm_exec_methods my_exec = { .version = PM_EXEC_VERSION, ... };
 *     pm_pool *pool = pm_pool_new_exec(&my_exec, &(pm_opts){ .threads = 4 });
 *     pm_map(fn, NULL, in, 8, out, 8, n, &(pm_opts){ .pool = pool }, NULL);
 *     pm_pool_free(pool);
 *
 * or register it for a backend the core does not build in (PM_MPI):
 * pm_exec_register(PM_MPI, &my_exec), after which calls with .backend =
 * PM_MPI open it.
 *
 * Protocol, per opened executor: open once; then for each job: submit,
 * notify whenever the job may have new work, wait until it returns 1;
 * finally close. Several jobs may be submitted at once (a shared pool). The
 * calling thread counts as a worker: wait() first runs the job's chunks on
 * it (worker number == workers()), then blocks until the background workers
 * are out of the job.
 *
 * A background worker's loop is simply:
 *
 *     while ((r = pm_job_step(job, my_number)) == PM_STEP_RAN) ;
 *     // PM_STEP_IDLE: sleep until notify(); PM_STEP_END: leave the job
 *
 * or, for a worker that runs chunks elsewhere (another process, a remote
 * machine): pm_job_take, run the items there (pm_task_run on the far side, or
 * the item function through the codec), fill the task's results,
 * pm_job_finish.
 *
 * Lifetimes:
 *  - The methods table is const and must outlive every pool and call that
 *    uses it (a static table). A pool keeps the table it was opened with.
 *  - `state` is state_size zeroed bytes the core allocates before open and
 *    frees after close; close must accept a state whose open failed half way.
 *  - A job is valid from submit until the wait() that returned 1; after
 *    that the executor must hold no pointer to it. pm_job_info and the
 *    job's records (task in / out) are valid for the same span.
 *  - A task's `in`, `out` and `codes` point into the job's memory and are
 *    valid from take until finish.
 *  - Methods may be called from any thread; submit, notify and wait for the
 *    same job never run at once from two threads.
 *
 * Versions: `version` says which methods and fields exist; new ones are only
 * appended, so a table written for an older version keeps working. A table
 * whose version is 0 or above PM_EXEC_VERSION is refused with PM_EINVAL.
 */
#ifndef PARMAP_EXEC_H
#define PARMAP_EXEC_H

#include "parmap.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The newest version of pm_exec_methods this header describes. */
#define PM_EXEC_VERSION 7

/* What pm_job_step and a job's take return to a worker. */
enum {
    PM_STEP_RAN = 1,   /* ran (or took) a chunk: call again */
    PM_STEP_IDLE = 0,  /* nothing to run right now (a stream waits for its
                          source): sleep until the executor is notified */
    PM_STEP_END = -1   /* no more work for workers, ever: leave the job */
};

typedef struct pm_job pm_job;  /* opaque: a call as workers see it */

/* A chunk of consecutive items, claimed by one worker. pm_job_take fills
 * the first part; whoever runs it fills the results part (pm_task_run and
 * pm_task_record do it for you); pm_job_finish accounts for it. */
typedef struct pm_task {
    size_t base;                /* index (in the array or stream) of the first item */
    size_t count;               /* items in the chunk, >= 1 */
    const unsigned char *in;    /* count input records, in_stride apart */
    unsigned char *out;         /* count output records, out_stride apart; NULL: none */
    int *codes;                 /* count item codes; NULL: the caller keeps none */
    int inherited;              /* `in` existed before the call, so a worker forked
                                   at the call can read it in place */
    double t0;                  /* when it was taken (for the chunker), 0: untimed */
    void *ctx;                  /* the job's own: leave it alone */
    /* results */
    size_t ran;                 /* items that ran: < count only when PM_RAISE stopped */
    size_t failed;              /* items whose code is nonzero */
    size_t first_failed;        /* index (absolute) of the first of them */
    int first_code;             /* its code */
    int signal;                 /* the first item that killed its worker process killed
                                   it with this signal (0: none) */
    size_t signal_index;        /* that item's index */
} pm_task;

/* Records that hold pointers (the value layer's pm_value *) mean nothing in
 * another process. An executor whose items run elsewhere declares `ships`,
 * and such jobs then carry a codec: the worker encodes each output record
 * (and releases what it holds), the caller's side decodes it into the real
 * output record; the *_in methods do the same for inputs, for workers that
 * never saw them (NULL where a job has none). Every method returns 0 or an
 * item code. */
typedef struct pm_codec {
    void *ctx;
    /* worker side: encode the record at `out` into a malloc'd buffer, and
     * release the record's contents either way */
    int (*encode)(void *ctx, void *out, unsigned char **buf, size_t *len);
    /* caller side: decode into the record at `out`; `in` is the item's input
     * record. buf NULL: nothing came back for an item that ran (its code says
     * why), but `out` must still be made valid */
    int (*decode)(void *ctx, const void *in, const unsigned char *buf, size_t len, void *out);
    /* caller side: encode the input record at `in` (left as is) */
    int (*encode_in)(void *ctx, const void *in, unsigned char **buf, size_t *len);
    /* worker side: decode into the input record at `in` */
    int (*decode_in)(void *ctx, const unsigned char *buf, size_t len, void *in);
    /* worker side: release what a decoded input record holds */
    void (*release_in)(void *ctx, void *in);
} pm_codec;

/* What an executor may read about a job (pm_job_info). */
typedef struct pm_job_info {
    pm_fn fn;                   /* the item function, or NULL when... */
    pm_batch_fn batch;          /* ...it is a batch function */
    void *user;                 /* their first argument */
    size_t in_stride, out_stride;  /* record sizes (out_stride 0: no outputs) */
    int raise;                  /* PM_RAISE: a chunk stops at its first failure */
    pm_cancel *cancel;          /* the call's token, NULL: none */
    double timeout_s;           /* per item; 0: none (only if the table says `timeouts`) */
    size_t recycle_items;       /* replace a worker after this many items (`recycles`) */
    size_t recycle_rss;         /* ... past this resident size in bytes (`recycles`) */
    int limit;                  /* 0, or the workers this call may use, the caller
                                   included: background workers numbered limit - 1
                                   and up take nothing (pm_job_take says IDLE) */
    int caller_waits;           /* the calling thread stays in wait() until the job
                                   ends (pm_map; pm_imap returns early) */
    const pm_codec *codec;      /* records travel as bytes (`ships`); NULL: plain bytes */
    /* Since version 7 of this header (per-worker state, for executors whose
     * workers run elsewhere and must ship exit records back): */
    int worker_state;           /* the call has worker_init and/or worker_exit */
    size_t exit_size;           /* bytes of an exit record the caller keeps; 0: it
                                   keeps none (no exit_results) */
} pm_job_info;

/* The configuration an executor is opened with (resolved from pm_opts). */
typedef struct pm_exec_config {
    int threads;   /* >= 1: workers, the calling thread included (per process
                      for executors that have processes) */
    int procs;     /* >= 1: worker processes, for executors that have them */
    const pm_opts *pool_opts;  /* opening a pool: the options it was made with
                                  (an executor may read more of them); NULL
                                  when a call opens an executor of its own */
} pm_exec_config;

/* An executor: a const table of methods. */
typedef struct pm_exec_methods {
    int version;                   /* 1 .. PM_EXEC_VERSION: which members exist */
    const char *name;              /* "serial", "threads", "processes", "mpi"... */
    int isolated;                  /* 1: items must never run in the calling thread
                                      (a stream's consumer then never runs chunks) */
    size_t state_size;
    int  (*open)(void *state, const pm_exec_config *cfg);   /* PM_OK or an error */
    int  (*workers)(const void *state);  /* background workers, not counting the caller */
    int  (*submit)(void *state, pm_job *job);   /* PM_OK or an error: nothing runs */
    void (*notify)(void *state);   /* a submitted job may have new work */
    /* Help run the job, then wait up to `seconds` (< 0: forever) for it to
     * end: a worker saw PM_STEP_END and no worker is inside it any more.
     * Returns 1 when it ended (the executor then forgets the job), 0 on
     * timeout (the core calls again). */
    int  (*wait)(void *state, pm_job *job, double seconds);
    void (*close)(void *state);    /* join workers; state may be half-opened */
    /* Version 2: SPMD executors (MPI), where every process makes the same
     * call and one of them (the owner) holds the input. NULL elsewhere. */
    /* 1: this process only serves the owner's jobs. The core then reads no
     * input and no source; the executor runs what the owner sends. */
    int  (*follower)(const void *state);
    /* After a job, the same call in every process: the owner sends `len`
     * bytes at `buf`, the followers receive them into `buf`. PM_OK or error. */
    int  (*share)(void *state, void *buf, size_t len);
    /* Version 3. 1 when a job submitted now would have to wait for the one
     * running (one job at a time). The core then gives the call an executor
     * of its own with the same settings rather than wait: the running job
     * may be the caller's own (a pm_map from one of its items) and would
     * never end. NULL: never busy. */
    int  (*busy)(void *state);
    /* Version 4, SPMD executors: 1 when an executor opened in this process
     * now would be a follower (the value layer must know before it reads its
     * arguments). NULL: never. */
    int  (*follows)(void);
    /* Version 5. 1: items run in other processes, which records reach as
     * bytes: a job whose records hold pointers carries a codec. */
    int  ships;
    /* Version 6: what the executor can do with a job's options; a call that
     * asks for something its executor lacks fails with PM_ENOTSUP. */
    int  timeouts;      /* enforces pm_job_info.timeout_s (it can kill a worker) */
    int  recycles;      /* honours recycle_items / recycle_rss */
    int  worker_state;  /* runs worker_init / worker_exit (pm_job_step does it
                           for workers that step jobs in the calling process;
                           workers elsewhere use pm_job_worker_enter / _exit
                           and pm_job_exit_deliver) */
    int  shares;        /* a pool's workers serve several calls at once, so
                           opts.threads caps a call's share (pm_job_info.limit) */
    /* Version 7, with worker_state: how many workers with a state of their
     * own a call opened with `cfg` has in all, over every process it spans
     * (an MPI job: ranks x threads). opts.exit_capacity must hold that many
     * records, checked before anything runs. NULL: cfg->threads (or the
     * call's cap on a shared pool). */
    int  (*state_workers)(const pm_exec_config *cfg);
} pm_exec_methods;

/* ------------------------------------------------------- for executors */

/* Copy what an executor may know about the job. */
PM_API void pm_job_info_get(const pm_job *job, pm_job_info *info);
/* Run one chunk of the job here, as worker number `worker` (0 <= worker <
 * workers() for background workers; workers() for the calling thread):
 * take, run, finish. Runs worker_init / worker_exit around a worker's part
 * of the job. Returns PM_STEP_*. Thread-safe. */
PM_API int pm_job_step(pm_job *job, int worker);
/* Claim the next chunk for worker number `worker`, at most max_items items.
 * Returns PM_STEP_RAN with *task filled, or PM_STEP_IDLE / PM_STEP_END.
 * Thread-safe. Every task taken must be finished. */
PM_API int pm_job_take(pm_job *job, int worker, size_t max_items, pm_task *task);
/* Account for a task whose results were filled. Thread-safe. */
PM_API void pm_job_finish(pm_job *job, int worker, pm_task *task);
/* Run the task's items on this thread through the job's function (item or
 * batch), filling its results. */
PM_API void pm_task_run(const pm_job *job, pm_task *task);
/* Record item k's code in a task's results, for executors that run items
 * themselves (call it for k = 0, 1, ... in order). */
PM_API void pm_task_record(const pm_job *job, pm_task *task, size_t k, int code);
/* pm_task_run with records of `in_stride` / `out_stride` bytes instead of
 * the job's (out_stride 0: the task has no outputs): for a task that came
 * from the same call in another process, whose record sizes rule (an SPMD
 * follower runs the owner's chunks through its own job's function, and its
 * own call may declare no outputs). */
PM_API void pm_task_run_strided(const pm_job *job, pm_task *task, size_t in_stride,
                                size_t out_stride);
/* 1 when the job is a refusal: this process's call had bad arguments (or
 * options) on an SPMD executor, and takes part only so that the other
 * processes are not left waiting for it. It has no items; the executor
 * must fail the call in every process before any item runs (MPI agrees on
 * every process's verdict in submit). Were an item run anyway, it would
 * fail with PM_EINVAL. 0 for every other job. */
PM_API int pm_job_refused(const pm_job *job);

/* Per-worker state (opts.worker_init / worker_exit) for workers that do not
 * step the job with pm_job_step, which does all of this itself: workers that
 * run tasks that came from another process (pm_task_run on a received
 * chunk), and ship exit records back. Worker numbers and the job are those of
 * the process where the worker runs (an SPMD follower's own job); each call
 * in that worker's own thread, except pm_job_exit_deliver and
 * pm_job_worker_failed, which the process that owns the call makes.
 *
 * Before running a task's items as worker `worker`: the first time, run
 * worker_init here; then make the worker's state what pm_worker_state()
 * returns on this thread, until pm_job_worker_leave(*saved). Returns PM_OK
 * (also for a job without state: pm_worker_state() is then NULL), or
 * PM_EWORKERINIT when the init failed (now or at an earlier task): run none
 * of the items, record PM_EWORKERINIT for each (pm_task_record), skip the
 * leave, and tell the owner of the call (pm_job_worker_failed there).
 * PM_EINVAL: `worker` is out of range. */
PM_API int  pm_job_worker_enter(pm_job *job, int worker, void **saved);
/* After the task's items: give back what pm_worker_state() returned before. */
PM_API void pm_job_worker_leave(void *saved);
/* The job ended for worker `worker` (its source of tasks said END): if it
 * started, run its worker_exit here, once; later calls do nothing. The exit
 * writes its record at `record` (`size` bytes, zeroed here first), which
 * the executor ships to the owner of the call; NULL: the exit gets NULL and
 * nothing is kept. Returns 1 when an exit ran with `record`, else 0. The
 * executor must make this call for every worker that entered before its
 * wait() can end (the core waits for every exit owed). */
PM_API int  pm_job_worker_exit(pm_job *job, int worker, void *record, size_t size);
/* The owner's side: an exit record (pm_job_info.exit_size bytes) that came
 * back from a worker elsewhere takes the next place in the call's
 * exit_results; past exit_capacity it is counted in pm_report.exit_dropped.
 * Thread-safe. */
PM_API void pm_job_exit_deliver(pm_job *job, const void *record);
/* The owner's side: a worker elsewhere failed its init (its task came back
 * with PM_EWORKERINIT): the call stops with PM_EWORKERINIT, as when a local
 * worker's init fails. Call it before pm_job_finish for that task.
 * Thread-safe. */
PM_API void pm_job_worker_failed(pm_job *job);

/* ---------------------------------------------------------- for users */

/* A pool whose workers come from `m`, opened with the threads / procs of
 * `opts` (NULL: defaults; opts.backend and opts.pool must be unset). Calls
 * use it with opts.pool, like any pool. NULL with errno EINVAL (a table of
 * unknown version, missing methods, bad options) or the error of open. */
PM_API pm_pool *pm_pool_new_exec(const pm_exec_methods *m, const pm_opts *opts);

/* Make calls with opts.backend == `backend` open executors from `m` (NULL:
 * forget it). Only backends the core does not build in can be registered
 * (PM_MPI); a pool keeps the table it was opened with. PM_OK, or PM_EINVAL
 * (a built-in or unknown backend, a table of unknown version). Thread-safe. */
PM_API int pm_exec_register(pm_backend backend, const pm_exec_methods *m);

#ifdef __cplusplus
}
#endif

#endif
