/*
 * test_proc_pool.c - a pool of the processes executor (PM_PROCESSES, procs 2
 * x threads 1 and 2): maps and an iterator with crashes on it, one after the
 * other (worker processes come per call: none between calls), then two
 * threads mapping on it at once, with the records, outputs, codes and `user`
 * on their stacks (workers see the caller's memory as of the call, stacks
 * included). No child, zombie or fd is left after any call, no thread after
 * pm_pool_free.
 */
#include "proc_util.h"

#if !PMT_HAVE_FORK
int main(void)
{
    PMT_SKIP("no fork() on this target (test_proc_crashes checks PM_PROCESSES is PM_ENOTSUP)");
}
#else

/* --------------------------------------------------------------- pool */

typedef struct pool_user {
    pm_pool *pool;
    int rounds, id;
} pool_user;

/* One map on a pool with a crash at `at`, checked. */
static void pool_map(pm_pool *pool, size_t n, size_t at)
{
    plan p[] = {{at, A_SEGV}, {at + 1, A_FAIL}};
    rec *r = make_recs(n, p, 2);
    uint64_t *out = make_out(n);
    int *codes = make_codes(n);
    ctx cx = {0};
    pm_report rep;
    CHECK_STATUS(PM_OK, pm_map(item_fn, &cx, r, sizeof *r, out, sizeof *out, n,
                               &(pm_opts){.pool = pool, .on_error = PM_RETURN, .codes = codes},
                               &rep));
    check_results(r, n, out, codes);
    CHECK_EQ_SIZE(rep.done, n);
    CHECK_EQ_SIZE(rep.failed, at + 1 < n ? 2 : at < n ? 1 : 0);
    free(r);
    free(out);
    free(codes);
}

/* The same with the records, outputs, codes and `user` on this thread's
 * stack: workers see the caller's memory as of the call, stacks included
 * (a worker's own threads must not land on a copy of ours). */
static void pool_stack_map(pm_pool *pool, size_t at)
{
    enum { N = 64 };
    rec r[N];
    uint64_t out[N];
    int codes[N];
    plan p = {at, A_SEGV};
    rec *h = make_recs(N, &p, 1);
    memcpy(r, h, sizeof r);
    free(h);
    for (size_t i = 0; i < N; i++) {
        out[i] = SENT_OUT;
        codes[i] = SENT_CODE;
    }
    ctx cx = {0};
    CHECK_STATUS(PM_OK, pm_map(item_fn, &cx, r, sizeof r[0], out, sizeof out[0], N,
                               &(pm_opts){.pool = pool, .on_error = PM_RETURN, .codes = codes},
                               NULL));
    check_results(r, N, out, codes);
}

static void *pool_user_main(void *arg)
{
    pool_user *u = arg;
    CHECK_CTX("pool shared by two threads: thread %d", u->id);
    for (int k = 0; k < u->rounds; k++) {
        pool_map(u->pool, 100 + (size_t)k, (size_t)(k * 13 + u->id) % 90);
        pool_stack_map(u->pool, (size_t)(k * 7 + u->id) % 64);
    }
    return NULL;
}

static void test_pool(int threads)
{
    pcfg c = {2, threads};
    if (!cfg_runs(&c))
        return;
    CHECK_CTX("pool procs 2 threads %d", threads);
    snap before = snap_take();
    pm_opts po = popts(&c);
    pm_pool *pool = pm_pool_new(&po);
    CHECK(pool != NULL);
    CHECK_OP_INT(pm_pool_workers(pool), >=, 1);
    snap base = snap_take();
    CHECK_EQ_INT(base.children, before.children); /* processes come per call */
    for (int k = 0; k < 5; k++) {
        CHECK_CTX("pool procs 2 threads %d, map %d", threads, k);
        pool_map(pool, 200, (size_t)k * 37);
        snap_check(&base, 0);
    }
    CHECK_CTX("pool procs 2 threads %d, imap", threads);
    rec *r = make_mixed();
    rec_src s = {r, MIXED_N, 0, 0};
    ctx cx = {0};
    pm_iter *it = pm_imap(item_fn, &cx, src_recs, &s, sizeof *r, sizeof(uint64_t),
                          &(pm_opts){.pool = pool, .on_error = PM_RETURN,
                                     .timeout_s = TIMEOUT_S});
    CHECK(it != NULL);
    size_t got = 0, idx;
    uint64_t y;
    int code, rc;
    while ((rc = pm_iter_next(it, &y, &idx, &code)) == 1) {
        CHECK_EQ_SIZE(idx, got);
        CHECK_STATUS(expected_code(r[idx].action), code);
        if (!code)
            CHECK_EQ_SIZE(y, f(r[idx].x));
        got++;
    }
    CHECK_STATUS(0, rc);
    CHECK_EQ_SIZE(got, MIXED_N);
    CHECK_STATUS(PM_OK, pm_iter_free(it));
    free(r);
    snap_check(&base, 0);

    /* Two threads mapping on the pool at once (the calls take turns). They
     * start after the pool: in a worker forked from them, glibc's stack
     * cache holds their stacks, free for the worker's threads to reuse. */
    pool_user u[2] = {{pool, 3, 0}, {pool, 3, 1}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        t[i] = pmt_thread_start(pool_user_main, &u[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    CHECK_CTX("pool procs 2 threads %d, after the two threads", threads);
    snap_check(&base, 0);
    pm_pool_free(pool);
    snap_check(&before, 1);
}

/* ---------------------------------------------------------------- main */

static void pools_all(void)
{
    test_pool(1);
    test_pool(2);
}

int main(void)
{
    proc_init("test_proc_pool");
    pmt_thread_baseline(); /* (TSan starts a thread of its own at the first thread) */
    RUN(60, pools_all());
    return proc_done("test_proc_pool");
}

#endif
