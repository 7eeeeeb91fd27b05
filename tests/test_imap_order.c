/*
 * test_imap_order.c - pm_imap streams that run to their end, on every
 * executor: ordered and unordered results (each index once) for n around
 * chunk boundaries (0, 1, 2, 3, 7..9, 63..65, 1000, 10007) and chunksizes
 * auto, 1 and 3; 100-byte records to 3 bytes or to nothing (out_stride 0);
 * the end status repeating; the report and progress along the way.
 */
#include "check.h"
#include "conformance.h"
#include "imap_util.h"

/* ----------------------------------------------------------------- tables */

static const size_t ns[] = {0, 1, 2, 3, 7, 8, 9, 63, 64, 65, 1000, 10007};
#define NNS (sizeof ns / sizeof ns[0])

static void test_table(void)
{
    static const long cs[] = {0, 1, 3};
    for (size_t e = 0; e < PMT_NEXECS; e++)
        for (size_t k = 0; k < 3; k++)
            for (int u = 0; u < 2; u++)
                for (size_t i = 0; i < NNS; i++)
                    run_case(&pmt_execs[e], cs[k], 0, u,
                             ns[i] > 1000 && PMT_SANITIZED ? 2003 : ns[i]);
    CHECK_NO_THREAD_LEAK(base_threads);
}

/* Side-effect-only streams (out_stride 0) and odd record sizes. */
typedef struct big { unsigned char b[100]; } big;

static int src_big(void *p, void *item)
{
    src *s = p;
    size_t i = atomic_load(&s->pulled);
    if (i >= s->limit)
        return 0;
    big *r = item;
    for (size_t j = 0; j < sizeof r->b; j++)
        r->b[j] = (unsigned char)(i * 7 + j);
    atomic_store(&s->pulled, i + 1);
    return 1;
}

static int fn_big(void *user, const void *in, void *out)
{
    (void)user;
    const big *r = in;
    unsigned sum = 0;
    for (size_t j = 0; j < sizeof r->b; j++)
        sum += r->b[j];
    if (out) {
        unsigned char *o = out;
        o[0] = r->b[0];
        o[1] = (unsigned char)sum;
        o[2] = (unsigned char)(sum >> 8);
    }
    return 0;
}

static void test_records(void)
{
    for (size_t e = 0; e < PMT_NEXECS; e++)
        for (int noout = 0; noout < 2; noout++) {
            CHECK_CTX("100-byte records to %s, %s", noout ? "nothing" : "3 bytes",
                      pmt_execs[e].name);
            src s;
            src_init(&s, 777);
            pm_opts o = pmt_opts(&pmt_execs[e]);
            o.window = 10;
            pm_iter *it = pm_imap(fn_big, NULL, src_big, &s, sizeof(big),
                                  noout ? 0 : 3, &o);
            CHECK(it != NULL);
            unsigned char y[4];
            size_t idx, k = 0;
            int rc;
            while ((rc = pm_iter_next(it, noout ? NULL : y, &idx, NULL)) == 1) {
                CHECK_EQ_SIZE(idx, k);
                if (!noout) {
                    big r;
                    unsigned char want[3];
                    for (size_t j = 0; j < sizeof r.b; j++)
                        r.b[j] = (unsigned char)(k * 7 + j);
                    fn_big(NULL, &r, want);
                    CHECK_EQ_INT(memcmp(y, want, 3), 0);
                }
                k++;
            }
            CHECK_STATUS(0, rc);
            CHECK_EQ_SIZE(k, 777);
            end_and_free(it, PM_OK);
        }
}

/* ------------------------------------------------- reports and progress */

typedef struct prog {
    size_t calls, last_done, last_total;
    int decreased;
} prog;

static void on_progress(void *user, const pm_progress *p)
{
    prog *pr = user;
    if (pr->calls && p->done < pr->last_done)
        pr->decreased = 1;
    pr->calls++;
    pr->last_done = p->done;
    pr->last_total = p->total;
}

static void test_report_progress(void)
{
    for (size_t e = 0; e < PMT_NEXECS; e++) {
        CHECK_CTX("report and progress %s", pmt_execs[e].name);
        src s;
        src_init(&s, 3000);
        fctx c;
        fctx_init(&c, 19);
        prog pr;
        memset(&pr, 0, sizeof pr);
        pm_opts o = pmt_opts(&pmt_execs[e]);
        o.total = 3000;
        o.on_progress = on_progress;
        o.progress_user = &pr;
        pm_iter *it = pm_imap(fn, &c, src_next, &s, 8, 8, &o);
        CHECK(it != NULL);
        pm_report r;
        double last_elapsed = 0;
        uint64_t y;
        for (size_t i = 0; i < 3000; i++) {
            CHECK_STATUS(1, pm_iter_next(it, &y, NULL, NULL));
            if (i % 100 == 0) {
                CHECK_STATUS(PM_OK, pm_iter_report(it, &r));
                CHECK_STATUS(PM_OK, r.status);
                CHECK_OP_SIZE(r.done, >=, i + 1);
                CHECK_OP_SIZE(r.done, <=, atomic_load(&s.pulled));
                CHECK_EQ_SIZE(r.failed, 0);
                CHECK_OP_DBL(r.elapsed_s, >=, last_elapsed);
                last_elapsed = r.elapsed_s;
            }
        }
        CHECK_STATUS(0, pm_iter_next(it, &y, NULL, NULL));
        CHECK_OP_SIZE(pr.calls, >=, 1);
        CHECK_EQ_INT(pr.decreased, 0);
        CHECK_EQ_SIZE(pr.last_done, 3000);
        CHECK_EQ_SIZE(pr.last_total, 3000);
        end_and_free(it, PM_OK);
    }
}

int main(void)
{
    base_threads = pmt_thread_baseline();
    PMT_RUN(test_table());
    PMT_RUN(test_records());
    PMT_RUN(test_report_progress());
    CHECK_NO_THREAD_LEAK(base_threads);
    return pmt_done("test_imap_order");
}
