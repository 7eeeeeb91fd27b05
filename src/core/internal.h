/*
 * internal.h - what the core's files share, and the executor interface.
 *
 * Data flows: source -> chunker -> executor -> collector -> progress -> caller.
 * The core turns a call into a *job*: something workers can call step() on to
 * run one chunk. An *executor* only provides workers that call step(); it never
 * knows whether the job is an array map or a stream (SQLite's VFS idea: the
 * core talks to a const table of methods, one table per backend).
 *
 * Names: pm__ for internal symbols shared between files (libuv's uv__ rule).
 */
#ifndef PM_INTERNAL_H
#define PM_INTERNAL_H

#include "parmap.h"
#include "parmap_exec.h"
#include "../platform/platform.h"

#include <stdatomic.h>
#include <stddef.h>

/* The executor interface is public (include/parmap_exec.h); the core uses
 * its own short names for the same types below. libparmap_mpi is built on
 * that interface alone: libparmap.so exports no pm__ name. */

/* ------------------------------------------------------------------ jobs */

/* What a job's step() returns to the worker calling it (parmap_exec.h). */
#define PM__STEP_RAN PM_STEP_RAN
#define PM__STEP_IDLE PM_STEP_IDLE
#define PM__STEP_END PM_STEP_END

/* A chunk of consecutive items, claimed by one worker (parmap_exec.h). */
typedef pm_task pm__task;

/* Records that travel as bytes: pm_value * outputs (and MPI inputs) are
 * encoded by the worker and decoded by the caller (parmap_exec.h). */
typedef pm_codec pm__codec;

/* A job: the public pm_job, whose insides only the core sees. Executors
 * read it through pm_job_info_get (the first fields). */
typedef struct pm_job pm__job;
struct pm_job {
    pm_fn fn;
    pm_batch_fn batch;              /* instead of fn: a chunk per call (NULL: use fn) */
    int limit;                      /* 0, or the workers this call may use, the caller
                                       included: background workers numbered limit - 1
                                       and up take nothing (a capped call on a pool) */
    void *user;
    size_t in_stride, out_stride;   /* out_stride 0: no outputs */
    int raise;                      /* PM_RAISE: a task stops at its first failure */
    pm_cancel *cancel;              /* the call's token (NULL: none) */
    double timeout_s;               /* per item, for executors that can enforce it; 0: none */
    size_t recycle_items;           /* processes: replace a worker after this many items (0: off) */
    size_t recycle_rss;             /* processes: ... past this resident size in bytes (0: off) */
    int caller_waits;               /* the calling thread stays in wait() until the job
                                       ends (pm_map): the executor may hand it work that
                                       must happen on that thread (processes: forks) */
    const pm__codec *codec;     /* NULL: output records are plain bytes */
    /* Per-worker state (opts.worker_init / worker_exit; ws NULL: none). */
    struct pm__wslot *ws;           /* one per worker number, each touched only by
                                       the thread that is that worker */
    int nws;
    atomic_int ws_live;             /* workers that started and have not run exit:
                                       the executor keeps the job until 0 */
    atomic_int ws_failed;           /* a worker_init failed: the job stops */
    atomic_size_t ws_results;       /* exit records claimed in exit_results */
    pm_worker_init_fn worker_init;
    pm_worker_exit_fn worker_exit;
    void *worker_user;
    unsigned char *exit_results;
    size_t exit_size, exit_capacity;
    /* Claim the next chunk for worker number `worker` (0 <= worker < the
     * executor's workers() for background workers, == workers() for the
     * calling thread), at most max_items items. Returns PM__STEP_RAN with
     * *task filled, or PM__STEP_IDLE / PM__STEP_END. Thread-safe. */
    int (*take)(pm__job *job, int worker, size_t max_items, pm__task *task);
    /* Account for a task that was run (its results filled). Thread-safe. */
    void (*finish)(pm__job *job, int worker, pm__task *task);
    /* Executor bookkeeping, guarded by the executor's own lock. */
    pm__job *exec_next;
    int exec_inside;     /* workers currently inside step() */
    int exec_ended;      /* a worker saw PM__STEP_END */
};

/* The status a PM_RAISE call stops with when an item failed with `code`:
 * PM_ECRASH or PM_ETIMEOUT for those marks, else PM_EITEM. */
static inline int pm__item_status(int code)
{
    return code == PM_ECRASH || code == PM_ETIMEOUT || code == PM_EWORKERINIT ? code : PM_EITEM;
}

/* Per-worker state of one job (job.c). */
typedef struct pm__wslot {
    int phase;      /* 0: not started, 1: live (init ran), 2: done (exit ran or init failed) */
    void *state;
    char pad[64 - sizeof(int) - sizeof(void *)]; /* neighbours never share a line */
} pm__wslot;
/* Set the job's per-worker state up from the options for `nws` worker
 * numbers (a no-op without worker_init/worker_exit). PM_OK or PM_ENOMEM. */
int  pm__ws_setup(pm__job *job, const pm_opts *o, int nws);
void pm__ws_free(pm__job *job);
/* 1 when `worker` started in the job and still owes its exit: the executor
 * must let it step the job once more (which then ends for it) even after
 * the job was seen to end. Only that worker's thread may ask. */
static inline int pm__ws_owes(const pm__job *job, int worker)
{
    return job->ws && worker < job->nws && job->ws[worker].phase == 1;
}
/* 1 while some worker of the job still owes its exit. */
static inline int pm__ws_pending(pm__job *job)
{
    return job->ws && atomic_load(&job->ws_live) > 0;
}
/* The exit records written (pm_report.exit_count). */
size_t pm__ws_count(pm__job *job);
/* Make `state` the pool-kept state pm_worker_state() falls back to on this
 * thread; returns the previous one. */
void *pm__kept_state_swap(void *state);
/* Exit records that came back when exit_results was full (pm_report.exit_dropped). */
size_t pm__ws_dropped(pm__job *job);
/* Executors whose workers live elsewhere (processes): an exit record that
 * came back (exit_size bytes) goes to the next free place in exit_results.
 * Thread-safe. */
void   pm__ws_deliver(pm__job *job, const void *record);
/* Make `state` what pm_worker_state() returns on this thread (a worker
 * process's lane thread, after its init); returns the previous one. */
void  *pm__ws_set_current(void *state);

/* Items [0, count) of a chunk through the job's batch function: codes[k]
 * for each (zeroed first unless `zeroed`); returns how many ran (< count
 * only when PM_RAISE stopped at a failure). Calls again for what a call
 * left; a call that processed none, or claimed more than it was given,
 * fails the rest of the items with PM_EINVAL. `first`: the index of item 0.
 * *failed (if not NULL): 1 when a code that ran is nonzero. */
size_t pm__batch_call(const pm__job *job, size_t first, size_t count, const unsigned char *in,
                      unsigned char *out, int *codes, int zeroed, int *failed);
/* Whether `worker` (of `background` background workers; the caller is
 * number `background`) may take chunks of a job capped by job->limit. */
static inline int pm__worker_allowed(const pm__job *job, int worker, int background)
{
    return job->limit == 0 || worker >= background || worker < job->limit - 1;
}
/* Run the task's items on this thread: codes, ran, failed, first_failed. */
void pm__task_run(const pm__job *job, pm__task *task);
/* Record one item's code in a task's results (for runners). */
void pm__task_record(const pm__job *job, pm__task *task, size_t k, int code);
/* The item function of a call with bad arguments (or options) on an SPMD
 * executor, which takes part with no items so the other processes are not
 * left waiting. It also marks the job: the executor fails the call on every
 * process before any item runs (pm_job_refused, mpi.c); were an item sent
 * anyway, it would fail with PM_EINVAL. */
int pm__refuse(void *user, const void *in, void *out);
/* take + run here + finish: what a local worker does. PM__STEP_*. */
int pm__job_step(pm__job *job, int worker);

/* ------------------------------------------------------------- executors */

/* The executor interface (parmap_exec.h, where its protocol and lifetime
 * rules are documented): a const table of methods per backend. */
typedef pm_exec_config pm__exec_config;
typedef pm_exec_methods pm__exec_methods;

/* Whether a table has a member of version `v` and sets it. */
#define PM__EXEC_HAS(m, v, member) ((m) && (m)->version >= (v) && (m)->member)

extern const pm__exec_methods pm__exec_serial;
extern const pm__exec_methods pm__exec_threads;
/* Threads whose per-worker state lives as long as the pool (pm_pool_new with
 * worker_init / worker_exit): `threads` crew members, the caller only waits. */
extern const pm__exec_methods pm__exec_threads_kept;
extern const pm__exec_methods pm__exec_processes; /* where fork exists (PM_HAVE_FORK) */

/* 1 when a table can be opened: a known version and the methods every
 * executor needs. */
int  pm__exec_valid(const pm__exec_methods *m);

/* An opened executor (what a pm_pool wraps; pm_map without a pool makes one). */
typedef struct pm__exec {
    const pm__exec_methods *m;
    void *state;
} pm__exec;

/* Allocate and open an executor from table `m` (NULL: PM_ENOTSUP).
 * Returns PM_OK or an error. */
int  pm__exec_open(pm__exec *ex, const pm__exec_methods *m, const pm__exec_config *cfg);
/* The table for a backend (built in or registered), or NULL. */
const pm__exec_methods *pm__backend_methods(pm_backend backend);
void pm__exec_close(pm__exec *ex);
/* The table a call with these (unresolved) options opens: its pool's, or
 * its backend's (PM_AUTO resolved); NULL when there is none. */
const pm__exec_methods *pm__opts_methods(const pm_opts *o);
/* 1 when the table is SPMD (every process makes the call: open it even for
 * an empty input). */
int  pm__methods_spmd(const pm__exec_methods *m);
/* 1 when `ex` only serves another process's jobs (an MPI rank other than 0). */
int  pm__exec_follower(const pm__exec *ex);
/* 1 when a call on `m` in this process would only serve another process's
 * job (methods' follows()). */
int  pm__methods_follows(const pm__exec_methods *m);

/* pm_imap with a codec (NULL: pm_imap itself). */
pm_iter *pm__imap_ex(pm_fn fn, void *user, pm_source_fn next, void *src, size_t in_stride,
                     size_t out_stride, const pm_opts *opts, const pm__codec *codec);

/* pm_map with an output codec (NULL: pm_map itself). */
int pm__map_ex(pm_fn fn, void *user, const void *in, size_t in_stride, void *out,
               size_t out_stride, size_t n, const pm_opts *opts, pm_report *report,
               const pm__codec *codec);

/* -------------------------------------------------------------- options */

/* pm_opts after validation, with every default filled in (sokol's
 * _sg_desc_defaults idea: one place decides the defaults). */
typedef struct pm__opts {
    pm_opts user;        /* the caller's options, copied */
    pm_backend backend;  /* never PM_AUTO (a pool of pm_pool_new_exec: PM_AUTO) */
    const pm__exec_methods *methods;  /* what the call opens (or its pool has) */
    pm__exec_config cfg;
    size_t chunksize;    /* 0 = auto */
    int limit;           /* a call on a threads pool: user.threads when it caps the pool
                            (0: all of it) */
} pm__opts;

/* Validate and fill defaults. NULL opts = all defaults. PM_OK or PM_EINVAL /
 * PM_ENOTSUP. */
int pm__opts_resolve(const pm_opts *opts, pm__opts *out);
/* Options pm__opts_resolve refused, but which name an SPMD backend (directly
 * or through opts.pool): the other processes wait for this one, so it must
 * still take part, with the least it can (defaults, its pool). Returns 1 with
 * *out filled, or 0 (not SPMD: return the status at once). */
int pm__opts_spmd_fallback(const pm_opts *opts, pm__opts *out);

/* --------------------------------------------------------------- chunker */

/* Adaptive chunk sizing (policy documented in parmap.h, "Chunking"). One per
 * worker, never shared, so it needs no lock. */
typedef struct pm__chunker {
    size_t fixed;   /* > 0: always this size */
    size_t size;    /* auto: current size */
    double rate;    /* auto: seconds per item of the last chunk (0: none yet) */
} pm__chunker;

void   pm__chunker_init(pm__chunker *c, size_t fixed);
/* Size of the next chunk given what is left (SIZE_MAX: unknown) and the
 * number of workers sharing it. >= 1. */
size_t pm__chunker_next(const pm__chunker *c, size_t remaining, int workers);
/* Feed back how long the last chunk of `items` items took. */
void   pm__chunker_observe(pm__chunker *c, size_t items, double seconds);
/* Whether chunks must be timed at all (auto mode). */
int    pm__chunker_needs_time(const pm__chunker *c);
/* Items per chunk to aim for when an item takes `seconds_per_item`. */
size_t pm__chunker_for_rate(double seconds_per_item);

/* -------------------------------------------------------------- progress */

/* Progress reporting for one call: the throttled callback and the text bar.
 * Used from one thread at a time (the caller's). */
typedef struct pm__progress {
    pm_progress_fn fn;
    void *user;
    int bar;              /* draw the text bar on stderr */
    int tty;              /* stderr is a terminal: redraw in place */
    const char *label;
    size_t total;         /* 0 = unknown */
    double start, last, last_line;
    int last_decile;      /* non-tty: last 10% step printed */
    size_t drawn;         /* tty: width of the line on screen, blanked by a shorter one */
    int finished;
} pm__progress;

/* Returns 1 when there is anything to report (callback or bar). */
int  pm__progress_init(pm__progress *p, const pm_opts *opts, size_t total);
/* Report if ~100 ms passed since the last report (or force). */
void pm__progress_update(pm__progress *p, size_t done, size_t failed, int force);
/* The final report (once): a last callback and the bar's final line. */
void pm__progress_finish(pm__progress *p, size_t done, size_t failed);
/* Format the bar line for `pr` into buf (no newline); for tests. */
void pm__progress_format(char *buf, size_t size, const char *label,
                         const pm_progress *pr);

/* ---------------------------------------------------------------- cancel */

struct pm_cancel {
    atomic_int requested;
};

static inline int pm__canceled(const pm_cancel *c)
{
    return c && atomic_load_explicit(&((pm_cancel *)c)->requested,
                                     memory_order_relaxed);
}

/* ------------------------------------------------------------------ pool */

struct pm_pool {
    pm__exec exec;
    pm_backend backend;
    int threads, procs;
    long process;        /* pm__process_id() of the process that made it */
};

/* The pool's executor for a call, or NULL when the pool cannot run it
 * without waiting for itself: the pool was made in another process (this is
 * a fork child, an item of a processes pool say: its workers do not exist
 * here) or it is busy with a job it cannot share (busy()). The call then
 * opens an executor of its own with the pool's settings. */
pm__exec *pm__pool_exec(pm_pool *pool);

/* The shared default pool's executor for a threads call of `threads`
 * threads (resolved) without a pool, or NULL when the call starts threads of
 * its own: it wants more threads than the pool has (an explicit choice to
 * oversubscribe), opts.private_threads, or the pool could not start. */
pm__exec *pm__default_exec(const pm__opts *o);


#endif
