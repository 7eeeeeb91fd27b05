/*
 * test_mpi_follower_args.c - the arguments of a call on the ranks other than
 * 0 (followers), run under mpirun with 3 ranks like test_mpi (issue 13,
 * item 9). Two rules:
 *  - what a follower does not read (`in`, `out`, `n`, a source) is not
 *    checked there: NULL or nonsense is fine and the call is rank 0's;
 *  - a follower's own bad arguments (fn, in_stride, options) fail the call
 *    on every rank, before any item runs anywhere, whatever the timing.
 * Each case runs REPS times with the followers arriving early or late, since
 * the bug this guards against gave PM_OK or PM_EITEM depending on who came
 * first. A watchdog turns a hang (a rank that left a call the others wait
 * in) into a failure.
 */
#include "check.h"

#include <mpi.h>
#include <signal.h>
#include <unistd.h>

#define REPS 20
#define N 3000

static int rank, size;

static uint64_t mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x7fb5d329728ea185ULL;
    x ^= x >> 27;
    return x;
}

/* Items run by this process; all ranks together must make the call's n. */
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
    (void)user;
    atomic_fetch_add_explicit(&ran_here, 1, memory_order_relaxed);
    uint64_t x;
    memcpy(&x, in, sizeof x);
    x = mix(x);
    memcpy(out, &x, sizeof x);
    return 0;
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

static void on_watchdog(int sig)
{
    (void)sig;
    static const char msg[] = "test_mpi_follower_args: watchdog: a call hung\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(3);
}

/* Followers come late on odd repetitions and early on even ones, so that
 * rank 0's map is sometimes over (on its own threads) before they arrive. */
static void stagger(int rep)
{
    if (rank != 0 && rep % 2)
        nanosleep(&(struct timespec){0, 1000000L * (rep % 5 + 1)}, NULL);
}

static uint64_t in[N], out[N];

static void reset_out(void)
{
    for (size_t i = 0; i < N; i++)
        out[i] = 0xdeadbeef;
}

/* (a) A follower's in, out, n are not read: out NULL with a nonzero
 * out_stride, in NULL with n > 0, an n whose bytes would overflow. */
static void test_map_not_read(int threads, pm_pool *pool)
{
    static const char *const how[] = {"out NULL, out_stride 8", "in NULL, n > 0",
                                      "n * stride overflows"};
    for (int k = 0; k < 3; k++)
        for (int rep = 0; rep < REPS; rep++) {
            CHECK_CTX("rank %d: map, follower's %s, threads %d, pool %d, rep %d", rank, how[k],
                      threads, pool != NULL, rep);
            reset_out();
            pm_opts o = {.backend = PM_MPI, .threads = threads, .chunksize = 10, .pool = pool};
            pm_report rep_ = {0};
            int rc;
            stagger(rep);
            if (rank == 0)
                rc = pm_map(mixer, NULL, in, 8, out, 8, N, &o, &rep_);
            else if (k == 0)
                rc = pm_map(mixer, NULL, in, 8, NULL, 8, N, &o, &rep_);
            else if (k == 1)
                rc = pm_map(mixer, NULL, NULL, 8, NULL, 0, N, &o, &rep_);
            else
                rc = pm_map(mixer, NULL, in, 8, out, 8, SIZE_MAX / 4, &o, &rep_);
            CHECK_STATUS(PM_OK, rc);
            CHECK_STATUS(PM_OK, rep_.status);
            CHECK_EQ_SIZE(rep_.done, N); /* rank 0's report, on every rank */
            CHECK_EQ_SIZE(rep_.failed, 0);
            CHECK_EQ_SIZE((size_t)ran_everywhere(), N);
            for (size_t i = 0; rank == 0 && i < N; i++)
                if (out[i] != mix(i))
                    CHECK_EQ_SIZE(out[i], mix(i));
        }
}

/* (a) A follower's source is not read: NULL is fine. */
static void test_imap_not_read(int threads)
{
    for (int rep = 0; rep < REPS; rep++) {
        CHECK_CTX("rank %d: imap, follower's source NULL, threads %d, rep %d", rank, threads,
                  rep);
        counter src = {0, N};
        stagger(rep);
        pm_iter *it = pm_imap(mixer, NULL, rank == 0 ? count_up : NULL, rank == 0 ? &src : NULL,
                              8, 8,
                              &(pm_opts){.backend = PM_MPI, .threads = threads, .chunksize = 10});
        uint64_t y;
        size_t index, got = 0;
        int code, r;
        while ((r = pm_iter_next(it, &y, &index, &code)) == 1) {
            CHECK_EQ_INT(code, 0);
            CHECK_EQ_SIZE(y, mix(index));
            got++;
        }
        CHECK_STATUS(PM_OK, r);
        CHECK_STATUS(PM_OK, pm_iter_free(it));
        CHECK_EQ_SIZE(got, rank == 0 ? N : 0);
        CHECK_EQ_SIZE((size_t)ran_everywhere(), N);
    }
}

/* The bad arguments a follower can pass (rank `bad` passes case k). */
enum { BAD_FN, BAD_STRIDE, BAD_THREADS, BAD_CHUNKSIZE, BAD_ON_ERROR, BAD_TIMEOUT, NBAD };
static const char *const bad_name[NBAD] = {"fn NULL", "in_stride 0", "threads -1",
                                           "chunksize -1", "on_error 7", "timeout_s 1"};

static pm_opts opts_for(int k, int mine, int threads, pm_pool *pool)
{
    pm_opts o = {.backend = PM_MPI, .threads = threads, .chunksize = 10,
                 .on_error = PM_RETURN, .pool = pool};
    if (!mine)
        return o;
    if (k == BAD_THREADS) {
        o.threads = -1;
        o.pool = NULL; /* a pool's threads are its own */
    }
    if (k == BAD_CHUNKSIZE)
        o.chunksize = -1;
    if (k == BAD_ON_ERROR)
        o.on_error = (pm_on_error)7;
    if (k == BAD_TIMEOUT)
        o.timeout_s = 1;
    return o;
}

/* What the rank with the bad argument returns: its own status (PM_ENOTSUP
 * for a timeout, which MPI cannot enforce); the other ranks say PM_EINVAL. */
static int own_status(int k)
{
    return k == BAD_TIMEOUT ? PM_ENOTSUP : PM_EINVAL;
}

/* (b) A follower's bad arguments: every rank fails, nothing runs anywhere,
 * rank 0's out and codes are untouched; then the next call works. */
static void test_map_bad_follower(int threads, pm_pool *pool)
{
    static int codes[N];
    for (int k = 0; k < NBAD; k++)
        for (int rep = 0; rep < REPS; rep++) {
            int bad = 1 + rep % (size - 1 > 0 ? size - 1 : 1); /* rank 1, 2, 1, ... */
            if (size < 2)
                return;
            if (k == BAD_THREADS && pool)
                continue; /* the same as without a pool */
            CHECK_CTX("rank %d: map, rank %d passes %s, threads %d, pool %d, rep %d", rank, bad,
                      bad_name[k], threads, pool != NULL, rep);
            int mine = rank == bad;
            reset_out();
            for (size_t i = 0; i < N; i++)
                codes[i] = -12345;
            pm_opts o = opts_for(k, mine, threads, pool);
            if (!mine)
                o.codes = codes;
            pm_report r;
            memset(&r, 0x5a, sizeof r);
            stagger(rep);
            int rc = pm_map(mine && k == BAD_FN ? NULL : mixer, NULL, in,
                            mine && k == BAD_STRIDE ? 0 : 8, out, 8, N, &o, &r);
            int want = mine ? own_status(k) : PM_EINVAL;
            CHECK_STATUS(want, rc);
            CHECK_STATUS(want, r.status);
            CHECK_EQ_SIZE(r.done, 0);
            CHECK_EQ_SIZE(r.failed, 0);
            CHECK_EQ_SIZE((size_t)ran_everywhere(), 0);
            for (size_t i = 0; rank == 0 && i < N; i++) {
                if (out[i] != 0xdeadbeef)
                    CHECK_EQ_SIZE(out[i], 0xdeadbeef);
                if (codes[i] != -12345)
                    CHECK_EQ_INT(codes[i], -12345);
            }
            /* Every rank is still in step: the next call is whole. */
            o = opts_for(k, 0, threads, pool);
            CHECK_STATUS(PM_OK, pm_map(mixer, NULL, in, 8, out, 8, N, &o, NULL));
            CHECK_EQ_SIZE((size_t)ran_everywhere(), N);
        }
}

/* (b) The same for iterators: no item comes out on rank 0, every rank ends
 * with the status. */
static void test_imap_bad_follower(int threads)
{
    for (int k = 0; k < NBAD; k++)
        for (int rep = 0; rep < REPS; rep++) {
            if (size < 2)
                return;
            int bad = 1 + rep % (size - 1);
            CHECK_CTX("rank %d: imap, rank %d passes %s, threads %d, rep %d", rank, bad,
                      bad_name[k], threads, rep);
            int mine = rank == bad;
            counter src = {0, N};
            pm_opts o = opts_for(k, mine, threads, NULL);
            stagger(rep);
            pm_iter *it = pm_imap(mine && k == BAD_FN ? NULL : mixer, NULL, count_up, &src,
                                  mine && k == BAD_STRIDE ? 0 : 8, 8, &o);
            uint64_t y;
            size_t got = 0;
            int r;
            while ((r = pm_iter_next(it, &y, NULL, NULL)) == 1)
                got++;
            int want = mine ? own_status(k) : PM_EINVAL;
            CHECK_STATUS(want, r);
            CHECK_STATUS(want, pm_iter_free(it));
            CHECK_EQ_SIZE(got, 0);
            CHECK_EQ_SIZE((size_t)ran_everywhere(), 0);
        }
}

int main(int argc, char **argv)
{
    CHECK_STATUS(PM_OK, pm_mpi_init(&argc, &argv));
    rank = pm_mpi_rank();
    size = pm_mpi_size();
    signal(SIGALRM, on_watchdog);
    alarm(PMT_SANITIZED ? 240 : 90);
    for (size_t i = 0; i < N; i++)
        in[i] = i;

    for (int threads = 1; threads <= 2; threads++) {
        test_map_not_read(threads, NULL);
        test_imap_not_read(threads);
        test_map_bad_follower(threads, NULL);
        test_imap_bad_follower(threads);
    }
    pm_pool *pool = pm_pool_new(&(pm_opts){.backend = PM_MPI, .threads = 2});
    CHECK(pool != NULL);
    test_map_not_read(2, pool);
    test_map_bad_follower(2, pool);
    pm_pool_free(pool);

    alarm(0);
    pmt_leak_check_now();
    CHECK_STATUS(PM_OK, pm_mpi_finalize());
    char name[48];
    snprintf(name, sizeof name, "test_mpi_follower_args rank %d", rank);
    return pmt_done(name);
}
