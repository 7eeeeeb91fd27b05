/*
 * pool.c - choosing and opening an executor, and pm_pool: an opened executor
 * kept warm between calls. A call without opts.pool opens its own executor and
 * closes it at the end (parmapper's pool-per-call behaviour); with a pool the
 * call only submits its job to the pool's already running workers.
 *
 * Serial, threads and processes are built in; other backends (PM_MPI) come
 * from libraries that register their executor (pm_exec_register), so
 * libparmap itself never links what they need.
 */
#include "internal.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

/* Executors of backends the core does not build in, by backend: what
 * pm_exec_register was given (PM_MPI: libparmap_mpi). Written and read
 * without a lock: each slot is one pointer to a const table that lives as
 * long as the program. */
static _Atomic(const pm__exec_methods *) registered[PM_MPI + 1];

static const pm__exec_methods *built_in(pm_backend backend)
{
    switch (backend) {
    case PM_SERIAL: return &pm__exec_serial;
    case PM_THREADS: return &pm__exec_threads;
#if PM_HAVE_FORK
    case PM_PROCESSES: return &pm__exec_processes;
#endif
    default: return NULL;
    }
}

const pm__exec_methods *pm__backend_methods(pm_backend backend)
{
    if (backend == PM_AUTO)
        backend = PM_HAVE_THREADS ? PM_THREADS : PM_SERIAL;
    const pm__exec_methods *m = built_in(backend);
    if (!m && (int)backend > PM_AUTO && (int)backend <= PM_MPI)
        m = atomic_load_explicit(&registered[backend], memory_order_acquire);
    return m;
}

const pm__exec_methods *pm__opts_methods(const pm_opts *o)
{
    return o->pool ? o->pool->exec.m : pm__backend_methods(o->backend);
}

int pm__exec_valid(const pm__exec_methods *m)
{
    return m && m->version >= 1 && m->version <= PM_EXEC_VERSION && m->open && m->workers &&
           m->submit && m->notify && m->wait && m->close;
}

int pm_exec_register(pm_backend backend, const pm__exec_methods *m)
{
    if ((int)backend <= PM_AUTO || (int)backend > PM_MPI || built_in(backend) ||
        (m && !pm__exec_valid(m)))
        return PM_EINVAL;
    atomic_store_explicit(&registered[backend], m, memory_order_release);
    return PM_OK;
}

int pm__exec_open(pm__exec *ex, const pm__exec_methods *m, const pm__exec_config *cfg)
{
    ex->m = m;
    ex->state = NULL;
    if (!ex->m)
        return PM_ENOTSUP;
    ex->state = calloc(1, ex->m->state_size ? ex->m->state_size : 1);
    if (!ex->state)
        return PM_ENOMEM;
    int rc = ex->m->open(ex->state, cfg);
    if (rc != PM_OK)
        pm__exec_close(ex);
    return rc;
}

int pm__methods_spmd(const pm__exec_methods *m)
{
    return PM__EXEC_HAS(m, 2, follower);
}

int pm__methods_follows(const pm__exec_methods *m)
{
    return PM__EXEC_HAS(m, 4, follows) && m->follows();
}

int pm__exec_follower(const pm__exec *ex)
{
    return ex && PM__EXEC_HAS(ex->m, 2, follower) && ex->m->follower(ex->state);
}

void pm__exec_close(pm__exec *ex)
{
    if (ex->state) {
        ex->m->close(ex->state); /* accepts a half-opened state */
        free(ex->state);
    }
    ex->state = NULL;
}

/* A pool around table `m` (NULL: the backend's) with options resolved. */
static pm_pool *pool_open(const pm__exec_methods *m, const pm_opts *opts)
{
    pm__opts o;
    int rc = opts && opts->pool ? PM_EINVAL : pm__opts_resolve(opts, &o);
    if (rc != PM_OK) {
        errno = rc == PM_ENOTSUP ? ENOTSUP : EINVAL;
        return NULL;
    }
    if (m) {
        /* A library's executor: no built-in backend, its own table (the
         * options were resolved as for threads: cfg.threads defaults to the
         * CPU count, procs too). */
        o.backend = PM_AUTO;
        o.methods = m;
    } else if (o.user.worker_init || o.user.worker_exit) {
        /* Per-worker state kept with the pool's threads (threads.c). */
        if (o.backend != PM_THREADS) {
            errno = ENOTSUP;
            return NULL;
        }
        o.methods = &pm__exec_threads_kept;
    }
    pm_pool *pool = calloc(1, sizeof *pool);
    if (!pool) {
        errno = ENOMEM;
        return NULL;
    }
    pool->backend = o.backend;
    pool->threads = o.cfg.threads;
    pool->procs = o.cfg.procs;
    pool->process = pm__process_id();
    pm__exec_config cfg = o.cfg;
    cfg.pool_opts = &o.user;
    rc = pm__exec_open(&pool->exec, o.methods, &cfg);
    if (rc != PM_OK) {
        free(pool);
        errno = rc == PM_ENOMEM         ? ENOMEM
              : rc == PM_EWORKERINIT    ? ECANCELED
              : rc == PM_ENOTSUP        ? ENOTSUP
                                        : EAGAIN;
        return NULL;
    }
    return pool;
}

pm_pool *pm_pool_new(const pm_opts *opts)
{
    return pool_open(NULL, opts);
}

pm_pool *pm_pool_new_exec(const pm_exec_methods *m, const pm_opts *opts)
{
    /* The options must not name another executor; what the table cannot
     * do (timeouts, recycling, worker state) is refused per call. */
    if (!pm__exec_valid(m) || (opts && (opts->pool || opts->backend != PM_AUTO))) {
        errno = EINVAL;
        return NULL;
    }
    return pool_open(m, opts);
}

pm__exec *pm__pool_exec(pm_pool *pool)
{
    pm__exec *ex = &pool->exec;
    if (pool->process != pm__process_id())
        return NULL;
    if (PM__EXEC_HAS(ex->m, 3, busy) && ex->m->busy(ex->state))
        return NULL;
    return ex;
}

/*
 * The default pool: one process-wide threads pool (CPU count threads, the
 * caller included), made by the first call that needs it and kept until
 * exit, so that small maps start no threads and nested maps share the same
 * threads (OpenMP's, TBB's and rayon's idea). An atomic pointer rather than
 * a lock: a forked child (an item of a processes pool) may call parmap while
 * a lock copied from its parent is held forever. Such a child finds the
 * parent's pool made by another process, whose threads it does not have,
 * and makes its own; the parent's stays reachable (`inherited`), so leak
 * checkers see no leak. Two threads racing to make it: one pool wins, the
 * other is freed.
 */
static _Atomic(pm_pool *) default_pool;
static pm_pool *_Atomic inherited[8];

pm__exec *pm__default_exec(const pm__opts *o)
{
    if (o->user.pool || o->user.private_threads || o->backend != PM_THREADS ||
        o->cfg.threads <= 1)
        return NULL;
    pm_pool *p = atomic_load_explicit(&default_pool, memory_order_acquire);
    if (p && p->process != pm__process_id()) {
        for (int i = 0; i < 8; i++) {
            pm_pool *none = NULL;
            if (atomic_compare_exchange_strong(&inherited[i], &none, p))
                break;
        }
        atomic_compare_exchange_strong(&default_pool, &p, NULL);
        p = NULL;
    }
    if (!p) {
        pm_pool *fresh = pm_pool_new(&(pm_opts){.backend = PM_THREADS});
        if (!fresh)
            return NULL;
        pm_pool *expected = NULL;
        if (atomic_compare_exchange_strong(&default_pool, &expected, fresh)) {
            p = fresh;
        } else {
            pm_pool_free(fresh);
            p = expected;
        }
    }
    return o->cfg.threads <= p->threads ? pm__pool_exec(p) : NULL;
}

int pm_pool_workers(const pm_pool *pool)
{
    return pool ? pool->threads : 0;
}

void pm_pool_free(pm_pool *pool)
{
    if (!pool)
        return;
    pm__exec_close(&pool->exec);
    free(pool);
}
