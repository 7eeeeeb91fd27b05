/*
 * test_errors.c - item failures in pm_map on every executor.
 *
 * PM_RAISE: the call returns PM_EITEM, the report names the lowest failing
 * index that ran and its code, items that completed have their outputs, the
 * codes array is written for items that ran and untouched for the others, and
 * the map stops early. PM_RETURN: every item runs, the call returns PM_OK and
 * the report and codes say which items failed.
 */
#include "check.h"
#include "conformance.h"

#include <limits.h>

#define SENTINEL INT_MIN
#define OUT_UNSET 0xdeadbeefdeadbeefULL

typedef struct fail_ctx {
    const uint64_t *in;
    size_t n;
    size_t only;            /* (size_t)-1: use `every`; else only this item fails */
    size_t every, phase;    /* items with i % every == phase fail */
    double sleep_s;         /* per item */
    atomic_int *hits;
    atomic_size_t calls;
} fail_ctx;

static uint64_t f(uint64_t x) { return pmt_mix(x) | 1; }

/* The code item i fails with (0: it succeeds). Several distinct codes. */
static int code_of(const fail_ctx *c, size_t i)
{
    static const int codes[] = {1, 42, 1 << 20, INT_MAX, 7};
    if (c->only != (size_t)-1)
        return i == c->only ? 42 : 0;
    if (c->every && i % c->every == c->phase)
        return codes[(i / c->every) % 5];
    return 0;
}

static int fn(void *user, const void *in, void *out)
{
    fail_ctx *c = user;
    size_t i = (size_t)((const uint64_t *)in - c->in);
    atomic_fetch_add(&c->hits[i], 1);
    atomic_fetch_add(&c->calls, 1);
    if (c->sleep_s > 0)
        pmt_sleep(c->sleep_s);
    int code = code_of(c, i);
    if (code == 0)
        *(uint64_t *)out = f(*(const uint64_t *)in);
    return code;
}

typedef struct run {
    fail_ctx c;
    uint64_t *in, *out;
    int *codes;
    pm_report r;
    int rc;
} run;

static void run_map(run *m, size_t n, const pm_opts *base, pm_on_error mode)
{
    m->in = malloc((n + 1) * sizeof *m->in);
    m->out = malloc((n + 1) * sizeof *m->out);
    m->codes = malloc((n + 1) * sizeof *m->codes);
    m->c.hits = calloc(n + 1, sizeof *m->c.hits);
    CHECK(m->in && m->out && m->codes && m->c.hits);
    for (size_t i = 0; i < n; i++) {
        m->in[i] = i * 3 + 1;
        m->out[i] = OUT_UNSET;
        m->codes[i] = SENTINEL;
    }
    m->c.in = m->in;
    m->c.n = n;
    pm_opts o = *base;
    o.on_error = mode;
    o.codes = m->codes;
    memset(&m->r, 0x5a, sizeof m->r);
    m->rc = pm_map(fn, &m->c, m->in, sizeof *m->in, m->out, sizeof *m->out, n,
                   &o, &m->r);
}

static void run_free(run *m)
{
    free(m->in);
    free(m->out);
    free(m->codes);
    free(m->c.hits);
}

/* What holds after any PM_RAISE map that failed: codes written exactly for
 * the items that ran, their outputs right, the report consistent; the
 * reported index is the lowest failing item that ran. */
static void check_raise(run *m)
{
    size_t n = m->c.n, ran = 0, failed = 0, lowest = (size_t)-1;
    CHECK_STATUS(PM_EITEM, m->rc);
    CHECK_STATUS(PM_EITEM, m->r.status);
    for (size_t i = 0; i < n; i++) {
        int hits = atomic_load(&m->c.hits[i]);
        int want = code_of(&m->c, i);
        int bad = hits > 1 || (hits == 0 && m->codes[i] != SENTINEL) ||
                  (hits == 1 && m->codes[i] != want) ||
                  (hits == 1 && want == 0 && m->out[i] != f(m->in[i]));
        if (bad) {
            CHECK_CTX_ADD("; item %zu ran %d times", i, hits);
            CHECK_OP_INT(hits, <=, 1);
            CHECK_EQ_INT(m->codes[i], hits ? want : SENTINEL);
            CHECK_EQ_SIZE(m->out[i], f(m->in[i]));
        }
        if (hits == 0)
            continue;
        ran++;
        if (want != 0) {
            failed++;
            if (lowest == (size_t)-1)
                lowest = i;
        }
    }
    CHECK_EQ_SIZE(m->r.done, ran);
    CHECK_EQ_SIZE(m->r.done, atomic_load(&m->c.calls));
    CHECK_EQ_SIZE(m->r.failed, failed);
    CHECK_OP_SIZE(failed, >=, 1);
    CHECK_EQ_SIZE(m->r.first_error_index, lowest);
    CHECK_EQ_INT(m->r.first_error_code, code_of(&m->c, lowest));
    CHECK(m->r.elapsed_s >= 0);
}

static const long chunks[] = {0, 1, 7};
static const size_t fail_at[] = {0, 1, 500, 998, 999};

/* Only item k fails. */
static void test_raise_one(void)
{
    for (size_t e = 0; e < PMT_NEXECS; e++)
        for (size_t ci = 0; ci < 3; ci++)
            for (size_t ki = 0; ki < sizeof fail_at / sizeof fail_at[0]; ki++) {
                size_t k = fail_at[ki];
                CHECK_CTX("raise one: %s chunksize %ld k %zu",
                         pmt_execs[e].name, chunks[ci], k);
                run m;
                memset(&m, 0, sizeof m);
                m.c.only = k;
                pm_opts o = pmt_opts(&pmt_execs[e]);
                o.chunksize = chunks[ci];
                run_map(&m, 1000, &o, PM_RAISE);
                check_raise(&m);
                CHECK_EQ_SIZE(m.r.failed, 1);
                CHECK_EQ_SIZE(m.r.first_error_index, k);
                CHECK_EQ_INT(m.r.first_error_code, 42);
                CHECK_EQ_INT(m.codes[k], 42);
                /* The serial executor runs in order: nothing after k's chunk. */
                if (pmt_execs[e].backend == PM_SERIAL && chunks[ci] > 0) {
                    size_t end = (k / (size_t)chunks[ci] + 1) * (size_t)chunks[ci];
                    CHECK_OP_SIZE(m.r.done, <=, end);
                    CHECK_OP_SIZE(m.r.done, >=, k + 1);
                }
                run_free(&m);
            }
}

/* Many failing items: the reported one is the lowest failing one that ran. */
static void test_raise_many(void)
{
    static const size_t every[] = {1, 2, 97, 250};
    for (size_t e = 0; e < PMT_NEXECS; e++)
        for (size_t ci = 0; ci < 3; ci++)
            for (size_t v = 0; v < sizeof every / sizeof every[0]; v++) {
                CHECK_CTX("raise many: %s chunksize %ld every %zu",
                         pmt_execs[e].name, chunks[ci], every[v]);
                run m;
                memset(&m, 0, sizeof m);
                m.c.only = (size_t)-1;
                m.c.every = every[v];
                m.c.phase = every[v] / 2 + every[v] / 4;
                pm_opts o = pmt_opts(&pmt_execs[e]);
                o.chunksize = chunks[ci];
                run_map(&m, 3000, &o, PM_RAISE);
                check_raise(&m);
                if (pmt_execs[e].backend == PM_SERIAL) /* in order: the first */
                    CHECK_EQ_SIZE(m.r.first_error_index, m.c.phase);
                run_free(&m);
            }
}

/* A failure stops the map early: slow items, 2 threads, item 10 fails. */
static void test_raise_stops_early(void)
{
    static const pmt_exec execs[] = {{"serial", PM_SERIAL, 0},
#if PMT_HAVE_THREADS
                                     {"threads2", PM_THREADS, 2},
                                     {"threads4", PM_THREADS, 4},
#endif
    };
    for (size_t e = 0; e < sizeof execs / sizeof execs[0]; e++)
        for (size_t ci = 0; ci < 2; ci++) {
            CHECK_CTX("stops early: %s chunksize %ld",
                     execs[e].name, chunks[ci]);
            run m;
            memset(&m, 0, sizeof m);
            m.c.only = 10;
            m.c.sleep_s = 0.001;
            pm_opts o = pmt_opts(&execs[e]);
            o.chunksize = chunks[ci];
            double t0 = pmt_now();
            run_map(&m, 2000, &o, PM_RAISE); /* 2 s of work if it ran on */
            double took = pmt_now() - t0;
            check_raise(&m);
            CHECK_EQ_SIZE(m.r.first_error_index, 10);
            CHECK_OP_SIZE(m.r.done, <, 100);
            CHECK_OP_DBL(took, <, 1.0);
            CHECK_OP_DBL(m.r.elapsed_s, <=, took + 0.01);
            CHECK_OP_DBL(m.r.elapsed_s, >=, 0.001); /* items of 1 ms ran */
            run_free(&m);
        }
}

/* PM_RETURN: everything runs; failures are data. */
static void test_return(void)
{
    static const size_t every[] = {0, 1, 3, 97, 1000};
    static const size_t ns[] = {0, 1, 2, 7, 64, 65, 1000, 4099};
    for (size_t e = 0; e < PMT_NEXECS; e++)
        for (size_t ci = 0; ci < 3; ci++)
            for (size_t v = 0; v < sizeof every / sizeof every[0]; v++)
                for (size_t s = 0; s < sizeof ns / sizeof ns[0]; s++) {
                    size_t n = ns[s];
                    CHECK_CTX("return: %s chunksize %ld every %zu n %zu",
                              pmt_execs[e].name, chunks[ci], every[v], n);
                    run m;
                    memset(&m, 0, sizeof m);
                    m.c.only = (size_t)-1;
                    m.c.every = every[v];
                    m.c.phase = every[v] ? every[v] - 1 : 0;
                    pm_opts o = pmt_opts(&pmt_execs[e]);
                    o.chunksize = chunks[ci];
                    run_map(&m, n, &o, PM_RETURN);
                    CHECK_STATUS(PM_OK, m.rc);
                    CHECK_STATUS(PM_OK, m.r.status);
                    size_t failed = 0, lowest = (size_t)-1;
                    for (size_t i = 0; i < n; i++) {
                        int want = code_of(&m.c, i);
                        if (atomic_load(&m.c.hits[i]) != 1)
                            CHECK_EQ_INT(atomic_load(&m.c.hits[i]), 1);
                        if (m.codes[i] != want)
                            CHECK_EQ_INT(m.codes[i], want);
                        if (want == 0 && m.out[i] != f(m.in[i]))
                            CHECK_EQ_SIZE(m.out[i], f(m.in[i]));
                        if (want != 0 && failed++ == 0)
                            lowest = i;
                    }
                    CHECK_EQ_SIZE(m.r.done, n);
                    CHECK_EQ_SIZE(m.r.failed, failed);
                    CHECK_EQ_SIZE(m.r.first_error_index, lowest);
                    CHECK_EQ_INT(m.r.first_error_code,
                                 failed ? code_of(&m.c, lowest) : 0);
                    CHECK(m.r.elapsed_s >= 0);
                    run_free(&m);
                }

    /* Without a codes array and without a report. */
    CHECK_CTX("return without codes");
    uint64_t in[100], out[100];
    atomic_int h[100];
    fail_ctx c;
    memset(&c, 0, sizeof c);
    for (int i = 0; i < 100; i++) {
        in[i] = (uint64_t)i;
        atomic_init(&h[i], 0);
    }
    c.in = in;
    c.n = 100;
    c.only = (size_t)-1;
    c.every = 2;
    c.hits = h;
    CHECK_STATUS(PM_OK, pm_map(fn, &c, in, 8, out, 8, 100,
                               &(pm_opts){.on_error = PM_RETURN}, NULL));
    for (int i = 0; i < 100; i++) {
        CHECK_EQ_INT(atomic_load(&h[i]), 1);
        if (i % 2)
            CHECK_EQ_SIZE(out[i], f(in[i]));
    }
}

/* The report of a slow successful map measures its wall time. */
static void test_report_time(void)
{
    CHECK_CTX("report time");
    run m;
    memset(&m, 0, sizeof m);
    m.c.only = (size_t)-1;
    m.c.sleep_s = 0.002;
    pm_opts o = {.backend = PM_SERIAL};
    double t0 = pmt_now();
    run_map(&m, 50, &o, PM_RAISE);
    double took = pmt_now() - t0;
    CHECK_STATUS(PM_OK, m.rc);
    CHECK_EQ_SIZE(m.r.done, 50);
    CHECK_OP_DBL(m.r.elapsed_s, >=, 0.1);
    CHECK_OP_DBL(m.r.elapsed_s, <=, took + 0.01);
    run_free(&m);
}

int main(void)
{
    PMT_RUN(test_raise_one());
    PMT_RUN(test_raise_many());
    PMT_RUN(test_raise_stops_early());
    PMT_RUN(test_return());
    PMT_RUN(test_report_time());
    return pmt_done("test_errors");
}
