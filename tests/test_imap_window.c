/*
 * test_imap_window.c - pm_imap flow control on every executor: small windows
 * (1 to 3) with n around them, backpressure (with a slow consumer, the feeder
 * runs ahead but never more than `window` items), a slow item in an ordered
 * stream (the feeder goes on within the window, nothing after it is consumed
 * before it), and a slow source (results stream out as records come in;
 * pm_iter_free waits for the source call in progress only).
 *
 * The source counts what it hands out (`pulled`) and the consumer counts what
 * it got (`consumed`): after each pm_iter_next, pulled <= consumed + window.
 */
#include "check.h"
#include "conformance.h"
#include "imap_util.h"

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

/* A burst, then a pause (a socket gone quiet): the source gives BURST
 * records at once, says PM_SOURCE_LATER, then waits until the consumer has
 * every result of the burst before it gives one last record. The burst must
 * reach the consumer during the pause, not wait in a part-filled chunk for
 * the next record. The pause is bounded (5 s), so the old behaviour fails
 * the check instead of hanging. */
#define BURST 3000

typedef struct bursty {
    size_t given;
    int said_later;
    int gave_up;               /* the pause ended by its bound: the burst was held back */
    atomic_size_t consumed;
} bursty;

static int bursty_next(void *p, void *item)
{
    bursty *b = p;
    if (b->given == BURST && !b->said_later) {
        b->said_later = 1;
        return PM_SOURCE_LATER;
    }
    if (b->given == BURST) {
        double until = pmt_now() + 5.0;
        while (atomic_load(&b->consumed) < BURST && pmt_now() < until)
            pmt_sleep(0.001);
        b->gave_up = atomic_load(&b->consumed) < BURST;
    }
    if (b->given > BURST)
        return PM_SOURCE_END;
    uint64_t v = b->given++;
    memcpy(item, &v, sizeof v);
    return PM_SOURCE_ITEM;
}

static int twice(void *user, const void *in, void *out)
{
    (void)user;
    uint64_t v;
    memcpy(&v, in, sizeof v);
    v *= 2;
    memcpy(out, &v, sizeof v);
    return 0;
}

static void test_burst_then_pause(void)
{
    for (size_t e = 0; e < PMT_NEXECS; e++)
        for (int unordered = 0; unordered < 2; unordered++) {
            CHECK_CTX("burst then pause: %s %s", pmt_execs[e].name,
                      unordered ? "unordered" : "ordered");
            bursty b = {0};
            pm_opts o = pmt_opts(&pmt_execs[e]);
            o.unordered = unordered;
            pm_iter *it = pm_imap(twice, NULL, bursty_next, &b, 8, 8, &o);
            CHECK(it != NULL);
            uint64_t y, sum = 0;
            size_t idx, n = 0;
            int r;
            while ((r = pm_iter_next(it, &y, &idx, NULL)) == 1) {
                CHECK_EQ_SIZE((size_t)y, 2 * idx);
                sum += idx;
                if (idx < BURST)
                    atomic_fetch_add(&b.consumed, 1);
                n++;
            }
            CHECK_STATUS(0, r);
            CHECK_EQ_SIZE(n, BURST + 1);
            CHECK_EQ_SIZE((size_t)sum, (size_t)BURST * (BURST + 1) / 2);
            CHECK(!b.gave_up && "the burst's results waited for the pause to end");
            CHECK_STATUS(PM_OK, pm_iter_free(it));
        }
    CHECK_NO_THREAD_LEAK(base_threads);
}

#if PMT_HAVE_THREADS
/* consumer_only: the thread in pm_iter_next never runs an item, so an item
 * that runs long cannot hold back results already done. Item 0 waits until
 * the consumer has every other result (bounded: 5 s, then `gave_up`). */
typedef struct held {
    pthread_t consumer;
    atomic_int on_consumer;     /* items run by the consumer thread */
    atomic_size_t consumed;
    size_t n;
    atomic_int gave_up;
} held;

static int hold_first(void *user, const void *in, void *out)
{
    held *h = user;
    uint64_t v;
    memcpy(&v, in, sizeof v);
    if (pthread_equal(pthread_self(), h->consumer))
        atomic_fetch_add(&h->on_consumer, 1);
    if (v == 0) {
        double until = pmt_now() + 5.0;
        while (atomic_load(&h->consumed) < h->n - 1 && pmt_now() < until)
            pmt_sleep(0.001);
        if (atomic_load(&h->consumed) < h->n - 1)
            atomic_store(&h->gave_up, 1);
    }
    v += 1;
    memcpy(out, &v, sizeof v);
    return 0;
}

static void test_consumer_only(void)
{
    /* Two workers at least besides the consumer: one held by item 0, one
     * for the rest (with threads = 2 only one worker runs items). */
    static const int threads[] = {3, 4};
    for (int t = 0; t < 2; t++) {
        CHECK_CTX("consumer_only threads %d", threads[t]);
        held h = {.consumer = pthread_self(), .n = 400};
        src s;
        src_init(&s, h.n);
        pm_iter *it = pm_imap(hold_first, &h, src_next, &s, 8, 8,
                              &(pm_opts){.threads = threads[t], .unordered = 1, .chunksize = 1,
                                         .consumer_only = 1});
        CHECK(it != NULL);
        uint64_t y;
        size_t idx, n = 0;
        int r;
        while ((r = pm_iter_next(it, &y, &idx, NULL)) == 1) {
            CHECK_EQ_SIZE((size_t)y, idx + 1);
            if (idx != 0)
                atomic_fetch_add(&h.consumed, 1);
            n++;
        }
        CHECK_STATUS(0, r);
        CHECK_EQ_SIZE(n, h.n);
        CHECK_EQ_INT(atomic_load(&h.on_consumer), 0);
        CHECK(!atomic_load(&h.gave_up) && "results waited for the long item");
        CHECK_STATUS(PM_OK, pm_iter_free(it));
    }
    CHECK_NO_THREAD_LEAK(base_threads);
}
#endif

int main(void)
{
    base_threads = pmt_thread_baseline();
    PMT_RUN(test_small_windows());
    PMT_RUN(test_backpressure());
#if PMT_HAVE_THREADS
    PMT_RUN(test_slow_item());
#endif
    PMT_RUN(test_slow_source());
    PMT_RUN(test_burst_then_pause());
#if PMT_HAVE_THREADS
    PMT_RUN(test_consumer_only());
#endif
    CHECK_NO_THREAD_LEAK(base_threads);
    return pmt_done("test_imap_window");
}
