/*
 * test_imap.c - pm_imap streams on every executor: ordered and unordered
 * results, n around chunk and window boundaries, small windows, backpressure
 * (the source is never more than `window` items ahead of the consumer), source
 * errors, item failures in both modes, the end status repeating, freeing a
 * partly consumed (even endless) stream, pipelines of two and three stages,
 * reports and progress.
 *
 * The source counts what it hands out (`pulled`) and the consumer counts what
 * it got (`consumed`): after each pm_iter_next, pulled <= consumed + window.
 */
#include "check.h"
#include "conformance.h"

#include <limits.h>

static int base_threads;

/* ------------------------------------------------------------ the source */

typedef struct src {
    size_t limit;           /* items before the end (SIZE_MAX: endless) */
    size_t err_at;          /* return `err` instead of item err_at */
    int err;
    double sleep_s;         /* per pull */
    atomic_size_t pulled;
    atomic_int inside;      /* calls in progress: must stay <= 1 */
    atomic_int overlap;
} src;

static void src_init(src *s, size_t limit)
{
    memset(s, 0, sizeof *s);
    s->limit = limit;
    s->err_at = (size_t)-1;
}

static int src_next(void *p, void *item)
{
    src *s = p;
    if (atomic_fetch_add(&s->inside, 1) != 0)
        atomic_store(&s->overlap, 1);
    if (s->sleep_s > 0)
        pmt_sleep(s->sleep_s);
    size_t i = atomic_load(&s->pulled);
    int rc = 1;
    if (i == s->err_at)
        rc = s->err;
    else if (i >= s->limit)
        rc = 0;
    else {
        uint64_t v = i;
        memcpy(item, &v, sizeof v);
        atomic_store(&s->pulled, i + 1);
    }
    atomic_fetch_sub(&s->inside, 1);
    return rc;
}

/* ------------------------------------------------------ the item function */

typedef struct fctx {
    uint64_t mul;
    size_t fail_every, fail_phase;  /* items i % every == phase fail (every 0: none) */
    size_t fail_only;               /* or only this one ((size_t)-1: none) */
    size_t slow_item;               /* this item sleeps slow_s ((size_t)-1: none) */
    double slow_s, sleep_s;
    /* Seen when the slow item ended: */
    src *s;
    atomic_size_t *consumed;
    atomic_size_t pulled_at_slow_end, consumed_at_slow_end;
} fctx;

static void fctx_init(fctx *c, uint64_t mul)
{
    memset(c, 0, sizeof *c);
    c->mul = mul;
    c->fail_only = (size_t)-1;
    c->slow_item = (size_t)-1;
}

static uint64_t g(const fctx *c, uint64_t x) { return pmt_mix(x * c->mul + 1); }

static int code_of(const fctx *c, size_t i)
{
    if (i == c->fail_only)
        return 42;
    if (c->fail_every && i % c->fail_every == c->fail_phase)
        return (int)(i % 5) + 1;
    return 0;
}

static int fn(void *user, const void *in, void *out)
{
    fctx *c = user;
    uint64_t x;
    memcpy(&x, in, sizeof x);
    if (c->sleep_s > 0)
        pmt_sleep(c->sleep_s);
    if (x == c->slow_item) {
        pmt_sleep(c->slow_s);
        atomic_store(&c->pulled_at_slow_end, atomic_load(&c->s->pulled));
        atomic_store(&c->consumed_at_slow_end, atomic_load(c->consumed));
    }
    int code = code_of(c, (size_t)x);
    if (out && code == 0) {
        uint64_t y = g(c, x);
        memcpy(out, &y, sizeof y);
    }
    return code;
}

/* ----------------------------------------------------------- consuming */

/* Drain `it`. Ordered: index == position; unordered: each index once.
 * Every result must be g(index) with code code_of(index). When window > 0,
 * checks pulled <= consumed + window after each result. Returns the end
 * status; *count = results. `consumer_sleep` slows the consumer down. */
typedef struct drain_args {
    pm_iter *it;
    const fctx *c;
    src *s;
    size_t n_expected;     /* for the unordered bitmap */
    int unordered;
    size_t window;
    double consumer_sleep;
    atomic_size_t consumed;
    size_t max_ahead;
} drain_args;

static int drain(drain_args *d, size_t *count)
{
    size_t cap = d->n_expected + 1;
    unsigned char *seen = calloc(cap, 1);
    CHECK(seen != NULL);
    uint64_t y;
    size_t idx, k = 0;
    int code, rc;
    while ((rc = pm_iter_next(d->it, &y, &idx, &code)) == 1) {
        size_t consumed = atomic_fetch_add(&d->consumed, 1) + 1;
        if (d->window > 0) {
            size_t pulled = atomic_load(&d->s->pulled);
            if (pulled > consumed + d->window) {
                CHECK_CTX_ADD("; after result %zu", k);
                CHECK_OP_SIZE(pulled, <=, consumed + d->window);
            }
            if (pulled - consumed > d->max_ahead)
                d->max_ahead = pulled - consumed;
        }
        if (d->unordered) {
            if (idx >= d->n_expected || seen[idx]) {
                CHECK_CTX_ADD("; result %zu", k);
                CHECK_OP_SIZE(idx, <, d->n_expected);
                CHECK_EQ_INT(seen[idx], 0);
            }
            seen[idx] = 1;
        } else if (idx != k) {
            CHECK_EQ_SIZE(idx, k);
        }
        int want = code_of(d->c, idx);
        if (code != want || (want == 0 && y != g(d->c, idx))) {
            CHECK_CTX_ADD("; index %zu", idx);
            CHECK_EQ_INT(code, want);
            CHECK_EQ_SIZE(y, g(d->c, idx));
        }
        k++;
        if (d->consumer_sleep > 0) {
            /* Given time, the feeder runs ahead, but only within the window. */
            pmt_sleep(d->consumer_sleep);
            size_t pulled = atomic_load(&d->s->pulled);
            if (d->window > 0 && pulled > consumed + d->window) {
                CHECK_CTX_ADD("; while the consumer slept after result %zu", k - 1);
                CHECK_OP_SIZE(pulled, <=, consumed + d->window);
            }
            if (pulled - consumed > d->max_ahead)
                d->max_ahead = pulled - consumed;
        }
    }
    free(seen);
    *count = k;
    return rc;
}

/* The iterator ended with `status`: it says so again and again, and
 * pm_iter_free returns it (PM_OK for a stream that ended normally). */
static void end_and_free(pm_iter *it, int status)
{
    uint64_t junk[2];
    for (int i = 0; i < 3; i++)
        CHECK_STATUS(status, pm_iter_next(it, junk, NULL, NULL));
    pm_report r;
    CHECK_STATUS(PM_OK, pm_iter_report(it, &r));
    CHECK_STATUS(status, r.status);
    CHECK_STATUS(status, pm_iter_free(it));
}

/* ----------------------------------------------------------------- tables */

static const size_t ns[] = {0, 1, 2, 3, 7, 8, 9, 63, 64, 65, 1000, 10007};
#define NNS (sizeof ns / sizeof ns[0])

static void run_case(const pmt_exec *e, long chunksize, size_t window,
                     int unordered, size_t n)
{
    CHECK_CTX("%s chunksize %ld window %zu %s n %zu", e->name, chunksize,
              window, unordered ? "unordered" : "ordered", n);
    src s;
    src_init(&s, n);
    fctx c;
    fctx_init(&c, 3);
    pm_opts o = pmt_opts(e);
    o.chunksize = chunksize;
    o.window = window;
    o.unordered = unordered;
    pm_iter *it = pm_imap(fn, &c, src_next, &s, 8, 8, &o);
    CHECK(it != NULL);
    drain_args d = {.it = it, .c = &c, .s = &s, .n_expected = n,
                    .unordered = unordered, .window = window};
    size_t count;
    CHECK_STATUS(0, drain(&d, &count));
    CHECK_EQ_SIZE(count, n);
    CHECK_EQ_SIZE(atomic_load(&s.pulled), n);
    CHECK_EQ_INT(atomic_load(&s.overlap), 0);
    pm_report r;
    CHECK_STATUS(PM_OK, pm_iter_report(it, &r));
    CHECK_EQ_SIZE(r.done, n);
    CHECK_EQ_SIZE(r.failed, 0);
    CHECK_EQ_SIZE(r.first_error_index, (size_t)-1);
    CHECK(r.elapsed_s >= 0);
    end_and_free(it, PM_OK);
}

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

static void test_small_windows(void)
{
    static const size_t wn[] = {0, 1, 2, 5, 100};
    for (size_t e = 0; e < PMT_NEXECS; e++)
        for (size_t w = 1; w <= 3; w++)
            for (long cs = 0; cs <= 1; cs++)
                for (int u = 0; u < 2; u++)
                    for (size_t i = 0; i < sizeof wn / sizeof wn[0]; i++)
                        run_case(&pmt_execs[e], cs, w, u, wn[i]);
    CHECK_NO_THREAD_LEAK(base_threads);
}

/* A slow consumer: the feeder runs ahead, but never more than the window. */
static void test_backpressure(void)
{
    static const size_t windows[] = {1, 2, 8};
    for (size_t e = 0; e < PMT_NEXECS; e++)
        for (size_t w = 0; w < sizeof windows / sizeof windows[0]; w++)
            for (int u = 0; u < 2; u++) {
                CHECK_CTX("backpressure %s window %zu %s", pmt_execs[e].name,
                          windows[w], u ? "unordered" : "ordered");
                src s;
                src_init(&s, 60);
                fctx c;
                fctx_init(&c, 5);
                pm_opts o = pmt_opts(&pmt_execs[e]);
                o.window = windows[w];
                o.unordered = u;
                pm_iter *it = pm_imap(fn, &c, src_next, &s, 8, 8, &o);
                CHECK(it != NULL);
                drain_args d = {.it = it, .c = &c, .s = &s, .n_expected = 60,
                                .unordered = u, .window = windows[w],
                                .consumer_sleep = 0.0003};
                size_t count;
                CHECK_STATUS(0, drain(&d, &count));
                CHECK_EQ_SIZE(count, 60);
                /* Threads: the feeder pulled in the background. (With one
                 * thread, that thread is the consumer: nothing runs behind it.) */
                if (pmt_workers(&pmt_execs[e]) >= 2)
                    CHECK_OP_SIZE(d.max_ahead, >=, 1);
                end_and_free(it, PM_OK);
            }
    CHECK_NO_THREAD_LEAK(base_threads);
}

#if PMT_HAVE_THREADS
/* Ordered: item 5 takes 300 ms. Meanwhile the feeder keeps going, but stays
 * within the window of what the consumer has taken. */
static void test_slow_item(void)
{
    static const int threads[] = {2, 4};
    static const size_t windows[] = {1, 3, 8};
    for (int t = 0; t < 2; t++)
        for (size_t w = 0; w < 3; w++) {
            size_t W = windows[w];
            CHECK_CTX("slow item threads %d window %zu", threads[t], W);
            src s;
            src_init(&s, 100);
            fctx c;
            fctx_init(&c, 7);
            drain_args d = {.c = &c, .s = &s, .n_expected = 100, .window = W};
            c.slow_item = 5;
            c.slow_s = 0.3;
            c.s = &s;
            c.consumed = &d.consumed;
            pm_opts o = {.backend = PM_THREADS, .threads = threads[t],
                         .chunksize = 1, .window = W};
            d.it = pm_imap(fn, &c, src_next, &s, 8, 8, &o);
            CHECK(d.it != NULL);
            size_t count;
            CHECK_STATUS(0, drain(&d, &count));
            CHECK_EQ_SIZE(count, 100);
            size_t pulled = atomic_load(&c.pulled_at_slow_end);
            size_t consumed = atomic_load(&c.consumed_at_slow_end);
            CHECK_OP_SIZE(pulled, <=, consumed + W);
            /* Ordered: nothing after item 5 was consumed before it ended. */
            CHECK_OP_SIZE(consumed, <=, 5);
            /* The feeder went on past item 5 in the background (consumed
             * is not asserted: the consumer may be the thread running 5). */
            if (W >= 6)
                CHECK_OP_SIZE(pulled, >=, 7);
            end_and_free(d.it, PM_OK);
        }
    CHECK_NO_THREAD_LEAK(base_threads);
}
#endif

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

/* A slow source (2.5 ms a record, 400 records) and a fast function: results
 * stream out as records come in, instead of waiting for a big chunk to fill;
 * and pm_iter_free waits for the source call in progress, not for a chunk
 * (nor for the end of the stream). */
static void test_slow_source(void)
{
    for (size_t e = 0; e < PMT_NEXECS; e++)
        for (int unordered = 0; unordered < 2; unordered++) {
            CHECK_CTX("slow source, results stream out: %s %s", pmt_execs[e].name,
                      unordered ? "unordered" : "ordered");
            src s;
            src_init(&s, 400);
            s.sleep_s = 0.0025;
            fctx c;
            fctx_init(&c, 23);
            pm_opts o = pmt_opts(&pmt_execs[e]);
            o.unordered = unordered;
            double t0 = pmt_now();
            pm_iter *it = pm_imap(fn, &c, src_next, &s, 8, 8, &o);
            CHECK(it != NULL);
            uint64_t y;
            size_t idx;
            for (int i = 0; i < 10; i++)
                CHECK_STATUS(1, pm_iter_next(it, &y, &idx, NULL));
            double tenth = pmt_now() - t0; /* the source made 10 in 25 ms */
            CHECK_OP_DBL(tenth, <, PMT_SANITIZED ? 0.6 : 0.3);
            CHECK_OP_SIZE(atomic_load(&s.pulled), <, 400);
            double t1 = pmt_now();
            CHECK_STATUS(PM_OK, pm_iter_free(it));
            CHECK_OP_DBL(pmt_now() - t1, <, PMT_SANITIZED ? 0.25 : 0.1);

            CHECK_CTX("slow source, freed while feeding: %s %s",
                      pmt_execs[e].name, unordered ? "unordered" : "ordered");
            src_init(&s, 400);
            s.sleep_s = 0.0025;
            it = pm_imap(fn, &c, src_next, &s, 8, 8, &o);
            CHECK(it != NULL);
            CHECK_STATUS(1, pm_iter_next(it, &y, &idx, NULL));
            pmt_sleep(0.05);
            t1 = pmt_now();
            CHECK_STATUS(PM_OK, pm_iter_free(it));
            CHECK_OP_DBL(pmt_now() - t1, <, PMT_SANITIZED ? 0.25 : 0.1);
            CHECK_OP_SIZE(atomic_load(&s.pulled), <, 400);
            CHECK_EQ_INT(atomic_load(&s.inside), 0);
        }
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
    PMT_RUN(test_small_windows());
    PMT_RUN(test_backpressure());
#if PMT_HAVE_THREADS
    PMT_RUN(test_slow_item());
#endif
    PMT_RUN(test_source_error());
    PMT_RUN(test_raise());
    PMT_RUN(test_return());
    PMT_RUN(test_slow_source());
    PMT_RUN(test_free_early());
    PMT_RUN(test_records());
    PMT_RUN(test_pipeline());
    PMT_RUN(test_pipeline_errors());
    PMT_RUN(test_report_progress());
    CHECK_NO_THREAD_LEAK(base_threads);
    return pmt_done("test_imap");
}
