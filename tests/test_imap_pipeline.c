/*
 * test_imap_pipeline.c - pipelines of pm_imap streams (pm_iter_source): two
 * and three stages on mixed executors and windows, n 0, 1 and 1000; upstream
 * failures skipped in PM_RETURN mode; a source error or a PM_RAISE failure
 * upstream ending the downstream with its status; an endless pipeline freed
 * early.
 */
#include "check.h"
#include "conformance.h"
#include "imap_util.h"

/* -------------------------------------------------------------- pipelines */

static void test_pipeline(void)
{
    static const pmt_exec mix[][3] = {
        {{"serial", PM_SERIAL, 0}, {"serial", PM_SERIAL, 0}, {"serial", PM_SERIAL, 0}},
#if PMT_HAVE_THREADS
        {{"threads2", PM_THREADS, 2}, {"serial", PM_SERIAL, 0}, {"auto", PM_AUTO, 0}},
        {{"threads3", PM_THREADS, 3}, {"threads2", PM_THREADS, 2}, {"threads1", PM_THREADS, 1}},
#endif
    };
    static const size_t windows[] = {0, 2, 3};
    static const size_t pn[] = {0, 1, 1000};
    for (size_t m = 0; m < sizeof mix / sizeof mix[0]; m++)
        for (size_t w = 0; w < 3; w++)
            for (size_t ni = 0; ni < 3; ni++)
                for (int stages = 2; stages <= 3; stages++) {
                    size_t n = pn[ni];
                    CHECK_CTX("pipeline of %d: %s|%s|%s window %zu n %zu", stages,
                              mix[m][0].name, mix[m][1].name, mix[m][2].name,
                              windows[w], n);
                    src s;
                    src_init(&s, n);
                    fctx c[3];
                    pm_iter *it[3];
                    for (int st = 0; st < stages; st++) {
                        fctx_init(&c[st], (uint64_t)(st * 2 + 3));
                        pm_opts o = pmt_opts(&mix[m][st]);
                        o.window = windows[w];
                        it[st] = st == 0
                            ? pm_imap(fn, &c[st], src_next, &s, 8, 8, &o)
                            : pm_imap(fn, &c[st], pm_iter_source, it[st - 1], 8, 8, &o);
                        CHECK(it[st] != NULL);
                    }
                    uint64_t y;
                    size_t idx, k = 0;
                    int rc;
                    while ((rc = pm_iter_next(it[stages - 1], &y, &idx, NULL)) == 1) {
                        uint64_t want = k;
                        for (int st = 0; st < stages; st++)
                            want = g(&c[st], want);
                        CHECK_EQ_SIZE(idx, k);
                        CHECK_EQ_SIZE(y, want);
                        k++;
                    }
                    CHECK_STATUS(0, rc);
                    CHECK_EQ_SIZE(k, n);
                    for (int st = stages - 1; st >= 0; st--)
                        CHECK_STATUS(PM_OK, pm_iter_free(it[st]));
                }
    CHECK_NO_THREAD_LEAK(base_threads);
}

/* Upstream failures: skipped in PM_RETURN mode; errors end the downstream. */
static void test_pipeline_errors(void)
{
    for (size_t e = 0; e < PMT_NEXECS; e++) {
        pm_opts o = pmt_opts(&pmt_execs[e]);
        src s;
        fctx up, down;
        size_t k, idx;
        uint64_t y;
        int rc;

        CHECK_CTX("pipeline, upstream PM_RETURN failures: %s", pmt_execs[e].name);
        src_init(&s, 1000);
        fctx_init(&up, 3);
        fctx_init(&down, 5);
        up.fail_every = 10;
        up.fail_phase = 3;
        pm_opts ou = o;
        ou.on_error = PM_RETURN;
        pm_iter *a = pm_imap(fn, &up, src_next, &s, 8, 8, &ou);
        pm_iter *b = pm_imap(fn, &down, pm_iter_source, a, 8, 8, &o);
        CHECK(a && b);
        k = 0;
        size_t want_in = 0;
        while ((rc = pm_iter_next(b, &y, &idx, NULL)) == 1) {
            if (want_in % 10 == 3)
                want_in++;
            CHECK_EQ_SIZE(idx, k);
            CHECK_EQ_SIZE(y, g(&down, g(&up, want_in)));
            k++;
            want_in++;
        }
        CHECK_STATUS(0, rc);
        CHECK_EQ_SIZE(k, 900);
        pm_report r;
        CHECK_STATUS(PM_OK, pm_iter_report(a, &r));
        CHECK_EQ_SIZE(r.done, 1000);
        CHECK_EQ_SIZE(r.failed, 100);
        CHECK_STATUS(PM_OK, pm_iter_free(b));
        CHECK_STATUS(PM_OK, pm_iter_free(a));

        CHECK_CTX("pipeline, source error: %s", pmt_execs[e].name);
        src_init(&s, SIZE_MAX);
        s.err_at = 50;
        s.err = PM_ESYS;
        up.fail_every = 0;
        a = pm_imap(fn, &up, src_next, &s, 8, 8, &o);
        b = pm_imap(fn, &down, pm_iter_source, a, 8, 8, &o);
        CHECK(a && b);
        k = 0;
        while ((rc = pm_iter_next(b, &y, &idx, NULL)) == 1) {
            CHECK_EQ_SIZE(y, g(&down, g(&up, k)));
            k++;
        }
        CHECK_STATUS(PM_ESYS, rc);
        CHECK_EQ_SIZE(k, 50);
        CHECK_STATUS(PM_ESYS, pm_iter_free(b));
        CHECK_STATUS(PM_ESYS, pm_iter_free(a));

        CHECK_CTX("pipeline, upstream PM_RAISE failure: %s", pmt_execs[e].name);
        src_init(&s, 1000);
        up.fail_only = 30;
        a = pm_imap(fn, &up, src_next, &s, 8, 8, &o);
        b = pm_imap(fn, &down, pm_iter_source, a, 8, 8, &o);
        CHECK(a && b);
        k = 0;
        while ((rc = pm_iter_next(b, &y, &idx, NULL)) == 1) {
            CHECK_EQ_SIZE(y, g(&down, g(&up, k)));
            k++;
        }
        CHECK_STATUS(PM_EITEM, rc);
        CHECK_EQ_SIZE(k, 30);
        CHECK_STATUS(PM_EITEM, pm_iter_free(b));
        CHECK_STATUS(PM_EITEM, pm_iter_free(a));
        up.fail_only = (size_t)-1;

        CHECK_CTX("pipeline freed early, endless: %s", pmt_execs[e].name);
        src_init(&s, SIZE_MAX);
        a = pm_imap(fn, &up, src_next, &s, 8, 8, &o);
        b = pm_imap(fn, &down, pm_iter_source, a, 8, 8, &o);
        pm_iter *c3 = pm_imap(fn, &down, pm_iter_source, b, 8, 8, &o);
        CHECK(a && b && c3);
        for (int i = 0; i < 20; i++)
            CHECK_STATUS(1, pm_iter_next(c3, &y, NULL, NULL));
        CHECK_STATUS(PM_OK, pm_iter_free(c3));
        CHECK_STATUS(PM_OK, pm_iter_free(b));
        CHECK_STATUS(PM_OK, pm_iter_free(a));
        CHECK_NO_THREAD_LEAK(base_threads);
    }
}

int main(void)
{
    base_threads = pmt_thread_baseline();
    PMT_RUN(test_pipeline());
    PMT_RUN(test_pipeline_errors());
    CHECK_NO_THREAD_LEAK(base_threads);
    return pmt_done("test_imap_pipeline");
}
