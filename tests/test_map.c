/*
 * test_map.c - pm_map end to end: every executor x chunksize x n around chunk
 * and thread boundaries, compared with a plain loop (the oracle); record
 * sizes 1..1000 bytes, in-place maps, side-effect-only maps, real
 * concurrency, warm pools (also shared by several threads), and the small
 * helpers (version, CPU count, status names).
 *
 * The item functions also check where they are called: `in` and `out` must
 * point at the records of the same item, and every item must run exactly once.
 */
#include "check.h"
#include "conformance.h"

static const long chunksizes[] = {0, 1, 2, 7, 64};
#define NCHUNKS (sizeof chunksizes / sizeof chunksizes[0])
static const size_t sizes[] = {0, 1, 2, 3, 6, 7, 8, 9, 63, 64, 65,
                               127, 128, 129, 1000, 100003};
#define NSIZES (sizeof sizes / sizeof sizes[0])

/* What an item function knows about the call it runs in. */
typedef struct ctx {
    const unsigned char *in;
    size_t in_stride;
    unsigned char *out;     /* NULL: side-effect-only map */
    size_t out_stride;
    size_t n, rec;          /* items; bytes per record (byte maps) */
    uint64_t salt;
    atomic_int *hits;       /* times each item ran */
    atomic_int bad;         /* an in/out pointer that was not item i's */
    atomic_int inside, max_inside, rendezvous; /* concurrency probe */
} ctx;

/* The item index of `in`, or records a bad pointer and returns n. */
static size_t item_of(ctx *c, const void *in, const void *out)
{
    size_t off = (size_t)((const unsigned char *)in - c->in);
    size_t i = off / c->in_stride;
    if (off % c->in_stride != 0 || i >= c->n) {
        atomic_store(&c->bad, 1);
        return c->n;
    }
    if (c->out ? out != c->out + i * c->out_stride : out != NULL)
        atomic_store(&c->bad, 2);
    atomic_fetch_add_explicit(&c->hits[i], 1, memory_order_relaxed);
    return i;
}

static uint64_t f64(uint64_t x, uint64_t salt) { return pmt_mix(x ^ salt) + 1; }

static int fn_u64(void *user, const void *in, void *out)
{
    ctx *c = user;
    if (item_of(c, in, out) == c->n)
        return 0;
    uint64_t x;
    memcpy(&x, in, sizeof x);
    x = f64(x, c->salt);
    memcpy(out, &x, sizeof x);
    return 0;
}

/* Byte records of c->rec bytes; safe in place (each byte read, then written). */
static void fbytes(const unsigned char *in, unsigned char *out, size_t rec,
                   uint64_t salt)
{
    unsigned char k = in[0];
    for (size_t j = 0; j < rec; j++)
        out[j] = (unsigned char)(in[j] * 3u + k + j + salt);
}

static int fn_bytes(void *user, const void *in, void *out)
{
    ctx *c = user;
    if (item_of(c, in, out) != c->n)
        fbytes(in, out, c->rec, c->salt);
    return 0;
}

/* 24-byte structs in, one double out (different strides). */
typedef struct rec24 {
    double a;
    int64_t b;
    int32_t c, d;
} rec24;

static double f24(const rec24 *r) { return r->a * 0.5 + (double)r->b - r->c * r->d; }

static int fn_rec24(void *user, const void *in, void *out)
{
    ctx *c = user;
    if (item_of(c, in, out) != c->n) {
        rec24 r;
        memcpy(&r, in, sizeof r);
        double y = f24(&r);
        memcpy(out, &y, sizeof y);
    }
    return 0;
}

static int fn_side(void *user, const void *in, void *out)
{
    item_of(user, in, out);
    return 0;
}

static void ctx_init(ctx *c, const void *in, size_t in_stride, void *out,
                     size_t out_stride, size_t n)
{
    memset(c, 0, sizeof *c);
    c->in = in;
    c->in_stride = in_stride;
    c->out = out;
    c->out_stride = out_stride;
    c->n = n;
    c->salt = pmt_mix(n + 12345);
    c->hits = calloc(n + 1, sizeof *c->hits);
    CHECK(c->hits != NULL);
}

/* Every item ran exactly once, with its own records. */
static void ctx_check_free(ctx *c)
{
    CHECK_EQ_INT(atomic_load(&c->bad), 0);
    for (size_t i = 0; i < c->n; i++)
        if (atomic_load(&c->hits[i]) != 1)
            CHECK_EQ_INT(atomic_load(&c->hits[i]), 1);
    free(c->hits);
}

static void check_ok_report(const pm_report *r, size_t n)
{
    CHECK_STATUS(PM_OK, r->status);
    CHECK_EQ_SIZE(r->done, n);
    CHECK_EQ_SIZE(r->failed, 0);
    CHECK_EQ_SIZE(r->first_error_index, (size_t)-1);
    CHECK_EQ_INT(r->first_error_code, 0);
    CHECK_EQ_INT(r->signal, 0);
    CHECK(r->elapsed_s >= 0 && r->elapsed_s < 60);
}

/* 8-byte records on every executor x chunksize x n; codes all 0. */
static void test_table(void)
{
    size_t nmax = sizes[NSIZES - 1];
    uint64_t *in = malloc(nmax * sizeof *in), *out = malloc(nmax * sizeof *out);
    int *codes = malloc(nmax * sizeof *codes);
    CHECK(in && out && codes);
    for (size_t e = 0; e < PMT_NEXECS; e++)
        for (size_t k = 0; k < NCHUNKS; k++)
            for (size_t s = 0; s < NSIZES; s++) {
                size_t n = sizes[s];
                if (n > 1000 && PMT_SANITIZED && chunksizes[k] < 7)
                    n = 20011;
                CHECK_CTX("table %s chunksize %ld n %zu", pmt_execs[e].name,
                          chunksizes[k], n);
                for (size_t i = 0; i < n; i++) {
                    in[i] = pmt_mix(i * 7 + 3);
                    out[i] = 0xdeadbeef;
                    codes[i] = -12345;
                }
                ctx c;
                ctx_init(&c, in, sizeof *in, out, sizeof *out, n);
                pm_opts o = pmt_opts(&pmt_execs[e]);
                o.chunksize = chunksizes[k];
                o.codes = codes;
                pm_report r;
                memset(&r, 0x5a, sizeof r);
                int rc = pm_map(fn_u64, &c, in, sizeof *in, out, sizeof *out,
                                n, &o, &r);
                CHECK_STATUS(PM_OK, rc);
                check_ok_report(&r, n);
                ctx_check_free(&c);
                for (size_t i = 0; i < n; i++) {
                    if (out[i] != f64(in[i], c.salt))
                        CHECK_EQ_SIZE(out[i], f64(in[i], c.salt));
                    if (codes[i] != 0)
                        CHECK_EQ_INT(codes[i], 0);
                }
            }
    free(in);
    free(out);
    free(codes);
}

/* Byte records of 1, 8, 24 and 1000 bytes, out of place and in place; and
 * 24-byte structs to doubles. n is capped at 4 MB of records. */
static void test_records(void)
{
    static const size_t recs[] = {1, 8, 24, 1000};
    static const long cs[] = {0, 7};
    static const size_t ns[] = {0, 1, 2, 7, 8, 9, 64, 65, 1000, 100003};
    for (size_t e = 0; e < PMT_NEXECS; e++)
        for (size_t k = 0; k < 2; k++)
            for (size_t ri = 0; ri < 4; ri++)
                for (size_t s = 0; s < sizeof ns / sizeof ns[0]; s++) {
                    size_t rec = recs[ri], n = ns[s];
                    if (n * rec > ((size_t)4 << 20) / PMT_SCALE)
                        continue;
                    unsigned char *in = malloc(n * rec + 1);
                    unsigned char *orig = malloc(n * rec + 1);
                    unsigned char *out = malloc(n * rec + 1);
                    CHECK(in && orig && out);
                    for (size_t i = 0; i < n * rec; i++)
                        orig[i] = in[i] = (unsigned char)pmt_mix(i);
                    memset(out, 0xee, n * rec);
                    pm_opts o = pmt_opts(&pmt_execs[e]);
                    o.chunksize = cs[k];
                    for (int inplace = 0; inplace < 2; inplace++) {
                        CHECK_CTX("records %s chunksize %ld rec %zu n %zu %s",
                                  pmt_execs[e].name, cs[k], rec, n,
                                  inplace ? "in place" : "out of place");
                        unsigned char *dst = inplace ? in : out;
                        ctx c;
                        ctx_init(&c, in, rec, dst, rec, n);
                        c.rec = rec;
                        pm_report r;
                        int rc = pm_map(fn_bytes, &c, in, rec, dst, rec, n, &o, &r);
                        CHECK_STATUS(PM_OK, rc);
                        check_ok_report(&r, n);
                        ctx_check_free(&c);
                        unsigned char want[1000];
                        for (size_t i = 0; i < n; i++) {
                            fbytes(orig + i * rec, want, rec, c.salt);
                            if (memcmp(dst + i * rec, want, rec) != 0)
                                CHECK_EQ_INT(memcmp(dst + i * rec, want, rec), 0);
                        }
                        if (!inplace) /* the input is read only */
                            CHECK_EQ_INT(n ? memcmp(in, orig, n * rec) : 0, 0);
                    }
                    free(in);
                    free(orig);
                    free(out);
                }

    /* 24-byte structs in, doubles out. */
    for (size_t e = 0; e < PMT_NEXECS; e++)
        for (size_t s = 0; s < sizeof ns / sizeof ns[0]; s++) {
            size_t n = ns[s];
            CHECK_CTX("rec24->double %s n %zu", pmt_execs[e].name, n);
            rec24 *in = malloc((n + 1) * sizeof *in);
            double *out = malloc((n + 1) * sizeof *out);
            CHECK(in && out);
            for (size_t i = 0; i < n; i++) {
                in[i].a = (double)i * 1.25;
                in[i].b = (int64_t)(pmt_mix(i) % 1000000);
                in[i].c = (int32_t)(i % 1000);
                in[i].d = (int32_t)(i % 7) - 3;
            }
            ctx c;
            ctx_init(&c, in, sizeof *in, out, sizeof *out, n);
            pm_opts o = pmt_opts(&pmt_execs[e]);
            int rc = pm_map(fn_rec24, &c, in, sizeof *in, out, sizeof *out, n,
                            &o, NULL);
            CHECK_STATUS(PM_OK, rc);
            ctx_check_free(&c);
            for (size_t i = 0; i < n; i++)
                if (out[i] != f24(&in[i]))
                    CHECK_EQ_DBL(out[i], f24(&in[i]));
            free(in);
            free(out);
        }
}

/* out NULL, out_stride 0: the function only has side effects (hit counts),
 * and is given out == NULL. */
static void test_side_effects(void)
{
    static const size_t ns[] = {0, 1, 2, 9, 64, 65, 1000, 30001};
    for (size_t e = 0; e < PMT_NEXECS; e++)
        for (size_t k = 0; k < NCHUNKS; k++)
            for (size_t s = 0; s < sizeof ns / sizeof ns[0]; s++) {
                size_t n = ns[s];
                CHECK_CTX("side effects %s chunksize %ld n %zu",
                          pmt_execs[e].name, chunksizes[k], n);
                int *in = malloc((n + 1) * sizeof *in);
                CHECK(in != NULL);
                ctx c;
                ctx_init(&c, in, sizeof *in, NULL, 0, n);
                pm_opts o = pmt_opts(&pmt_execs[e]);
                o.chunksize = chunksizes[k];
                pm_report r;
                int rc = pm_map(fn_side, &c, in, sizeof *in, NULL, 0, n, &o, &r);
                CHECK_STATUS(PM_OK, rc);
                check_ok_report(&r, n);
                ctx_check_free(&c);
                free(in);
            }
    /* n == 0 with no input at all is fine, with or without outputs. */
    CHECK_STATUS(PM_OK, pm_map(fn_side, NULL, NULL, 8, NULL, 0, 0, NULL, NULL));
    uint64_t one;
    CHECK_STATUS(PM_OK, pm_map(fn_side, NULL, NULL, 8, &one, 8, 0, NULL, NULL));
}

#if PMT_HAVE_THREADS
/* The first `want` items wait (up to 5 s) until `want` items run at once. */
static int fn_rendezvous(void *user, const void *in, void *out)
{
    ctx *c = user;
    (void)out;
    size_t i = *(const size_t *)in;
    int now = atomic_fetch_add(&c->inside, 1) + 1;
    int m = atomic_load(&c->max_inside);
    while (now > m && !atomic_compare_exchange_weak(&c->max_inside, &m, now))
        ;
    if (i < (size_t)atomic_load(&c->rendezvous)) {
        double end = pmt_now() + 5;
        while (atomic_load(&c->max_inside) < atomic_load(&c->rendezvous) &&
               pmt_now() < end)
            pmt_sleep(0.0005);
    } else {
        pmt_sleep(0.0002);
    }
    atomic_fetch_sub(&c->inside, 1);
    return 0;
}

/* PM_THREADS with t threads runs t items at once, and never more. */
static void test_concurrency(void)
{
    size_t idx[64];
    for (size_t i = 0; i < 64; i++)
        idx[i] = i;
    for (int t = 1; t <= 8; t *= 2) {
        CHECK_CTX("concurrency threads %d", t);
        ctx c;
        memset(&c, 0, sizeof c);
        atomic_store(&c.rendezvous, t);
        pm_opts o = {.backend = PM_THREADS, .threads = t, .chunksize = 1};
        CHECK_STATUS(PM_OK, pm_map(fn_rendezvous, &c, idx, sizeof idx[0], NULL,
                                   0, 64, &o, NULL));
        CHECK_EQ_INT(atomic_load(&c.max_inside), t);
    }
}
#endif

/* One map on a pool with 8-byte records; checks everything. */
static void pool_map(pm_pool *p, size_t n, long chunksize, uint64_t *in,
                     uint64_t *out)
{
    for (size_t i = 0; i < n; i++) {
        in[i] = pmt_mix(i ^ n);
        out[i] = 0;
    }
    ctx c;
    ctx_init(&c, in, sizeof *in, out, sizeof *out, n);
    pm_opts o = {.pool = p, .chunksize = chunksize};
    pm_report r;
    CHECK_STATUS(PM_OK, pm_map(fn_u64, &c, in, sizeof *in, out, sizeof *out, n,
                               &o, &r));
    check_ok_report(&r, n);
    ctx_check_free(&c);
    for (size_t i = 0; i < n; i++)
        if (out[i] != f64(in[i], c.salt))
            CHECK_EQ_SIZE(out[i], f64(in[i], c.salt));
}

#if PMT_HAVE_THREADS /* used by the threads part of test_pool only */
static int fn_fail_at_3(void *user, const void *in, void *out)
{
    (void)user;
    (void)out;
    return *(const uint64_t *)in == 3 ? 9 : 0;
}

typedef struct pool_user {
    pm_pool *pool;
    int id;
} pool_user;

static void *pool_thread(void *arg)
{
    pool_user *u = arg;
    uint64_t *in = malloc(2000 * sizeof *in), *out = malloc(2000 * sizeof *out);
    CHECK(in && out);
    for (int k = 0; k < 40 / PMT_SCALE + 5; k++) {
        size_t n = (size_t)(pmt_mix((uint64_t)(u->id * 1000 + k)) % 2000);
        CHECK_CTX("pool shared by threads: thread %d map %d n %zu", u->id, k, n);
        pool_map(u->pool, n, k % 3 == 0 ? 0 : k % 9, in, out);
    }
    free(in);
    free(out);
    return NULL;
}

/* An item function that maps 200 items on the pool it runs on; its output
 * is their sum. */
typedef struct nest {
    pm_pool *pool;
    atomic_int bad;
} nest;

static int fn_plus1(void *user, const void *in, void *out)
{
    (void)user;
    *(uint64_t *)out = *(const uint64_t *)in + 1;
    return 0;
}

static uint64_t nested_sum(uint64_t base)
{
    uint64_t sum = 0;
    for (uint64_t i = 0; i < 200; i++)
        sum += base * 1000 + i + 1;
    return sum;
}

static int fn_nested(void *user, const void *in, void *out)
{
    nest *ns = user;
    uint64_t base = *(const uint64_t *)in, xs[200], ys[200], sum = 0;
    for (uint64_t i = 0; i < 200; i++)
        xs[i] = base * 1000 + i;
    int rc = pm_map(fn_plus1, NULL, xs, 8, ys, 8, 200,
                    &(pm_opts){.pool = ns->pool, .chunksize = (long)(base % 3)}, NULL);
    for (size_t i = 0; i < 200; i++) {
        if (ys[i] != xs[i] + 1)
            atomic_store(&ns->bad, 1);
        sum += ys[i];
    }
    *(uint64_t *)out = sum;
    return rc == PM_OK ? 0 : 1000 - rc;
}

#endif

static void test_pool(void)
{
    uint64_t *in = malloc(5000 * sizeof *in), *out = malloc(5000 * sizeof *out);
    CHECK(in && out);

    /* A serial pool runs on the calling thread alone and still maps. */
    pm_pool *p = pm_pool_new(&(pm_opts){.backend = PM_SERIAL});
    CHECK(p != NULL);
    CHECK_EQ_INT(pm_pool_workers(p), 1);
    for (size_t n = 0; n < 300; n += 37) {
        CHECK_CTX("serial pool n %zu", n);
        pool_map(p, n, 0, in, out);
    }
    pm_pool_free(p);

#if PMT_HAVE_THREADS
    /* Defaults: the threads backend with one worker per CPU. */
    p = pm_pool_new(NULL);
    CHECK(p != NULL);
    CHECK_EQ_INT(pm_pool_workers(p), pm_cpu_count());
    pool_map(p, 1000, 0, in, out);
    pm_pool_free(p);

    /* Many maps on one 3-worker pool; the map's own backend/threads are
     * ignored in favour of the pool's. */
    p = pm_pool_new(&(pm_opts){.backend = PM_THREADS, .threads = 3});
    CHECK(p != NULL);
    CHECK_EQ_INT(pm_pool_workers(p), 3);
    for (int k = 0; k < 200; k++) {
        size_t n = (size_t)(k * 37 % 5000);
        CHECK_CTX("pool of 3, map %d n %zu", k, n);
        pool_map(p, n, k % 4 == 0 ? 0 : k % 11, in, out);
    }
    /* A failing map and a canceled map do not spoil the pool. */
    for (uint64_t i = 0; i < 100; i++)
        in[i] = i;
    pm_report r;
    CHECK_CTX("pool after a failing map");
    CHECK_STATUS(PM_EITEM, pm_map(fn_fail_at_3, NULL, in, 8, NULL, 0, 100,
                                  &(pm_opts){.pool = p}, &r));
    CHECK_EQ_SIZE(r.first_error_index, 3);
    pool_map(p, 1000, 0, in, out);
    CHECK_CTX("pool after a canceled map");
    pm_cancel *cancel = pm_cancel_new();
    CHECK(cancel != NULL);
    pm_cancel_request(cancel);
    CHECK_STATUS(PM_ECANCELED, pm_map(fn_fail_at_3, NULL, in, 8, NULL, 0, 100,
                                      &(pm_opts){.pool = p, .cancel = cancel},
                                      NULL));
    pm_cancel_free(cancel);
    pool_map(p, 1000, 0, in, out);

    /* Several threads share the pool at once. */
    enum { NT = 4 };
    pthread_t th[NT];
    pool_user u[NT];
    for (int t = 0; t < NT; t++) {
        u[t].pool = p;
        u[t].id = t;
        th[t] = pmt_thread_start(pool_thread, &u[t]);
    }
    for (int t = 0; t < NT; t++)
        pthread_join(th[t], NULL);
    pm_pool_free(p);

    /* Item functions may map on the pool they run on (here with one
     * background worker: the case that would deadlock if they waited). */
    for (int threads = 2; threads <= 4; threads += 2) {
        CHECK_CTX("nested maps on a pool of %d", threads);
        p = pm_pool_new(&(pm_opts){.backend = PM_THREADS, .threads = threads});
        CHECK(p != NULL);
        nest ns = {.pool = p};
        uint64_t bases[16], sums[16];
        for (uint64_t i = 0; i < 16; i++)
            bases[i] = i;
        pm_report r2;
        CHECK_STATUS(PM_OK, pm_map(fn_nested, &ns, bases, 8, sums, 8, 16,
                                   &(pm_opts){.pool = p, .chunksize = 1}, &r2));
        CHECK_EQ_SIZE(r2.failed, 0);
        CHECK_EQ_INT(atomic_load(&ns.bad), 0);
        for (uint64_t i = 0; i < 16; i++)
            CHECK_EQ_SIZE(sums[i], nested_sum(i));
        pm_pool_free(p);
    }
#endif
    pm_pool_free(NULL);
    free(in);
    free(out);
}

static void test_misc(void)
{
    CHECK_CTX("misc");
    CHECK_OP_INT(pm_cpu_count(), >=, 1);
    CHECK_EQ_STR(pm_version(), PM_VERSION_STRING);
    char v[32];
    snprintf(v, sizeof v, "%d.%d.%d", PM_VERSION_MAJOR, PM_VERSION_MINOR,
             PM_VERSION_PATCH);
    CHECK_EQ_STR(PM_VERSION_STRING, v);

    /* Every status has its name and sentence from the one list. */
#define X(name, value, text)                                                 \
    CHECK_EQ_INT(PM_##name, value);                                          \
    CHECK_EQ_STR(pm_err_name(value), #name);                                 \
    CHECK_EQ_STR(pm_strerror(value), text);
    PM_STATUS_MAP(X)
#undef X
    static const int unknown[] = {1, 42, -11, -100, 1 << 30, -2147483647 - 1};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        CHECK_EQ_STR(pm_err_name(unknown[i]), "UNKNOWN");
        CHECK_EQ_STR(pm_strerror(unknown[i]), "unknown status");
    }
}

int main(void)
{
    PMT_RUN(test_misc());
    PMT_RUN(test_table());
    PMT_RUN(test_records());
    PMT_RUN(test_side_effects());
#if PMT_HAVE_THREADS
    PMT_RUN(test_concurrency());
#endif
    PMT_RUN(test_pool());
    return pmt_done("test_map");
}
