/*
 * test_imap_errors.c - how pm_imap streams end early, on every executor,
 * ordered and unordered: source errors (the items before it, then its
 * status), item failures in PM_RAISE mode (ordered: the results before the
 * failing item, then PM_EITEM naming it) and in PM_RETURN mode (every item,
 * failed ones with their code, counted in the report), the end status
 * repeating, and freeing a partly consumed (even endless) stream, which
 * stops everything, joins, and leaks nothing.
 */
#include "check.h"
#include "conformance.h"
#include "imap_util.h"

/* The source fails at position k: the items before it, then its status. */
static void test_source_error(void)
{
    static const size_t ks[] = {0, 1, 5, 100};
    static const int errs[] = {PM_ESYS, PM_ENOMEM};
    for (size_t e = 0; e < PMT_NEXECS; e++)
        for (size_t ki = 0; ki < 4; ki++)
            for (int u = 0; u < 2; u++) {
                int err = errs[(ki + (size_t)u) % 2];
                CHECK_CTX("source error %s at %zu %s", pmt_execs[e].name, ks[ki],
                          u ? "unordered" : "ordered");
                src s;
                src_init(&s, SIZE_MAX);
                s.err_at = ks[ki];
                s.err = err;
                fctx c;
                fctx_init(&c, 9);
                pm_opts o = pmt_opts(&pmt_execs[e]);
                o.unordered = u;
                o.chunksize = (long)ki % 2;
                pm_iter *it = pm_imap(fn, &c, src_next, &s, 8, 8, &o);
                CHECK(it != NULL);
                drain_args d = {.it = it, .c = &c, .s = &s, .n_expected = ks[ki],
                                .unordered = u};
                size_t count;
                CHECK_STATUS(err, drain(&d, &count));
                if (u)
                    CHECK_OP_SIZE(count, <=, ks[ki]);
                else
                    CHECK_EQ_SIZE(count, ks[ki]);
                end_and_free(it, err);
            }
    CHECK_NO_THREAD_LEAK(base_threads);
}

/* PM_RAISE: item k fails; ordered: 0..k-1 come first, then PM_EITEM naming k. */
static void test_raise(void)
{
    static const size_t ks[] = {0, 1, 37, 999};
    for (size_t e = 0; e < PMT_NEXECS; e++)
        for (size_t ki = 0; ki < 4; ki++)
            for (int u = 0; u < 2; u++) {
                size_t k = ks[ki];
                CHECK_CTX("raise %s item %zu %s", pmt_execs[e].name, k,
                          u ? "unordered" : "ordered");
                src s;
                src_init(&s, 1000);
                fctx c;
                fctx_init(&c, 11);
                c.fail_only = k;
                pm_opts o = pmt_opts(&pmt_execs[e]);
                o.unordered = u;
                pm_iter *it = pm_imap(fn, &c, src_next, &s, 8, 8, &o);
                CHECK(it != NULL);
                uint64_t y;
                size_t idx, count = 0;
                int code, rc;
                unsigned char seen[1000] = {0};
                while ((rc = pm_iter_next(it, &y, &idx, &code)) == 1) {
                    if (!u)
                        CHECK_EQ_SIZE(idx, count);
                    CHECK(idx < 1000 && idx != k && !seen[idx]);
                    seen[idx] = 1;
                    CHECK_EQ_INT(code, 0);
                    CHECK_EQ_SIZE(y, g(&c, idx));
                    count++;
                }
                CHECK_STATUS(PM_EITEM, rc);
                CHECK_EQ_SIZE(idx, k);
                CHECK_EQ_INT(code, 42);
                if (!u)
                    CHECK_EQ_SIZE(count, k);
                pm_report r;
                CHECK_STATUS(PM_OK, pm_iter_report(it, &r));
                CHECK_EQ_SIZE(r.first_error_index, k);
                CHECK_EQ_INT(r.first_error_code, 42);
                CHECK_EQ_SIZE(r.failed, 1);
                CHECK_OP_SIZE(r.done, >=, count + 1);
                end_and_free(it, PM_EITEM);
            }
    CHECK_NO_THREAD_LEAK(base_threads);
}

/* PM_RETURN: every item comes back, failed ones with their code. */
static void test_return(void)
{
    for (size_t e = 0; e < PMT_NEXECS; e++)
        for (int u = 0; u < 2; u++) {
            CHECK_CTX("return %s %s", pmt_execs[e].name, u ? "unordered" : "ordered");
            src s;
            src_init(&s, 1000);
            fctx c;
            fctx_init(&c, 13);
            c.fail_every = 7;
            c.fail_phase = 4;
            pm_opts o = pmt_opts(&pmt_execs[e]);
            o.unordered = u;
            o.on_error = PM_RETURN;
            pm_iter *it = pm_imap(fn, &c, src_next, &s, 8, 8, &o);
            CHECK(it != NULL);
            drain_args d = {.it = it, .c = &c, .s = &s, .n_expected = 1000,
                            .unordered = u};
            size_t count;
            CHECK_STATUS(0, drain(&d, &count));
            CHECK_EQ_SIZE(count, 1000);
            pm_report r;
            CHECK_STATUS(PM_OK, pm_iter_report(it, &r));
            CHECK_EQ_SIZE(r.done, 1000);
            CHECK_EQ_SIZE(r.failed, 143); /* 4, 11, ..., 998 */
            CHECK_EQ_SIZE(r.first_error_index, 4);
            CHECK_EQ_INT(r.first_error_code, code_of(&c, 4));
            end_and_free(it, PM_OK);
        }
}

/* Freeing before the end stops everything, joins, and leaks nothing. */
static void test_free_early(void)
{
    for (size_t e = 0; e < PMT_NEXECS; e++)
        for (int variant = 0; variant < 5; variant++) {
            CHECK_CTX("free early %s variant %d", pmt_execs[e].name, variant);
            src s;
            src_init(&s, SIZE_MAX); /* endless */
            if (variant == 3) { /* slow: see test_slow_source */
                s.sleep_s = 0.002;
                s.limit = 100;
            }
            fctx c;
            fctx_init(&c, 17);
            pm_opts o = pmt_opts(&pmt_execs[e]);
            o.unordered = variant == 2;
            o.on_error = variant == 4 ? PM_RETURN : PM_RAISE;
            if (variant == 4)
                c.fail_every = 2;
            pm_iter *it = pm_imap(fn, &c, src_next, &s, 8, 8, &o);
            CHECK(it != NULL);
            size_t take = variant == 0 ? 0 : 10;
            for (size_t i = 0; i < take; i++) {
                uint64_t y;
                size_t idx;
                CHECK_STATUS(1, pm_iter_next(it, &y, &idx, NULL));
                if (!o.unordered)
                    CHECK_EQ_SIZE(idx, i);
            }
            CHECK_STATUS(PM_OK, pm_iter_free(it));
            CHECK_EQ_INT(atomic_load(&s.inside), 0); /* no pull after free */
            size_t pulled = atomic_load(&s.pulled);
            pmt_sleep(0.005);
            CHECK_EQ_SIZE(atomic_load(&s.pulled), pulled);
            CHECK_NO_THREAD_LEAK(base_threads);
        }
    CHECK_STATUS(PM_OK, pm_iter_free(NULL));
}

int main(void)
{
    base_threads = pmt_thread_baseline();
    PMT_RUN(test_source_error());
    PMT_RUN(test_raise());
    PMT_RUN(test_return());
    PMT_RUN(test_free_early());
    CHECK_NO_THREAD_LEAK(base_threads);
    return pmt_done("test_imap_errors");
}
