/*
 * test_proc_recycle.c - worker recycling on the processes backend
 * (opts.recycle_items, opts.recycle_rss): items that leak memory on
 * purpose run in workers that are replaced after N items or past M bytes of
 * resident memory; every item runs exactly once (a shared per-index
 * counter), every result is right, the workers' memory stays bounded, and
 * the replacement shows as new worker pids. Also pm_imap, 2 threads per
 * worker, and the bad input (other backends: PM_ENOTSUP).
 */
#define _GNU_SOURCE /* MAP_ANONYMOUS under -std=c11 */
#include "check.h"

#if !PMT_HAVE_FORK
int main(void)
{
    PMT_SKIP("no fork on this target");
}
#else

#include "sandbox.h"

#include <stdint.h>
#include <sys/mman.h>

#define MB ((size_t)1 << 20)
#define WORKER_THREADS_OK (!PMT_TSAN && !PMT_ASAN)

typedef struct out_rec {
    int64_t twice;
    int64_t pid;
    int64_t rss;   /* the worker's resident bytes after the item */
} out_rec;

typedef struct leak_ctx {
    size_t leak;           /* bytes each item leaks (touched) */
    atomic_int *hits;      /* MAP_SHARED: starts per index */
} leak_ctx;

static int64_t own_rss(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return (int64_t)res * (int64_t)sysconf(_SC_PAGESIZE);
}

static void *volatile leaked; /* keeps the compiler from eliding the leak */

static int leaky(void *user, const void *in, void *out)
{
    const leak_ctx *c = user;
    int64_t i = *(const int64_t *)in;
    atomic_fetch_add(&c->hits[i], 1);
    char *p = malloc(c->leak); /* never freed: the leak recycling contains */
    if (!p)
        return 90;
    memset(p, 1, c->leak);
    leaked = p;
    out_rec *o = out;
    o->twice = 2 * i;
    o->pid = (int64_t)getpid();
    o->rss = own_rss();
    return 0;
}

static atomic_int *shared_counters(size_t n)
{
    void *p = mmap(NULL, n * sizeof(atomic_int), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    return p;
}

/* Checks shared by the cases: exactly once, right results; returns the
 * number of distinct worker pids and the largest worker RSS seen. */
static int check_outputs(const out_rec *o, const atomic_int *hits, size_t n, int64_t *max_rss)
{
    int64_t pids[4096];
    int npids = 0;
    *max_rss = 0;
    for (size_t i = 0; i < n; i++) {
        CHECK_CTX("item %zu", i);
        CHECK_EQ_INT(atomic_load(&hits[i]), 1);
        CHECK_EQ_INT(o[i].twice, 2 * (int64_t)i);
        if (o[i].rss > *max_rss)
            *max_rss = o[i].rss;
        int known = 0;
        for (int k = 0; k < npids; k++)
            known |= pids[k] == o[i].pid;
        if (!known && npids < 4096)
            pids[npids++] = o[i].pid;
    }
    CHECK_CTX("");
    return npids;
}

static void map_case(size_t n, size_t leak, size_t every, size_t rss_limit, int threads)
{
    CHECK_CTX("map n %zu leak %zu every %zu rss %zu threads %d", n, leak, every, rss_limit,
              threads);
    atomic_int *hits = shared_counters(n);
    leak_ctx c = {leak, hits};
    int64_t *in = malloc(n * sizeof *in);
    out_rec *out = calloc(n, sizeof *out);
    int *codes = calloc(n, sizeof *codes);
    CHECK(in && out && codes);
    for (size_t i = 0; i < n; i++)
        in[i] = (int64_t)i;
    sandbox_snap before = sandbox_snap_take();
    pm_opts o = {.backend = PM_PROCESSES, .procs = 2, .threads = threads, .chunksize = 5,
                 .recycle_items = every, .recycle_rss = rss_limit, .on_error = PM_RETURN,
                 .codes = codes};
    CHECK_STATUS(PM_OK, pm_map(leaky, &c, in, sizeof *in, out, sizeof *out, n, &o, NULL));
    sandbox_check_leftovers(&before);
    for (size_t i = 0; i < n; i++)
        CHECK_EQ_INT(codes[i], 0);
    int64_t max_rss;
    int npids = check_outputs(out, hits, n, &max_rss);
    /* each process runs up to its limit plus the pieces in flight (2 per
     * lane, 5 items each) before it is replaced */
    size_t per_proc = every ? every + (size_t)threads * 10 : n;
    printf("    n %zu leak %zu MB every %zu rss limit %zu MB threads %d: %d worker processes, "
           "largest worker RSS %lld MB\n", n, leak / MB, every, rss_limit / MB, threads, npids,
           (long long)(max_rss / (int64_t)MB));
    CHECK_OP_INT(npids, >=, (int64_t)(n / per_proc));
    if (every)
        CHECK_OP_INT(max_rss, <, (int64_t)((per_proc + 64) * leak + 200 * MB));
    if (rss_limit)
        CHECK_OP_INT(max_rss, <, (int64_t)(rss_limit + 10 * (size_t)threads * leak + 64 * MB));
    munmap(hits, n * sizeof *hits);
    free(in);
    free(out);
    free(codes);
}

static void imap_case(void)
{
    const size_t n = 300;
    CHECK_CTX("imap, recycle every 20 items");
    atomic_int *hits = shared_counters(n);
    leak_ctx c = {MB, hits};
    pmt_range src = {0, (int64_t)n};
    pm_iter *it = pm_imap(leaky, &c, pmt_range_src, &src, sizeof(int64_t), sizeof(out_rec),
                          &(pm_opts){.backend = PM_PROCESSES, .procs = 2, .chunksize = 3,
                                     .recycle_items = 20});
    CHECK(it != NULL);
    out_rec *out = calloc(n, sizeof *out), v;
    size_t index, got = 0;
    int code, r;
    while ((r = pm_iter_next(it, &v, &index, &code)) == 1) {
        CHECK(index < n && code == 0);
        out[index] = v;
        got++;
    }
    CHECK_EQ_INT(r, 0);
    CHECK_EQ_SIZE(got, n);
    CHECK_STATUS(PM_OK, pm_iter_free(it));
    int64_t max_rss;
    CHECK_OP_INT(check_outputs(out, hits, n, &max_rss), >=, (int64_t)(n / 40));
    munmap(hits, n * sizeof *hits);
    free(out);
}

static void cases_one_thread(void)
{
    map_case(400, MB, 25, 0, 1);         /* by item count */
    map_case(200, 4 * MB, 0, 64 * MB, 1); /* by resident memory */
    map_case(100, MB, 0, 0, 1);           /* off: one process each, nothing replaced */
    imap_case();
}

static void cases_two_threads(void)
{
    map_case(400, MB, 25, 0, 2);
}

static void bad_input(void)
{
    int64_t in[4] = {0, 1, 2, 3};
    out_rec out[4];
    leak_ctx c = {16, shared_counters(4)};
    CHECK_STATUS(PM_ENOTSUP, pm_map(leaky, &c, in, sizeof in[0], out, sizeof out[0], 4,
                                    &(pm_opts){.backend = PM_THREADS, .recycle_items = 2}, NULL));
    CHECK_STATUS(PM_ENOTSUP, pm_map(leaky, &c, in, sizeof in[0], out, sizeof out[0], 4,
                                    &(pm_opts){.backend = PM_SERIAL, .recycle_rss = MB}, NULL));
    munmap(c.hits, 4 * sizeof *c.hits);
}

int main(void)
{
    int failed = !sandbox_run("recycling, 1 thread per worker", cases_one_thread, 120);
    if (WORKER_THREADS_OK)
        failed += !sandbox_run("recycling, 2 threads per worker", cases_two_threads, 120);
    else
        printf("  skip 2 threads per worker (under %s: see proc_util.h)\n",
               PMT_TSAN ? "TSan" : "ASan");
    failed += !sandbox_run("recycling options elsewhere: PM_ENOTSUP", bad_input, 30);
    if (failed)
        return 1;
    printf("ok test_proc_recycle\n");
    return 0;
}

#endif
