/*
 * test_progress_e2e.c - progress callbacks seen from a real map or stream:
 * counted in items even when chunked, never decreasing, called from the
 * thread that called pm_map / pm_iter_next and never from two threads at
 * once, throttled to about 10 a second, always a final call (done == total
 * for a finished map), failures counted in PM_RETURN mode, and total 0 for a
 * stream of unknown length. (tests/test_progress.c unit-tests the throttle
 * and the bar's format; this is the end-to-end view.)
 */
#include "check.h"
#include "conformance.h"

#if !PMT_HAVE_THREADS
/* No threads (WASI): the one thread makes every call, "another thread" is
 * that thread too, and the PM_THREADS cases are left out. */
#define pthread_t int
#define pthread_self() 0
#define pthread_equal(a, b) ((a) == (b))
#define pthread_join(t, r) ((void)(t), (void)(r))
#define pmt_thread_start(fn, arg) ((void)(fn)(arg), 0)
#endif

/* Everything the callbacks saw. */
typedef struct seen {
    pthread_t expect_thread;
    atomic_int inside;
    int wrong_thread, overlapped, decreased, bad_total, over_total, bad_numbers;
    size_t calls, total;
    pm_progress last;
} seen;

static void on_progress(void *user, const pm_progress *p)
{
    seen *s = user;
    if (atomic_fetch_add(&s->inside, 1) != 0)
        s->overlapped = 1;
    if (!pthread_equal(pthread_self(), s->expect_thread))
        s->wrong_thread = 1;
    if (s->calls && (p->done < s->last.done || p->failed < s->last.failed ||
                     p->elapsed_s < s->last.elapsed_s))
        s->decreased = 1;
    if (p->total != s->total)
        s->bad_total = 1;
    if (p->total && p->done > p->total)
        s->over_total = 1;
    if (p->failed > p->done || !(p->elapsed_s >= 0) || !(p->rate >= 0) ||
        !(p->eta_s >= 0) || (p->total == 0 && p->eta_s != 0))
        s->bad_numbers = 1;
    s->last = *p;
    s->calls++;
    atomic_fetch_sub(&s->inside, 1);
}

static void check_seen(const seen *s, size_t done, size_t failed)
{
    CHECK_EQ_INT(s->wrong_thread, 0);
    CHECK_EQ_INT(s->overlapped, 0);
    CHECK_EQ_INT(s->decreased, 0);
    CHECK_EQ_INT(s->bad_total, 0);
    CHECK_EQ_INT(s->over_total, 0);
    CHECK_EQ_INT(s->bad_numbers, 0);
    CHECK_OP_SIZE(s->calls, >=, 1);
    CHECK_EQ_SIZE(s->last.done, done);
    CHECK_EQ_SIZE(s->last.failed, failed);
    CHECK_EQ_SIZE(s->last.total, s->total);
    if (s->total)
        CHECK_OP_DBL(s->last.eta_s, <, 1e-6); /* nothing left */
}

typedef struct item_ctx {
    double sleep_s;
    size_t fail_every;     /* items i % fail_every == 0 fail (0: none) */
    const uint64_t *in;
} item_ctx;

static int fn(void *user, const void *in, void *out)
{
    item_ctx *c = user;
    uint64_t x;
    memcpy(&x, in, sizeof x);
    if (c->sleep_s > 0)
        pmt_sleep(c->sleep_s);
    if (c->fail_every && x % c->fail_every == 0)
        return 3;
    if (out)
        *(uint64_t *)out = x + 1;
    return 0;
}

/* One pm_map with a progress callback, run by whichever thread calls it. */
typedef struct job {
    pmt_exec e;
    long chunksize;
    size_t n;
    item_ctx c;
    pm_on_error mode;
    seen s;
    pm_report r;
    int rc;
    double took;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    uint64_t *in = malloc(j->n * sizeof *in), *out = malloc(j->n * sizeof *out);
    CHECK(in && out);
    for (size_t i = 0; i < j->n; i++)
        in[i] = i;
    j->c.in = in;
    j->s.expect_thread = pthread_self();
    j->s.total = j->n;
    pm_opts o = pmt_opts(&j->e);
    o.chunksize = j->chunksize;
    o.on_error = j->mode;
    o.on_progress = on_progress;
    o.progress_user = &j->s;
    double t0 = pmt_now();
    j->rc = pm_map(fn, &j->c, in, 8, out, 8, j->n, &o, &j->r);
    j->took = pmt_now() - t0;
    free(in);
    free(out);
    return NULL;
}

/* 10007 items in chunks of 1000: the final call says 10007, not 11. */
static void test_chunked(void)
{
    for (size_t e = 0; e < PMT_NEXECS; e++)
        for (int other_thread = 0; other_thread < 1 + PMT_HAVE_THREADS; other_thread++)
            for (int failing = 0; failing < 2; failing++) {
                CHECK_CTX("chunked %s%s%s", pmt_execs[e].name,
                          other_thread ? ", called from another thread" : "",
                          failing ? ", PM_RETURN with failures" : "");
                job j;
                memset(&j, 0, sizeof j);
                j.e = pmt_execs[e];
                j.chunksize = 1000;
                j.n = 10007;
                                j.c.fail_every = failing ? 10 : 0;
                j.mode = failing ? PM_RETURN : PM_RAISE;
                if (other_thread)
                    pthread_join(pmt_thread_start(run_job, &j), NULL);
                else
                    run_job(&j);
                CHECK_STATUS(PM_OK, j.rc);
                check_seen(&j.s, 10007, failing ? 1001 : 0);
                CHECK_EQ_SIZE(j.r.failed, failing ? 1001 : 0);
            }
}

/* A 1 s map reports along the way, but only about 10 times a second. */
static void test_throttle(void)
{
    static const struct {
        pmt_exec e;
        long chunksize;
    } cases[] = {{{"serial", PM_SERIAL, 0}, 0},
                 {{"threads2", PM_THREADS, 2}, 0},
                 {{"threads2", PM_THREADS, 2}, 1},
                 {{"threads4", PM_THREADS, 4}, 0}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            const pmt_exec *e = &cases[k].e;
#if !PMT_HAVE_THREADS
            if (e->backend == PM_THREADS)
                continue;
#endif
            CHECK_CTX("throttle %s chunksize %ld", e->name, cases[k].chunksize);
            job j;
            memset(&j, 0, sizeof j);
            j.e = *e;
            j.chunksize = cases[k].chunksize;
            j.c.sleep_s = 0.002;
            j.n = (size_t)(500 * pmt_workers(e)); /* 1 s */
            run_job(&j);
            CHECK_STATUS(PM_OK, j.rc);
            check_seen(&j.s, j.n, 0);
            CHECK_OP_DBL(j.took, >=, 0.9);
            CHECK_OP_SIZE(j.s.calls, <=, (size_t)(j.took * 12) + 3);
            CHECK_OP_SIZE(j.s.calls, >=, 3); /* not only the final call */
            CHECK_OP_DBL(j.s.last.rate, >, 0);
            CHECK_OP_DBL(j.s.last.elapsed_s, <=, j.took + 0.01);
            CHECK_OP_DBL(j.s.last.elapsed_s, >=, 0.5);
        }
}

/* Streams: the consumer's thread gets the calls; total 0 when unknown. */
typedef struct counter {
    size_t next, limit;
} counter;

static int src_count(void *p, void *item)
{
    counter *c = p;
    if (c->next >= c->limit)
        return 0;
    uint64_t v = c->next++;
    memcpy(item, &v, sizeof v);
    return 1;
}

typedef struct stream_job {
    pmt_exec e;
    size_t n, total;
    item_ctx c;
    pm_on_error mode;
    seen s;
    size_t got;
    int end;
} stream_job;

static void *run_stream(void *arg)
{
    stream_job *j = arg;
    counter src = {0, j->n};
    j->s.expect_thread = pthread_self();
    j->s.total = j->total;
    pm_opts o = pmt_opts(&j->e);
    o.total = j->total;
    o.on_error = j->mode;
    o.on_progress = on_progress;
    o.progress_user = &j->s;
    pm_iter *it = pm_imap(fn, &j->c, src_count, &src, 8, 8, &o);
    CHECK(it != NULL);
    uint64_t y;
    while ((j->end = pm_iter_next(it, &y, NULL, NULL)) == 1)
        j->got++;
    CHECK_STATUS(PM_OK, pm_iter_free(it));
    return NULL;
}

/* A 1 s stream reports along the way, about 10 times a second at most. */
static void test_stream_throttle(void)
{
    static const pmt_exec execs[] = {{"serial", PM_SERIAL, 0},
#if PMT_HAVE_THREADS
                                     {"threads2", PM_THREADS, 2},
#endif
    };
    for (size_t e = 0; e < sizeof execs / sizeof execs[0]; e++) {
        CHECK_CTX("stream throttle %s", execs[e].name);
        stream_job j;
        memset(&j, 0, sizeof j);
        j.e = execs[e];
        j.n = (size_t)(500 * pmt_workers(&execs[e]));
        j.total = j.n;
        j.c.sleep_s = 0.002;
        double t0 = pmt_now();
        run_stream(&j);
        double took = pmt_now() - t0;
        CHECK_STATUS(0, j.end);
        check_seen(&j.s, j.n, 0);
        CHECK_OP_DBL(took, >=, 0.9);
        CHECK_OP_SIZE(j.s.calls, <=, (size_t)(took * 12) + 3);
        CHECK_OP_SIZE(j.s.calls, >=, 3);
    }
}

static void test_streams(void)
{
    for (size_t e = 0; e < PMT_NEXECS; e++)
        for (int known = 0; known < 2; known++)
            for (int failing = 0; failing < 2; failing++) {
                CHECK_CTX("stream %s total %s%s", pmt_execs[e].name,
                          known ? "known" : "unknown",
                          failing ? ", PM_RETURN with failures" : "");
                stream_job j;
                memset(&j, 0, sizeof j);
                j.e = pmt_execs[e];
                j.n = 5003;
                j.total = known ? 5003 : 0;
                j.c.fail_every = failing ? 10 : 0;
                j.mode = failing ? PM_RETURN : PM_RAISE;
                pthread_join(pmt_thread_start(run_stream, &j), NULL);
                CHECK_STATUS(0, j.end);
                CHECK_EQ_SIZE(j.got, 5003);
                check_seen(&j.s, 5003, failing ? 501 : 0);
            }
}

/* The text bar (on stderr) and a callback together; a labelled bar. */
static void test_bar(void)
{
    CHECK_CTX("progress bar");
    uint64_t in[3000], out[3000];
    for (int i = 0; i < 3000; i++)
        in[i] = (uint64_t)i;
    item_ctx c = {0.0001, 0, in};
    seen s;
    memset(&s, 0, sizeof s);
    s.expect_thread = pthread_self();
    s.total = 3000;
    pm_opts o = {.threads = 2, .progress_bar = 1, .label = "test_progress_e2e",
                 .on_progress = on_progress, .progress_user = &s};
    CHECK_STATUS(PM_OK, pm_map(fn, &c, in, 8, out, 8, 3000, &o, NULL));
    check_seen(&s, 3000, 0);
    for (int i = 0; i < 3000; i++)
        if (out[i] != in[i] + 1)
            CHECK_EQ_SIZE(out[i], in[i] + 1);
    o.label = NULL;
    o.on_progress = NULL;
    CHECK_STATUS(PM_OK, pm_map(fn, &c, in, 8, out, 8, 3000, &o, NULL));
}

int main(void)
{
    PMT_RUN(test_chunked());
    PMT_RUN(test_throttle());
    PMT_RUN(test_streams());
    PMT_RUN(test_stream_throttle());
    PMT_RUN(test_bar());
    return pmt_done("test_progress_e2e");
}
