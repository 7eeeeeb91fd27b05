/*
 * opts.c - validation of pm_opts and the one place where defaults are decided
 * (zero means "default" everywhere; sokol's desc-defaults idea). Bad values are
 * rejected here with PM_EINVAL before anything starts; values valid but not
 * available in this build (processes, per-item timeouts on threads) give
 * PM_ENOTSUP.
 */
#include "internal.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static int def(int v, int d)
{
    return v ? v : d;
}

/* Per-worker state: the exit records must fit before anything runs, one
 * per worker the call can have (the caller included). */
static int check_worker_state(const pm_opts *o, const pm__opts *out)
{
    if ((o->exit_results != NULL) != (o->exit_size != 0))
        return PM_EINVAL;
    if (o->exit_results && !o->worker_exit)
        return PM_EINVAL; /* nothing would ever write them */
    if (!o->exit_results && o->exit_capacity)
        return PM_EINVAL;
    if (o->exit_size && o->exit_capacity > SIZE_MAX / o->exit_size)
        return PM_EINVAL;
    if (!o->worker_init && !o->worker_exit)
        return PM_OK;
    if (!PM__EXEC_HAS(out->methods, 6, worker_state))
        return PM_ENOTSUP; /* an executor of the user's that cannot run them */
    /* Executors whose workers span processes (processes: procs x threads;
     * MPI: ranks x threads) say how many; a process recycled or replaced
     * brings new workers, whose records past the capacity are counted as
     * dropped (pm_report.exit_dropped). Serial resolves to 1 thread. */
    size_t workers = PM__EXEC_HAS(out->methods, 7, state_workers)
                         ? (size_t)out->methods->state_workers(&out->cfg)
                     : out->limit ? (size_t)out->limit
                                  : (size_t)out->cfg.threads;
    if (o->exit_results && o->exit_capacity < workers)
        return PM_EINVAL;
    return PM_OK;
}

int pm__opts_resolve(const pm_opts *opts, pm__opts *out)
{
    static const pm_opts defaults; /* all zero */
    const pm_opts *o = opts ? opts : &defaults;
    memset(out, 0, sizeof *out);
    out->user = *o;

    if ((int)o->backend < PM_AUTO || (int)o->backend > PM_MPI)
        return PM_EINVAL;
    if ((int)o->on_error < PM_RAISE || (int)o->on_error > PM_RETURN)
        return PM_EINVAL;
    if (o->threads < 0 || o->threads > PM_MAX_THREADS)
        return PM_EINVAL;
    if (o->procs < 0 || o->procs > PM_MAX_THREADS)
        return PM_EINVAL;
    if (o->chunksize < 0)
        return PM_EINVAL;
    /* !(x >= 0) also catches NaN. */
    if (!(o->timeout_s >= 0) || isinf(o->timeout_s))
        return PM_EINVAL;

    if (o->pool) {
        out->backend = o->pool->backend;
        out->methods = o->pool->exec.m;
        out->cfg.threads = o->pool->threads;
        out->cfg.procs = o->pool->procs;
        /* A pool whose workers serve several calls at once (threads):
         * `threads` caps this call's share (more than the pool has: all). */
        if (PM__EXEC_HAS(out->methods, 6, shares) && o->threads > 0 && o->threads < o->pool->threads)
            out->limit = o->threads;
    } else {
        out->backend = o->backend;
        if (out->backend == PM_AUTO)
            out->backend = PM_HAVE_THREADS ? PM_THREADS : PM_SERIAL;
        /* threads: in all (the caller included), or per process */
        out->cfg.threads = out->backend == PM_SERIAL      ? 1
                         : out->backend == PM_PROCESSES || out->backend == PM_MPI
                                                         ? def(o->threads, 1)
                                                        : def(o->threads, pm__cpu_count_default());
        out->cfg.procs = def(o->procs, pm__cpu_count_default());
        out->methods = pm__backend_methods(out->backend);
    }
    out->chunksize = (size_t)o->chunksize;

    if (out->backend == PM_PROCESSES && !PM_HAVE_FORK)
        return PM_ENOTSUP; /* no fork (WebAssembly, WASI) */
    if (out->backend == PM_THREADS && !PM_HAVE_THREADS)
        return PM_ENOTSUP;
    if (!out->methods)
        return PM_ENOTSUP; /* PM_MPI without libparmap_mpi (pm_exec_register) */
    /* What the executor cannot do is refused, never silently ignored:
     * threads cannot be killed safely, so a per-item timeout is a processes
     * feature, and only a process can be replaced with its memory given back. */
    if (o->timeout_s > 0 && !PM__EXEC_HAS(out->methods, 6, timeouts))
        return PM_ENOTSUP;
    if ((o->recycle_items || o->recycle_rss) && !PM__EXEC_HAS(out->methods, 6, recycles))
        return PM_ENOTSUP;
    return check_worker_state(o, out);
}

int pm__opts_spmd_fallback(const pm_opts *opts, pm__opts *out)
{
    if (!opts)
        return 0; /* all defaults are valid, and not SPMD */
    /* An out-of-range backend is no backend at all (no table: not SPMD). */
    const pm__exec_methods *m = pm__opts_methods(opts);
    if (!pm__methods_spmd(m))
        return 0;
    pm_backend b = opts->pool ? opts->pool->backend : opts->backend;
    memset(out, 0, sizeof *out);
    out->user.backend = b;
    out->user.pool = opts->pool;
    out->backend = b;
    out->methods = m;
    out->cfg.threads = opts->pool ? opts->pool->threads : 1;
    out->cfg.procs = 1;
    return 1;
}
