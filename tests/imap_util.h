/*
 * imap_util.h - what the pm_imap tests (tests/test_imap_*.c) share: a source
 * that counts what it hands out (`pulled`), can fail at a position, sleep,
 * and notices overlapping calls; an item function whose results and codes
 * have an oracle (g, code_of); drain(), the consumer that checks order (or
 * each index once), every result, and that pulled <= consumed + window after
 * each pm_iter_next; end_and_free(); and run_case(), one stream of n items on
 * one executor. Include after check.h and conformance.h.
 *
 * base_threads: the test's pmt_thread_baseline(), set first thing in main.
 */
#ifndef PM_TEST_IMAP_UTIL_H
#define PM_TEST_IMAP_UTIL_H

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

static inline void src_init(src *s, size_t limit)
{
    memset(s, 0, sizeof *s);
    s->limit = limit;
    s->err_at = (size_t)-1;
}

static inline int src_next(void *p, void *item)
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

static inline void fctx_init(fctx *c, uint64_t mul)
{
    memset(c, 0, sizeof *c);
    c->mul = mul;
    c->fail_only = (size_t)-1;
    c->slow_item = (size_t)-1;
}

static inline uint64_t g(const fctx *c, uint64_t x) { return pmt_mix(x * c->mul + 1); }

static inline int code_of(const fctx *c, size_t i)
{
    if (i == c->fail_only)
        return 42;
    if (c->fail_every && i % c->fail_every == c->fail_phase)
        return (int)(i % 5) + 1;
    return 0;
}

static inline int fn(void *user, const void *in, void *out)
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

static inline int drain(drain_args *d, size_t *count)
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
static inline void end_and_free(pm_iter *it, int status)
{
    uint64_t junk[2];
    for (int i = 0; i < 3; i++)
        CHECK_STATUS(status, pm_iter_next(it, junk, NULL, NULL));
    pm_report r;
    CHECK_STATUS(PM_OK, pm_iter_report(it, &r));
    CHECK_STATUS(status, r.status);
    CHECK_STATUS(status, pm_iter_free(it));
}

static inline void run_case(const pmt_exec *e, long chunksize, size_t window,
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

#endif
