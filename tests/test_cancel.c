/*
 * test_cancel.c - cancellation tokens in pm_map and pm_imap.
 *
 * A token requested from another thread, or from a signal handler, makes a
 * running call return PM_ECANCELED promptly (items of ~1 ms, a map that would
 * take seconds, an answer within 200 ms of the request); a token requested
 * before the call runs (almost) nothing; pm_cancel_reset makes it reusable;
 * iterators end with PM_ECANCELED and keep returning it. After every case the
 * process has as many threads as when it started (Linux: /proc/self/task).
 */
#include "check.h"
#include "conformance.h"

#include <limits.h>
#include <unistd.h>
#if PMT_HAVE_THREADS
#include <signal.h>
#endif

#define SENTINEL INT_MIN
/* How soon after the request a call must return. */
#define PROMPT_S (PMT_SANITIZED ? 0.4 : 0.2)

static int base_threads;

typedef struct item_ctx {
    const uint64_t *in;
    double sleep_s;
    atomic_int *hits;     /* may be NULL (streams) */
    atomic_size_t calls;
} item_ctx;

static uint64_t f(uint64_t x) { return pmt_mix(x) ^ 0x55; }

static int fn(void *user, const void *in, void *out)
{
    item_ctx *c = user;
    if (c->hits)
        atomic_fetch_add(&c->hits[(const uint64_t *)in - c->in], 1);
    atomic_fetch_add(&c->calls, 1);
    if (c->sleep_s > 0)
        pmt_sleep(c->sleep_s);
    if (out)
        *(uint64_t *)out = f(*(const uint64_t *)in);
    return 0;
}

/* An endless (or `limit`-long) stream 0, 1, 2, ... */
typedef struct counter {
    atomic_size_t next;
    size_t limit;
} counter;

static int src_count(void *src, void *item)
{
    counter *c = src;
    size_t i = atomic_load(&c->next);
    if (i >= c->limit)
        return 0;
    atomic_store(&c->next, i + 1);
    uint64_t v = i;
    memcpy(item, &v, sizeof v);
    return 1;
}

/* A map of n items, with the hit counts, outputs and codes to check. */
typedef struct mapping {
    item_ctx c;
    uint64_t *in, *out;
    int *codes;
    size_t n;
    pm_report r;
    int rc;
    double returned;     /* pmt_now() when pm_map returned */
} mapping;

static void mapping_init(mapping *m, size_t n, double sleep_s)
{
    memset(m, 0, sizeof *m);
    m->n = n;
    m->in = malloc(n * sizeof *m->in);
    m->out = malloc(n * sizeof *m->out);
    m->codes = malloc(n * sizeof *m->codes);
    m->c.hits = calloc(n, sizeof *m->c.hits);
    CHECK(m->in && m->out && m->codes && m->c.hits);
    for (size_t i = 0; i < n; i++) {
        m->in[i] = i;
        m->codes[i] = SENTINEL;
    }
    m->c.in = m->in;
    m->c.sleep_s = sleep_s;
}

static void mapping_run(mapping *m, const pm_opts *o)
{
    pm_opts opts = *o;
    opts.codes = m->codes;
    m->rc = pm_map(fn, &m->c, m->in, sizeof *m->in, m->out, sizeof *m->out,
                   m->n, &opts, &m->r);
    m->returned = pmt_now();
}

/* A canceled map: status, counts, and every item that ran is complete. */
static void mapping_check_canceled(mapping *m)
{
    CHECK_STATUS(PM_ECANCELED, m->rc);
    CHECK_STATUS(PM_ECANCELED, m->r.status);
    CHECK_OP_SIZE(m->r.done, <, m->n);
    CHECK_EQ_SIZE(m->r.done, atomic_load(&m->c.calls));
    CHECK_EQ_SIZE(m->r.failed, 0);
    size_t ran = 0;
    for (size_t i = 0; i < m->n; i++) {
        int hits = atomic_load(&m->c.hits[i]);
        if (hits > 1 || (hits == 1 && (m->codes[i] != 0 || m->out[i] != f(i))) ||
            (hits == 0 && m->codes[i] != SENTINEL)) {
            CHECK_CTX_ADD("; item %zu ran %d times", i, hits);
            CHECK_OP_INT(hits, <=, 1);
            CHECK_EQ_INT(m->codes[i], hits ? 0 : SENTINEL);
            CHECK_EQ_SIZE(m->out[i], f(i));
        }
        ran += (size_t)hits;
    }
    CHECK_EQ_SIZE(ran, m->r.done);
}

static void mapping_free(mapping *m)
{
    free(m->in);
    free(m->out);
    free(m->codes);
    free(m->c.hits);
}

/* ------------------------------------------- requested before the call */

static void test_prerequested(void)
{
    pm_cancel *tok = pm_cancel_new();
    CHECK(tok != NULL);
    CHECK_EQ_INT(pm_cancel_requested(tok), 0);
    CHECK_EQ_INT(pm_cancel_requested(NULL), 0);
    for (size_t e = 0; e < PMT_NEXECS; e++) {
        CHECK_CTX("prerequested %s", pmt_execs[e].name);
        pm_cancel_request(tok);
        pm_cancel_request(tok); /* idempotent */
        CHECK_EQ_INT(pm_cancel_requested(tok), 1);
        mapping m;
        mapping_init(&m, 1000, 0);
        pm_opts o = pmt_opts(&pmt_execs[e]);
        o.cancel = tok;
        mapping_run(&m, &o);
        mapping_check_canceled(&m);
        /* At most one (first, 1-item) chunk per worker. */
        CHECK_OP_SIZE(m.r.done, <=, (size_t)pmt_workers(&pmt_execs[e]));
        mapping_free(&m);

        /* Reset: the same token now lets a map finish; then cancels again. */
        pm_cancel_reset(tok);
        CHECK_EQ_INT(pm_cancel_requested(tok), 0);
        mapping_init(&m, 1000, 0);
        mapping_run(&m, &o);
        CHECK_STATUS(PM_OK, m.rc);
        CHECK_EQ_SIZE(m.r.done, 1000);
        for (size_t i = 0; i < 1000; i++)
            if (m.out[i] != f(i) || m.codes[i] != 0)
                CHECK_EQ_SIZE(m.out[i], f(i));
        mapping_free(&m);
        CHECK_NO_THREAD_LEAK(base_threads);
    }
    pm_cancel_free(tok);
}

#if PMT_HAVE_THREADS
/* --------------------------------------------- requested by a thread */

typedef struct canceller {
    pm_cancel *tok;
    double delay;
    int by_signal;       /* pthread_kill(target, SIGALRM) instead */
    pthread_t target;
    double requested;    /* pmt_now() of the request */
    atomic_size_t *calls; /* optional: start the delay once an item has run (on a busy
                             machine the first chunk may take longer than `delay`) */
} canceller;

static void *cancel_later(void *arg)
{
    canceller *k = arg;
    while (k->calls && atomic_load(k->calls) == 0)
        pmt_sleep(0.001);
    pmt_sleep(k->delay);
    k->requested = pmt_now();
    if (k->by_signal)
        pthread_kill(k->target, SIGALRM);
    else
        pm_cancel_request(k->tok);
    return NULL;
}

static pm_cancel *signal_token;
static atomic_int signals_seen;

static void on_alarm(int sig)
{
    (void)sig;
    atomic_fetch_add(&signals_seen, 1);
    pm_cancel_request(signal_token);
}

static const pmt_exec cancel_execs[] = {
    {"serial", PM_SERIAL, 0},  {"threads1", PM_THREADS, 1},
    {"threads2", PM_THREADS, 2}, {"threads4", PM_THREADS, 4},
    {"auto", PM_AUTO, 0},
};

/* 20000 items of 1 ms (>= 5 s of work on 4 threads) canceled after 100 ms,
 * from a thread or by a signal to the calling thread. */
static void test_map_midway(int by_signal)
{
    static const long chunks[] = {0, 1, 3};
    for (size_t e = 0; e < sizeof cancel_execs / sizeof cancel_execs[0]; e++)
        for (size_t ci = 0; ci < 3; ci++) {
            if (by_signal && ci == 2)
                continue;
            CHECK_CTX("map canceled midway by %s: %s chunksize %ld",
                      by_signal ? "a signal" : "a thread", cancel_execs[e].name,
                      chunks[ci]);
            pm_cancel *tok = pm_cancel_new();
            CHECK(tok != NULL);
            signal_token = tok;
            mapping m;
            mapping_init(&m, 20000, 0.001);
            pm_opts o = pmt_opts(&cancel_execs[e]);
            o.chunksize = chunks[ci];
            o.cancel = tok;
            canceller k = {.tok = tok, .delay = 0.1, .by_signal = by_signal,
                           .target = pthread_self()};
            pthread_t t = pmt_thread_start(cancel_later, &k);
            double t0 = pmt_now();
            mapping_run(&m, &o);
            pthread_join(t, NULL);
            CHECK_EQ_INT(pm_cancel_requested(tok), 1);
            mapping_check_canceled(&m);
            CHECK_OP_DBL(m.returned - k.requested, <, PROMPT_S);
            CHECK_OP_DBL(m.r.elapsed_s, <=, m.returned - t0 + 0.01);
            CHECK_OP_SIZE(m.r.done, >=, 1); /* 100 ms of work ran first */
            mapping_free(&m);
            pm_cancel_free(tok);
            CHECK_NO_THREAD_LEAK(base_threads);
        }
}

/* alarm(): SIGALRM goes to whichever thread (caller or worker) takes it. */
static void test_map_alarm(void)
{
    CHECK_CTX("map canceled by alarm()");
    pm_cancel *tok = pm_cancel_new();
    CHECK(tok != NULL);
    signal_token = tok;
    int seen = atomic_load(&signals_seen);
    mapping m;
    mapping_init(&m, 20000, 0.001);
    pm_opts o = {.backend = PM_THREADS, .threads = 2, .cancel = tok};
    double t0 = pmt_now();
    alarm(1);
    mapping_run(&m, &o);
    CHECK_EQ_INT(atomic_load(&signals_seen), seen + 1);
    mapping_check_canceled(&m);
    CHECK_OP_DBL(m.returned - t0, >=, 0.9);
    CHECK_OP_DBL(m.returned - t0, <, 1.0 + PROMPT_S + 0.1);
    mapping_free(&m);
    pm_cancel_free(tok);
    CHECK_NO_THREAD_LEAK(base_threads);
}

/* One token cancels two maps running at once on different threads. */
static void *run_mapping(void *arg)
{
    mapping *m = arg;
    pm_opts o = {.backend = PM_THREADS, .threads = 2, .cancel = signal_token};
    mapping_run(m, &o);
    return NULL;
}

static void test_shared_token(void)
{
    CHECK_CTX("one token, two maps");
    pm_cancel *tok = pm_cancel_new();
    CHECK(tok != NULL);
    signal_token = tok;
    mapping m[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        mapping_init(&m[i], 10000, 0.001);
        t[i] = pmt_thread_start(run_mapping, &m[i]);
    }
    pmt_sleep(0.1);
    double req = pmt_now();
    pm_cancel_request(tok);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        mapping_check_canceled(&m[i]);
        CHECK_OP_DBL(m[i].returned - req, <, PROMPT_S);
        mapping_free(&m[i]);
    }
    pm_cancel_free(tok);
    CHECK_NO_THREAD_LEAK(base_threads);
}
#endif

/* ------------------------------------------------------------ streams */

/* Consume until the iterator ends; results must be 0, 1, 2, ... in order
 * (or distinct, unordered). Returns the end status; *count = results. */
static int drain(pm_iter *it, int unordered, size_t first, size_t *count,
                 double *ended)
{
    size_t k = first;
    int rc;
    uint64_t y;
    size_t idx;
    int code;
    while ((rc = pm_iter_next(it, &y, &idx, &code)) == 1) {
        if (!unordered)
            CHECK_EQ_SIZE(idx, k);
        CHECK_EQ_SIZE(y, f(idx));
        CHECK_EQ_INT(code, 0);
        k++;
    }
    if (ended)
        *ended = pmt_now();
    *count = k - first;
    return rc;
}

/* After the end, the same status again and again; free returns it too. */
static void check_iter_canceled(pm_iter *it, size_t count)
{
    pm_report r;
    uint64_t y;
    for (int i = 0; i < 3; i++)
        CHECK_STATUS(PM_ECANCELED, pm_iter_next(it, &y, NULL, NULL));
    CHECK_STATUS(PM_OK, pm_iter_report(it, &r));
    CHECK_STATUS(PM_ECANCELED, r.status);
    CHECK_OP_SIZE(r.done, >=, count);
    CHECK_STATUS(PM_ECANCELED, pm_iter_free(it));
}

static void test_imap_prerequested(void)
{
    pm_cancel *tok = pm_cancel_new();
    CHECK(tok != NULL);
    for (size_t e = 0; e < PMT_NEXECS; e++)
        for (int unordered = 0; unordered < 2; unordered++) {
            CHECK_CTX("imap prerequested %s unordered %d", pmt_execs[e].name,
                      unordered);
            pm_cancel_request(tok);
            counter src = {.limit = SIZE_MAX};
            item_ctx c;
            memset(&c, 0, sizeof c);
            pm_opts o = pmt_opts(&pmt_execs[e]);
            o.cancel = tok;
            o.unordered = unordered;
            o.window = 16;
            pm_iter *it = pm_imap(fn, &c, src_count, &src, 8, 8, &o);
            CHECK(it != NULL);
            size_t count;
            CHECK_STATUS(PM_ECANCELED, drain(it, unordered, 0, &count, NULL));
            CHECK_OP_SIZE(count, <=, 16);
            CHECK_OP_SIZE(atomic_load(&src.next), <=, 16);
            check_iter_canceled(it, count);
            CHECK_NO_THREAD_LEAK(base_threads);

            /* Reset: a finite stream with the same token runs to its end. */
            pm_cancel_reset(tok);
            counter fin = {.limit = 500};
            it = pm_imap(fn, &c, src_count, &fin, 8, 8, &o);
            CHECK(it != NULL);
            CHECK_STATUS(0, drain(it, unordered, 0, &count, NULL));
            CHECK_EQ_SIZE(count, 500);
            CHECK_STATUS(PM_OK, pm_iter_free(it));
        }
    pm_cancel_free(tok);
}

/* Canceled while the consumer is not inside pm_iter_next: results already
 * made may still come (at most the window), then PM_ECANCELED. */
static void test_imap_between_calls(void)
{
    pm_cancel *tok = pm_cancel_new();
    CHECK(tok != NULL);
    for (size_t e = 0; e < PMT_NEXECS; e++) {
        CHECK_CTX("imap canceled between calls %s", pmt_execs[e].name);
        counter src = {.limit = SIZE_MAX};
        item_ctx c;
        memset(&c, 0, sizeof c);
        pm_opts o = pmt_opts(&pmt_execs[e]);
        o.cancel = tok;
        o.window = 8;
        pm_iter *it = pm_imap(fn, &c, src_count, &src, 8, 8, &o);
        CHECK(it != NULL);
        uint64_t y;
        size_t idx;
        for (size_t i = 0; i < 5; i++) {
            CHECK_STATUS(1, pm_iter_next(it, &y, &idx, NULL));
            CHECK_EQ_SIZE(idx, i);
        }
        pm_cancel_request(tok);
        size_t count;
        CHECK_STATUS(PM_ECANCELED, drain(it, 0, 5, &count, NULL));
        CHECK_OP_SIZE(count, <=, 8);
        check_iter_canceled(it, count + 5);
        pm_cancel_reset(tok);
        CHECK_NO_THREAD_LEAK(base_threads);
    }
    pm_cancel_free(tok);
}

#if PMT_HAVE_THREADS
/* An endless stream of 1 ms items canceled after 100 ms by a thread or by a
 * signal to the consumer. */
static void test_imap_midway(int by_signal)
{
    for (size_t e = 0; e < sizeof cancel_execs / sizeof cancel_execs[0]; e++)
        for (int unordered = 0; unordered < 2; unordered++) {
            CHECK_CTX("imap canceled midway by %s: %s unordered %d",
                      by_signal ? "a signal" : "a thread", cancel_execs[e].name,
                      unordered);
            pm_cancel *tok = pm_cancel_new();
            CHECK(tok != NULL);
            signal_token = tok;
            counter src = {.limit = SIZE_MAX};
            item_ctx c;
            memset(&c, 0, sizeof c);
            c.sleep_s = 0.001;
            pm_opts o = pmt_opts(&cancel_execs[e]);
            o.cancel = tok;
            o.unordered = unordered;
            canceller k = {.tok = tok, .delay = 0.1, .by_signal = by_signal,
                           .target = pthread_self(), .calls = &c.calls};
            pm_iter *it = pm_imap(fn, &c, src_count, &src, 8, 8, &o);
            CHECK(it != NULL);
            pthread_t t = pmt_thread_start(cancel_later, &k);
            size_t count;
            double ended;
            int rc = drain(it, unordered, 0, &count, &ended);
            pthread_join(t, NULL);
            CHECK_STATUS(PM_ECANCELED, rc);
            CHECK_OP_DBL(ended - k.requested, <, PROMPT_S);
            CHECK_OP_SIZE(count, >=, 1);
            check_iter_canceled(it, count);
            pm_cancel_free(tok);
            CHECK_NO_THREAD_LEAK(base_threads);
        }
}
#endif

int main(void)
{
    base_threads = pmt_thread_baseline();
#if PMT_HAVE_THREADS && defined(SIGALRM)
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    CHECK_EQ_INT(sigaction(SIGALRM, &sa, NULL), 0);
#endif
    PMT_RUN(test_prerequested());
    PMT_RUN(test_imap_prerequested());
    PMT_RUN(test_imap_between_calls());
#if PMT_HAVE_THREADS
    PMT_RUN(test_map_midway(0));
    PMT_RUN(test_map_midway(1));
    PMT_RUN(test_map_alarm());
    PMT_RUN(test_shared_token());
    PMT_RUN(test_imap_midway(0));
    PMT_RUN(test_imap_midway(1));
#endif
    CHECK_NO_THREAD_LEAK(base_threads);
    return pmt_done("test_cancel");
}
