/*
 * bench_core_array.c - bench_core's array cases: pm_map over an array in
 * memory against a serial loop and OpenMP on the same buffers.
 *
 * trivial_auto / trivial_chunk1 (cases 1 and 2): out = 2 * in on 1e7 doubles,
 * parmap with auto chunking against schedule(static), and parmap with
 * chunksize 1 against schedule(dynamic,1). The "*_call" implementations call
 * the item function through a pointer once per item, as parmap does, so the
 * gap between "omp_static" and "omp_static_call" is the price of the per-item
 * call, and the gap between "omp_static_call" and "parmap" is parmap's own
 * scheduling. "parmap_batch" maps with a batch function (a chunk per call,
 * so the loop vectorises like OpenMP's) starting its threads per call, and
 * "parmap_batch_pool" the same on a warm pool, as OpenMP's team is (goal:
 * <= 1.1x omp_static); "parmap_capped1" is pm_map_batch on that pool capped
 * to 1 thread by opts.threads (goal: the serial loop's time +- 10 %: it runs
 * on the caller alone).
 *
 * spin_uniform / spin_skewed (case 3): items of ~100 us of calibrated busy
 * arithmetic, all equal or growing linearly with the index (same total), so
 * that a static split is unbalanced and dynamic scheduling has to earn its
 * keep. Every implementation calls the same item function through a pointer.
 *
 * Each output buffer is poisoned before every run and compared bit for bit
 * with the serial loop's output after it.
 */
#define _POSIX_C_SOURCE 200809L

#include "bench_core.h"

#include <stdint.h>

/* ------------------------------------------------------- array cases */

/* One array map: n records in, n records out, a reference output to compare
 * with, and how parmap should chunk it. Shared by every implementation. */
typedef struct arr_ctx {
    pm_fn fn;
    const void *in;
    size_t in_stride;
    void *out;
    size_t out_stride;
    size_t n;
    const void *ref;
    long chunksize;
    pm_pool *pool;      /* parmap_capped1's warm pool */
} arr_ctx;

static void arr_prep(void *p)
{
    arr_ctx *c = p;
    /* Poison (all-ones: a NaN for doubles) so stale results cannot pass. */
    memset(c->out, 0xff, c->n * c->out_stride);
}

static int arr_check(void *p)
{
    arr_ctx *c = p;
    return memcmp(c->out, c->ref, c->n * c->out_stride) == 0;
}

static void serial_twice_loop(const double *x, double *y, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) y[i] = 2 * x[i];
}

static int run_serial_twice(void *p)
{
    arr_ctx *c = p;
    serial_twice_loop(c->in, c->out, c->n);
    return 0;
}

static int run_serial_call(void *p)
{
    arr_ctx *c = p;
    /* Through a volatile pointer, as a library call would be: no inlining. */
    pm_fn volatile fn = c->fn;
    const char *ip = c->in;
    char *op = c->out;
    size_t i;
    for (i = 0; i < c->n; i++)
        (void)fn(NULL, ip + i * c->in_stride, op + i * c->out_stride);
    return 0;
}

static int run_omp_twice_static(void *p)
{
    arr_ctx *c = p;
    bco_twice_static(c->in, c->out, c->n, bco_cfg.threads);
    return 0;
}

static int run_omp_twice_dynamic1(void *p)
{
    arr_ctx *c = p;
    bco_twice_dynamic1(c->in, c->out, c->n, bco_cfg.threads);
    return 0;
}

static int run_omp_call_static(void *p)
{
    arr_ctx *c = p;
    bco_call_static(c->fn, NULL, c->in, c->in_stride, c->out, c->out_stride,
                    c->n, bco_cfg.threads);
    return 0;
}

static int run_omp_call_dynamic1(void *p)
{
    arr_ctx *c = p;
    bco_call_dynamic1(c->fn, NULL, c->in, c->in_stride, c->out, c->out_stride,
                      c->n, bco_cfg.threads);
    return 0;
}

static int run_parmap(void *p)
{
    arr_ctx *c = p;
    pm_report rep;
    int rc = pm_map(c->fn, NULL, c->in, c->in_stride, c->out, c->out_stride, c->n,
                    &(pm_opts){ .threads = bco_cfg.threads, .chunksize = c->chunksize },
                    &rep);
    if (rc == PM_OK && rep.done != c->n) rc = BCO_EBADREPORT;
    return rc;
}

static size_t twice_batch(void *user, size_t first, size_t count, const void *in, void *out,
                          int *codes)
{
    (void)user, (void)first, (void)codes;
    serial_twice_loop(in, out, count);
    return count;
}

static int run_parmap_batch(void *p)
{
    arr_ctx *c = p;
    pm_report rep;
    int rc = pm_map_batch(twice_batch, NULL, c->in, c->in_stride, c->out, c->out_stride, c->n,
                          &(pm_opts){ .threads = bco_cfg.threads, .chunksize = c->chunksize },
                          &rep);
    if (rc == PM_OK && rep.done != c->n) rc = BCO_EBADREPORT;
    return rc;
}

static int run_batch_on_pool(arr_ctx *c, int threads)
{
    pm_report rep;
    int rc = pm_map_batch(twice_batch, NULL, c->in, c->in_stride, c->out, c->out_stride, c->n,
                          &(pm_opts){ .pool = c->pool, .threads = threads,
                                      .chunksize = c->chunksize },
                          &rep);
    if (rc == PM_OK && rep.done != c->n) rc = BCO_EBADREPORT;
    return rc;
}

static int run_parmap_batch_pool(void *p) { return run_batch_on_pool(p, 0); }
static int run_parmap_capped1(void *p) { return run_batch_on_pool(p, 1); }

static bu_impl impl(const char *name, int (*run)(void *), void *ctx, int available)
{
    bu_impl im;
    memset(&im, 0, sizeof im);
    im.name = name;
    im.run = run;
    im.prep = arr_prep;
    im.check = arr_check;
    im.ctx = ctx;
    im.available = available;
    return im;
}

/* Cases 1 and 2: out = 2 * in on doubles. */
void bco_case_trivial(const char *bench, long chunksize, size_t n)
{
    double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    double *ref = malloc(n * sizeof *ref);
    arr_ctx c = { bco_twice, x, sizeof *x, y, sizeof *y, n, ref, chunksize, NULL };
    int omp = bco_omp_available();
    int dyn = chunksize == 1;
    const char *omp_ref = dyn ? "omp_dynamic1" : "omp_static";
    const char *omp_call = dyn ? "omp_dynamic1_call" : "omp_static_call";
    bu_impl im[8];
    int i, count = 0;
    size_t k;

    if (!x || !y || !ref) {
        bco_fail_alloc(bench);
        goto done;
    }
    for (k = 0; k < n; k++) x[k] = 0.5 * (double)k + 1.0;
    serial_twice_loop(x, ref, n);

    im[count++] = impl("serial", run_serial_twice, &c, 1);
    im[count++] = impl("serial_call", run_serial_call, &c, 1);
    im[count++] = impl(omp_ref, dyn ? run_omp_twice_dynamic1 : run_omp_twice_static,
                       &c, omp);
    im[count++] = impl(omp_call, dyn ? run_omp_call_dynamic1 : run_omp_call_static,
                       &c, omp);
    im[count++] = impl("parmap", run_parmap, &c, 1);
    if (!dyn) {
        c.pool = pm_pool_new(&(pm_opts){ .threads = bco_cfg.threads });
        im[count++] = impl("parmap_batch", run_parmap_batch, &c, 1);
        im[count++] = impl("parmap_batch_pool", run_parmap_batch_pool, &c, c.pool != NULL);
        im[count++] = impl("parmap_capped1", run_parmap_capped1, &c, c.pool != NULL);
    }
    bco_run(im, count);
    pm_pool_free(c.pool);

    for (i = 0; i < count; i++) {
        bu_json j;
        bu_impl *o = bu_find(im, count, omp_ref);
        bco_emit_begin(&j, bench, &im[i], n);
        bco_emit_ratio(&j, "speedup_vs_serial", bu_find(im, count, "serial"), &im[i]);
        if (strcmp(im[i].name, "parmap") == 0) {
            char key[64];
            double r = bu_ratio(im[i].st.best, o->st.best);
            bu_json_int(&j, "chunksize", chunksize);
            snprintf(key, sizeof key, "ratio_vs_%s", omp_ref);
            bco_emit_ratio(&j, key, &im[i], o);
            snprintf(key, sizeof key, "ratio_vs_%s_call", omp_ref);
            bco_emit_ratio(&j, key, &im[i], bu_find(im, count, omp_call));
            bu_json_str(&j, "goal", dyn ? "ratio_vs_omp_dynamic1 <= 1"
                                        : "ratio_vs_omp_static <= 2");
            bco_emit_goal(&j, r == r ? (r <= (dyn ? 1.0 : 2.0)) : -1,
                          r == r ? (r <= (dyn ? 1.0 : 2.0) * BCO_TOLERANCE) : -1);
        } else if (strcmp(im[i].name, "parmap_batch") == 0) {
            bco_emit_ratio(&j, "ratio_vs_omp_static", &im[i], o);
        } else if (strcmp(im[i].name, "parmap_batch_pool") == 0) {
            double r = bu_ratio(im[i].st.median, o->st.median);
            bco_emit_ratio(&j, "ratio_vs_omp_static", &im[i], o);
            bu_json_str(&j, "goal", "ratio_vs_omp_static_median <= 1.1");
            bco_emit_goal(&j, r == r ? r <= 1.1 : -1, r == r ? r <= 1.1 * BCO_TOLERANCE : -1);
        } else if (strcmp(im[i].name, "parmap_capped1") == 0) {
            bu_impl *sc = bu_find(im, count, "serial");
            double r = bu_ratio(im[i].st.median, sc->st.median);
            bco_emit_ratio(&j, "ratio_vs_serial", &im[i], sc);
            bu_json_str(&j, "goal", "0.9 <= ratio_vs_serial_median <= 1.1");
            bco_emit_goal(&j, r == r ? r >= 0.9 && r <= 1.1 : -1,
                          r == r ? r >= 0.9 / BCO_TOLERANCE && r <= 1.1 * BCO_TOLERANCE : -1);
        }
        bu_json_end(&j);
    }
done:
    free(x);
    free(y);
    free(ref);
}

/* Case 3: ~spin_us per item, uniform or growing linearly with the index (the
 * same total), so that static scheduling is handed an unbalanced split. */
void bco_case_spin(const char *bench, int skewed, size_t n)
{
    bco_spin_item *in = malloc(n * sizeof *in);
    uint64_t *out = malloc(n * sizeof *out), *ref = malloc(n * sizeof *ref);
    arr_ctx c = { bco_spin_fn, in, sizeof *in, out, sizeof *out, n, ref, 0, NULL };
    int omp = bco_omp_available();
    double ipu, per_item;
    bu_impl im[4], *serial, *dynamic1;
    int i, count = 0;
    size_t k;

    if (!in || !out || !ref) {
        bco_fail_alloc(bench);
        goto done;
    }
    ipu = bco_calibrate_spin();
    per_item = ipu * bco_cfg.spin_us;
    for (k = 0; k < n; k++) {
        double w = skewed ? 2.0 * ((double)k + 0.5) / (double)n : 1.0;
        in[k].seed = k;
        in[k].iters = (uint64_t)(per_item * w + 0.5);
    }
    run_serial_call(&c);
    memcpy(ref, out, n * sizeof *out);

    im[count++] = impl("serial", run_serial_call, &c, 1);
    im[count++] = impl("omp_static", run_omp_call_static, &c, omp);
    im[count++] = impl("omp_dynamic1", run_omp_call_dynamic1, &c, omp);
    im[count++] = impl("parmap", run_parmap, &c, 1);
    bco_run(im, count);
    serial = &im[0];
    dynamic1 = &im[2];

    for (i = 0; i < count; i++) {
        bu_json j;
        bco_emit_begin(&j, bench, &im[i], n);
        bu_json_num(&j, "item_us_target", bco_cfg.spin_us);
        bu_json_num(&j, "item_us_serial", serial->st.best / (double)n * 1e6);
        bco_emit_ratio(&j, "speedup_vs_serial", serial, &im[i]);
        if (strcmp(im[i].name, "parmap") == 0) {
            double s = bu_ratio(serial->st.best, im[i].st.best);
            double r = bu_ratio(im[i].st.best, dynamic1->st.best);
            bu_json_int(&j, "chunksize", 0);
            bco_emit_ratio(&j, "ratio_vs_omp_dynamic1", &im[i], dynamic1);
            bco_emit_ratio(&j, "ratio_vs_omp_static", &im[i], &im[1]);
            bu_json_str(&j, "goal", "speedup_vs_serial >= 1.9 and ratio_vs_omp_dynamic1 <= 1");
            bco_emit_goal(&j, r == r && s == s ? (s >= 1.9 && r <= 1.0) : -1,
                          r == r && s == s ? (s >= 1.9 && r <= BCO_TOLERANCE) : -1);
        }
        bu_json_end(&j);
    }
done:
    free(in);
    free(out);
    free(ref);
}
