/*
 * test_batch.c - batch (chunk) functions, pm_map_batch and pm_imap_batch, on
 * every local executor: results land at their index whatever the chunking,
 * `first` is the item's index, codes and both error modes behave as with
 * pm_fn, partial returns are called again, broken returns fail clearly,
 * progress counts items, and on processes a crash or a runaway item inside a
 * batch marks exactly that item. Also per-call thread caps on a pool.
 */
#include "check.h"
#include "conformance.h"

#include <stdint.h>
#if PMT_HAVE_FORK
#include <signal.h>
#endif

#define FAIL_CODE 11

typedef struct bctx {
    int64_t fail_at;     /* item that fails (-1: none) */
    int64_t crash_at;    /* processes: item that segfaults (-1: none) */
    int64_t loop_at;     /* processes: item that never returns (-1: none) */
    size_t max_per_call; /* process at most this many per call (0: all) */
    int broken;          /* 1: return 0; 2: return count + 1 */
} bctx;

/* out[k] = 2 * in[k] + first + k: the record and the index must agree. */
static size_t twice(void *user, size_t first, size_t count, const void *in, void *out, int *codes)
{
    const bctx *c = user;
    const int64_t *x = in;
    int64_t *y = out;
    if (c->broken == 1)
        return 0;
    if (c->broken == 2)
        return count + 1;
    size_t n = c->max_per_call && c->max_per_call < count ? c->max_per_call : count;
    for (size_t k = 0; k < n; k++) {
        int64_t i = (int64_t)(first + k);
        CHECK(codes[k] == 0); /* codes come zeroed */
#if PMT_HAVE_FORK
        if (i == c->crash_at) {
            signal(SIGSEGV, SIG_DFL);
            raise(SIGSEGV);
        }
        if (i == c->loop_at)
            for (;;)
                pmt_sleep(1);
#endif
        if (i == c->fail_at)
            codes[k] = FAIL_CODE;
        if (y)
            y[k] = 2 * x[k] + i;
    }
    return n;
}

static int64_t *iota64(size_t n)
{
    int64_t *v = malloc((n ? n : 1) * sizeof *v);
    CHECK(v != NULL);
    for (size_t i = 0; i < n; i++)
        v[i] = (int64_t)i;
    return v;
}

static const pm_backend backends[] = {
    PM_SERIAL,
#if PMT_HAVE_THREADS
    PM_THREADS,
#endif
#if PMT_HAVE_FORK
    PM_PROCESSES,
#endif
};
#define NBACKENDS (sizeof backends / sizeof backends[0])

static pm_opts opts_for(pm_backend b, long chunksize)
{
    return (pm_opts){.backend = b, .threads = b == PM_THREADS ? 3 : 0,
                     .procs = b == PM_PROCESSES ? 2 : 0, .chunksize = chunksize};
}

static void test_map_results(void)
{
    static const size_t ns[] = {0, 1, 7, 1000, 100003};
    static const long chunks[] = {0, 1, 64};
    for (size_t b = 0; b < NBACKENDS; b++)
        for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
            for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++)
                for (size_t per = 0; per < 2; per++) {
                    size_t n = ns[a];
                    if (backends[b] == PM_PROCESSES && chunks[c] == 1 && n > 1000)
                        continue; /* (a round trip per item: covered by n <= 1000) */
                    CHECK_CTX("map backend %d n %zu chunksize %ld max_per_call %zu", backends[b],
                              n, chunks[c], per ? (size_t)5 : (size_t)0);
                    bctx cx = {-1, -1, -1, per ? 5 : 0, 0};
                    int64_t *in = iota64(n), *out = calloc(n ? n : 1, sizeof *out);
                    pm_report rep;
                    pm_opts o = opts_for(backends[b], chunks[c]);
                    CHECK_STATUS(PM_OK, pm_map_batch(twice, &cx, in, sizeof *in, out, sizeof *out,
                                                     n, &o, &rep));
                    CHECK_EQ_SIZE(rep.done, n);
                    CHECK_EQ_SIZE(rep.failed, 0);
                    for (size_t i = 0; i < n; i++)
                        CHECK_EQ_INT(out[i], 3 * (int64_t)i);
                    free(in);
                    free(out);
                }
}

static void test_map_errors(void)
{
    const size_t n = 5000;
    for (size_t b = 0; b < NBACKENDS; b++) {
        CHECK_CTX("errors, backend %d", backends[b]);
        bctx cx = {1234, -1, -1, 0, 0};
        int64_t *in = iota64(n), *out = calloc(n, sizeof *out);
        int *codes = calloc(n, sizeof *codes);
        pm_opts o = opts_for(backends[b], 0);
        o.on_error = PM_RETURN;
        o.codes = codes;
        pm_report rep;
        CHECK_STATUS(PM_OK, pm_map_batch(twice, &cx, in, sizeof *in, out, sizeof *out, n, &o, &rep));
        CHECK_EQ_SIZE(rep.failed, 1);
        CHECK_EQ_SIZE(rep.first_error_index, 1234);
        for (size_t i = 0; i < n; i++)
            CHECK_EQ_INT(codes[i], i == 1234 ? FAIL_CODE : 0);
        /* raise: the map stops, the status and report name the item */
        o = opts_for(backends[b], 0);
        CHECK_STATUS(PM_EITEM, pm_map_batch(twice, &cx, in, sizeof *in, out, sizeof *out, n, &o,
                                            &rep));
        CHECK_EQ_SIZE(rep.first_error_index, 1234);
        CHECK_EQ_INT(rep.first_error_code, FAIL_CODE);
        /* broken batch functions: every item they were given fails clearly */
        for (int broken = 1; broken <= 2; broken++) {
            bctx bad = {-1, -1, -1, 0, broken};
            o = opts_for(backends[b], 0);
            o.on_error = PM_RETURN;
            o.codes = codes;
            CHECK_STATUS(PM_OK, pm_map_batch(twice, &bad, in, sizeof *in, out, sizeof *out, 100,
                                             &o, &rep));
            CHECK_EQ_SIZE(rep.failed, 100);
            for (size_t i = 0; i < 100; i++)
                CHECK_STATUS(PM_EINVAL, codes[i]);
            o.on_error = PM_RAISE;
            o.codes = NULL;
            CHECK_STATUS(PM_EITEM, pm_map_batch(twice, &bad, in, sizeof *in, out, sizeof *out,
                                                100, &o, &rep));
            CHECK_STATUS(PM_EINVAL, rep.first_error_code);
        }
        free(in);
        free(out);
        free(codes);
    }
    CHECK_STATUS(PM_EINVAL, pm_map_batch(NULL, NULL, NULL, 8, NULL, 0, 0, NULL, NULL));
}

/* Progress counts items, not calls. */
static void on_progress(void *user, const pm_progress *p)
{
    size_t *last = user;
    CHECK_OP_SIZE(p->done, >=, *last);
    *last = p->done;
}

static void test_progress(void)
{
    const size_t n = 20000;
    for (size_t b = 0; b < NBACKENDS; b++) {
        CHECK_CTX("progress, backend %d", backends[b]);
        bctx cx = {-1, -1, -1, 0, 0};
        int64_t *in = iota64(n), *out = calloc(n, sizeof *out);
        size_t last = 0;
        pm_opts o = opts_for(backends[b], 0);
        o.on_progress = on_progress;
        o.progress_user = &last;
        CHECK_STATUS(PM_OK, pm_map_batch(twice, &cx, in, sizeof *in, out, sizeof *out, n, &o,
                                         NULL));
        CHECK_EQ_SIZE(last, n);
        free(in);
        free(out);
    }
}

static void test_imap(void)
{
    for (size_t b = 0; b < NBACKENDS; b++)
        for (int unordered = 0; unordered < 2; unordered++) {
            CHECK_CTX("imap backend %d unordered %d", backends[b], unordered);
            const int64_t n = 30000;
            bctx cx = {777, -1, -1, 3, 0};
            pmt_range c = {0, n};
            pm_opts o = opts_for(backends[b], 0);
            o.unordered = unordered;
            o.on_error = PM_RETURN;
            pm_iter *it = pm_imap_batch(twice, &cx, pmt_range_src, &c, sizeof(int64_t),
                                        sizeof(int64_t), &o);
            CHECK(it != NULL);
            char *seen = calloc((size_t)n, 1);
            int64_t v, got = 0;
            size_t index;
            int code, r;
            while ((r = pm_iter_next(it, &v, &index, &code)) == 1) {
                CHECK(index < (size_t)n && !seen[index]);
                seen[index] = 1;
                if (!unordered)
                    CHECK_EQ_SIZE(index, (size_t)got);
                CHECK_EQ_INT(code, index == 777 ? FAIL_CODE : 0);
                if (!code)
                    CHECK_EQ_INT(v, 3 * (int64_t)index);
                got++;
            }
            CHECK_EQ_INT(r, 0);
            CHECK_EQ_INT(got, n);
            CHECK_STATUS(PM_OK, pm_iter_free(it));
            free(seen);
        }
    pm_iter *bad = pm_imap_batch(NULL, NULL, pmt_range_src, NULL, 8, 8, NULL);
    CHECK(bad != NULL);
    CHECK_STATUS(PM_EINVAL, pm_iter_next(bad, NULL, NULL, NULL));
    CHECK_STATUS(PM_EINVAL, pm_iter_free(bad));
}

#if PMT_HAVE_FORK
/* A crash or a runaway item inside a batch: exactly that item is marked. */
static void test_processes_isolation(void)
{
    const size_t n = 3000;
    for (int loop = 0; loop < 2; loop++) {
        CHECK_CTX("processes, a %s item inside a batch", loop ? "runaway" : "crashing");
        bctx cx = {-1, loop ? -1 : 1500, loop ? 2100 : -1, 0, 0};
        int64_t *in = iota64(n), *out = calloc(n, sizeof *out);
        int *codes = calloc(n, sizeof *codes);
        pm_opts o = {.backend = PM_PROCESSES, .procs = 2, .chunksize = 200,
                     .on_error = PM_RETURN, .codes = codes,
                     .timeout_s = loop ? (PMT_SANITIZED ? 1.0 : 0.3) : 0};
        pm_report rep;
        CHECK_STATUS(PM_OK, pm_map_batch(twice, &cx, in, sizeof *in, out, sizeof *out, n, &o,
                                         &rep));
        size_t bad = loop ? 2100 : 1500;
        CHECK_EQ_SIZE(rep.failed, 1);
        for (size_t i = 0; i < n; i++) {
            CHECK_CTX_ADD("");
            CHECK_STATUS(i == bad ? (loop ? PM_ETIMEOUT : PM_ECRASH) : 0, codes[i]);
            if (i != bad)
                CHECK_EQ_INT(out[i], 3 * (int64_t)i);
        }
        if (!loop)
            CHECK_EQ_INT(rep.signal, SIGSEGV);
        free(in);
        free(out);
        free(codes);
    }
}
#endif

#if PMT_HAVE_THREADS
/* opts.threads on a call with a threads pool caps the workers it uses. */
static pthread_t seen_threads[64];
static atomic_int nseen;
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t note_thread(void *user, size_t first, size_t count, const void *in, void *out,
                          int *codes)
{
    (void)user, (void)first, (void)in, (void)out, (void)codes;
    pthread_t self = pthread_self();
    pthread_mutex_lock(&seen_lock);
    int known = 0;
    for (int k = 0; k < atomic_load(&nseen); k++)
        known |= pthread_equal(seen_threads[k], self);
    if (!known && atomic_load(&nseen) < 64)
        seen_threads[atomic_fetch_add(&nseen, 1)] = self;
    pthread_mutex_unlock(&seen_lock);
    pmt_sleep(0.0002 * (double)count); /* long enough for every worker to want a share */
    return count;
}

static void test_thread_cap(void)
{
    pm_pool *pool = pm_pool_new(&(pm_opts){.threads = 4});
    CHECK(pool != NULL);
    const size_t n = 2000;
    int64_t *in = iota64(n);
    for (int cap = 0; cap <= 5; cap++) {
        CHECK_CTX("pool of 4, threads %d", cap);
        atomic_store(&nseen, 0);
        pm_opts o = {.pool = pool, .threads = cap, .chunksize = 4};
        CHECK_STATUS(PM_OK, pm_map_batch(note_thread, NULL, in, sizeof *in, NULL, 0, n, &o, NULL));
        int most = cap == 0 || cap > 4 ? 4 : cap;
        CHECK_OP_INT(atomic_load(&nseen), <=, most);
        if (cap == 1)
            CHECK(pthread_equal(seen_threads[0], pthread_self())); /* the caller alone */
    }
    free(in);
    pm_pool_free(pool);
}
#endif

int main(void)
{
    PMT_RUN(test_map_results());
    PMT_RUN(test_map_errors());
    PMT_RUN(test_progress());
    PMT_RUN(test_imap());
#if PMT_HAVE_FORK
    PMT_RUN(test_processes_isolation());
#endif
#if PMT_HAVE_THREADS
    PMT_RUN(test_thread_cap());
#endif
    return pmt_done("test_batch");
}
