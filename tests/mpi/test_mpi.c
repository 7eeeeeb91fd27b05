/*
 * test_mpi.c - the MPI executor, run by ctest under
 * `mpirun --allow-run-as-root --oversubscribe -np 3`. Every rank runs this
 * same program (SPMD) and makes the same calls; rank 0 checks results
 * against a plain loop, the other ranks check that they return rank 0's
 * status and report. Cases: pm_map over ranks x threads (1, 2) with auto and
 * fixed chunks, empty and tiny inputs, PM_RAISE / PM_RETURN with the failing
 * index, results_everywhere, progress, cancellation, a pool reused for many
 * calls, pm_imap ordered and unordered with item errors, pm_vimap, bad
 * arguments on any rank (and what a follower does not read), and what is not
 * supported (timeouts). The
 * star/kwstar vectors run through pm_vmap and pm_vimap in test_mpi_vectors
 * (tests/test_vectors.c built with PMT_MPI).
 */
#include "check.h"

#include "parmap_value.h"

#include <mpi.h>

static int rank, size;

/* Which items fail: index % FAIL_EVERY == FAIL_AT (when failing is on). */
#define FAIL_EVERY 997
#define FAIL_AT 500
#define FAIL_CODE 42

typedef struct fn_ctx {
    int fail;          /* 0: no item fails */
    int ranks_seen[8]; /* how many items each rank ran (counted per process) */
} fn_ctx;

static fn_ctx ctx;

static uint64_t mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x7fb5d329728ea185ULL;
    x ^= x >> 27;
    return x;
}

/* Items run by this process (all ranks together must make n). */
static atomic_long ran_here;

static long ran_everywhere(void)
{
    long mine = atomic_exchange(&ran_here, 0), all = 0;
    MPI_Allreduce(&mine, &all, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    return all;
}

/* in: uint64 index; out: uint64 mix(index). */
static int mixer(void *user, const void *in, void *out)
{
    const fn_ctx *c = user;
    atomic_fetch_add_explicit(&ran_here, 1, memory_order_relaxed);
    uint64_t x;
    memcpy(&x, in, sizeof x);
    if (c->fail && x % FAIL_EVERY == FAIL_AT)
        return FAIL_CODE;
    uint64_t y = mix(x);
    memcpy(out, &y, sizeof y);
    return 0;
}

/* Records with some heft, to send more than a few bytes per item. */
typedef struct rec {
    uint64_t id;
    double v[6];
} rec;

static int fat(void *user, const void *in, void *out)
{
    (void)user;
    const rec *r = in;
    rec *o = out;
    o->id = r->id * 3;
    for (int k = 0; k < 6; k++)
        o->v[k] = r->v[k] * 2 + 1;
    return 0;
}

static uint64_t *indices(size_t n)
{
    uint64_t *a = malloc((n ? n : 1) * sizeof *a);
    for (size_t i = 0; i < n; i++)
        a[i] = i;
    return a;
}

static void test_map(int threads, long chunk, size_t n)
{
    CHECK_CTX("rank %d: pm_map n=%zu threads=%d chunksize=%ld", rank, n, threads, chunk);
    uint64_t *in = rank == 0 ? indices(n) : NULL;
    uint64_t *out = rank == 0 ? calloc(n ? n : 1, sizeof *out) : NULL;
    pm_report rep;
    pm_opts o = {.backend = PM_MPI, .threads = threads, .chunksize = chunk};
    int rc = pm_map(mixer, &ctx, in, 8, out, rank == 0 ? 8 : 0, rank == 0 ? n : 0, &o, &rep);
    CHECK_STATUS(PM_OK, rc);
    CHECK_STATUS(PM_OK, rep.status);
    CHECK_EQ_SIZE(rep.done, n);
    CHECK_EQ_SIZE(rep.failed, 0);
    for (size_t i = 0; rank == 0 && i < n; i++)
        if (out[i] != mix(i))
            CHECK_EQ_SIZE(out[i], mix(i)); /* fails, printing the first wrong one */
    free(in);
    free(out);
}

/* The conformance table of tests/test_map.c on MPI: n around chunk and
 * thread boundaries x chunk sizes, codes filled, every item run exactly once
 * (counted on every rank). */
static void test_table(int threads)
{
    static const long chunksizes[] = {0, 1, 2, 7, 64};
    static const size_t sizes[] = {0, 1, 2, 3, 6, 7, 8, 9, 63, 64, 65, 127, 128, 129, 1000, 100003};
    uint64_t *in = indices(100003), *out = malloc(100003 * sizeof *out);
    int *codes = malloc(100003 * sizeof *codes);
    for (size_t k = 0; k < sizeof chunksizes / sizeof *chunksizes; k++)
        for (size_t z = 0; z < sizeof sizes / sizeof *sizes; z++) {
            size_t n = sizes[z];
            CHECK_CTX("rank %d: table threads %d chunksize %ld n %zu", rank, threads,
                      chunksizes[k], n);
            for (size_t i = 0; i < n; i++) {
                out[i] = 0xdeadbeef;
                codes[i] = -12345;
            }
            pm_report r;
            memset(&r, 0x5a, sizeof r);
            pm_opts o = {.backend = PM_MPI, .threads = threads, .chunksize = chunksizes[k],
                         .codes = codes};
            CHECK_STATUS(PM_OK, pm_map(mixer, &ctx, in, 8, out, 8, n, &o, &r));
            CHECK_STATUS(PM_OK, r.status);
            CHECK_EQ_SIZE(r.done, n);
            CHECK_EQ_SIZE(r.failed, 0);
            CHECK_EQ_SIZE(r.first_error_index, (size_t)-1);
            CHECK_EQ_INT(r.first_error_code, 0);
            CHECK_EQ_INT(r.signal, 0);
            CHECK_EQ_SIZE((size_t)ran_everywhere(), n);
            for (size_t i = 0; rank == 0 && i < n; i++) {
                if (out[i] != mix(i))
                    CHECK_EQ_SIZE(out[i], mix(i));
                if (codes[i] != 0)
                    CHECK_EQ_INT(codes[i], 0);
            }
        }
    free(in);
    free(out);
    free(codes);
}

/* Byte records of 1, 24 and 1000 bytes in, other sizes out; and no outputs
 * at all (side effects only: the function gets out == NULL). */
typedef struct bytes_ctx {
    size_t in_rec, out_rec;
} bytes_ctx;

static int fn_bytes(void *user, const void *in, void *out)
{
    const bytes_ctx *b = user;
    const unsigned char *p = in;
    atomic_fetch_add_explicit(&ran_here, 1, memory_order_relaxed);
    if (!out)
        return 0;
    unsigned char *q = out;
    for (size_t j = 0; j < b->out_rec; j++)
        q[j] = (unsigned char)(p[j % b->in_rec] * 3u + j);
    return 0;
}

static void test_records(void)
{
    static const size_t recs[][2] = {{1, 1}, {24, 8}, {1000, 1000}, {8, 0}};
    for (size_t k = 0; k < sizeof recs / sizeof *recs; k++) {
        bytes_ctx b = {recs[k][0], recs[k][1]};
        size_t n = 4000;
        CHECK_CTX("rank %d: records %zu -> %zu bytes", rank, b.in_rec, b.out_rec);
        unsigned char *in = malloc(n * b.in_rec), *out = calloc(n, b.out_rec ? b.out_rec : 1);
        for (size_t i = 0; i < n * b.in_rec; i++)
            in[i] = (unsigned char)mix(i);
        pm_report r;
        CHECK_STATUS(PM_OK, pm_map(fn_bytes, &b, in, b.in_rec, b.out_rec ? out : NULL,
                                   b.out_rec, n, &(pm_opts){.backend = PM_MPI, .threads = 2},
                                   &r));
        CHECK_EQ_SIZE(r.done, n);
        CHECK_EQ_SIZE((size_t)ran_everywhere(), n);
        for (size_t i = 0; rank == 0 && i < n; i++)
            for (size_t j = 0; j < b.out_rec; j++) {
                int want = (unsigned char)(in[i * b.in_rec + j % b.in_rec] * 3u + j);
                int got = out[i * b.out_rec + j];
                if (got != want)
                    CHECK_EQ_INT(got, want);
            }
        free(in);
        free(out);
    }
}

static void test_fat_records(void)
{
    size_t n = 20000;
    CHECK_CTX("rank %d: 56-byte records", rank);
    rec *in = calloc(n, sizeof *in), *out = calloc(n, sizeof *out);
    for (size_t i = 0; i < n; i++) {
        in[i].id = i;
        for (int k = 0; k < 6; k++)
            in[i].v[k] = (double)i + k;
    }
    CHECK_STATUS(PM_OK, pm_map(fat, NULL, in, sizeof *in, out, sizeof *out, n,
                               &(pm_opts){.backend = PM_MPI, .threads = 2}, NULL));
    for (size_t i = 0; rank == 0 && i < n; i++) {
        CHECK_EQ_SIZE(out[i].id, 3 * i);
        CHECK(out[i].v[5] == ((double)i + 5) * 2 + 1);
    }
    free(in);
    free(out);
}

static void test_errors(long chunk)
{
    size_t n = 30000;
    CHECK_CTX("rank %d: errors, chunksize %ld", rank, chunk);
    ctx.fail = 1;
    uint64_t *in = indices(n), *out = calloc(n, sizeof *out);
    int *codes = calloc(n, sizeof *codes);
    pm_report rep;

    /* PM_RETURN: every item runs, codes say which failed. */
    pm_opts o = {.backend = PM_MPI, .chunksize = chunk, .on_error = PM_RETURN, .codes = codes};
    CHECK_STATUS(PM_OK, pm_map(mixer, &ctx, in, 8, out, 8, n, &o, &rep));
    size_t want_failed = 0;
    for (size_t i = 0; i < n; i++)
        want_failed += i % FAIL_EVERY == FAIL_AT;
    CHECK_EQ_SIZE(rep.done, n);
    CHECK_EQ_SIZE(rep.failed, want_failed);
    CHECK_EQ_SIZE(rep.first_error_index, FAIL_AT);
    CHECK_EQ_INT(rep.first_error_code, FAIL_CODE);
    for (size_t i = 0; rank == 0 && i < n; i++) {
        int failing = i % FAIL_EVERY == FAIL_AT;
        CHECK_EQ_INT(codes[i], failing ? FAIL_CODE : 0);
        if (!failing)
            CHECK_EQ_SIZE(out[i], mix(i));
    }

    /* PM_RAISE: the call stops with PM_EITEM; the failing item is named. */
    o.on_error = PM_RAISE;
    o.codes = NULL;
    int rc = pm_map(mixer, &ctx, in, 8, out, 8, n, &o, &rep);
    CHECK_STATUS(PM_EITEM, rc);
    CHECK_STATUS(PM_EITEM, rep.status);
    CHECK(rep.first_error_index % FAIL_EVERY == FAIL_AT);
    CHECK_EQ_INT(rep.first_error_code, FAIL_CODE);
    CHECK(rep.failed >= 1);
    ctx.fail = 0;
    free(in);
    free(out);
    free(codes);
}

static void test_everywhere(void)
{
    size_t n = 5000;
    CHECK_CTX("rank %d: results_everywhere", rank);
    uint64_t *in = indices(n), *out = calloc(n, sizeof *out);
    int *codes = calloc(n, sizeof *codes);
    for (size_t i = 0; i < n; i++)
        codes[i] = -1;
    pm_opts o = {.backend = PM_MPI, .results_everywhere = 1, .codes = codes};
    CHECK_STATUS(PM_OK, pm_map(mixer, &ctx, in, 8, out, 8, n, &o, NULL));
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ_SIZE(out[i], mix(i));
        CHECK_EQ_INT(codes[i], 0);
    }
    /* A rank whose array does not match rank 0's says so. */
    int rc = pm_map(mixer, &ctx, in, 8, out, 8, rank == 0 ? n : n / 2, &o, NULL);
    CHECK_STATUS(rank == 0 ? PM_OK : PM_EINVAL, rc);
    free(in);
    free(out);
    free(codes);
}

typedef struct progress_seen {
    int calls;
    size_t last_done, total;
} progress_seen;

static void on_progress(void *user, const pm_progress *p)
{
    progress_seen *s = user;
    s->calls++;
    CHECK(p->done >= s->last_done);
    s->last_done = p->done;
    s->total = p->total;
}

static void test_progress(void)
{
    size_t n = 50000;
    CHECK_CTX("rank %d: progress", rank);
    uint64_t *in = indices(n), *out = calloc(n, sizeof *out);
    progress_seen seen = {0};
    pm_opts o = {.backend = PM_MPI, .on_progress = on_progress, .progress_user = &seen};
    CHECK_STATUS(PM_OK, pm_map(mixer, &ctx, in, 8, out, 8, n, &o, NULL));
    if (rank == 0) {
        CHECK(seen.calls >= 1);
        CHECK_EQ_SIZE(seen.last_done, n);
        CHECK_EQ_SIZE(seen.total, n);
    } else {
        CHECK_EQ_INT(seen.calls, 0); /* only the owner reports */
    }
    free(in);
    free(out);
}

/* Items that take a while, so that a cancellation lands mid-map. */
static int slow(void *user, const void *in, void *out)
{
    pm_cancel *c = user;
    uint64_t x;
    memcpy(&x, in, sizeof x);
    if (x >= 200 && c)
        pm_cancel_request(c); /* rank 0's own token, from the first item it runs past 200 */
    pmt_sleep(0.0002);
    memcpy(out, &x, sizeof x);
    return 0;
}

static void test_cancel(void)
{
    size_t n = 20000;
    CHECK_CTX("rank %d: cancel", rank);
    pm_cancel *c = pm_cancel_new();
    uint64_t *in = indices(n), *out = calloc(n, sizeof *out);
    pm_report rep;
    double t0 = pmt_now();
    int rc = pm_map(slow, rank == 0 ? c : NULL, in, 8, out, 8, n,
                    &(pm_opts){.backend = PM_MPI, .chunksize = 16, .cancel = c}, &rep);
    CHECK_STATUS(PM_ECANCELED, rc);
    CHECK(rep.done < n);
    CHECK(pmt_now() - t0 < 3.0); /* the whole map would take ~4 s on 3 ranks */
    pm_cancel_free(c);
    free(in);
    free(out);
}

static void test_pool(void)
{
    CHECK_CTX("rank %d: pool", rank);
    pm_pool *pool = pm_pool_new(&(pm_opts){.backend = PM_MPI, .threads = 2});
    CHECK(pool != NULL);
    uint64_t in[100], out[100];
    for (int i = 0; i < 100; i++)
        in[i] = (uint64_t)i;
    for (int call = 0; call < 200; call++) {
        size_t n = (size_t)(call % 100) + 1;
        memset(out, 0, sizeof out);
        CHECK_STATUS(PM_OK, pm_map(mixer, &ctx, in, 8, out, 8, n,
                                   &(pm_opts){.pool = pool}, NULL));
        for (size_t i = 0; rank == 0 && i < n; i++)
            CHECK_EQ_SIZE(out[i], mix(i));
    }
    pm_pool_free(pool);
}

typedef struct counter {
    uint64_t next, n;
} counter;

static int count_up(void *src, void *item)
{
    counter *c = src;
    if (c->next >= c->n)
        return 0;
    memcpy(item, &c->next, sizeof c->next);
    c->next++;
    return 1;
}

static void test_imap(int unordered, int fail, int threads)
{
    size_t n = 40000;
    CHECK_CTX("rank %d: pm_imap unordered=%d fail=%d threads=%d", rank, unordered, fail, threads);
    ctx.fail = fail;
    counter src = {0, n};
    pm_opts o = {.backend = PM_MPI, .threads = threads, .unordered = unordered,
                 .on_error = fail ? PM_RAISE : PM_RETURN};
    pm_iter *it = pm_imap(mixer, &ctx, count_up, &src, 8, 8, &o);
    CHECK(it != NULL);
    unsigned char *seen = calloc(n, 1);
    size_t got = 0, index = 0, expect = 0;
    uint64_t y;
    int code = 0, r;
    while ((r = pm_iter_next(it, &y, &index, &code)) == 1) {
        CHECK(rank == 0);
        CHECK(index < n && !seen[index]);
        seen[index] = 1;
        if (!unordered)
            CHECK_EQ_SIZE(index, expect++);
        CHECK_EQ_INT(code, 0);
        CHECK_EQ_SIZE(y, mix(index));
        got++;
    }
    if (fail) {
        CHECK_STATUS(PM_EITEM, r);
        CHECK(index % FAIL_EVERY == FAIL_AT);
        CHECK_EQ_INT(code, FAIL_CODE);
        CHECK_STATUS(PM_EITEM, pm_iter_free(it));
    } else {
        CHECK_STATUS(0, r);
        CHECK_EQ_SIZE(got, rank == 0 ? n : 0);
        pm_report rep;
        CHECK_STATUS(PM_OK, pm_iter_report(it, &rep));
        CHECK_EQ_SIZE(rep.done, n);
        CHECK_STATUS(PM_OK, pm_iter_free(it));
    }
    if (rank == 0)
        CHECK(src.next > 0);
    else
        CHECK_EQ_SIZE(src.next, 0); /* a follower's source is never read */
    ctx.fail = 0;
    free(seen);
}

/* A source slower than the items: rank 0 often has nothing to hand out. */
static int slow_source(void *src, void *item)
{
    counter *c = src;
    if (c->next >= c->n)
        return 0;
    if (c->next % 16 == 0)
        pmt_sleep(0.0005);
    memcpy(item, &c->next, sizeof c->next);
    c->next++;
    return 1;
}

static void test_imap_slow_source(int unordered)
{
    size_t n = 3000, got = 0, index = 0;
    CHECK_CTX("rank %d: pm_imap over a slow source, unordered=%d", rank, unordered);
    counter src = {0, n};
    pm_iter *it = pm_imap(mixer, &ctx, slow_source, &src, 8, 8,
                          &(pm_opts){.backend = PM_MPI, .unordered = unordered, .window = 64});
    uint64_t y;
    int r;
    while ((r = pm_iter_next(it, &y, &index, NULL)) == 1) {
        CHECK_EQ_SIZE(y, mix(index));
        if (!unordered)
            CHECK_EQ_SIZE(index, got);
        got++;
    }
    CHECK_STATUS(0, r);
    CHECK_EQ_SIZE(got, rank == 0 ? n : 0);
    CHECK_STATUS(PM_OK, pm_iter_free(it));
}

/* Rank 0 stops reading early: every rank ends the stream, nothing hangs. */
static void test_imap_early_free(void)
{
    CHECK_CTX("rank %d: pm_imap freed early", rank);
    counter src = {0, 1000000};
    pm_iter *it = pm_imap(mixer, &ctx, count_up, &src, 8, 8, &(pm_opts){.backend = PM_MPI});
    uint64_t y;
    for (int k = 0; rank == 0 && k < 1000; k++)
        CHECK_EQ_INT(pm_iter_next(it, &y, NULL, NULL), 1);
    CHECK_STATUS(PM_OK, pm_iter_free(it));
    CHECK(src.next < 1000000);
}

/* Ranks may run different numbers of threads. */
static void test_uneven_threads(void)
{
    size_t n = 100000;
    CHECK_CTX("rank %d: threads differ per rank", rank);
    uint64_t *in = indices(n), *out = calloc(n, sizeof *out);
    pm_report rep;
    CHECK_STATUS(PM_OK, pm_map(mixer, &ctx, in, 8, out, 8, n,
                               &(pm_opts){.backend = PM_MPI, .threads = rank == 0 ? 1 : 3},
                               &rep));
    CHECK_EQ_SIZE(rep.done, n);
    for (size_t i = 0; rank == 0 && i < n; i++)
        if (out[i] != mix(i))
            CHECK_EQ_SIZE(out[i], mix(i));
    free(in);
    free(out);
}

static int vplus(void *user, pm_call *call, pm_value **result)
{
    (void)user;
    *result = pm_value_int(pm_arg_int(call, 0, 0) + 1);
    return 0;
}

/* pm_vimap: values stream to the other ranks and back as MessagePack. */
typedef struct vcount {
    int64_t next, n;
} vcount;

static int vcount_up(void *src, pm_value **item)
{
    vcount *c = src;
    if (c->next >= c->n)
        return 0;
    *item = pm_value_int(c->next++);
    return 1;
}

/* Bad arguments on any rank: every rank returns PM_EINVAL (none waits
 * forever for a map another rank never started) and no item runs anywhere.
 * What a follower does not read (in, out, n, a source) is not checked there.
 * tests/mpi/test_mpi_follower_args.c repeats these against timing. */
static void test_bad_arguments(void)
{
    CHECK_CTX("rank %d: bad arguments", rank);
    (void)ran_everywhere(); /* reset the counts */
    uint64_t in[64], out[64];
    for (int i = 0; i < 64; i++)
        in[i] = (uint64_t)i;
    pm_opts o = {.backend = PM_MPI};
    CHECK_STATUS(PM_EINVAL, pm_map(mixer, &ctx, rank == 0 ? NULL : in, 8, out, 8, 64, &o, NULL));
    CHECK_STATUS(PM_EINVAL, pm_map(mixer, &ctx, in, rank == 0 ? 0 : 8, out, 8, 64, &o, NULL));
    pm_value *notalist = pm_value_int(3), *none = NULL;
    pm_vopts vo = {.base = {.backend = PM_MPI}};
    CHECK_STATUS(PM_EINVAL, pm_vmap(vplus, NULL, rank == 0 ? notalist : NULL, &vo, &none));
    CHECK_STATUS(PM_EINVAL, pm_vmap(vplus, NULL, notalist, &vo, rank == 0 ? NULL : &none));
    pm_value_free(notalist);
    pm_viter *vi = pm_vimap(rank == 0 ? NULL : vplus, NULL, vcount_up, NULL, &vo);
    pm_value *item = NULL;
    CHECK_STATUS(PM_EINVAL, pm_viter_next(vi, &item, NULL));
    CHECK_STATUS(PM_EINVAL, pm_viter_free(vi));
    /* Streams: rank 0 without a source; then rank 2 without one, which it
     * never reads. */
    counter src = {0, 1000};
    pm_iter *it = pm_imap(mixer, &ctx, rank == 0 ? NULL : count_up, &src, 8, 8, &o);
    uint64_t y;
    size_t got = 0;
    int r;
    while ((r = pm_iter_next(it, &y, NULL, NULL)) == 1)
        got++;
    CHECK_STATUS(PM_EINVAL, r); /* rank 0's status, on every rank */
    CHECK_STATUS(PM_EINVAL, pm_iter_free(it));
    CHECK_EQ_SIZE(got, 0);
    src.next = 0;
    it = pm_imap(mixer, &ctx, rank == 2 ? NULL : count_up, &src, 8, 8,
                 &(pm_opts){.backend = PM_MPI, .on_error = PM_RETURN});
    got = 0;
    int code;
    size_t index;
    while ((r = pm_iter_next(it, &y, &index, &code)) == 1) {
        got++;
        CHECK(code == 0 && y == mix(index));
    }
    CHECK_STATUS(PM_OK, r);
    CHECK_STATUS(PM_OK, pm_iter_free(it));
    CHECK_EQ_SIZE(got, rank == 0 ? 1000 : 0);
    CHECK_EQ_SIZE((size_t)ran_everywhere(), 1000);
    /* rank 1 passes no function: the map fails on every rank before any
     * item runs; rank 0's codes and outputs are left as they were. */
    int *codes = calloc(20000, sizeof *codes);
    uint64_t *big = indices(20000), *bout = calloc(20000, sizeof *bout);
    for (size_t i = 0; i < 20000; i++)
        codes[i] = -12345;
    pm_report rep;
    int rc = pm_map(rank == 1 ? NULL : mixer, &ctx, big, 8, bout, 8, 20000,
                    &(pm_opts){.backend = PM_MPI, .on_error = PM_RETURN, .codes = codes,
                               .chunksize = 50},
                    &rep);
    CHECK_STATUS(PM_EINVAL, rc);
    CHECK_STATUS(PM_EINVAL, rep.status);
    CHECK_EQ_SIZE(rep.done, 0);
    CHECK_EQ_SIZE((size_t)ran_everywhere(), 0);
    for (size_t i = 0; rank == 0 && i < 20000; i++)
        CHECK(codes[i] == -12345 && bout[i] == 0);
    /* A follower's out is not read: NULL with a nonzero out_stride is fine. */
    rc = pm_map(mixer, &ctx, big, 8, rank == 0 ? bout : NULL, 8, 20000,
                &(pm_opts){.backend = PM_MPI, .chunksize = 50}, &rep);
    CHECK_STATUS(PM_OK, rc);
    CHECK_EQ_SIZE(rep.done, 20000);
    CHECK_EQ_SIZE((size_t)ran_everywhere(), 20000);
    for (size_t i = 0; rank == 0 && i < 20000; i++)
        CHECK(bout[i] == mix(i));
    free(codes);
    free(big);
    free(bout);
}

static void test_unsupported(void)
{
    CHECK_CTX("rank %d: unsupported", rank);
    uint64_t in = 1, out = 0;
    CHECK_STATUS(PM_ENOTSUP, pm_map(mixer, &ctx, &in, 8, &out, 8, 1,
                                    &(pm_opts){.backend = PM_MPI, .timeout_s = 1}, NULL));
}

static void test_vimap(int unordered, int threads)
{
    CHECK_CTX("rank %d: pm_vimap unordered=%d threads=%d", rank, unordered, threads);
    vcount src = {0, 30000};
    pm_vopts vo = {.base = {.backend = PM_MPI, .unordered = unordered, .threads = threads}};
    pm_viter *v = pm_vimap(vplus, NULL, vcount_up, &src, &vo);
    pm_value *x = NULL;
    size_t index = 0, got = 0;
    int r;
    while ((r = pm_viter_next(v, &x, &index)) == 1) {
        int64_t y = -1;
        CHECK_STATUS(PM_OK, pm_value_get_int(x, &y));
        CHECK_EQ_SIZE((size_t)y, index + 1);
        if (!unordered)
            CHECK_EQ_SIZE(index, got);
        got++;
        pm_value_free(x);
    }
    CHECK_STATUS(0, r);
    CHECK_EQ_SIZE(got, rank == 0 ? 30000 : 0);
    pm_report rep;
    CHECK_STATUS(PM_OK, pm_viter_report(v, &rep));
    CHECK_STATUS(PM_OK, pm_viter_free(v));
    CHECK_EQ_SIZE(src.next, rank == 0 ? 30000 : 0);
}

int main(int argc, char **argv)
{
    CHECK_STATUS(PM_OK, pm_mpi_init(&argc, &argv));
    rank = pm_mpi_rank();
    size = pm_mpi_size();
    CHECK(size >= 1);
    if (rank == 0)
        printf("%d ranks\n", size);

    test_table(1);
    test_table(2);
    test_records();
    (void)ran_everywhere(); /* reset the counts */
    for (int threads = 1; threads <= 2; threads++) {
        static const long chunks[] = {0, 1, 7, 1000};
        for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++)
            test_map(threads, chunks[c], 20000);
        static const size_t sizes[] = {0, 1, 2, 3, 5};
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
            test_map(threads, 0, sizes[s]);
    }
    test_map(2, 0, 1000000);
    test_fat_records();
    test_errors(0);
    test_errors(1);
    test_everywhere();
    test_progress();
    test_cancel();
    test_pool();
    for (int threads = 1; threads <= 2; threads++) {
        test_imap(0, 0, threads);
        test_imap(1, 0, threads);
        test_imap(0, 1, threads);
        test_imap(1, 1, threads);
    }
    test_imap_slow_source(0);
    test_imap_slow_source(1);
    test_imap_early_free();
    test_uneven_threads();
    test_bad_arguments();
    test_unsupported();
    test_vimap(0, 1);
    test_vimap(1, 2);

    /* Leaks are checked now, while Open MPI's plugins are still loaded:
     * what it leaks itself at MPI_Finalize is unloaded by then and cannot be
     * told from ours (tests/mpi/lsan.supp names its libraries). */
    pmt_leak_check_now();
    CHECK_STATUS(PM_OK, pm_mpi_finalize());
    char name[32];
    snprintf(name, sizeof name, "test_mpi rank %d", rank);
    return pmt_done(name);
}
