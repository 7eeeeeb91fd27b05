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
#include "../platform/platform.h"

#include <stdatomic.h>
#include <stddef.h>

/* The executor seam: the few pm__ functions an executor built outside
 * libparmap (libparmap_mpi) calls. libparmap.so exports them (everything else
 * pm__ is hidden), but they are not public API: the public executor interface
 * (include/parmap_exec.h, issue 14 item 3) replaces them. */
#define PM__SEAM PM_API

/* ------------------------------------------------------------------ jobs */

/* What a job's step() returns to the worker calling it. */
enum {
    PM__STEP_RAN = 1,   /* ran a chunk: call again */
    PM__STEP_IDLE = 0,  /* nothing to run right now (a stream waits for its feeder):
                           sleep until the executor is notified */
    PM__STEP_END = -1   /* no more work for workers, ever: leave the job */
};

/* A chunk of consecutive items, claimed by one worker. take() fills the
 * first part; whoever runs it (pm__task_run here, or a remote worker) fills
 * the results part; finish() accounts for it. */
typedef struct pm__task {
    size_t base;                /* index (in the array or stream) of the first item */
    size_t count;               /* items in the chunk, >= 1 */
    const unsigned char *in;    /* count input records, in_stride apart */
    unsigned char *out;         /* count output records, out_stride apart; NULL: none */
    int *codes;                 /* count item codes; NULL: the caller keeps none */
    int inherited;              /* `in` existed before the call, so a worker forked
                                   at the call can read it in place */
    double t0;                  /* when it was taken (for the chunker), 0: untimed */
    void *ctx;                  /* the job's own (a stream's chunk) */
    /* results */
    size_t ran;                 /* items that ran: < count only when PM_RAISE stopped */
    size_t failed;              /* items whose code is nonzero */
    size_t first_failed;        /* index (absolute) of the first of them */
    int first_code;             /* its code */
    int signal;                 /* the first item that killed its worker process killed
                                   it with this signal (0: none) */
    size_t signal_index;        /* that item's index */
} pm__task;

/* Records that hold pointers (pm_value *) mean nothing in another process.
 * A job with a codec has its outputs shipped back encoded: the worker encodes
 * each output record and releases what it holds, the caller's side decodes
 * into the real output record. Used by pm_vmap on processes and MPI. MPI also
 * ships the inputs (other ranks never saw them): the *_in methods, NULL where
 * an executor does not need them. */
typedef struct pm__codec {
    void *ctx;
    /* worker side: encode the record at `out` into a malloc'd buffer, and
     * release the record's contents either way; 0 or an item code */
    int (*encode)(void *ctx, void *out, unsigned char **buf, size_t *len);
    /* caller side: decode into the record at `out`; `in` is the item's input
     * record. buf NULL: nothing came back for an item that ran (its code says
     * why), but `out` must still be made valid. 0 or an item code */
    int (*decode)(void *ctx, const void *in, const unsigned char *buf, size_t len, void *out);
    /* caller side: encode the input record at `in` (left as is); 0 or a code */
    int (*encode_in)(void *ctx, const void *in, unsigned char **buf, size_t *len);
    /* worker side: decode into the input record at `in`; 0 or an item code */
    int (*decode_in)(void *ctx, const unsigned char *buf, size_t len, void *in);
    /* worker side: release what a decoded input record holds */
    void (*release_in)(void *ctx, void *in);
} pm__codec;

typedef struct pm__job pm__job;
struct pm__job {
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
 * fails the rest of the items with PM_EINVAL. `first`: the index of item 0. */
size_t pm__batch_call(const pm__job *job, size_t first, size_t count, const unsigned char *in,
                      unsigned char *out, int *codes, int zeroed);
/* Whether `worker` (of `background` background workers; the caller is
 * number `background`) may take chunks of a job capped by job->limit. */
static inline int pm__worker_allowed(const pm__job *job, int worker, int background)
{
    return job->limit == 0 || worker >= background || worker < job->limit - 1;
}
/* Run the task's items on this thread: codes, ran, failed, first_failed. */
PM__SEAM void pm__task_run(const pm__job *job, pm__task *task);
/* Record one item's code in a task's results (for runners). */
PM__SEAM void pm__task_record(const pm__job *job, pm__task *task, size_t k, int code);
/* The item function of a call with bad arguments (or options) on an SPMD
 * executor, which takes part with no items so the other processes are not
 * left waiting. It also marks the job: the executor fails the call on every
 * process before any item runs (mpi.c); were an item sent anyway, it would
 * fail with PM_EINVAL. */
PM__SEAM int pm__refuse(void *user, const void *in, void *out);
/* take + run here + finish: what a local worker does. PM__STEP_*. */
PM__SEAM int pm__job_step(pm__job *job, int worker);

/* ------------------------------------------------------------- executors */

typedef struct pm__exec_config {
    int threads;   /* resolved: >= 1 */
    int procs;     /* resolved: >= 1 (processes backend) */
} pm__exec_config;

/*
 * An executor: a const table of methods per backend. `version` tells which
 * methods exist; new methods are only appended (sqlite3_io_methods). The core
 * allocates `state_size` zeroed bytes for the state.
 *
 * Protocol: open once; then for each job: submit, (notify whenever the job may
 * have new work), wait until it returns 1; finally close. Several jobs may be
 * submitted at once (a shared pool). The calling thread counts as a worker:
 * wait() first runs the job's chunks on it (worker number == workers()),
 * then blocks until the background workers are out. With 0 background workers
 * (serial, or threads = 1) nothing runs in the background at all.
 */
typedef struct pm__exec_methods {
    int version;                   /* 1 */
    const char *name;              /* "serial", "threads", "processes" */
    int isolated;                  /* 1: items must never run in the calling process
                                      (a crash there would kill the caller) */
    size_t state_size;
    int  (*open)(void *state, const pm__exec_config *cfg);   /* PM_OK or error */
    int  (*workers)(const void *state);  /* background workers, not counting the caller */
    int  (*submit)(void *state, pm__job *job);   /* PM_OK or an error: nothing runs */
    void (*notify)(void *state);
    /* Help run the job, then wait up to `seconds` (< 0: forever) for it to
     * end: someone saw PM__STEP_END and no worker is inside it any more.
     * Returns 1 when it ended (the executor then forgets the job), 0 on
     * timeout (call again to go on). */
    int  (*wait)(void *state, pm__job *job, double seconds);
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
     * running (processes: one job at a time, its workers forked for it).
     * The core then gives the call an executor of its own with the same
     * settings rather than wait: the running job may be the caller's own (a
     * pm_map from one of its items, a chained pm_imap) and would never end.
     * NULL: never busy. */
    int  (*busy)(void *state);
    /* Version 4, SPMD executors: 1 when an executor opened in this process
     * now would be a follower (follower() without a state: the value layer
     * must know before it reads its arguments). NULL: never. */
    int  (*follows)(void);
    /* Version 5. 1: items run in other processes, which records reach as
     * bytes (processes, MPI): a job whose records hold pointers (the value
     * layer's) passes its codec, and the executor uses the parts it needs
     * (outputs always; inputs where the worker does not have them). */
    int  ships;
} pm__exec_methods;

extern const pm__exec_methods pm__exec_serial;
extern const pm__exec_methods pm__exec_threads;
extern const pm__exec_methods pm__exec_processes; /* where fork exists (PM_HAVE_FORK) */

/* Executors for backends the core does not build in (PM_MPI: libparmap_mpi,
 * which registers itself when loaded and from pm_mpi_init). A backend that
 * nothing registered gives PM_ENOTSUP. `m` NULL unregisters; a pool keeps the
 * table it was opened with. PM_OK, or PM_EINVAL for a built-in or unknown
 * backend or a table of version < 1. Thread-safe. This becomes the public
 * executor interface's registration (include/parmap_exec.h, issue 14 item 3). */
PM__SEAM int pm__exec_register(pm_backend backend, const pm__exec_methods *m);

/* An opened executor (what a pm_pool wraps; pm_map without a pool makes one). */
typedef struct pm__exec {
    const pm__exec_methods *m;
    void *state;
} pm__exec;

/* Resolve a backend, allocate and open. Returns PM_OK or an error. */
int  pm__exec_open(pm__exec *ex, pm_backend backend, const pm__exec_config *cfg);
void pm__exec_close(pm__exec *ex);
/* 1 when the backend is SPMD (every process makes the call: open it even
 * for an empty input). */
int  pm__backend_spmd(pm_backend backend);
/* 1 when `ex` only serves another process's jobs (an MPI rank other than 0). */
int  pm__exec_follower(const pm__exec *ex);
/* 1 when a call on `backend` in this process would only serve another
 * process's job (methods' follows()). */
int  pm__backend_follows(pm_backend backend);
/* 1 when the backend's items run where records arrive as bytes (ships). */
int  pm__backend_ships(pm_backend backend);
/* 1 when this build has, or something registered, an executor for `backend`. */
int  pm__backend_available(pm_backend backend);

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
    pm_backend backend;  /* never PM_AUTO */
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

/* Which backend a call with these options runs on (a pool decides for itself). */
static inline pm_backend pm__backend_of(const pm_opts *o)
{
    return o->pool ? o->pool->backend : o->backend;
}

#endif
