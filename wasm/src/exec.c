/*
 * exec.c - the "wasm" executor and the warm pool of parmap-wasm.
 *
 * It is the threads executor (a crew, src/exec/crew.c) with its own step:
 * take a chunk, run ALL its items with one call into JavaScript (EM_JS runs
 * in the calling pthread's web-worker realm, where runtime.js keeps the
 * compiled function), finish it. Crossing wasm->JS once per chunk instead of
 * once per item is what makes a trivial function cost nanoseconds; the core's
 * per-item pm_fn path (pm__task_run) would pay the crossing every item.
 * Kernel jobs are plain C and take the core's usual step.
 *
 * One crew serves every call, whatever its `threads`: a job lets crew members
 * with index < crew_limit work on it, the others see IDLE and sleep (a map's
 * caller, the coordinator, always works: it is member number `size`).
 *
 * isolated = 1 (threaded build): a stream's consumer never runs chunks, so
 * every chunk of an imap goes through this step too (the collector would
 * otherwise run them per item). The single-thread build has no crew members,
 * so there the caller runs everything through wait() (help).
 */
#include "pmw.h"
#include "exec/crew.h"
#include "platform/platform.h"

#include <emscripten.h>
#include <stdlib.h>

/* Runs `count` items of the job in JavaScript: reads records at in_, writes
 * results at out_ and codes; returns how many ran (fewer only when raise
 * mode stopped at a failing item). Defined in runtime.js. */
EM_JS(int, pmw_js_run, (pmw_job *job, double base, int count, const void *in_, void *out_,
                        int *codes), {
    return pmwRunChunk(job, base, count, in_, out_, codes);
});

void pmw__run_task_js(pmw_job *j, pm__task *t, const unsigned char *in, unsigned char *out)
{
    /* The core may keep no codes for a task (t->codes NULL): the chunk still
     * needs somewhere to say which items failed. */
    int local[256];
    int *codes = t->codes, *owned = NULL;
    if (!codes) {
        codes = t->count <= 256 ? local : (owned = malloc(t->count * sizeof *codes));
        if (!codes) {
            t->ran = 0;
            t->failed = t->count;
            t->first_failed = t->base;
            t->first_code = PM_ENOMEM;
            return;
        }
    }
    int ran = pmw_js_run(j, (double)(j->offset + t->base), (int)t->count, in, out, codes);
    t->failed = 0;
    t->first_failed = SIZE_MAX;
    t->first_code = 0;
    for (int k = 0; k < ran; k++) {
        int code = codes[k];
        if (code && !t->failed++) {
            t->first_failed = t->base + (size_t)k;
            t->first_code = code;
        }
    }
    t->ran = (size_t)ran;
    if (t->failed && j->raise) {
        size_t k = t->first_failed - t->base;
        pmw__note_error(j, j->offset + t->first_failed, t->first_code, ((const double *)out)[k]);
    }
    free(owned);
}

/* The per-item path, for anything that runs a JS job's task item by item
 * (nothing does with this executor; kept correct rather than assumed away). */
int pmw__item_fn(void *user, const void *in, void *out)
{
    pmw_job *j = user;
    int code = 0;
    /* The item's index, for its error: maps run over j->recs, so the
     * record's position is the index (streams pass their chunks to
     * pmw__run_task_js with the index instead). */
    double index = 0;
    const double *rec = in;
    if (j->recs && rec >= j->recs && rec < j->recs + j->n)
        index = (double)(rec - j->recs);
    pmw_js_run(j, index, 1, in, out, &code);
    /* Raise mode: keep the failing item's record (its error) for the main
     * thread. A stream's items have no index here: PMW_NO_INDEX, and the
     * stream puts the real one in (stream.c). */
    if (code && j->raise)
        pmw__note_error(j, j->recs ? (size_t)index : PMW_NO_INDEX, code, *(const double *)out);
    if (j->log && j->recs) {
        /* completion order (ordered: false): the core ran this item on its
         * own, not through pmw_step */
        unsigned slot = atomic_fetch_add_explicit(&j->log_n, 1, memory_order_relaxed);
        j->log[2 * slot] = (uint32_t)index;
        j->log[2 * slot + 1] = 1;
    }
    return code;
}

int pmw__kernel_fn(void *user, const void *in, void *out)
{
    pmw_job *j = user;
    return j->kernel->fn(j->params, in, out);
}

static int pmw_step(void *owner, pm__job *job, int worker)
{
    const pm__crew *crew = owner;
    pmw_job *j = job->user;
    if (worker < crew->size && worker >= j->crew_limit)
        return PM__STEP_IDLE; /* not one of this call's threads */
    if (j->kind == PMW_KERNEL)
        return pm__job_step(job, worker);
    pm__task t;
    int r = job->take(job, worker, SIZE_MAX, &t);
    if (r != PM__STEP_RAN)
        return r;
    if (t.count > INT32_MAX)
        t.count = INT32_MAX; /* never: chunks are far smaller */
    pmw__run_task_js(j, &t, t.in, t.out);
    job->finish(job, worker, &t);
    if (j->log) {
        unsigned slot = atomic_fetch_add_explicit(&j->log_n, 1, memory_order_relaxed);
        j->log[2 * slot] = (uint32_t)(j->offset + t.base);
        j->log[2 * slot + 1] = (uint32_t)t.ran;
    }
    return PM__STEP_RAN;
}

static int wasm_open(void *state, const pm__exec_config *cfg)
{
    /* Threaded: `threads` members (a stream's consumer does not run chunks);
     * single-thread: none, the caller runs everything. */
    return pm__crew_open(state, PMW_THREADED ? cfg->threads : 0, pmw_step, state);
}

static int wasm_workers(const void *state)
{
    return ((const pm__crew *)state)->size;
}

static int wasm_submit(void *state, pm__job *job)
{
    pm__crew_submit(state, job);
    return PM_OK;
}

static void wasm_notify(void *state)
{
    pm__crew_notify(state);
}

static int wasm_wait(void *state, pm__job *job, double seconds)
{
    return pm__crew_wait(state, job, seconds, 1);
}

static void wasm_close(void *state)
{
    pm__crew_close(state);
}

static const pm__exec_methods pmw_exec = {
    .version = 1,
    .name = "wasm",
    .isolated = PMW_THREADED,
    .state_size = sizeof(pm__crew),
    .open = wasm_open,
    .workers = wasm_workers,
    .submit = wasm_submit,
    .notify = wasm_notify,
    .wait = wasm_wait,
    .close = wasm_close,
};

/* A pm_pool around this executor. pm_pool_free closes it like any other:
 * it only goes through exec.m->close. */
pm_pool *pmw__pool_new(int threads)
{
    pm_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->backend = PMW_THREADED ? PM_THREADS : PM_SERIAL;
    p->threads = PMW_THREADED ? threads : 1;
    p->procs = 1;
    /* The core only uses a pool made in this process (a fork child's copy is
     * not its own): without this it opened executors of its own and ran
     * JavaScript items one call each instead of one call per chunk. */
    p->process = pm__process_id();
    p->exec.m = &pmw_exec;
    p->exec.state = calloc(1, pmw_exec.state_size);
    pm__exec_config cfg = {.threads = threads, .procs = 1};
    if (!p->exec.state || pmw_exec.open(p->exec.state, &cfg) != PM_OK) {
        pm_pool_free(p);
        return NULL;
    }
    return p;
}
