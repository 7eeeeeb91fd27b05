/*
 * test_badinput.c - every bad argument gets a clear status, never a crash,
 * and nothing runs: pm_map returns PM_EINVAL (or PM_ENOTSUP for what this
 * release does not do) and fills the report; pm_imap returns an iterator
 * whose pm_iter_next and pm_iter_free say PM_EINVAL; freed iterators are
 * recognised; pools refuse bad options with errno EINVAL; NULL handles are
 * harmless where the header says so.
 */
#include "check.h"
#include "conformance.h"

#include <errno.h>

static atomic_int calls;

static int fn(void *user, const void *in, void *out)
{
    (void)user;
    (void)in;
    (void)out;
    atomic_fetch_add(&calls, 1);
    return 0;
}

static int src_calls;

static int src(void *s, void *item)
{
    (void)s;
    src_calls++;
    memset(item, 0, 8);
    return src_calls < 100;
}

static uint64_t in[16], out[16];

/* One bad pm_map call: the status, the report repeating it, nothing ran. */
static void bad_map(int want, pm_fn f, const void *i, size_t is, void *o,
                    size_t os, size_t n, const pm_opts *opts)
{
    pm_report r;
    memset(&r, 0x5a, sizeof r);
    atomic_store(&calls, 0);
    CHECK_STATUS(want, pm_map(f, NULL, i, is, o, os, n, opts, &r));
    CHECK_STATUS(want, r.status);
    CHECK_EQ_SIZE(r.done, 0);
    CHECK_EQ_SIZE(r.failed, 0);
    CHECK_EQ_INT(atomic_load(&calls), 0);
    CHECK_STATUS(want, pm_map(f, NULL, i, is, o, os, n, opts, NULL));
    CHECK_EQ_INT(atomic_load(&calls), 0);
}

/* The same arguments given to pm_imap (pm_map's in/n do not apply). */
static void bad_imap(int want, pm_fn f, pm_source_fn next, size_t is,
                     size_t os, const pm_opts *opts)
{
    atomic_store(&calls, 0);
    src_calls = 0;
    pm_iter *it = pm_imap(f, NULL, next, NULL, is, os, opts);
    CHECK(it != NULL);
    uint64_t y[2];
    size_t idx = 12345;
    CHECK_STATUS(want, pm_iter_next(it, y, &idx, NULL));
    CHECK_STATUS(want, pm_iter_next(it, y, &idx, NULL)); /* and again */
    pm_report r;
    memset(&r, 0x5a, sizeof r);
    pm_iter_report(it, &r);
    CHECK_STATUS(want, r.status);
    CHECK_EQ_SIZE(r.done, 0);
    CHECK_STATUS(want, pm_iter_free(it));
    CHECK_EQ_INT(atomic_load(&calls), 0);
    CHECK_EQ_INT(src_calls, 0);
}

/* Bad options, for pm_map, pm_imap and pm_pool_new alike. */
typedef struct bad_opt {
    const char *what;
    pm_opts o;
    int want;           /* from pm_map / pm_imap */
    int pool_einval;    /* pm_pool_new must fail with EINVAL too */
} bad_opt;

static void test_bad_opts(void)
{
    const bad_opt cases[] = {
        {"threads -1", {.threads = -1}, PM_EINVAL, 1},
        {"threads INT_MIN", {.threads = INT_MIN}, PM_EINVAL, 1},
        {"threads > PM_MAX_THREADS", {.threads = PM_MAX_THREADS + 1}, PM_EINVAL, 1},
        {"threads -1, serial", {.backend = PM_SERIAL, .threads = -1}, PM_EINVAL, 1},
        {"procs -1", {.procs = -1}, PM_EINVAL, 0},
        {"chunksize -1", {.chunksize = -1}, PM_EINVAL, 0},
        {"chunksize LONG_MIN", {.chunksize = LONG_MIN}, PM_EINVAL, 0},
        {"backend 99", {.backend = (pm_backend)99}, PM_EINVAL, 1},
        {"backend -1", {.backend = (pm_backend)-1}, PM_EINVAL, 1},
        {"on_error 2", {.on_error = (pm_on_error)2}, PM_EINVAL, 0},
        {"on_error -1", {.on_error = (pm_on_error)-1}, PM_EINVAL, 0},
        {"timeout -1", {.timeout_s = -1}, PM_EINVAL, 0},
        {"timeout NaN", {.timeout_s = NAN}, PM_EINVAL, 0},
        {"timeout -inf", {.timeout_s = -INFINITY}, PM_EINVAL, 0},
        {"timeout, threads", {.backend = PM_THREADS, .threads = 2, .timeout_s = 1},
         PM_ENOTSUP, 0},
        {"timeout, auto", {.timeout_s = 0.5}, PM_ENOTSUP, 0},
        {"timeout, serial", {.backend = PM_SERIAL, .timeout_s = 1}, PM_ENOTSUP, 0},
#if PMT_HAVE_FORK
        {"processes, procs -1", {.backend = PM_PROCESSES, .procs = -1}, PM_EINVAL, 1},
        {"processes, threads -1", {.backend = PM_PROCESSES, .threads = -1}, PM_EINVAL, 1},
        {"processes, chunksize -1", {.backend = PM_PROCESSES, .chunksize = -1},
         PM_EINVAL, 0},
        {"processes, timeout -1", {.backend = PM_PROCESSES, .timeout_s = -1},
         PM_EINVAL, 0},
        {"processes, timeout NaN", {.backend = PM_PROCESSES, .timeout_s = NAN},
         PM_EINVAL, 0},
#else
        {"processes", {.backend = PM_PROCESSES}, PM_ENOTSUP, 0},
        {"processes, 2 procs", {.backend = PM_PROCESSES, .procs = 2}, PM_ENOTSUP, 0},
#endif
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_CTX("bad option: %s (map)", cases[i].what);
        bad_map(cases[i].want, fn, in, 8, out, 8, 16, &cases[i].o);
        CHECK_CTX("bad option: %s (map, n 0)", cases[i].what);
        bad_map(cases[i].want, fn, NULL, 8, NULL, 0, 0, &cases[i].o);
        CHECK_CTX("bad option: %s (imap)", cases[i].what);
        bad_imap(cases[i].want, fn, src, 8, 8, &cases[i].o);
        if (cases[i].pool_einval) {
            CHECK_CTX("bad option: %s (pool)", cases[i].what);
            errno = 0;
            pm_pool *p = pm_pool_new(&cases[i].o);
            CHECK(p == NULL);
            CHECK_EQ_INT(errno, EINVAL);
        }
    }
#if !PMT_HAVE_FORK
    CHECK_CTX("pool of processes without fork()");
    CHECK(pm_pool_new(&(pm_opts){.backend = PM_PROCESSES}) == NULL);
#endif
}

static void test_bad_args(void)
{
    pm_opts none;
    memset(&none, 0, sizeof none);
    CHECK_CTX("NULL fn");
    bad_map(PM_EINVAL, NULL, in, 8, out, 8, 16, NULL);
    bad_map(PM_EINVAL, NULL, NULL, 8, NULL, 0, 0, &none);
    bad_imap(PM_EINVAL, NULL, src, 8, 8, NULL);
    CHECK_CTX("in_stride 0");
    bad_map(PM_EINVAL, fn, in, 0, out, 8, 16, NULL);
    bad_map(PM_EINVAL, fn, NULL, 0, NULL, 0, 0, NULL);
    bad_imap(PM_EINVAL, fn, src, 0, 8, NULL);
    CHECK_CTX("in NULL, n > 0");
    bad_map(PM_EINVAL, fn, NULL, 8, out, 8, 16, NULL);
    bad_map(PM_EINVAL, fn, NULL, 8, NULL, 0, 1, NULL);
    CHECK_CTX("n * in_stride overflows");
    bad_map(PM_EINVAL, fn, in, 16, out, 1, SIZE_MAX / 2, NULL);
    bad_map(PM_EINVAL, fn, in, 16, NULL, 0, SIZE_MAX / 2, NULL);
    bad_map(PM_EINVAL, fn, in, SIZE_MAX, NULL, 0, 2, NULL);
    CHECK_CTX("n * out_stride overflows");
    bad_map(PM_EINVAL, fn, in, 1, out, 16, SIZE_MAX / 2, NULL);
    CHECK_CTX("out NULL, out_stride > 0");
    bad_map(PM_EINVAL, fn, in, 8, NULL, 8, 16, NULL);
    CHECK_CTX("out non-NULL, out_stride 0");
    bad_map(PM_EINVAL, fn, in, 8, out, 0, 16, NULL);
    CHECK_CTX("NULL source");
    bad_imap(PM_EINVAL, fn, NULL, 8, 8, NULL);
    CHECK_CTX("NULL source and fn");
    bad_imap(PM_EINVAL, NULL, NULL, 8, 8, NULL);
}

static void test_iter_handles(void)
{
    CHECK_CTX("NULL iterator");
    uint64_t y;
    size_t idx;
    int code;
    pm_report r;
    CHECK_STATUS(PM_EINVAL, pm_iter_next(NULL, &y, &idx, &code));
    CHECK_STATUS(PM_EINVAL, pm_iter_report(NULL, &r));
    CHECK_STATUS(PM_OK, pm_iter_free(NULL));

    /* A freed iterator is recognised, whether it ended, failed or was cut
     * short; and on every backend. */
    for (size_t e = 0; e < PMT_NEXECS; e++)
        for (int how = 0; how < 3; how++) {
            CHECK_CTX("iterator used after free: %s, %s", pmt_execs[e].name,
                      how == 0 ? "finished" : how == 1 ? "cut short" : "bad args");
            pm_opts o = pmt_opts(&pmt_execs[e]);
            src_calls = 0;
            pm_iter *it = pm_imap(how == 2 ? NULL : fn, NULL, src, NULL, 8, 8, &o);
            CHECK(it != NULL);
            if (how == 0) {
                int rc;
                while ((rc = pm_iter_next(it, &y, &idx, &code)) == 1)
                    ;
                CHECK_STATUS(0, rc);
            } else if (how == 1) {
                CHECK_STATUS(1, pm_iter_next(it, &y, &idx, &code));
            }
            CHECK_STATUS(how == 2 ? PM_EINVAL : PM_OK, pm_iter_free(it));
            CHECK_STATUS(PM_EINVAL, pm_iter_next(it, &y, &idx, &code));
            CHECK_STATUS(PM_EINVAL, pm_iter_next(it, &y, &idx, &code));
            CHECK_STATUS(PM_EINVAL, pm_iter_report(it, &r));
            CHECK_STATUS(PM_EINVAL, pm_iter_free(it));
            CHECK_STATUS(PM_EINVAL, pm_iter_free(it));
        }
}

static void test_null_handles(void)
{
    CHECK_CTX("NULL handles");
    pm_pool_free(NULL);
    pm_cancel_free(NULL);
    pm_cancel_request(NULL);
    CHECK_EQ_INT(pm_cancel_requested(NULL), 0);
    CHECK_EQ_INT(pm_pool_workers(NULL), 0);
    /* A NULL opts and a NULL report are the defaults. */
    for (int i = 0; i < 16; i++)
        in[i] = (uint64_t)i;
    CHECK_STATUS(PM_OK, pm_map(fn, NULL, in, 8, out, 8, 16, NULL, NULL));
    /* A valid map still works after all the refusals. */
    pm_report r;
    CHECK_STATUS(PM_OK, pm_map(fn, NULL, in, 8, NULL, 0, 16,
                               &(pm_opts){.threads = 4}, &r));
    CHECK_EQ_SIZE(r.done, 16);
}

int main(void)
{
    int base = pmt_thread_baseline();
    PMT_RUN(test_bad_opts());
    PMT_RUN(test_bad_args());
    PMT_RUN(test_iter_handles());
    PMT_RUN(test_null_handles());
    CHECK_NO_THREAD_LEAK(base);
    return pmt_done("test_badinput");
}
