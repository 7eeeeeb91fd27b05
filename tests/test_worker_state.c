/*
 * test_worker_state.c - per-worker state (opts.worker_init / worker_exit /
 * exit_results, pm_worker_state): init and exit once per worker, on that
 * worker's thread, items seeing their worker's state, exit records that the
 * caller reduces to the total, on serial and threads (private threads, the
 * shared default pool, a pm_pool), pm_map and pm_imap; exit still runs when
 * a PM_RAISE map stops early or the call is canceled; a failing init gives
 * PM_EWORKERINIT; bad exit buffers are PM_EINVAL before anything runs;
 * nested calls see their own states. PM_MPI says PM_ENOTSUP here (no
 * libparmap_mpi: tests/mpi/test_mpi_state.c tests it); PM_PROCESSES is
 * tested in test_proc_state.c (here: only its exit_capacity check).
 * A watchdog turns a hang into a failure.
 */
#include "check.h"
#include "parmap.h"

#if !PMT_HAVE_THREADS
int main(void)
{
    PMT_SKIP("no threads on this target (the cases compare worker threads)");
}
#else

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One worker's state: the thread that made it and its partial sums. */
typedef struct wstate {
    pthread_t thread;
    long sum;
    long items;
    int magic;
} wstate;

typedef struct exit_rec {
    long sum;
    long items;
} exit_rec;

/* What the callbacks count, for one call. */
typedef struct tally {
    atomic_int inits, exits, bad_thread, bad_state;
    int fail_init_at; /* > 0: the init numbered this (1-based) fails */
    atomic_int init_seq;
} tally;

static tally T;

static void tally_reset(int fail_at)
{
    memset(&T, 0, sizeof T);
    T.fail_init_at = fail_at;
}

static int w_init(void *user, void **state)
{
    (void)user;
    int seq = atomic_fetch_add(&T.init_seq, 1) + 1;
    if (T.fail_init_at && seq == T.fail_init_at)
        return -1;
    wstate *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    w->thread = pthread_self();
    w->magic = 0x5eed;
    atomic_fetch_add(&T.inits, 1);
    *state = w;
    return 0;
}

static void w_exit(void *user, void *state, void *result)
{
    (void)user;
    wstate *w = state;
    if (!w || w->magic != 0x5eed)
        atomic_fetch_add(&T.bad_state, 1);
    else if (!pthread_equal(w->thread, pthread_self()))
        atomic_fetch_add(&T.bad_thread, 1);
    if (w && result) {
        exit_rec *r = result;
        r->sum = w->sum;
        r->items = w->items;
    }
    atomic_fetch_add(&T.exits, 1);
    free(w);
}

/* in: a long; adds it to the worker's sum. Fails on a negative value. */
static int item(void *user, const void *in, void *out)
{
    (void)user;
    wstate *w = pm_worker_state();
    if (!w || w->magic != 0x5eed) {
        atomic_fetch_add(&T.bad_state, 1);
        return 1;
    }
    if (!pthread_equal(w->thread, pthread_self()))
        atomic_fetch_add(&T.bad_thread, 1);
    long v = *(const long *)in;
    if (v < 0)
        return 7;
    if (v % 97 == 0)
        pmt_sleep(50e-6); /* spread chunks over the workers */
    w->sum += v;
    w->items++;
    *(long *)out = v * 2;
    return 0;
}

#define N 4000
#define CAP 64
static long in[N], out[N];
static exit_rec recs[CAP];

static void reduce(size_t count, long *sum, long *items)
{
    *sum = *items = 0;
    for (size_t i = 0; i < count; i++) {
        *sum += recs[i].sum;
        *items += recs[i].items;
    }
}

static pm_opts state_opts(pm_opts base)
{
    base.worker_init = w_init;
    base.worker_exit = w_exit;
    base.exit_results = recs;
    base.exit_size = sizeof(exit_rec);
    base.exit_capacity = CAP;
    return base;
}

static void check_balanced(const pm_report *rep)
{
    CHECK_EQ_INT(atomic_load(&T.bad_thread), 0);
    CHECK_EQ_INT(atomic_load(&T.bad_state), 0);
    CHECK_EQ_INT(atomic_load(&T.inits), atomic_load(&T.exits));
    CHECK_EQ_SIZE(rep->exit_count, (size_t)atomic_load(&T.exits));
}

static const long total = (long)N * (N - 1) / 2;

static void run_map(const char *name, pm_opts base, int max_workers)
{
    CHECK_CTX("map %s", name);
    tally_reset(0);
    memset(recs, 0, sizeof recs);
    pm_opts o = state_opts(base);
    pm_report rep;
    CHECK_STATUS(PM_OK, pm_map(item, NULL, in, sizeof(long), out, sizeof(long), N, &o, &rep));
    check_balanced(&rep);
    CHECK_OP_INT(atomic_load(&T.inits), >=, 1);
    CHECK_OP_INT(atomic_load(&T.inits), <=, max_workers);
    long sum, items;
    reduce(rep.exit_count, &sum, &items);
    CHECK_EQ_INT(sum, total);
    CHECK_EQ_INT(items, N);
    for (size_t i = 0; i < N; i++)
        if (out[i] != in[i] * 2)
            CHECK_EQ_INT(out[i], in[i] * 2);
    CHECK(pm_worker_state() == NULL);
}

typedef struct src {
    size_t i, n;
} src;

static int next_long(void *p, void *item_out)
{
    src *s = p;
    if (s->i >= s->n)
        return 0;
    *(long *)item_out = in[s->i++];
    return 1;
}

static void run_imap(const char *name, pm_opts base, int max_workers)
{
    CHECK_CTX("imap %s", name);
    tally_reset(0);
    memset(recs, 0, sizeof recs);
    pm_opts o = state_opts(base);
    src s = {0, N};
    pm_iter *it = pm_imap(item, NULL, next_long, &s, sizeof(long), sizeof(long), &o);
    CHECK(it != NULL);
    long v, got = 0;
    int code;
    while (pm_iter_next(it, &v, NULL, &code) == 1)
        got += v;
    CHECK_EQ_INT(got, 2 * total);
    pm_report rep;
    CHECK_STATUS(PM_OK, pm_iter_report(it, &rep));
    check_balanced(&rep);
    CHECK_OP_INT(atomic_load(&T.inits), <=, max_workers);
    long sum, items;
    reduce(rep.exit_count, &sum, &items);
    CHECK_EQ_INT(sum, total);
    CHECK_EQ_INT(items, N);
    CHECK_STATUS(PM_OK, pm_iter_free(it));
}

/* PM_RAISE stops at a failing item: every worker that started still exits. */
static void run_raise(const char *name, pm_opts base)
{
    CHECK_CTX("raise %s", name);
    tally_reset(0);
    in[N / 3] = -1;
    pm_opts o = state_opts(base);
    pm_report rep;
    CHECK_STATUS(PM_EITEM, pm_map(item, NULL, in, sizeof(long), out, sizeof(long), N, &o, &rep));
    in[N / 3] = N / 3;
    check_balanced(&rep);
    CHECK_OP_INT(atomic_load(&T.exits), >=, 1);

    CHECK_CTX("raise imap %s", name);
    tally_reset(0);
    in[N / 2] = -1;
    src s = {0, N};
    pm_iter *it = pm_imap(item, NULL, next_long, &s, sizeof(long), sizeof(long), &o);
    long v;
    int r;
    while ((r = pm_iter_next(it, &v, NULL, NULL)) == 1)
        ;
    CHECK_STATUS(PM_EITEM, r);
    CHECK_STATUS(PM_OK, pm_iter_report(it, &rep));
    in[N / 2] = N / 2;
    check_balanced(&rep);
    pm_iter_free(it);
}

static pm_cancel *tok;

static int cancel_item(void *user, const void *in_, void *out_)
{
    if (*(const long *)in_ == N / 4)
        pm_cancel_request(tok);
    return item(user, in_, out_);
}

static void run_cancel(const char *name, pm_opts base)
{
    CHECK_CTX("cancel %s", name);
    tally_reset(0);
    tok = pm_cancel_new();
    base.cancel = tok;
    pm_opts o = state_opts(base);
    pm_report rep;
    CHECK_STATUS(PM_ECANCELED,
                 pm_map(cancel_item, NULL, in, sizeof(long), out, sizeof(long), N, &o, &rep));
    check_balanced(&rep);
    pm_cancel_free(tok);
}

/* A failing init fails the call; the workers that did start still exit. */
static void run_init_fails(const char *name, pm_opts base, int fail_at)
{
    CHECK_CTX("init fails %s at %d", name, fail_at);
    tally_reset(fail_at);
    for (int mode = 0; mode < 2; mode++) {
        tally_reset(fail_at);
        pm_opts o = state_opts(base);
        o.on_error = mode ? PM_RETURN : PM_RAISE;
        pm_report rep;
        int rc = pm_map(item, NULL, in, sizeof(long), out, sizeof(long), N, &o, &rep);
        if (atomic_load(&T.init_seq) >= fail_at) {
            CHECK_STATUS(PM_EWORKERINIT, rc);
            CHECK_STATUS(PM_EWORKERINIT, rep.status);
        } else {
            CHECK_STATUS(PM_OK, rc); /* fewer workers started than fail_at */
        }
        check_balanced(&rep);
    }
    tally_reset(fail_at);
    pm_opts o = state_opts(base);
    src s = {0, N};
    pm_iter *it = pm_imap(item, NULL, next_long, &s, sizeof(long), sizeof(long), &o);
    int r;
    long v;
    while ((r = pm_iter_next(it, &v, NULL, NULL)) == 1)
        ;
    if (atomic_load(&T.init_seq) >= fail_at)
        CHECK_STATUS(PM_EWORKERINIT, r);
    pm_report rep;
    CHECK_STATUS(PM_OK, pm_iter_report(it, &rep));
    check_balanced(&rep);
    pm_iter_free(it);
}

static void test_bad_args(void)
{
    CHECK_CTX("bad args");
    tally_reset(0);
    pm_opts o = state_opts((pm_opts){.threads = 4, .private_threads = 1});
    o.exit_capacity = 3; /* 4 workers */
    CHECK_STATUS(PM_EINVAL, pm_map(item, NULL, in, sizeof(long), out, sizeof(long), N, &o, NULL));
    o.exit_capacity = CAP;
    o.exit_size = 0;
    CHECK_STATUS(PM_EINVAL, pm_map(item, NULL, in, sizeof(long), out, sizeof(long), N, &o, NULL));
    o = state_opts((pm_opts){.backend = PM_SERIAL});
    o.worker_exit = NULL; /* records nobody writes */
    CHECK_STATUS(PM_EINVAL, pm_map(item, NULL, in, sizeof(long), out, sizeof(long), N, &o, NULL));
    o = state_opts((pm_opts){.backend = PM_SERIAL});
    o.exit_results = NULL;
    CHECK_STATUS(PM_EINVAL, pm_map(item, NULL, in, sizeof(long), out, sizeof(long), N, &o, NULL));
    o = state_opts((pm_opts){.backend = PM_SERIAL});
    o.exit_size = SIZE_MAX / 2;
    CHECK_STATUS(PM_EINVAL, pm_map(item, NULL, in, sizeof(long), out, sizeof(long), N, &o, NULL));
    pm_iter *it = pm_imap(item, NULL, next_long, &(src){0, 1}, sizeof(long), sizeof(long),
                          &(pm_opts){.worker_exit = w_exit, .exit_results = recs,
                                     .exit_size = sizeof(exit_rec), .exit_capacity = 1,
                                     .threads = 2});
    CHECK(it != NULL); /* an iterator says it on next */
    CHECK_STATUS(PM_EINVAL, pm_iter_next(it, &(long){0}, NULL, NULL));
    CHECK_STATUS(PM_EINVAL, pm_iter_free(it));
    CHECK_EQ_INT(atomic_load(&T.inits), 0);
    CHECK_EQ_INT(atomic_load(&T.exits), 0);
#if PMT_HAVE_FORK
    /* Processes: a worker per thread of each process (test_proc_state). */
    o = state_opts((pm_opts){.backend = PM_PROCESSES, .procs = 2, .threads = 2});
    o.exit_capacity = 3;
    CHECK_STATUS(PM_EINVAL,
                 pm_map(item, NULL, in, sizeof(long), out, sizeof(long), N, &o, NULL));
#endif
    int rc = pm_map(item, NULL, in, sizeof(long), out, sizeof(long), N,
                    &(pm_opts){.backend = PM_MPI, .worker_init = w_init}, NULL);
    CHECK(rc == PM_ENOTSUP || rc == PM_ENOMPI);
    CHECK_EQ_INT(atomic_load(&T.inits), 0);
}

/* Only worker_exit (no init): the state is NULL, exit still runs per worker. */
static atomic_int bare_exits;
static void bare_exit(void *user, void *state, void *result)
{
    (void)user;
    if (state)
        atomic_fetch_add(&T.bad_state, 1);
    *(long *)result = 1;
    atomic_fetch_add(&bare_exits, 1);
}
static int plain(void *user, const void *in_, void *out_)
{
    (void)user;
    if (pm_worker_state())
        atomic_fetch_add(&T.bad_state, 1);
    *(long *)out_ = *(const long *)in_;
    return 0;
}
static void test_exit_only(void)
{
    CHECK_CTX("exit only");
    tally_reset(0);
    long r[8] = {0};
    pm_report rep;
    CHECK_STATUS(PM_OK, pm_map(plain, NULL, in, sizeof(long), out, sizeof(long), N,
                               &(pm_opts){.threads = 2, .worker_exit = bare_exit,
                                          .exit_results = r, .exit_size = sizeof(long),
                                          .exit_capacity = 8},
                               &rep));
    CHECK_EQ_SIZE(rep.exit_count, (size_t)atomic_load(&bare_exits));
    CHECK_OP_INT(atomic_load(&bare_exits), >=, 1);
    CHECK_EQ_INT(atomic_load(&T.bad_state), 0);
}

/* Batch functions reach the state too; threads = 1 is the caller alone. */
static size_t batch_fn(void *user, size_t first, size_t count, const void *in_, void *out_,
                       int *codes)
{
    (void)first;
    for (size_t k = 0; k < count; k++)
        codes[k] = item(user, (const long *)in_ + k, (long *)out_ + k);
    return count;
}
static void test_batch_and_one(void)
{
    CHECK_CTX("batch");
    pm_opts bases[] = {{.backend = PM_SERIAL}, {.threads = 1}, {.threads = 2},
                       {.threads = 2, .private_threads = 1}};
    for (size_t b = 0; b < sizeof bases / sizeof bases[0]; b++) {
        CHECK_CTX("batch base %zu", b);
        tally_reset(0);
        memset(recs, 0, sizeof recs);
        pm_opts o = state_opts(bases[b]);
        pm_report rep;
        CHECK_STATUS(PM_OK, pm_map_batch(batch_fn, NULL, in, sizeof(long), out, sizeof(long), N,
                                         &o, &rep));
        check_balanced(&rep);
        if (b < 2)
            CHECK_EQ_INT(atomic_load(&T.inits), 1);
        long sum, items;
        reduce(rep.exit_count, &sum, &items);
        CHECK_EQ_INT(sum, total);
        CHECK_EQ_INT(items, N);
    }
}

/* Nested default-pool calls: the inner call's items see the inner states;
 * back in the outer item, pm_worker_state() is the outer one again. */
typedef struct nstate {
    int level;
    pthread_t thread;
} nstate;
static atomic_int n_init[2], n_exit[2], n_bad;

static int n_init_fn(void *user, void **state)
{
    int level = *(int *)user;
    nstate *s = malloc(sizeof *s);
    if (!s)
        return -1;
    s->level = level;
    s->thread = pthread_self();
    atomic_fetch_add(&n_init[level], 1);
    *state = s;
    return 0;
}
static void n_exit_fn(void *user, void *state, void *result)
{
    (void)result;
    nstate *s = state;
    if (s->level != *(int *)user || !pthread_equal(s->thread, pthread_self()))
        atomic_fetch_add(&n_bad, 1);
    atomic_fetch_add(&n_exit[s->level], 1);
    free(s);
}
static int one = 1, zero = 0;
static int inner_item(void *user, const void *in_, void *out_)
{
    (void)user;
    nstate *s = pm_worker_state();
    if (!s || s->level != 1 || !pthread_equal(s->thread, pthread_self()))
        atomic_fetch_add(&n_bad, 1);
    *(long *)out_ = *(const long *)in_;
    return 0;
}
static int outer_item(void *user, const void *in_, void *out_)
{
    (void)user;
    nstate *s = pm_worker_state();
    long a[16], b[16];
    for (int i = 0; i < 16; i++)
        a[i] = i;
    int rc = pm_map(inner_item, NULL, a, sizeof(long), b, sizeof(long), 16,
                    &(pm_opts){.threads = 2, .chunksize = 1, .worker_init = n_init_fn,
                               .worker_exit = n_exit_fn, .worker_user = &one},
                    NULL);
    if (rc != PM_OK || pm_worker_state() != s || !s || s->level != 0)
        atomic_fetch_add(&n_bad, 1);
    *(long *)out_ = *(const long *)in_;
    return 0;
}
static void test_nested(void)
{
    CHECK_CTX("nested default pool");
    pm_report rep;
    CHECK_STATUS(PM_OK, pm_map(outer_item, NULL, in, sizeof(long), out, sizeof(long), 64,
                               &(pm_opts){.threads = 2, .chunksize = 1, .worker_init = n_init_fn,
                                          .worker_exit = n_exit_fn, .worker_user = &zero},
                               &rep));
    CHECK_EQ_INT(atomic_load(&n_bad), 0);
    CHECK_EQ_INT(atomic_load(&n_init[0]), atomic_load(&n_exit[0]));
    CHECK_EQ_INT(atomic_load(&n_init[1]), atomic_load(&n_exit[1]));
    CHECK_OP_INT(atomic_load(&n_init[1]), >=, 64); /* per call: at least one per inner map */
}

static void watchdog(int sig)
{
    (void)sig;
    static const char msg[] = "test_worker_state: watchdog: a call hung\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(1);
}

int main(void)
{
    signal(SIGALRM, watchdog);
    alarm(240);
    for (long i = 0; i < N; i++)
        in[i] = i;
    CHECK(pm_worker_state() == NULL);

    pm_opts serial = {.backend = PM_SERIAL};
    pm_opts private2 = {.threads = 2, .private_threads = 1};
    pm_opts deflt = {.threads = 2};
    pm_opts deflt4 = {.threads = 4, .chunksize = 7};
    pm_pool *pool = pm_pool_new(&(pm_opts){.threads = 3});
    CHECK(pool != NULL);
    pm_opts pooled = {.pool = pool};
    pm_opts capped = {.pool = pool, .threads = 2};

    run_map("serial", serial, 1);
    run_map("private 2", private2, 2);
    run_map("default 2", deflt, 2);
    run_map("default 4", deflt4, 4);
    run_map("pool 3", pooled, 3);
    run_map("pool capped 2", capped, 2);
    for (int rep = 0; rep < 20; rep++)
        run_map("pool again", pooled, 3); /* per call: init/exit each time */
    PMT_RUN(run_imap("serial", serial, 1));
    PMT_RUN(run_imap("private 2", private2, 2));
    PMT_RUN(run_imap("default 2", deflt, 2));
    PMT_RUN(run_imap("pool 3", pooled, 3));
    PMT_RUN(run_raise("serial", serial));
    PMT_RUN(run_raise("threads", private2));
    PMT_RUN(run_raise("pool", pooled));
    PMT_RUN(run_cancel("serial", serial));
    PMT_RUN(run_cancel("threads", deflt4));
    PMT_RUN(run_cancel("pool", pooled));
    PMT_RUN(run_init_fails("serial", serial, 1));
    PMT_RUN(run_init_fails("threads", private2, 1));
    PMT_RUN(run_init_fails("threads second", deflt4, 2));
    PMT_RUN(run_init_fails("pool", pooled, 2));
    PMT_RUN(test_bad_args());
    PMT_RUN(test_exit_only());
    PMT_RUN(test_batch_and_one());
    PMT_RUN(test_nested());
    pm_pool_free(pool);
    return pmt_done("test_worker_state");
}

#endif
