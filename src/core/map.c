/*
 * map.c - pm_map: the array map.
 *
 * Chunks are claimed with one atomic fetch-add on a shared `next` index (the
 * same cost as OpenMP's dynamic schedule), sized per worker by the chunker.
 * Everything else a worker touches is its own padded slot (done/failed counts,
 * chunker), so the only shared write per chunk is that fetch-add. The caller's
 * thread only waits: it wakes every ~100 ms to report progress (so callbacks
 * always come from the thread that called pm_map) and sums the slots. With the
 * serial executor (0 workers) the caller itself runs the chunks.
 *
 * Stopping: the first of {item error in PM_RAISE mode, cancellation} wins a
 * compare-and-swap on `stop`; workers see it before their next chunk, and a
 * worker that hits the failing item stops its own chunk right there.
 */
#include "internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One per worker. Padded to two cache lines so neighbours never share one. */
typedef struct slot {
    atomic_size_t done;
    atomic_size_t failed;
    pm__chunker chunker;
    char pad[128 - 2 * sizeof(atomic_size_t) - sizeof(pm__chunker)];
} slot;

typedef struct map_job {
    pm__job job; /* first: the executor sees only this */
    const unsigned char *in;
    unsigned char *out;
    size_t n;
    int *codes;
    int workers;          /* for the guided tail: >= 1 */
    pm_cancel *cancel;
    char pad0[64];
    atomic_size_t next;   /* next unclaimed index (may run past n) */
    char pad1[64];
    atomic_int stop;      /* 0, or why the map stops: PM_EITEM / PM_ECANCELED */
    pm__mutex err_lock;   /* guards first_index/first_code (rare path) */
    size_t first_index;
    int first_code;
    int signal;           /* crash signal of the lowest crashed index (processes) */
    size_t signal_index;
    int nslots;
    slot *slots;
} map_job;

static void set_stop(map_job *m, int why)
{
    int expected = 0;
    atomic_compare_exchange_strong(&m->stop, &expected, why);
}

static void record_error(map_job *m, size_t index, int code, int signal, size_t signal_index)
{
    pm__mutex_lock(&m->err_lock);
    if (signal_index < m->signal_index) { /* signal 0: it called exit() */
        m->signal = signal;
        m->signal_index = signal_index;
    }
    if (index < m->first_index) {
        m->first_index = index;
        m->first_code = code;
    }
    pm__mutex_unlock(&m->err_lock);
    /* A crash or timeout stops a PM_RAISE map with its own status. */
    if (m->job.raise)
        set_stop(m, pm__item_status(code));
}

static int map_take(pm__job *job, int worker, size_t max_items, pm__task *t)
{
    map_job *m = (map_job *)job;
    slot *s = &m->slots[worker];
    if (!pm__worker_allowed(job, worker, m->nslots - 1))
        return PM__STEP_IDLE; /* beyond this call's cap: leave it to the others */
    if (atomic_load_explicit(&m->stop, memory_order_relaxed))
        return PM__STEP_END;
    if (pm__canceled(m->cancel)) {
        set_stop(m, PM_ECANCELED);
        return PM__STEP_END;
    }
    size_t size;
    if (s->chunker.fixed) {
        /* No look at `next` first: on the hot counter's cache line a read
         * before the fetch-add costs a second coherence round trip. */
        size = s->chunker.fixed;
    } else {
        size_t next = atomic_load_explicit(&m->next, memory_order_relaxed);
        if (next >= m->n)
            return PM__STEP_END;
        size = pm__chunker_next(&s->chunker, m->n - next, m->workers);
        if (size > m->n - next)
            size = m->n - next;
    }
    if (size > max_items)
        size = max_items;
    if (size > m->n)
        size = m->n; /* a huge fixed chunksize cannot wrap the counter */
    size_t start = atomic_fetch_add_explicit(&m->next, size, memory_order_relaxed);
    if (start >= m->n)
        return PM__STEP_END;
    t->base = start;
    t->count = size < m->n - start ? size : m->n - start;
    t->in = m->in + start * job->in_stride;
    t->out = m->out ? m->out + start * job->out_stride : NULL;
    t->codes = m->codes ? m->codes + start : NULL;
    t->inherited = 1;
    t->t0 = pm__chunker_needs_time(&s->chunker) ? pm__now() : 0;
    t->ctx = NULL;
    return PM__STEP_RAN;
}

static void map_finish(pm__job *job, int worker, pm__task *t)
{
    map_job *m = (map_job *)job;
    slot *s = &m->slots[worker];
    if (t->t0 > 0)
        pm__chunker_observe(&s->chunker, t->ran, pm__now() - t->t0);
    if (atomic_load_explicit(&job->ws_failed, memory_order_relaxed))
        set_stop(m, PM_EWORKERINIT); /* first: it names the call's failure */
    if (t->failed)
        record_error(m, t->first_failed, t->first_code, t->signal, t->signal_index);
    /* Only this worker writes its slot; relaxed is enough because the
     * caller's final read happens after the executor's wait() (a lock). */
    atomic_store_explicit(&s->done, atomic_load_explicit(&s->done, memory_order_relaxed) + t->ran,
                          memory_order_relaxed);
    if (t->failed)
        atomic_fetch_add_explicit(&s->failed, t->failed, memory_order_relaxed);
}

static void sum_slots(const map_job *m, size_t *done, size_t *failed)
{
    *done = *failed = 0;
    for (int i = 0; i < m->nslots; i++) {
        *done += atomic_load_explicit(&m->slots[i].done, memory_order_relaxed);
        *failed += atomic_load_explicit(&m->slots[i].failed, memory_order_relaxed);
    }
}

/* What every process reads, an SPMD follower too: the function and the size
 * of an input record. */
static int check_args(int has_fn, size_t in_stride)
{
    return !has_fn || in_stride == 0 ? PM_EINVAL : PM_OK;
}

/* What only the process holding the data reads (on SPMD executors, the
 * owner: a follower's in, out and n are documented as not read, so whatever
 * it passes there is fine). Needs in_stride > 0. */
static int check_arrays(const void *in, size_t in_stride, const void *out, size_t out_stride,
                        size_t n)
{
    if (!in && n > 0)
        return PM_EINVAL;
    if ((out == NULL) != (out_stride == 0))
        return PM_EINVAL; /* NULL out needs stride 0; stride 0 would race */
    if (n > SIZE_MAX / in_stride || (out_stride && n > SIZE_MAX / out_stride))
        return PM_EINVAL;
    return PM_OK;
}

static int run(map_job *m, const pm__exec *ex, pm__progress *pr, int reporting)
{
    size_t done, failed;
    int rc = ex->m->submit(ex->state, &m->job);
    if (rc != PM_OK)
        return rc;
    while (!ex->m->wait(ex->state, &m->job, reporting ? 0.1 : -1.0)) {
        sum_slots(m, &done, &failed);
        pm__progress_update(pr, done, failed, 0);
    }
    return PM_OK;
}

/* SPMD executors: after the job every process gets the owner's status and
 * report, and with results_everywhere its outputs and codes (plain records
 * only) and its exit records too (bytes, also for codec jobs). Every process
 * makes the same share() calls, as the owner decides: a follower whose
 * arrays do not match receives into scratch and returns PM_EINVAL. */
typedef struct outcome {
    pm_report rep;
    int rc, everywhere, has_codes;
    size_t n, out_stride;
    size_t exit_size;    /* exit records to share: rep.exit_count of them (0: none) */
} outcome;

static int share_part(const pm__exec *ex, void *mine, size_t len, int fits)
{
    void *buf = fits ? mine : malloc(len ? len : 1);
    int rc = buf ? ex->m->share(ex->state, buf, len) : PM_ENOMEM;
    if (!fits)
        free(buf);
    return rc != PM_OK ? rc : fits ? PM_OK : PM_EINVAL;
}

static int share_outcome(const pm__exec *ex, int follower, int rc, pm_report *rep, void *out,
                         size_t out_stride, size_t n, const pm__opts *o,
                         const pm__codec *codec)
{
    outcome oc = {.rep = *rep, .rc = rc, .n = n, .out_stride = out_stride,
                  .everywhere = o->user.results_everywhere && !codec && out_stride,
                  .has_codes = o->user.codes != NULL,
                  .exit_size = o->user.results_everywhere && o->user.exit_results
                                   ? o->user.exit_size : 0};
    int shared = ex->m->share(ex->state, &oc, sizeof oc);
    if (shared != PM_OK)
        return shared;
    if (follower) {
        *rep = oc.rep;
        rc = oc.rc;
    }
    if (oc.everywhere) {
        int fits = !follower || (out && n == oc.n && out_stride == oc.out_stride);
        int r1 = share_part(ex, out, oc.n * oc.out_stride, fits);
        int r2 = oc.has_codes ? share_part(ex, o->user.codes, oc.n * sizeof(int),
                                           fits && o->user.codes) : PM_OK;
        if (follower && (r1 != PM_OK || r2 != PM_OK))
            rc = r1 != PM_OK ? r1 : r2;
    }
    if (oc.exit_size && oc.rep.exit_count) {
        size_t count = oc.rep.exit_count;
        int fits = !follower || (o->user.exit_results && o->user.exit_size == oc.exit_size &&
                                 o->user.exit_capacity >= count);
        int r = share_part(ex, o->user.exit_results, count * oc.exit_size, fits);
        if (follower && r != PM_OK)
            rc = r;
    }
    return rc;
}

/* Everything between valid arguments and the report: open the executor
 * (unless a pool is given), build the job, run it, count. `status` != PM_OK:
 * the arguments were bad, the call takes part with no items (SPMD) and
 * returns that status. `arrays`: check_arrays' verdict, which counts only
 * where the arrays are read (not on an SPMD follower). */
static int map_run(pm_fn fn, pm_batch_fn batch, void *user, const void *in, size_t in_stride,
                   void *out, size_t out_stride, size_t n, const pm__opts *o, pm_report *rep,
                   const pm__codec *codec, int status, int arrays)
{
    pm__exec own = {0}, *ex = NULL;
    int rc = PM_OK;
    /* SPMD (MPI): every process makes this call, whatever its own n. */
    int spmd = pm__methods_spmd(o->methods);
    int limit = o->limit;
    if (o->user.pool && (ex = pm__pool_exec(o->user.pool)) != NULL) {
        ; /* the pool's workers; else (a busy or inherited pool) its settings */
    } else if (n > 1 && (ex = pm__default_exec(o)) != NULL) {
        /* the shared default pool: this call's share is its threads */
        int share = (size_t)o->cfg.threads < n ? o->cfg.threads : (int)n;
        limit = share < ex->m->workers(ex->state) + 1 ? share : 0;
    } else if (n > 0 || spmd) {
        pm__exec_config cfg = o->cfg; /* no idle workers for tiny maps: */
        if (spmd)
            ;
        else if (o->backend == PM_PROCESSES && (size_t)cfg.procs > n)
            cfg.procs = (int)n;
        else if (o->backend != PM_PROCESSES && (size_t)cfg.threads > n)
            cfg.threads = (int)n;
        if ((rc = pm__exec_open(&own, o->methods, &cfg)) != PM_OK)
            return rc;
        ex = &own;
    }
    /* One slot per background worker plus one for this thread, which helps. */
    int nslots = (ex ? ex->m->workers(ex->state) : 0) + 1;
    map_job *m = calloc(1, sizeof *m);
    if (!m || !(m->slots = calloc((size_t)nslots, sizeof *m->slots)) ||
        pm__ws_setup(&m->job, &o->user, nslots) != PM_OK ||
        pm__mutex_init(&m->err_lock) != PM_OK) {
        if (m) {
            free(m->slots);
            pm__ws_free(&m->job);
        }
        free(m);
        pm__exec_close(&own);
        return PM_ENOMEM;
    }
    m->job.take = map_take;
    m->job.finish = map_finish;
    m->job.fn = status != PM_OK ? pm__refuse : fn;
    m->job.batch = status != PM_OK ? NULL : batch;
    m->job.limit = limit;
    m->job.user = user;
    m->job.in_stride = in_stride;
    m->job.out_stride = out_stride;
    m->job.raise = o->user.on_error == PM_RAISE;
    m->job.cancel = o->user.cancel;
    m->job.timeout_s = o->user.timeout_s;
    m->job.recycle_items = o->user.recycle_items;
    m->job.recycle_rss = o->user.recycle_rss;
    m->job.caller_waits = 1;
    m->job.codec = codec;
    m->in = in;
    m->out = out;
    m->n = n;
    m->codes = o->user.codes;
    m->workers = limit && limit < nslots ? limit : nslots;
    m->cancel = o->user.cancel;
    m->first_index = SIZE_MAX;
    m->signal_index = SIZE_MAX;
    m->nslots = nslots;
    for (int i = 0; i < nslots; i++)
        pm__chunker_init(&m->slots[i].chunker, o->chunksize);

    /* A follower reads nothing of its own and reports nothing: rank 0 does. */
    int follower = pm__exec_follower(ex);
    if (!follower && status == PM_OK)
        status = arrays;
    if (follower || status != PM_OK)
        m->n = 0;
    if (status != PM_OK) {
        m->job.fn = pm__refuse; /* SPMD: fails the call everywhere, before it runs */
        m->job.batch = NULL;
    }
    pm__progress pr;
    int reporting = !follower && pm__progress_init(&pr, &o->user, m->n);
    int submitted = n > 0 || spmd ? run(m, ex, &pr, reporting) : PM_OK;
    sum_slots(m, &rep->done, &rep->failed);
    if (reporting)
        pm__progress_finish(&pr, rep->done, rep->failed);
    rep->first_error_index = m->first_index;
    rep->first_error_code = m->first_code;
    rc = status != PM_OK ? status : submitted != PM_OK ? submitted : atomic_load(&m->stop);
    /* The first failure to stop the map need not be the lowest-index one
     * (item 1 fails at once, item 0 crashes later): the status names what
     * the report names. */
    if (rc != PM_OK && rc != PM_ECANCELED && m->first_index != SIZE_MAX && m->job.raise &&
        submitted == PM_OK && status == PM_OK)
        rc = pm__item_status(m->first_code);
    rep->signal = m->signal;
    rep->exit_count = pm__ws_count(&m->job);
    rep->exit_dropped = pm__ws_dropped(&m->job);
    if (ex && ex->m->version >= 2 && ex->m->share && submitted == PM_OK)
        rc = share_outcome(ex, follower, rc, rep, out, out_stride, n, o, codec);
    if (status != PM_OK)
        rc = status; /* this process's own arguments were bad */

    pm__mutex_destroy(&m->err_lock);
    pm__ws_free(&m->job);
    free(m->slots);
    free(m);
    pm__exec_close(&own);
    return rc;
}

int pm_map(pm_fn fn, void *user, const void *in, size_t in_stride, void *out,
           size_t out_stride, size_t n, const pm_opts *opts, pm_report *report)
{
    return pm__map_ex(fn, user, in, in_stride, out, out_stride, n, opts, report, NULL);
}

static int map_call(pm_fn fn, pm_batch_fn batch, void *user, const void *in, size_t in_stride,
                    void *out, size_t out_stride, size_t n, const pm_opts *opts,
                    pm_report *report, const pm__codec *codec);

int pm_map_batch(pm_batch_fn fn, void *user, const void *in, size_t in_stride, void *out,
                 size_t out_stride, size_t n, const pm_opts *opts, pm_report *report)
{
    return map_call(NULL, fn, user, in, in_stride, out, out_stride, n, opts, report, NULL);
}

int pm__map_ex(pm_fn fn, void *user, const void *in, size_t in_stride, void *out,
               size_t out_stride, size_t n, const pm_opts *opts, pm_report *report,
               const pm__codec *codec)
{
    return map_call(fn, NULL, user, in, in_stride, out, out_stride, n, opts, report, codec);
}

static int map_call(pm_fn fn, pm_batch_fn batch, void *user, const void *in, size_t in_stride,
                    void *out, size_t out_stride, size_t n, const pm_opts *opts,
                    pm_report *report, const pm__codec *codec)
{
    double t0 = pm__now();
    pm_report rep = {.first_error_index = SIZE_MAX};
    pm__opts o;
    int rc = check_args(fn != NULL || batch != NULL, in_stride);
    int arrays = rc == PM_OK ? check_arrays(in, in_stride, out, out_stride, n) : PM_OK;
    int opts_rc = pm__opts_resolve(opts, &o);
    int spmd = opts_rc == PM_OK ? pm__methods_spmd(o.methods) : pm__opts_spmd_fallback(opts, &o);
    if (rc == PM_OK)
        rc = opts_rc;
    if (rc == PM_OK && !spmd)
        rc = arrays; /* SPMD: known to matter once map_run knows who owns the call */
    if (rc == PM_OK)
        rc = map_run(fn, batch, user, in, in_stride, out, out_stride, n, &o, &rep, codec, PM_OK,
                     arrays);
    else if (spmd)
        /* SPMD (MPI): the other processes make this call too and wait for
         * this one. Take part with no items (bad options too, with the
         * least settings), so that every process fails the call. */
        rc = map_run(fn, batch, user, NULL, 1, NULL, 0, 0, &o, &rep, codec, rc, PM_OK);
    if (report) {
        *report = rep;
        report->status = rc;
        report->elapsed_s = pm__now() - t0;
    }
    return rc;
}
