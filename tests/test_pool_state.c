/*
 * test_pool_state.c - per-worker state kept with a pool (pm_pool_new with
 * worker_init / worker_exit): init runs once per pool thread as the pool
 * starts, however many calls use it; items of every call see their thread's
 * state; exit runs once per thread at pm_pool_free and its records let the
 * caller reduce per-thread partials over the pool's whole life. Also: a
 * failing init fails pm_pool_new (and the inits that succeeded get their
 * exit), a call's own worker_init still wins inside that call, nested calls
 * and streams on such a pool, and the bad inputs.
 *
 * Nested maps, many times over, under a watchdog: a pool thread that waited
 * for its nested call could miss that call's end (it was running other
 * chunks with the crew's lock open when the end was announced) and sleep for
 * ever; that hung this test about 1 run in 12 (CI, 2026-12-05).
 */
#include "check.h"

#if !PMT_HAVE_THREADS
int main(void)
{
    printf("test_pool_state: skipped: no threads on this target\n");
    return 77;
}
#else

#include <errno.h>
#include <signal.h>
#include <unistd.h>

typedef struct tally {
    long items;
    long sum;
    int id;
} tally;

static atomic_int inits, exits, next_id, fail_from;

static int tally_init(void *user, void **state)
{
    (void)user;
    int id = atomic_fetch_add(&next_id, 1);
    if (atomic_load(&fail_from) && id + 1 >= atomic_load(&fail_from))
        return 7;
    tally *t = calloc(1, sizeof *t);
    if (!t)
        return 1;
    t->id = id;
    atomic_fetch_add(&inits, 1);
    *state = t;
    return 0;
}

static void tally_exit(void *user, void *state, void *result)
{
    (void)user;
    tally *t = state;
    if (result)
        memcpy(result, t, sizeof *t);
    free(t);
    atomic_fetch_add(&exits, 1);
}

static int count_item(void *user, const void *in, void *out)
{
    (void)user;
    tally *t = pm_worker_state();
    if (!t)
        return 99; /* every item must find its thread's state */
    t->items++;
    t->sum += *(const int *)in;
    *(int *)out = t->id;
    return 0;
}

/* A call with state of its own: pm_worker_state() is that call's. */
static int own_init(void *user, void **state)
{
    (void)user;
    *state = &own_init;
    return 0;
}

static int sees_own(void *user, const void *in, void *out)
{
    (void)user, (void)in, (void)out;
    return pm_worker_state() == (void *)&own_init ? 0 : 5;
}

/* An item that maps again on the same pool. */
typedef struct nest {
    pm_pool *pool;
    pm_fn inner;
} nest;

static int nested_item(void *user, const void *in, void *out)
{
    const nest *n = user;
    int xs[20], ys[20];
    for (int i = 0; i < 20; i++)
        xs[i] = *(const int *)in;
    int rc = pm_map(n->inner, NULL, xs, sizeof xs[0], ys, sizeof ys[0], 20,
                    &(pm_opts){.pool = n->pool}, NULL);
    *(int *)out = rc;
    return rc != PM_OK;
}

static int copy_item(void *user, const void *in, void *out)
{
    (void)user;
    *(int *)out = *(const int *)in;
    return 0;
}

typedef struct counter {
    int next, n;
} counter;

static int source(void *src, void *item)
{
    counter *c = src;
    if (c->next == c->n)
        return 0;
    *(int *)item = c->next++;
    return 1;
}

#define MAPS 50
#define N 100
#define NESTED_ROUNDS 300

static void watchdog(int sig)
{
    (void)sig;
    static const char msg[] = "test_pool_state: watchdog: a call hung (nested maps?)\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(1);
}

/* Outer maps whose items map again on the same pool, over and over. */
static void nested_rounds(pm_pool *pool, pm_fn inner)
{
    nest n = {pool, inner};
    int few[4] = {1, 2, 3, 4}, rcs[4];
    for (int r = 0; r < NESTED_ROUNDS; r++)
        CHECK_STATUS(PM_OK, pm_map(nested_item, &n, few, sizeof few[0], rcs, sizeof rcs[0], 4,
                                   &(pm_opts){.pool = pool}, NULL));
}

int main(void)
{
    signal(SIGALRM, watchdog);
    alarm(PMT_SANITIZED ? 360 : 120);
    enum { THREADS = 3 };
    tally recs[THREADS];
    pm_pool *pool = pm_pool_new(&(pm_opts){.threads = THREADS, .worker_init = tally_init,
                                           .worker_exit = tally_exit, .exit_results = recs,
                                           .exit_size = sizeof recs[0],
                                           .exit_capacity = THREADS});
    CHECK(pool != NULL);
    CHECK_EQ_INT(atomic_load(&inits), THREADS); /* every init ran, before any call */

    /* Many small maps: no init more. */
    int in[N], out[N];
    long expect_sum = 0;
    for (int i = 0; i < N; i++)
        in[i] = i;
    for (int m = 0; m < MAPS; m++) {
        CHECK_STATUS(PM_OK, pm_map(count_item, NULL, in, sizeof in[0], out, sizeof out[0], N,
                                   &(pm_opts){.pool = pool}, NULL));
        expect_sum += N * (N - 1) / 2;
    }
    CHECK_EQ_INT(atomic_load(&inits), THREADS);
    for (int i = 0; i < N; i++)
        CHECK(out[i] >= 0 && out[i] < THREADS);

    /* A stream on it. */
    counter c = {0, 1000};
    pm_iter *it = pm_imap(count_item, NULL, source, &c, sizeof(int), sizeof(int),
                          &(pm_opts){.pool = pool});
    CHECK(it != NULL);
    int y;
    size_t got = 0;
    while (pm_iter_next(it, &y, NULL, NULL) == 1)
        got++;
    CHECK_EQ_SIZE(got, 1000);
    CHECK_STATUS(PM_OK, pm_iter_free(it));
    expect_sum += 1000L * 999 / 2;

    /* Nested maps on the same pool (items wait for their own call). */
    int few[4] = {1, 2, 3, 4}, rcs[4];
    nest n = {pool, count_item};
    CHECK_STATUS(PM_OK, pm_map(nested_item, &n, few, sizeof few[0], rcs, sizeof rcs[0], 4,
                               &(pm_opts){.pool = pool}, NULL));
    expect_sum += 20L * (1 + 2 + 3 + 4);
    nested_rounds(pool, count_item);
    expect_sum += NESTED_ROUNDS * 20L * (1 + 2 + 3 + 4);
    long expect_items = (long)MAPS * N + 1000 + (1 + NESTED_ROUNDS) * 4 * 20;

    /* A call's own state wins inside it. */
    CHECK_STATUS(PM_OK, pm_map(sees_own, NULL, in, sizeof in[0], out, sizeof out[0], N,
                               &(pm_opts){.pool = pool, .worker_init = own_init}, NULL));

    CHECK_EQ_INT(atomic_load(&inits), THREADS);
    CHECK_EQ_INT(atomic_load(&exits), 0);
    pm_pool_free(pool);
    CHECK_EQ_INT(atomic_load(&exits), THREADS);
    long items = 0, sum = 0;
    int seen = 0;
    for (int i = 0; i < THREADS; i++) {
        items += recs[i].items;
        sum += recs[i].sum;
        seen |= 1 << recs[i].id;
    }
    CHECK_EQ_INT(seen, (1 << THREADS) - 1); /* one record per thread */
    CHECK_EQ_SIZE((size_t)items, (size_t)expect_items);
    CHECK_EQ_SIZE((size_t)sum, (size_t)expect_sum);

    /* Only worker_exit: fine, the state is NULL. A failing init: the pool
     * is not made, and the threads whose init succeeded ran their exit. */
    atomic_store(&inits, 0);
    atomic_store(&exits, 0);
    atomic_store(&next_id, 0);
    atomic_store(&fail_from, 2); /* the second init fails */
    errno = 0;
    CHECK(pm_pool_new(&(pm_opts){.threads = THREADS, .worker_init = tally_init,
                                 .worker_exit = tally_exit}) == NULL);
    CHECK_EQ_INT(errno, ECANCELED);
    CHECK_EQ_INT(atomic_load(&exits), atomic_load(&inits));
    atomic_store(&fail_from, 0);

    /* Bad input: too little room for the records, a backend that cannot
     * keep states. */
    errno = 0;
    CHECK(pm_pool_new(&(pm_opts){.threads = THREADS, .worker_exit = tally_exit,
                                 .exit_results = recs, .exit_size = sizeof recs[0],
                                 .exit_capacity = THREADS - 1}) == NULL);
    CHECK_EQ_INT(errno, EINVAL);
    errno = 0;
    CHECK(pm_pool_new(&(pm_opts){.backend = PM_SERIAL, .worker_init = tally_init}) == NULL);
    CHECK_EQ_INT(errno, ENOTSUP);

    /* The same nesting on a pool without kept state (its caller helps). */
    pm_pool *plain = pm_pool_new(&(pm_opts){.threads = THREADS});
    CHECK(plain != NULL);
    nested_rounds(plain, copy_item);
    pm_pool_free(plain);
    return pmt_done("test_pool_state");
}

#endif
