/*
 * parmap.h - parallel map for C: run one function over many items on threads,
 * forked worker processes or MPI ranks (web workers: the npm package), with
 * ordered or unordered results, per-item error capture, progress and
 * cancellation.
 *
 * This header is the user's manual. Every call returns a status (PM_OK or a
 * negative PM_E* code); nothing prints unless asked to; nothing aborts on bad
 * input.
 *
 * Quick start:
 *
 *     static int twice(void *user, const void *in, void *out) {
 *         (void)user;
 *         *(double *)out = 2 * *(const double *)in;
 *         return 0;                               // 0 = ok, else an item error
 *     }
 *     double x[1000], y[1000];
 *     int rc = pm_map(twice, NULL, x, sizeof x[0], y, sizeof y[0], 1000,
 *                     &(pm_opts){ .threads = 4 }, NULL);
 *
 * Thread-safety: every function may be called from any thread. One pm_iter is
 * used by one thread at a time. A pm_pool may be shared by concurrent calls.
 */
#ifndef PARMAP_H
#define PARMAP_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(PM_SHARED_BUILD)
#define PM_API __declspec(dllexport)
#elif defined(__GNUC__) || defined(__clang__)
#define PM_API __attribute__((visibility("default")))
#else
#define PM_API
#endif

#define PM_VERSION_MAJOR 0
#define PM_VERSION_MINOR 1
#define PM_VERSION_PATCH 0
#define PM_VERSION_STRING "0.1.0"

/* The library's version as "MAJOR.MINOR.PATCH" (may differ from the header's
 * PM_VERSION_STRING when linked against another build). */
PM_API const char *pm_version(void);

/* ---------------------------------------------------------------- status */

/* Every status code, once. Numbers are stable and never reused: bindings
 * (the JavaScript package) expose the names as error.code. */
#define PM_STATUS_MAP(X)                                                     \
    X(OK, 0, "success")                                                      \
    X(EINVAL, -1, "invalid argument")                                        \
    X(ENOMEM, -2, "out of memory")                                           \
    X(EITEM, -3, "an item's function failed")                                \
    X(ECRASH, -4, "a worker process crashed")                                \
    X(ETIMEOUT, -5, "an item ran longer than its timeout")                   \
    X(ECANCELED, -6, "canceled")                                             \
    X(ESYS, -7, "a system call failed")                                      \
    X(ENOTSUP, -8, "not supported by this build or target")                  \
    X(ENOMPI, -9, "MPI is not running: start with mpirun and call pm_mpi_init") \
    X(EWORKERINIT, -10, "a worker's opts.worker_init failed")

enum {
#define PM_STATUS_ENUM(name, value, text) PM_##name = value,
    PM_STATUS_MAP(PM_STATUS_ENUM)
#undef PM_STATUS_ENUM
};

/* A human-readable sentence for a status ("invalid argument"). Never NULL;
 * unknown codes (e.g. an item's own error code) give "unknown status". */
PM_API const char *pm_strerror(int status);
/* The status's name without prefix ("EINVAL"), or "UNKNOWN". */
PM_API const char *pm_err_name(int status);

/* --------------------------------------------------------------- options */

typedef enum pm_backend {
    PM_AUTO = 0,   /* threads where the build has them, else serial */
    PM_SERIAL,     /* the calling thread runs every item, in order */
    PM_THREADS,    /* a pool of pthreads */
    PM_PROCESSES,  /* forked worker processes (PM_ENOTSUP where fork does not exist) */
    PM_MPI         /* MPI ranks x threads (PM_ENOTSUP without libparmap_mpi); see "MPI" */
} pm_backend;

typedef enum pm_on_error {
    PM_RAISE = 0,  /* stop at the first failing item; the call returns PM_EITEM */
    PM_RETURN      /* run every item; the call returns PM_OK, codes say which failed */
} pm_on_error;

/* Progress, counted in items (never chunks). total == 0 means unknown (a
 * stream without opts.total). rate is items per second since the start; eta_s
 * is the estimated seconds left (0 when total is unknown). */
typedef struct pm_progress {
    size_t done, total, failed;
    double elapsed_s, rate, eta_s;
} pm_progress;

/* Progress callback: called about 10 times a second at most, always once more
 * at the end (done == total for a finished map), from ONE thread at a time:
 * the thread that called pm_map, or the thread calling pm_iter_next. */
typedef void (*pm_progress_fn)(void *user, const pm_progress *p);

typedef struct pm_cancel pm_cancel;
typedef struct pm_pool pm_pool;

/* Per-worker state (see "Per-worker state" below). worker_init makes this
 * worker's state in *state (NULL is fine); 0 = ok, anything else fails the
 * call with PM_EWORKERINIT. worker_exit gets that state back once, and may
 * write its exit record at `result` (opts.exit_size bytes, zeroed; NULL
 * without opts.exit_results). `user` is opts.worker_user. */
typedef int (*pm_worker_init_fn)(void *user, void **state);
typedef void (*pm_worker_exit_fn)(void *user, void *state, void *result);

/* Options. Zero-initialise and set what you need; every zero field (and a
 * NULL pm_opts pointer) means the default written beside it:
 *
 *     pm_map(..., &(pm_opts){ .threads = 4, .on_error = PM_RETURN }, &report);
 */
typedef struct pm_opts {
    pm_backend backend;        /* PM_AUTO: threads (serial on targets without threads) */
    int threads;               /* 0: CPU count (threads backend); 1..PM_MAX_THREADS. The
                                  calling thread is one of them (threads - 1 are started) */
    int procs;                 /* processes backend: worker processes; 0: CPU count. There
                                  `threads` is per process and 0 means 1 */
    long chunksize;            /* 0: auto (see "Chunking" below); >0: fixed items per chunk */
    int unordered;             /* iterators only: yield results as they complete */
    int consumer_only;         /* iterators only: the thread in pm_iter_next never runs items
                                  itself while other workers exist (by default it helps when
                                  it has no result to hand out), so an item that runs long
                                  (or forever) cannot hold back results already done. It
                                  still counts in `threads`: threads - 1 workers run items */
    pm_on_error on_error;      /* PM_RAISE (default) or PM_RETURN */
    int *codes;                /* pm_map only (pm_imap: PM_EINVAL), optional: n ints, each
                                  item's code (0 = ok; items never run in PM_RAISE mode are
                                  left untouched) */
    pm_progress_fn on_progress;/* optional progress callback */
    void *progress_user;       /* passed to on_progress */
    int progress_bar;          /* nonzero: draw a text bar on stderr (redrawn in place on a
                                  terminal, a sparse line otherwise) */
    const char *label;         /* optional prefix of the bar */
    size_t total;              /* iterators: expected item count for progress (0: unknown) */
    size_t window;             /* iterators: max items fed but not yet consumed (0: auto) */
    double timeout_s;          /* per item, processes backend only (else PM_ENOTSUP); 0: none.
                                  An item running longer gets its worker process killed and
                                  is marked PM_ETIMEOUT */
    pm_cancel *cancel;         /* optional cancellation token */
    pm_pool *pool;             /* optional warm pool; then the backend comes from the pool.
                                  With a threads pool, `threads` (> 0) caps the workers this
                                  call uses, the calling thread included (above the pool's
                                  size: the pool's size); 0: all of them. Other pools take
                                  their threads from the pool */
    int results_everywhere;    /* PM_MPI, pm_map: every rank gets out[] and codes[] (which
                                  must then be as big as on rank 0), not only rank 0 */
    size_t recycle_items;      /* processes backend: replace a worker process once it has run
                                  this many items (0: never; else PM_ENOTSUP elsewhere).
                                  Between pieces only: no item is lost or run twice */
    size_t recycle_rss;        /* processes backend: ... once its resident memory passes this
                                  many bytes, checked between pieces (0: never) */
    int private_threads;       /* threads backend without `pool`: nonzero starts and joins
                                  threads for this call alone (parmapper's behaviour);
                                  0: the call runs on the shared default pool (see pools) */
    pm_worker_init_fn worker_init; /* optional: makes each worker's state, in that worker,
                                  before its first item (see "Per-worker state") */
    pm_worker_exit_fn worker_exit; /* optional: once in each worker that started, when the
                                  call ends (also on error and cancel), in that worker */
    void *worker_user;         /* passed to worker_init and worker_exit */
    void *exit_results;        /* optional: room for exit_capacity records of exit_size
                                  bytes, one per worker that ran worker_exit (needs it) */
    size_t exit_size;          /* bytes per exit record (with exit_results: > 0) */
    size_t exit_capacity;      /* records exit_results holds: at least the call's workers
                                  (else PM_EINVAL before anything runs) */
} pm_opts;

#define PM_MAX_THREADS 1024

/*
 * Chunking. Items are handed to workers in chunks (consecutive items). With
 * chunksize 0 (auto) every worker sizes its own chunks by measuring them:
 *  - start at 1 item and grow while a chunk takes under ~0.5 ms (by the
 *    factor that would reach it, 2x to 16x a step), so tiny functions run in
 *    long chunks at the cost of a plain loop;
 *  - shrink a chunk that took over ~10 ms back to ~5 ms, so progress and
 *    cancellation stay responsive (a worker notices cancellation between chunks);
 *  - never take more than remaining / (2 x workers) items (guided tail), so a few
 *    slow items at the end cannot leave one worker running alone for long,
 *    but never cut a chunk below ~5 us of work for that (splitting the last
 *    microseconds would cost more than it saves).
 * Iterators size chunks the same way from the measured time per item, also
 * bounded by window / (2 x workers) so that every worker has work.
 */

/*
 * Per-worker state (mpire's worker_state / worker_init / worker_exit). A
 * worker is a thread that runs chunks of the call: a crew thread that takes
 * a chunk of it, and the calling thread (it runs chunks too; with pm_imap,
 * the thread calling pm_iter_next). For each worker of a call:
 *  - opts.worker_init runs once, in that worker's thread, after it took its
 *    first chunk and before that chunk's first item; a worker that never
 *    takes a chunk never runs it. A nonzero return fails the call with
 *    PM_EWORKERINIT: no item of that chunk runs (with opts.codes they get
 *    PM_EWORKERINIT), no further chunk starts, the worker runs no exit;
 *  - pm_worker_state() returns that state inside the item (or batch)
 *    functions parmap calls in that worker;
 *  - opts.worker_exit runs once, in that same thread, when the call ends for
 *    every worker (all chunks taken), also when it stops on an error, a
 *    cancellation or a failed init elsewhere. pm_map returns (pm_imap's
 *    pm_iter_free, or pm_iter_report after the end) only once every exit ran.
 *    It may write a record at `result`; records land in opts.exit_results in
 *    the order workers finish, pm_report.exit_count says how many, so the
 *    caller can reduce per-worker partials (counts, sums, histograms).
 * Worker count: serial 1; threads: opts.threads resolved (0: CPU count),
 * with a pool the pool's threads (or the `threads` cap); processes: procs x
 * threads; MPI: ranks x threads (see below); opts.exit_capacity must be at
 * least that, checked
 * before anything runs (PM_EINVAL). Setting only worker_exit is fine (the
 * state is then NULL).
 * Pools: options of a call give state per call: each call on a warm pool
 * runs init and exit again in the workers it uses. To pay an expensive init
 * once, give the options to pm_pool_new instead (threads backend): the pool
 * then has `threads` threads that each run worker_init once as the pool
 * starts (pm_pool_new returns after every init ran; one that fails makes it
 * return NULL with errno ECANCELED, after the exits of those that
 * succeeded; errno ENOTSUP on Emscripten's main thread, whose pthreads
 * cannot start while it waits) and worker_exit once at pm_pool_free,
 * writing record i for
 * thread i into the pool's exit_results (exactly `threads` records, so
 * exit_capacity >= threads). Items of every call on the pool see their
 * thread's state through pm_worker_state() unless the call has states of its
 * own; the calling thread only waits (it has no state), and `threads` does
 * not cap calls on such a pool. A nested call (a pm_map from an item) has
 * states of its own, and pm_worker_state() inside its items is the nested
 * call's; back in the outer item it is the outer one's again. A thread can
 * be two workers of one nested call (as crew member and as its caller).
 * On a shared pool a worker runs its exit when it next looks at the call:
 * one busy with a chunk of another call finishes that chunk first, and the
 * call (pm_iter_free) waits for it.
 * PM_PROCESSES: a worker is one thread of one worker process (a process of
 * `threads` threads is `threads` workers, each with its own state), and its
 * state lives in that process:
 *  - init runs in the child, in that thread, before the thread's first item
 *    of the process's lifetime; the items and batch functions it runs see
 *    the state through pm_worker_state(). A failing init fails the call with
 *    PM_EWORKERINIT as on threads (the items of every piece sent to that
 *    worker get PM_EWORKERINIT);
 *  - exit runs in that thread when the call ends (also on an error, and for
 *    the processes a cancellation did not kill) and when the process is
 *    recycled (recycle_items, recycle_rss): its record (exit_size bytes)
 *    comes back to the caller. So the caller gets one record per worker per
 *    process *lifetime*; a recycled worker's partials arrive with it, and a
 *    reduction of all the records stays exact;
 *  - a process that dies (an item crashed it, or it was killed for a
 *    timeout, or for a cancellation: pm_cancel_request kills the processes
 *    still running a piece ~50 ms later, the others run their exits) loses
 *    the states of all its workers: no exit, no record. Its replacement starts
 *    new states. Items that ran there still count in pm_report.done and
 *    their outputs are kept, so records then add up to less than done;
 *    pm_report.exit_count says how many records arrived;
 *  - with timeout_s, init does not count in the first item's time but gets
 *    timeout_s of its own (an init that outlives it is killed as an item
 *    would be, and the item it came before is marked PM_ETIMEOUT); the
 *    exits of a process get timeout_s in all, past which the process is
 *    killed and its records are lost. Without timeout_s an exit may run as
 *    long as it likes, as an item may. A cancellation requested while
 *    exits run kills them too;
 *  - exit_capacity: at least procs x threads, checked before anything runs;
 *    recycling brings more lifetimes than that. Records beyond the
 *    capacity are dropped and counted in pm_report.exit_dropped (size the
 *    buffer threads x (procs + n / recycle_items + 1) to keep them all).
 *  - pools: a processes pool forks its workers per call, so state lives per
 *    call there as on threads.
 * PM_MPI: a worker is one thread of one rank (ranks x threads workers, the
 * calling thread of rank 0 included), and its state lives in that rank's
 * process:
 *  - init runs in that thread, before the first item it runs; the items and
 *    batch functions it runs see the state through pm_worker_state(). A
 *    failing init on any rank fails the call on every rank with
 *    PM_EWORKERINIT, as on threads (the items of the chunks given to that
 *    worker get PM_EWORKERINIT);
 *  - exit runs in that thread when the call ends (also on an error, a
 *    cancellation by rank 0's token, or a failed init elsewhere), and its
 *    record (exit_size bytes) comes to rank 0: rank 0's exit_results gets
 *    one record per worker that started, from every rank, in the order they
 *    arrive, and a call returns, on every rank, only once every rank's
 *    exits ran. With results_everywhere (pm_map, pm_map_batch, pm_vmap)
 *    every rank gets the same records (its exit_results, exit_size and
 *    exit_capacity must then hold rank 0's records, else that rank returns
 *    PM_EINVAL); without it a follower's exit_results is left alone and
 *    its report's exit_count is rank 0's;
 *  - each rank runs the worker_init and worker_exit of its own options
 *    (the same program: pass the same options everywhere), and rank 0's
 *    exit_size is what every rank's exit writes;
 *  - exit_capacity: at least ranks x threads (rank 0's `threads`), checked
 *    on every rank before anything runs (PM_EINVAL on every rank). A rank
 *    with more `threads` than rank 0 may bring more records: past the
 *    capacity they are dropped and counted in pm_report.exit_dropped.
 * pm_vmap / pm_vimap take the same options in their base pm_opts. The JS
 * package (workerInit / workerExit): C only for now.
 */
/* The calling worker's state (what its worker_init made), or NULL outside
 * an item or batch function called by parmap, or in a call without
 * worker_init. Thread-local; lock-free. */
PM_API void *pm_worker_state(void);

/*
 * The processes backend (PM_PROCESSES). Items run in `procs` worker processes
 * (x `threads` threads each), forked at each call, so they see the caller's
 * memory as of the call: `in`, `user` and anything the function reads. What
 * they write goes nowhere except `out` (copied back) and the item's code: a
 * function must not count on side effects in the caller's memory. In exchange
 * nothing an item does can take the caller down:
 *  - an item that crashes its process (a signal, abort(), exit()) is marked
 *    PM_ECRASH, and only that item: the process is replaced, the item that was
 *    running is retried alone to tell it from a bystander (a sibling thread's
 *    crash, a stray kill), every other item keeps its result;
 *    pm_report.signal tells the signal;
 *  - with timeout_s, an item running longer is marked PM_ETIMEOUT (its process
 *    is killed and replaced). With threads > 1 it is first retried alone, as
 *    a crash is: a sibling may have stalled the whole process (it then costs
 *    up to twice timeout_s);
 *  - a worker process stopped by a signal (an item's raise(SIGSTOP)) is
 *    killed and treated as crashed: the item is PM_ECRASH, pm_report.signal
 *    the stop signal. pm_report.signal is that of the lowest-index crashed
 *    item: 0 when it called exit();
 *  - recycling: with opts.recycle_items (and/or recycle_rss) a worker process
 *    that has run that many items (or whose resident memory passed that
 *    many bytes, checked between pieces) finishes what it was sent, quits
 *    and is replaced, so items that leak memory or fds cannot sink a long
 *    map; no item is lost or run twice (mpire's worker_lifespan, Python's
 *    maxtasksperchild);
 *  - workers die with the caller (even on SIGKILL), ignore SIGINT (the caller
 *    decides: pm_cancel_request in a SIGINT handler kills them promptly), and
 *    are all reaped before the call returns; no file descriptor is left open.
 *
 * What an item may do inside a worker process:
 *  - print: stdout and stderr, from any number of threads (its own, OpenMP's,
 *    the worker's `threads`). The caller's unflushed stdout/stderr is flushed
 *    before the fork when no other thread holds it, else left to the caller;
 *    either way nothing prints twice. A worker flushes stdout and stderr when
 *    it ends; other streams an item writes it must flush or close itself;
 *    a stream the caller had written without flushing should be flushed
 *    before the call (a worker that flushes it writes the caller's part too);
 *  - start threads, fork and exec (the worker's sockets are close-on-exec),
 *    close file descriptors it does not own (closefrom(3) before exec'ing a
 *    tool): its result counts; the worker, which can no longer talk to the
 *    caller, is replaced at once and the items that were running beside it
 *    are retried;
 *  - raise signals, crash, exit(), loop forever: see above;
 *  - call parmap: threads, serial, and processes calls (on its own pool too)
 *    run inside the worker. A pm_pool made in another process (the caller's,
 *    seen from a worker) runs the call on workers of its own with the pool's
 *    settings.
 * It must not wait for a lock that another thread of the caller may hold at
 * the time of the call (the rule of every fork-based pool), and with pm_imap,
 * data that items reach through `user` should not live on the stack of the
 * thread that created the iterator when items start threads (glibc may give
 * that stack, in a replaced worker, to an item's new thread; pm_map forks
 * every worker from the calling thread, so its `in` and `user` are safe).
 *
 * Nothing the caller's program does around a call makes it hang: other
 * threads calling fflush(NULL), reading stdin, forking helpers (which hold
 * copies of the workers' sockets) or running processes calls of their own.
 *
 * A pm_pool with this backend keeps its settings and crew, but forks workers
 * per call. It runs one call at a time: a call that finds it busy (another
 * thread's call, a pm_map from one of its items, a second pm_imap chained to
 * the first with pm_iter_source) runs on workers forked for that call, as a
 * call without a pool does, and never waits for the pool.
 */

/*
 * MPI (PM_MPI): the same calls across machines, on the MPI engine the cluster
 * runs (Open MPI, MPICH). SPMD: every rank runs the same program and makes the
 * same parmap calls in the same order. Rank 0 owns the call: its `in` (or
 * source, or items) is the input, its `out` gets the results. The other ranks
 * pull chunks from rank 0 and run them on `threads` threads each (default 1);
 * on them `in`, `out`, `n` and a source are neither read nor checked (pass
 * NULL / 0, or the same as rank 0; with results_everywhere, `out` and `n`
 * receive the results and must match rank 0's), and the call returns once
 * rank 0's call is over, with rank 0's status and report (iterators: they
 * yield nothing and end with rank 0's status). Rank 0 runs chunks on its own
 * `threads` as well: ranks x threads workers in all. Records travel as bytes
 * (they must not hold pointers); pm_vmap's and pm_vimap's values travel as
 * MessagePack. opts.results_everywhere copies pm_map's results to every rank.
 * What a rank reads is checked there: everything on rank 0; the function,
 * in_stride and the options on the others. Bad arguments on any rank fail the
 * call on every rank before any item runs anywhere: that rank returns its own
 * status (PM_EINVAL, or PM_ENOTSUP for an option MPI cannot do), every other
 * rank PM_EINVAL, with an empty report. For that the ranks agree at the start
 * of every call (one small collective), so a call starts once every rank has
 * reached it and its outcome never depends on which rank came first. A rank
 * that skips a call hangs the job (as with any MPI collective). Per-worker
 * state (worker_init / worker_exit, exit records to rank 0): see
 * "Per-worker state". Not available with PM_MPI: timeout_s, recycling,
 * several calls at once on one pool (PM_ENOTSUP / PM_EINVAL).
 *
 *     int main(int argc, char **argv) {
 *         if (pm_mpi_init(&argc, &argv) != PM_OK) return 1;
 *         pm_map(fn, NULL, in, 8, out, 8, n, &(pm_opts){.backend = PM_MPI}, NULL);
 *         if (pm_mpi_rank() == 0) use(out);
 *         pm_mpi_finalize();
 *     }
 *
 * pm_mpi_init initialises MPI (thread level MPI_THREAD_MULTIPLE) unless the
 * program did already; calling MPI_Init_thread yourself with
 * MPI_THREAD_MULTIPLE first works too (pm_mpi_init then only checks; call it
 * anyway: in a static link it is what brings the executor in). Outside
 * mpirun (no MPI launcher in the environment) it returns PM_ENOMPI, and so
 * does a PM_MPI call made before MPI is initialised; PM_ENOTSUP when MPI gives
 * less than MPI_THREAD_MULTIPLE. If a rank dies, MPI's default error handler
 * aborts the whole job (mpirun kills every rank): a lost rank cannot lose
 * results silently.
 *
 * Linking: the MPI executor and the pm_mpi_* functions are a library of their
 * own, libparmap_mpi (built when parmap's build finds MPI), so that libparmap
 * never loads MPI. MPI programs link both: CMake `parmap::mpi` (static) or
 * `parmap::mpi_shared`, pkg-config `parmap-mpi`. In a program without
 * libparmap_mpi, PM_MPI calls return PM_ENOTSUP.
 */
PM_API int pm_mpi_init(int *argc, char ***argv);
/* Finalizes MPI if pm_mpi_init initialised it. PM_OK. */
PM_API int pm_mpi_finalize(void);
/* This process's rank (0 without MPI) and the number of ranks (1 without MPI). */
PM_API int pm_mpi_rank(void);
PM_API int pm_mpi_size(void);

/* ------------------------------------------------------------- reporting */

/* What happened in a call. Filled by pm_map / pm_iter_report when non-NULL. */
typedef struct pm_report {
    size_t done;                 /* items that ran (ok or failed) */
    size_t failed;               /* items whose function returned nonzero */
    size_t first_error_index;    /* lowest failing index seen ((size_t)-1: none) */
    int first_error_code;        /* that item's code (0: none) */
    int status;                  /* the call's status, repeated */
    int signal;                  /* processes backend: the signal with which the lowest-index
                                    crashed item killed its worker (0: none) */
    double elapsed_s;            /* wall time of the call */
    size_t exit_count;           /* records written to opts.exit_results (one per worker
                                    that ran worker_exit) */
    size_t exit_dropped;         /* processes, MPI: records that came back when
                                    exit_results was full (recycling, or a rank with more
                                    threads than rank 0, outnumbered exit_capacity); 0 else */
} pm_report;

/* ---------------------------------------------------------- cancellation */

/* A cancellation token. Create it, pass it in opts.cancel of one or more
 * calls, request from anywhere. pm_cancel_new returns NULL when out of memory. */
PM_API pm_cancel *pm_cancel_new(void);
/* Ask every call using the token to stop: running calls return PM_ECANCELED
 * within about one chunk per worker. Async-signal-safe: may be called from a
 * SIGINT handler. Idempotent. NULL is ignored. */
PM_API void pm_cancel_request(pm_cancel *c);
/* 1 when cancellation was requested, else 0 (NULL: 0). Async-signal-safe. */
PM_API int pm_cancel_requested(const pm_cancel *c);
/* Clear a request so the token can be reused. */
PM_API void pm_cancel_reset(pm_cancel *c);
/* Free a token no call is using any more. NULL is ignored. */
PM_API void pm_cancel_free(pm_cancel *c);

/* ------------------------------------------------------------- the map */

/* The item function: read one input record at `in`, write one output record at
 * `out` (NULL when the call has no outputs). Return 0 on success or any
 * nonzero code to mark this item failed (use positive codes: negative ones
 * are parmap's own, e.g. PM_ECRASH). Called concurrently from several threads:
 * it must be thread-safe with respect to `user`. */
typedef int (*pm_fn)(void *user, const void *in, void *out);

/* The batch (chunk) function: items [first, first + count) of the call at
 * once, so that a trivial body vectorises and a binding makes one foreign
 * call per chunk. `in` and `out` point at the first item's records (strides
 * as given to the call; out NULL when the call has no outputs); `first` is
 * the first item's index in the array or stream. `codes` (count ints) comes
 * zeroed: write a nonzero code for each item that failed. Return how many
 * items, from the first, were processed (<= count): in PM_RAISE mode it may
 * stop after the first failure; the items it left are passed again in
 * another call. A call that processes none of its items, or claims more than
 * `count`, fails the items it was given with PM_EINVAL. Called concurrently,
 * like pm_fn. Everything else (chunk sizing by measured time, progress per
 * item, cancellation between chunks, timeouts, crash isolation) is as with
 * pm_fn; in a worker process that dies inside a batch, or a batch call that
 * runs longer than timeout_s, the rest of that chunk runs one item per call
 * (each with timeout_s), so that exactly the guilty item is marked. */
typedef size_t (*pm_batch_fn)(void *user, size_t first, size_t count, const void *in,
                              void *out, int *codes);

/* A stream of input records: write the next record at `item` (in_stride bytes)
 * and return 1; return 0 at the end; return a negative PM_E* status on error
 * (the iterator then ends with that status). Called by one thread at a time.
 * A source that would now wait for its next record (a socket, a queue, a
 * burst that has ended) may first return PM_SOURCE_LATER, writing nothing:
 * the records it gave so far go to the workers at once instead of waiting in
 * a part-filled chunk, and the next call may block. Return it once per
 * pause: a source that keeps returning it keeps the feeding thread busy. */
enum { PM_SOURCE_END = 0, PM_SOURCE_ITEM = 1, PM_SOURCE_LATER = 2 };
typedef int (*pm_source_fn)(void *src, void *item);

/*
 * pm_map: out[i] = fn(in[i]) for i in [0, n), in parallel.
 *  in, in_stride:   n input records of in_stride bytes (in_stride > 0; in may be
 *                   NULL only when n == 0).
 *  out, out_stride: n output records; out == NULL with out_stride == 0 for a map
 *                   that only has side effects. in == out (same stride) is fine.
 *  opts:            NULL for defaults.
 *  report:          NULL or filled on every return.
 * The result of in[i] always lands in out[i], whatever the order of execution.
 * Returns PM_OK; PM_EITEM (PM_RAISE mode: an item failed; the map stopped within
 * one chunk per worker, report has the lowest failing index seen and its code,
 * every item that completed has its output written); PM_ECRASH / PM_ETIMEOUT
 * (the same, when that item crashed or timed out its worker process: processes
 * backend, see below); PM_ECANCELED; PM_EINVAL
 * (bad arguments, nothing ran); PM_ENOMEM; PM_ESYS (threads could not start);
 * PM_ENOTSUP (backend not in this build). In PM_RETURN mode, item failures
 * return PM_OK with report->failed and opts.codes telling which.
 */
PM_API int pm_map(pm_fn fn, void *user, const void *in, size_t in_stride,
                  void *out, size_t out_stride, size_t n, const pm_opts *opts,
                  pm_report *report);
/* pm_map with a batch function: the same call, a chunk per call of `fn`. */
PM_API int pm_map_batch(pm_batch_fn fn, void *user, const void *in, size_t in_stride,
                        void *out, size_t out_stride, size_t n, const pm_opts *opts,
                        pm_report *report);

/* ------------------------------------------------------------- streams */

typedef struct pm_iter pm_iter;

/*
 * pm_imap: a semi-lazy parallel map over a stream. A feeder pulls records from
 * `next(src, item)` in the background and workers map them while you consume
 * results with pm_iter_next. At most opts.window items are between the source
 * and you (fed, running, or done and waiting to be consumed), so memory stays
 * flat on endless streams and one slow item stalls the feeder rather than
 * letting ordered results pile up. With the serial backend (or threads = 1)
 * nothing runs in the background: each pm_iter_next pulls and maps what it
 * needs. The consumer's thread runs ready chunks while it waits (it is one of
 * the `threads`), except with the processes backend.
 * Never returns NULL except when out of memory; bad arguments give an iterator
 * whose first pm_iter_next (and pm_iter_free) returns PM_EINVAL (PM_ENOTSUP for
 * options this build cannot do).
 * The source and `src` must stay valid until pm_iter_free.
 */
PM_API pm_iter *pm_imap(pm_fn fn, void *user, pm_source_fn next, void *src,
                        size_t in_stride, size_t out_stride, const pm_opts *opts);
/* pm_imap with a batch function (`first` is the stream position). */
PM_API pm_iter *pm_imap_batch(pm_batch_fn fn, void *user, pm_source_fn next, void *src,
                              size_t in_stride, size_t out_stride, const pm_opts *opts);

/*
 * The next result: copies it to `out` (out_stride bytes; out may be NULL when
 * out_stride is 0), its input's position in the stream to *index and its code
 * to *item_code (both optional). Results come in stream order unless
 * opts.unordered. Returns 1 (a result), 0 (the stream ended), or a negative
 * status that ends the iterator: PM_EITEM (PM_RAISE mode; *index and
 * *item_code name the failing item; PM_ECRASH / PM_ETIMEOUT instead when that
 * item crashed or timed out its worker process), PM_ECANCELED, the source's own error, or
 * PM_EINVAL (bad arguments, or an iterator already freed). In stream order,
 * an error at item k comes after exactly the k results before it. In PM_RETURN
 * mode a failed item is returned with 1 and a nonzero *item_code. After the
 * end, every call returns the same value again. One thread at a time.
 */
PM_API int pm_iter_next(pm_iter *it, void *out, size_t *index, int *item_code);

/* Counts so far (done, failed, first error, status, elapsed) of a live
 * iterator, ended or not: PM_OK; PM_EINVAL for NULL or a freed iterator. */
PM_API int pm_iter_report(pm_iter *it, pm_report *report);

/* Stop what is left (a source call in progress is waited for), join the
 * threads, free. Returns the status the iterator ended with if it ended with
 * an error, else PM_OK (also when you stop early), or PM_EINVAL when `it` was
 * already freed. NULL gives PM_OK. Free downstream stages of a pipeline
 * before their upstream. */
PM_API int pm_iter_free(pm_iter *it);

/*
 * pm_iter_source: a pm_source_fn reading another iterator, to chain maps into
 * a pipeline where every stage runs at once:
 *     pm_iter *a = pm_imap(parse, 0, read_line, file, ...);
 *     pm_iter *b = pm_imap(score, 0, pm_iter_source, a, ...);
 * Upstream results whose item failed (upstream in PM_RETURN mode) are skipped
 * and counted in the upstream report; an upstream error status ends the
 * downstream with the same status.
 */
PM_API int pm_iter_source(void *iter, void *item);

/* ---------------------------------------------------------------- pools */

/*
 * The shared default pool. A threads call without opts.pool runs on one
 * process-wide pool of pm_cpu_count() threads (the caller included), made by
 * the first such call and kept until the process exits: a call starts no
 * thread of its own, and an item that maps again (nested calls, any depth)
 * runs on the same threads, its thread helping while it waits, so a program
 * never has more than CPU count threads of parmap's plus its own callers'
 * (OpenMP, TBB and rayon do the same). `threads` caps a call's share of it.
 * A call asking for more threads than the pool has, or with
 * opts.private_threads, starts and joins threads of its own, as parmapper
 * and earlier releases did. A forked child (an item of a processes call
 * too) gets a fresh default pool of its own.
 */

/*
 * A warm pool of workers for many small maps: pass it as opts.pool and the
 * call reuses its threads instead of starting and joining its own. backend and
 * threads are taken from `opts` here (NULL: defaults); the pool starts
 * threads - 1 workers and every call's own thread works alongside them.
 * Several calls may use a pool at once (they share its workers), and an item
 * function may itself call pm_map on the pool it runs on (a processes pool
 * runs one call at a time: a call that finds it busy gets workers of its
 * own, see the processes backend; it never waits for the pool). Returns NULL with
 * errno EINVAL (bad options), ENOTSUP, ENOMEM, or EAGAIN when threads could not
 * be started. A pool on workers of your own (an executor): pm_pool_new_exec,
 * in parmap_exec.h.
 */
PM_API pm_pool *pm_pool_new(const pm_opts *opts);
/* The `threads` of the pool (background workers + the calling thread; 1 for
 * the serial backend). 0 for NULL. */
PM_API int pm_pool_workers(const pm_pool *pool);
/* Join the workers and free. No call may be using the pool. NULL is ignored. */
PM_API void pm_pool_free(pm_pool *pool);

/* ---------------------------------------------------------------- misc */

/* Number of CPUs this process may run on (affinity aware), at least 1, read
 * now. The defaults of threads and procs use the count read by the first
 * call that needed it (and again after fork): changing the affinity later
 * does not change them. */
PM_API int pm_cpu_count(void);

#ifdef __cplusplus
}
#endif

/* The value layer: pm_value, MessagePack, args/kwargs/star/kwstar (pm_vmap). */
#include "parmap_value.h"

#endif /* PARMAP_H */
