/*
 * test_target.c - what this build offers, checked where it runs: with threads
 * (native), PM_AUTO means the threads backend; without them (WASI, the
 * single-thread WebAssembly build) PM_AUTO runs serial on the calling thread,
 * and PM_THREADS / PM_PROCESSES fail cleanly with PM_ENOTSUP before running
 * anything, from pm_map, pm_imap and pm_pool_new alike. (What PM_PROCESSES
 * does where fork exists is tested with that executor.)
 */
#include "check.h"
#include "conformance.h"

#include <errno.h>

typedef struct calls {
    size_t n, next;  /* items run; the index expected next (serial order) */
    int out_of_order;
} calls;

static int fn_count(void *user, const void *in, void *out)
{
    calls *c = user;
    size_t i = *(const size_t *)in;
    if (!PMT_HAVE_THREADS) { /* one thread: plain counters, strict order */
        if (i != c->next)
            c->out_of_order = 1;
        c->next = i + 1;
        c->n++;
    }
    *(size_t *)out = 3 * i;
    return 0;
}

static int src_count(void *p, void *item)
{
    size_t *k = p;
    if (*k >= 100)
        return 0;
    *(size_t *)item = (*k)++;
    return 1;
}

#if !PMT_HAVE_THREADS
/* pm_map, pm_imap and pm_pool_new with these options all give `want`. */
static void check_unsupported(const char *what, pm_opts o, int want)
{
    size_t in[10], out[10];
    for (size_t i = 0; i < 10; i++) {
        in[i] = i;
        out[i] = 7;
    }
    calls c = {0, 0, 0};
    pm_report r;
    CHECK_CTX("%s: pm_map", what);
    CHECK_STATUS(want, pm_map(fn_count, &c, in, sizeof in[0], out, sizeof out[0],
                              10, &o, &r));
    CHECK_STATUS(want, r.status);
    CHECK_EQ_SIZE(r.done, 0);
    CHECK_EQ_SIZE(c.n, 0);
    for (size_t i = 0; i < 10; i++)
        CHECK_EQ_SIZE(out[i], 7); /* nothing ran */

    CHECK_CTX("%s: pm_imap", what);
    size_t k = 0;
    pm_iter *it = pm_imap(fn_count, &c, src_count, &k, sizeof(size_t),
                          sizeof(size_t), &o);
    CHECK(it != NULL);
    size_t y;
    CHECK_STATUS(want, pm_iter_next(it, &y, NULL, NULL));
    CHECK_STATUS(want, pm_iter_next(it, &y, NULL, NULL)); /* stays ended */
    CHECK_STATUS(want, pm_iter_free(it));
    CHECK_EQ_SIZE(k, 0); /* the source was never called */

    CHECK_CTX("%s: pm_pool_new", what);
    errno = 0;
    CHECK(pm_pool_new(&o) == NULL);
    CHECK_EQ_INT(errno, ENOTSUP);
}
#endif

/* PM_AUTO (the default) maps everything, ordered, and on a target without
 * threads does so on the calling thread in index order. */
static void test_auto(void)
{
    enum { N = 1000 };
    static size_t in[N], out[N];
    for (size_t i = 0; i < N; i++)
        in[i] = i;
    for (int with_opts = 0; with_opts < 2; with_opts++) {
        CHECK_CTX("PM_AUTO map, %s", with_opts ? "threads = 4" : "NULL opts");
        calls c = {0, 0, 0};
        pm_report r;
        memset(out, 0, sizeof out);
        CHECK_STATUS(PM_OK, pm_map(fn_count, &c, in, sizeof in[0], out, sizeof out[0],
                                   N, with_opts ? &(pm_opts){.threads = 4} : NULL, &r));
        CHECK_EQ_SIZE(r.done, N);
        for (size_t i = 0; i < N; i++)
            if (out[i] != 3 * i)
                CHECK_EQ_SIZE(out[i], 3 * i);
        if (!PMT_HAVE_THREADS) {
            CHECK_EQ_SIZE(c.n, N);
            CHECK_EQ_INT(c.out_of_order, 0);
        }
    }

    CHECK_CTX("PM_AUTO imap");
    calls c = {0, 0, 0};
    size_t k = 0, got = 0, y, idx;
    pm_iter *it = pm_imap(fn_count, &c, src_count, &k, sizeof(size_t), sizeof(size_t),
                          NULL);
    CHECK(it != NULL);
    int rc;
    while ((rc = pm_iter_next(it, &y, &idx, NULL)) == 1) {
        CHECK_EQ_SIZE(idx, got);
        CHECK_EQ_SIZE(y, 3 * got);
        got++;
    }
    CHECK_STATUS(0, rc);
    CHECK_EQ_SIZE(got, 100);
    CHECK_STATUS(PM_OK, pm_iter_free(it));

    CHECK_CTX("PM_AUTO pool");
    pm_pool *p = pm_pool_new(NULL);
    CHECK(p != NULL);
    /* Threads: one per CPU. Serial: the calling thread only. */
    CHECK_EQ_INT(pm_pool_workers(p), PMT_HAVE_THREADS ? pm_cpu_count() : 1);
    memset(out, 0, sizeof out);
    memset(&c, 0, sizeof c);
    CHECK_STATUS(PM_OK, pm_map(fn_count, &c, in, sizeof in[0], out, sizeof out[0], N,
                               &(pm_opts){.pool = p}, NULL));
    CHECK_EQ_SIZE(out[N - 1], 3 * (N - 1));
    if (!PMT_HAVE_THREADS) {
        CHECK_EQ_SIZE(c.n, N);
        CHECK_EQ_INT(c.out_of_order, 0);
    }
    pm_pool_free(p);
}

int main(void)
{
    CHECK_CTX("cpu count");
    CHECK_OP_INT(pm_cpu_count(), >=, 1);
    test_auto();

#if !PMT_HAVE_THREADS /* (fork needs threads too: see platform.h) */
    check_unsupported("PM_PROCESSES", (pm_opts){.backend = PM_PROCESSES}, PM_ENOTSUP);
    check_unsupported("PM_THREADS", (pm_opts){.backend = PM_THREADS}, PM_ENOTSUP);
    check_unsupported("PM_THREADS, 1 thread", (pm_opts){.backend = PM_THREADS, .threads = 1},
                      PM_ENOTSUP);
#else
    CHECK_CTX("PM_THREADS runs here");
    size_t in[64], out[64];
    for (size_t i = 0; i < 64; i++)
        in[i] = i;
    CHECK_STATUS(PM_OK, pm_map(fn_count, &(calls){0, 0, 0}, in, sizeof in[0], out,
                               sizeof out[0], 64,
                               &(pm_opts){.backend = PM_THREADS, .threads = 2}, NULL));
    CHECK_EQ_SIZE(out[63], 3 * 63);
#endif
    return pmt_done("test_target");
}
