/*
 * bench_core_stream.c - bench_core's cases 4 and 5: a long pm_imap stream
 * (throughput and memory) and many small maps with and without a warm pool.
 *
 * imap_stream: a generator yields 0, 1, 2, ... n-1; the item doubles it; the
 * caller consumes every result with pm_iter_next, checks that each arrives in
 * order with its index, and sums them (the sum must be n(n-1), mod 2^64). The
 * serial line runs the same source and item function in a plain loop. Memory:
 * the peak-RSS mark is reset before each run (Linux /proc/self/clear_refs)
 * and read after pm_iter_free, so the growth is this run's alone; where the
 * reset is unsupported, VmRSS is sampled every 2^20 items instead.
 *
 * pool_reuse: `maps` maps of `items` doubles each, once with a fresh pool per
 * pm_map (opts.pool NULL: threads started and joined every call) and once
 * with one pm_pool_new reused (its creation and pm_pool_free are timed too).
 * OpenMP's line is the same maps as `omp parallel for` regions, whose team
 * OpenMP keeps warm: the reference a warm pool should approach.
 */
#define _POSIX_C_SOURCE 200809L

#include "bench_core.h"

#include <stdint.h>

/* ------------------------------------------------------------ imap_stream */

typedef struct counter {
    uint64_t next, n;
} counter;

static int counter_next(void *src, void *item)
{
    counter *c = src;
    if (c->next >= c->n) return 0;
    *(uint64_t *)item = c->next++;
    return 1;
}

static int twice_u64(void *user, const void *in, void *out)
{
    (void)user;
    *(uint64_t *)out = 2 * *(const uint64_t *)in;
    return 0;
}

typedef struct imap_ctx {
    size_t n;
    /* one run's results, reset by imap_prep */
    uint64_t sum;
    size_t count;
    int order_ok;
    /* memory, parmap run only: worst growth over all runs */
    long growth_kb_max;
    const char *rss_method;
} imap_ctx;

static void imap_prep(void *p)
{
    imap_ctx *c = p;
    c->sum = 0;
    c->count = 0;
    c->order_ok = 1;
}

static int imap_check(void *p)
{
    imap_ctx *c = p;
    uint64_t n = c->n;
    return c->order_ok && c->count == c->n && c->sum == n * (n - 1);
}

static int run_imap_serial(void *p)
{
    imap_ctx *c = p;
    counter src = { 0, c->n };
    pm_source_fn volatile next = counter_next;
    pm_fn volatile fn = twice_u64;
    uint64_t x, y;
    while (next(&src, &x) == 1) {
        (void)fn(NULL, &x, &y);
        if (y != 2 * (uint64_t)c->count) c->order_ok = 0;
        c->sum += y;
        c->count++;
    }
    return 0;
}

static int run_imap_parmap(void *p)
{
    imap_ctx *c = p;
    counter src = { 0, c->n };
    int hwm = bu_reset_peak_rss() == 0;
    long base = bu_proc_status_kb("VmRSS:"), peak = base, growth;
    size_t index;
    int rc, frc, code;
    uint64_t y;
    pm_iter *it = pm_imap(twice_u64, NULL, counter_next, &src, sizeof(uint64_t),
                          sizeof(uint64_t), &(pm_opts){ .threads = bco_cfg.threads });
    if (!it) return PM_ENOMEM;
    while ((rc = pm_iter_next(it, &y, &index, &code)) == 1) {
        if (index != c->count || code != 0 || y != 2 * (uint64_t)c->count)
            c->order_ok = 0;
        c->sum += y;
        c->count++;
        if (!hwm && (c->count & 0xfffff) == 0) {
            long now = bu_proc_status_kb("VmRSS:");
            if (now > peak) peak = now;
        }
    }
    frc = pm_iter_free(it);
    if (hwm) {
        peak = bu_peak_rss_kb();
        c->rss_method = "VmHWM reset per run";
    } else {
        long now = bu_proc_status_kb("VmRSS:");
        if (now > peak) peak = now;
        c->rss_method = base >= 0 ? "VmRSS sampled every 2^20 items" : "unavailable";
    }
    growth = base >= 0 && peak >= 0 ? peak - base : -1;
    if (growth > c->growth_kb_max) c->growth_kb_max = growth;
    if (rc != 0) return rc;
    return frc;
}

static bu_impl stream_impl(const char *name, int (*run)(void *), imap_ctx *c)
{
    bu_impl im;
    memset(&im, 0, sizeof im);
    im.name = name;
    im.run = run;
    im.prep = imap_prep;
    im.check = imap_check;
    im.ctx = c;
    im.available = 1;
    return im;
}

void bco_case_imap(const char *bench, size_t n)
{
    imap_ctx cs = { n, 0, 0, 1, -1, "none" }, cp = cs;
    bu_impl im[2];
    int i;
    im[0] = stream_impl("serial", run_imap_serial, &cs);
    im[1] = stream_impl("parmap", run_imap_parmap, &cp);
    bco_run(im, 2);
    for (i = 0; i < 2; i++) {
        imap_ctx *c = im[i].ctx;
        uint64_t want = (uint64_t)n * (uint64_t)(n - 1);
        bu_json j;
        bco_emit_begin(&j, bench, &im[i], n);
        bu_json_num(&j, "items_per_s", (double)n / im[i].st.best);
        bu_json_num(&j, "items_per_s_median", (double)n / im[i].st.median);
        bco_emit_ratio(&j, "speedup_vs_serial", &im[0], &im[i]);
        /* the last run's sum; a wrong sum in any run already cleared "ok" */
        bu_json_bool(&j, "sum_ok", c->sum == want);
        bu_json_bool(&j, "order_ok", c->order_ok);
        if (i == 1) {
            double mb = c->growth_kb_max >= 0 ? (double)c->growth_kb_max / 1024.0 : NAN;
            bu_json_num(&j, "rss_growth_mb", mb);
            bu_json_str(&j, "rss_method", c->rss_method);
            bu_json_str(&j, "goal", "rss_growth_mb < 64");
            bco_emit_goal(&j, mb == mb ? mb < 64 : -1, BCO_NO_TOLERANCE);
        }
        bu_json_end(&j);
    }
}

/* ------------------------------------------------------------- pool_reuse */

typedef struct pool_ctx {
    const double *x;
    double *y;
    const double *ref;
    size_t maps, items;
} pool_ctx;

static int twice_d(void *user, const void *in, void *out)
{
    (void)user;
    *(double *)out = 2 * *(const double *)in;
    return 0;
}

static void pool_prep(void *p)
{
    pool_ctx *c = p;
    memset(c->y, 0xff, c->maps * c->items * sizeof *c->y);
}

static int pool_check(void *p)
{
    pool_ctx *c = p;
    return memcmp(c->y, c->ref, c->maps * c->items * sizeof *c->y) == 0;
}

static int run_pool_serial(void *p)
{
    pool_ctx *c = p;
    size_t m, i, k = c->items;
    for (m = 0; m < c->maps; m++)
        for (i = 0; i < k; i++) c->y[m * k + i] = 2 * c->x[m * k + i];
    return 0;
}

static int run_pool_omp(void *p)
{
    pool_ctx *c = p;
    size_t m, k = c->items;
    for (m = 0; m < c->maps; m++)
        bco_twice_static(c->x + m * k, c->y + m * k, k, bco_cfg.threads);
    return 0;
}

/* One map per block: on `pool`, or without one: `private_threads` starts a
 * fresh set of threads per call (parmapper's way), else the shared default
 * pool runs it. */
static int pool_maps(pool_ctx *c, pm_pool *pool, int private_threads)
{
    size_t m, k = c->items;
    for (m = 0; m < c->maps; m++) {
        pm_report rep;
        int rc = pm_map(twice_d, NULL, c->x + m * k, sizeof *c->x, c->y + m * k,
                        sizeof *c->y, k,
                        &(pm_opts){ .threads = bco_cfg.threads, .pool = pool,
                                    .private_threads = private_threads }, &rep);
        if (rc != PM_OK) return rc;
        if (rep.done != k) return BCO_EBADREPORT;
    }
    return 0;
}

static int run_pool_fresh(void *p)
{
    return pool_maps(p, NULL, 1);
}

static int run_pool_default(void *p)
{
    return pool_maps(p, NULL, 0);
}

static int run_pool_reused(void *p)
{
    int rc;
    pm_pool *pool = pm_pool_new(&(pm_opts){ .threads = bco_cfg.threads });
    if (!pool) return PM_ESYS;
    rc = pool_maps(p, pool, 0);
    pm_pool_free(pool);
    return rc;
}

static bu_impl pool_impl(const char *name, int (*run)(void *), pool_ctx *c, int available)
{
    bu_impl im;
    memset(&im, 0, sizeof im);
    im.name = name;
    im.run = run;
    im.prep = pool_prep;
    im.check = pool_check;
    im.ctx = c;
    im.available = available;
    return im;
}

void bco_case_pool(const char *bench, size_t maps, size_t items)
{
    size_t n = maps * items, k;
    double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    double *ref = malloc(n * sizeof *ref);
    pool_ctx c = { x, y, ref, maps, items };
    bu_impl im[5];
    int i;
    if (!x || !y || !ref) {
        bco_fail_alloc(bench);
        goto done;
    }
    for (k = 0; k < n; k++) {
        x[k] = (double)k - 0.25;
        ref[k] = 2 * x[k];
    }
    im[0] = pool_impl("serial", run_pool_serial, &c, 1);
    im[1] = pool_impl("omp_static", run_pool_omp, &c, bco_omp_available());
    im[2] = pool_impl("parmap_fresh_pool", run_pool_fresh, &c, 1);
    im[3] = pool_impl("parmap_reused_pool", run_pool_reused, &c, 1);
    im[4] = pool_impl("parmap_default", run_pool_default, &c, 1);
    bco_run(im, 5);
    for (i = 0; i < 5; i++) {
        bu_json j;
        bco_emit_begin(&j, bench, &im[i], n);
        bu_json_int(&j, "maps", (long long)maps);
        bu_json_int(&j, "items_per_map", (long long)items);
        bu_json_num(&j, "us_per_map", im[i].st.best / (double)maps * 1e6);
        bu_json_num(&j, "us_per_map_median", im[i].st.median / (double)maps * 1e6);
        bco_emit_ratio(&j, "speedup_vs_serial", &im[0], &im[i]);
        if (i >= 2) bco_emit_ratio(&j, "ratio_vs_omp_static", &im[i], &im[1]);
        if (i == 3) bco_emit_ratio(&j, "pool_gain", &im[2], &im[3]);
        if (i == 4) {
            /* goal: default options cost <= 1.5x the warm pool, <= 3 us a map */
            double r = bu_ratio(im[4].st.median, im[3].st.median);
            double us = im[4].st.median / (double)maps * 1e6;
            bco_emit_ratio(&j, "ratio_vs_reused_pool", &im[4], &im[3]);
            bu_json_str(&j, "goal", "ratio_vs_reused_pool_median <= 1.5 and us_per_map_median <= 3");
            bco_emit_goal(&j, r == r ? r <= 1.5 && us <= 3.0 : -1,
                          r == r ? r <= 1.5 * BCO_TOLERANCE && us <= 3.0 * BCO_TOLERANCE : -1);
        }
        bu_json_end(&j);
    }
done:
    free(x);
    free(y);
    free(ref);
}
