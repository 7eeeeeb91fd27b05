/*
 * test_exec_public.c - an executor written the way a library would write
 * one: against include/parmap_exec.h only (no core header), handed to a pool
 * with pm_pool_new_exec and registered for PM_MPI with pm_exec_register.
 *
 * The "team" executor: `threads - 1` pthreads of its own that step every
 * submitted job until it ends, and the caller helping in wait(). The checks:
 * maps (item and batch functions), errors with their index, streams, the
 * per-call cap for an executor that shares its workers, capabilities it lacks
 * refused with PM_ENOTSUP, tables of an unknown version refused, an old
 * (version 1) table still working, and open/close called once per pool.
 */
#include "check.h"

#if !PMT_HAVE_THREADS
int main(void)
{
    printf("test_exec_public: skipped: no threads on this target\n");
    return 77;
}
#else

#include "parmap_exec.h"

#include <errno.h>

#define MAX_JOBS 16

typedef struct team {
    pthread_mutex_t lock;
    pthread_cond_t work_cv;  /* a job was submitted or notified, or quit */
    pthread_cond_t done_cv;  /* a worker left a job */
    pm_job *jobs[MAX_JOBS];
    int inside[MAX_JOBS];    /* workers stepping the job now */
    int ended[MAX_JOBS];     /* someone saw PM_STEP_END */
    unsigned long epoch;
    int quit;
    int size;                /* background threads */
    pthread_t *threads;
    int started;
} team;

typedef struct member {
    team *t;
    int index;
} member;

static atomic_int opens, closes;

/* One background thread: step whatever job has work, sleep when none has. */
static void *member_main(void *arg)
{
    member *me = arg;
    team *t = me->t;
    pthread_mutex_lock(&t->lock);
    while (!t->quit) {
        unsigned long seen = t->epoch;
        int ran = 0;
        for (int k = 0; k < MAX_JOBS && !t->quit; k++) {
            pm_job *job = t->jobs[k];
            if (!job || t->ended[k])
                continue;
            t->inside[k]++;
            pthread_mutex_unlock(&t->lock);
            int r;
            while ((r = pm_job_step(job, me->index)) == PM_STEP_RAN)
                ran = 1;
            pthread_mutex_lock(&t->lock);
            t->inside[k]--;
            if (r == PM_STEP_END)
                t->ended[k] = 1;
            pthread_cond_broadcast(&t->done_cv);
        }
        if (!ran && seen == t->epoch && !t->quit)
            pthread_cond_wait(&t->work_cv, &t->lock);
    }
    pthread_mutex_unlock(&t->lock);
    free(me);
    return NULL;
}

static void team_close(void *state)
{
    team *t = state;
    atomic_fetch_add(&closes, 1);
    if (!t->threads)
        return; /* open failed before anything started */
    pthread_mutex_lock(&t->lock);
    t->quit = 1;
    pthread_cond_broadcast(&t->work_cv);
    pthread_mutex_unlock(&t->lock);
    for (int i = 0; i < t->started; i++)
        pthread_join(t->threads[i], NULL);
    free(t->threads);
    pthread_cond_destroy(&t->work_cv);
    pthread_cond_destroy(&t->done_cv);
    pthread_mutex_destroy(&t->lock);
}

static int team_open(void *state, const pm_exec_config *cfg)
{
    team *t = state; /* zeroed by the core */
    atomic_fetch_add(&opens, 1);
    t->size = cfg->threads - 1;
    if (!(t->threads = calloc((size_t)t->size + 1, sizeof *t->threads)))
        return PM_ENOMEM;
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->work_cv, NULL);
    pthread_cond_init(&t->done_cv, NULL);
    for (int i = 0; i < t->size; i++) {
        member *m = malloc(sizeof *m);
        if (!m)
            return PM_ENOMEM;
        *m = (member){t, i};
        if (pthread_create(&t->threads[i], NULL, member_main, m) != 0) {
            free(m);
            return PM_ESYS;
        }
        t->started++;
    }
    return PM_OK;
}

static int team_workers(const void *state)
{
    return ((const team *)state)->size;
}

static int team_submit(void *state, pm_job *job)
{
    team *t = state;
    pthread_mutex_lock(&t->lock);
    int slot = -1;
    for (int k = 0; k < MAX_JOBS && slot < 0; k++)
        if (!t->jobs[k])
            slot = k;
    if (slot >= 0) {
        t->jobs[slot] = job;
        t->inside[slot] = t->ended[slot] = 0;
        t->epoch++;
        pthread_cond_broadcast(&t->work_cv);
    }
    pthread_mutex_unlock(&t->lock);
    return slot >= 0 ? PM_OK : PM_ENOMEM;
}

static void team_notify(void *state)
{
    team *t = state;
    pthread_mutex_lock(&t->lock);
    t->epoch++;
    pthread_cond_broadcast(&t->work_cv);
    pthread_mutex_unlock(&t->lock);
}

static int team_wait(void *state, pm_job *job, double seconds)
{
    team *t = state;
    int r;
    while ((r = pm_job_step(job, t->size)) == PM_STEP_RAN) /* the caller helps */
        ;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    double s = seconds < 0 ? 3600 : seconds;
    until.tv_sec += (time_t)s;
    until.tv_nsec += (long)((s - (double)(time_t)s) * 1e9);
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&t->lock);
    int k = 0;
    while (k < MAX_JOBS && t->jobs[k] != job)
        k++;
    if (r == PM_STEP_END)
        t->ended[k] = 1;
    int rc = 0;
    for (;;) {
        if (t->ended[k] && t->inside[k] == 0) {
            t->jobs[k] = NULL; /* forgotten: the core may free it now */
            rc = 1;
            break;
        }
        if (pthread_cond_timedwait(&t->done_cv, &t->lock, &until) != 0)
            break;
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

static const pm_exec_methods team_exec = {
    .version = PM_EXEC_VERSION,
    .name = "team",
    .state_size = sizeof(team),
    .open = team_open,
    .workers = team_workers,
    .submit = team_submit,
    .notify = team_notify,
    .wait = team_wait,
    .close = team_close,
    .shares = 1,
};


/* ------------------------------------------------------------ the items */

static pthread_t caller;
static atomic_int off_caller; /* items run on a thread other than the caller's */

static int square(void *user, const void *in, void *out)
{
    (void)user;
    if (!pthread_equal(pthread_self(), caller))
        atomic_fetch_add(&off_caller, 1);
    double x = *(const double *)in;
    *(double *)out = x * x;
    return x == 777 ? 5 : 0;
}

static size_t square_batch(void *user, size_t first, size_t count, const void *in, void *out,
                           int *codes)
{
    (void)user;
    (void)first;
    const double *x = in;
    double *y = out;
    for (size_t k = 0; k < count; k++) {
        y[k] = x[k] * x[k];
        codes[k] = 0;
    }
    return count;
}

typedef struct counter {
    size_t next, n;
} counter;

static int count_source(void *src, void *item)
{
    counter *c = src;
    if (c->next == c->n)
        return 0;
    *(double *)item = (double)c->next++;
    return 1;
}

#define N 20000

static void check_maps(pm_pool *pool, const char *what)
{
    CHECK_CTX("%s", what);
    static double in[N], out[N];
    for (int i = 0; i < N; i++)
        in[i] = i < 777 ? i : i + 1; /* no 777: nothing fails */
    pm_report rep;
    CHECK_STATUS(PM_OK, pm_map(square, NULL, in, 8, out, 8, N, &(pm_opts){.pool = pool}, &rep));
    CHECK_EQ_SIZE(rep.done, N);
    for (int i = 0; i < N; i++)
        if (out[i] != in[i] * in[i])
            CHECK_EQ_DBL(out[i], in[i] * in[i]);

    memset(out, 0, sizeof out);
    CHECK_STATUS(PM_OK, pm_map_batch(square_batch, NULL, in, 8, out, 8, N,
                                     &(pm_opts){.pool = pool, .chunksize = 64}, &rep));
    CHECK_EQ_DBL(out[N - 1], in[N - 1] * in[N - 1]);

    /* An item fails: its index and code come back. */
    for (int i = 0; i < N; i++)
        in[i] = i;
    CHECK_STATUS(PM_EITEM, pm_map(square, NULL, in, 8, out, 8, N, &(pm_opts){.pool = pool}, &rep));
    CHECK_EQ_SIZE(rep.first_error_index, 777);
    CHECK_EQ_INT(rep.first_error_code, 5);

    /* A stream, in order. */
    counter c = {0, 5000};
    pm_iter *it = pm_imap(square, NULL, count_source, &c, 8, 8,
                          &(pm_opts){.pool = pool, .on_error = PM_RETURN});
    CHECK(it != NULL);
    double y;
    size_t index, got = 0;
    int code;
    while (pm_iter_next(it, &y, &index, &code) == 1) {
        CHECK_EQ_SIZE(index, got);
        CHECK_EQ_INT(code, index == 777 ? 5 : 0);
        CHECK_EQ_DBL(y, (double)index * (double)index);
        got++;
    }
    CHECK_EQ_SIZE(got, 5000);
    pm_iter_free(it);
}

int main(void)
{
    caller = pthread_self();

    /* A pool on the team: open once, close once. */
    pm_pool *pool = pm_pool_new_exec(&team_exec, &(pm_opts){.threads = 3});
    CHECK(pool != NULL);
    CHECK_EQ_INT(pm_pool_workers(pool), 3);
    CHECK_EQ_INT(atomic_load(&opens), 1);
    check_maps(pool, "team pool");
    CHECK(atomic_load(&off_caller) > 0); /* its own threads ran items */

    /* The team shares its workers: threads = 1 keeps a call on the caller. */
    static double in[N], out[N];
    for (int i = 0; i < N; i++)
        in[i] = i + 1000;
    atomic_store(&off_caller, 0);
    CHECK_STATUS(PM_OK, pm_map(square, NULL, in, 8, out, 8, N,
                               &(pm_opts){.pool = pool, .threads = 1}, NULL));
    CHECK_EQ_INT(atomic_load(&off_caller), 0);

    /* What the team cannot do is refused, not ignored. */
    CHECK_STATUS(PM_ENOTSUP, pm_map(square, NULL, in, 8, out, 8, 10,
                                    &(pm_opts){.pool = pool, .timeout_s = 1}, NULL));
    CHECK_STATUS(PM_ENOTSUP, pm_map(square, NULL, in, 8, out, 8, 10,
                                    &(pm_opts){.pool = pool, .recycle_items = 5}, NULL));
    pm_pool_free(pool);
    CHECK_EQ_INT(atomic_load(&closes), 1);

    /* A version-1 table works; its members past version 1 (`shares` here)
     * are not read, so threads does not cap a call there. */
    static pm_exec_methods team_exec_v1;
    team_exec_v1 = team_exec;
    team_exec_v1.version = 1;
    team_exec_v1.name = "team-v1";
    pool = pm_pool_new_exec(&team_exec_v1, &(pm_opts){.threads = 2});
    CHECK(pool != NULL);
    check_maps(pool, "version-1 table");
    pm_pool_free(pool);

    /* Bad tables and options. */
    pm_exec_methods bad = team_exec;
    bad.version = 0;
    errno = 0;
    CHECK(pm_pool_new_exec(&bad, NULL) == NULL);
    CHECK_EQ_INT(errno, EINVAL);
    bad.version = PM_EXEC_VERSION + 1;
    CHECK(pm_pool_new_exec(&bad, NULL) == NULL);
    bad = team_exec;
    bad.submit = NULL;
    CHECK(pm_pool_new_exec(&bad, NULL) == NULL);
    CHECK(pm_pool_new_exec(NULL, NULL) == NULL);
    CHECK(pm_pool_new_exec(&team_exec, &(pm_opts){.backend = PM_THREADS}) == NULL);
    CHECK(pm_pool_new_exec(&team_exec, &(pm_opts){.threads = -1}) == NULL);
    CHECK_EQ_INT(atomic_load(&opens), 2); /* none of those opened anything */

    /* Registered for a backend the core lacks: calls open it per call. */
    CHECK_STATUS(PM_EINVAL, pm_exec_register(PM_THREADS, &team_exec));
    CHECK_STATUS(PM_EINVAL, pm_exec_register(PM_MPI, &bad));
    CHECK_STATUS(PM_OK, pm_exec_register(PM_MPI, &team_exec)); /* no libparmap_mpi here */
    for (int i = 0; i < N; i++)
        in[i] = i + 1000;
    CHECK_STATUS(PM_OK, pm_map(square, NULL, in, 8, out, 8, N,
                               &(pm_opts){.backend = PM_MPI, .threads = 2}, NULL));
    CHECK_EQ_DBL(out[5], 1005.0 * 1005.0);
    CHECK_EQ_INT(atomic_load(&opens), atomic_load(&closes));
    CHECK_STATUS(PM_OK, pm_exec_register(PM_MPI, NULL));
    return pmt_done("test_exec_public");
}

#endif
