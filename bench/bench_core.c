/*
 * bench_core.c - parmap's core benchmark: pm_map, pm_imap and pm_pool against
 * a plain serial loop and OpenMP (schedule(static), schedule(dynamic,1)) on
 * identical work, in the same run, on the same buffers.
 *
 * Output: a {"machine":...} line, then one JSON line per case and
 * implementation, then a {"summary":...} line. Every implementation's output
 * is compared with the serial loop's ("ok"); the exit status is 1 when any
 * comparison failed or parmap returned an error, 0 otherwise. Timings are
 * never asserted: the goals from the issue are reported as "goal" and
 * "goal_met" next to the measured ratios.
 *
 * Design: each case builds its inputs and a reference output once (untimed),
 * then hands a table of implementations to bu_run, which times `reps` runs of
 * each, interleaved, and the case prints best and median. Implementations
 * named "*_call" call the item function through a pointer once per item, as
 * parmap does, so the gap between "omp_static" and "omp_static_call" is the
 * price of the per-item call, and the gap between "omp_static_call" and
 * "parmap" is parmap's scheduling. The stream and pool cases live in
 * bench_core_stream.c.
 */
#define _POSIX_C_SOURCE 200809L

#include "bench_core.h"

#include <inttypes.h>
#include <stdint.h>

bco_config bco_cfg;
int bco_all_ok = 1;

/* ------------------------------------------------------------ the work */

static int twice(void *user, const void *in, void *out)
{
    (void)user;
    *(double *)out = 2 * *(const double *)in;
    return 0;
}

/* The calibrated item: a dependent chain of xorshift steps feeding a
 * floating-point sum. Its iteration count comes from the input at run time, so
 * the compiler can neither vectorise it nor precompute it, and its result is
 * stored, so it cannot be dropped. Deterministic, so any scheduling gives the
 * serial loop's bits. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#endif
static uint64_t spin(uint64_t seed, uint64_t iters)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15u + 1;
    double acc = 0;
    uint64_t k;
    for (k = 0; k < iters; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        acc += (double)(x >> 11) * 0x1p-53;
    }
    return x ^ (uint64_t)(acc * 1024.0);
}

typedef struct spin_item {
    uint64_t seed, iters;
} spin_item;

static int spin_fn(void *user, const void *in, void *out)
{
    const spin_item *it = in;
    (void)user;
    *(uint64_t *)out = spin(it->seed, it->iters);
    return 0;
}

/* Iterations of spin() per microsecond on one idle core: best of 7 runs of
 * ~2^21 iterations (a few ms each). */
static double calibrate_spin(void)
{
    volatile uint64_t sink = 0;
    double best = 1e30;
    int r;
    const uint64_t k = (uint64_t)1 << 21;
    for (r = 0; r < 7; r++) {
        double t0 = bu_now(), t;
        sink ^= spin((uint64_t)r, k);
        t = bu_now() - t0;
        if (t < best) best = t;
    }
    (void)sink;
    return (double)k / (best * 1e6);
}

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
static void case_trivial(const char *bench, long chunksize, size_t n)
{
    double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    double *ref = malloc(n * sizeof *ref);
    arr_ctx c = { twice, x, sizeof *x, y, sizeof *y, n, ref, chunksize };
    int omp = bco_omp_available();
    int dyn = chunksize == 1;
    const char *omp_ref = dyn ? "omp_dynamic1" : "omp_static";
    const char *omp_call = dyn ? "omp_dynamic1_call" : "omp_static_call";
    bu_impl im[5];
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
    bu_run(im, count, bco_cfg.reps, bco_cfg.settle_ms);

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
            bco_emit_goal(&j, r == r ? (r <= (dyn ? 1.0 : 2.0)) : -1);
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
static void case_spin(const char *bench, int skewed, size_t n)
{
    spin_item *in = malloc(n * sizeof *in);
    uint64_t *out = malloc(n * sizeof *out), *ref = malloc(n * sizeof *ref);
    arr_ctx c = { spin_fn, in, sizeof *in, out, sizeof *out, n, ref, 0 };
    int omp = bco_omp_available();
    double ipu, per_item;
    bu_impl im[4], *serial, *dynamic1;
    int i, count = 0;
    size_t k;

    if (!in || !out || !ref) {
        bco_fail_alloc(bench);
        goto done;
    }
    ipu = calibrate_spin();
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
    bu_run(im, count, bco_cfg.reps, bco_cfg.settle_ms);
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
            bco_emit_goal(&j, r == r && s == s ? (s >= 1.9 && r <= 1.0) : -1);
        }
        bu_json_end(&j);
    }
done:
    free(in);
    free(out);
    free(ref);
}

/* ---------------------------------------------------------- reporting */

void bco_fail_alloc(const char *bench)
{
    bu_json j;
    bu_json_begin(&j);
    bu_json_str(&j, "bench", bench);
    bu_json_bool(&j, "ok", 0);
    bu_json_str(&j, "error", "out of memory for the benchmark's buffers");
    bu_json_end(&j);
    bco_all_ok = 0;
}

/* The fields every line has: what ran, how often, how long, and whether its
 * output matched the serial loop's. Counts failures into bco_all_ok. */
void bco_emit_begin(bu_json *j, const char *bench, const bu_impl *im, size_t n)
{
    int serial = strncmp(im->name, "serial", 6) == 0;
    bu_json_begin(j);
    bu_json_str(j, "bench", bench);
    bu_json_str(j, "impl", im->name);
    bu_json_int(j, "threads", serial ? 1 : bco_cfg.threads);
    bu_json_int(j, "n", (long long)n);
    if (!im->available) {
        bu_json_str(j, "omp", "unavailable");
        return;
    }
    bu_json_int(j, "reps", im->reps);
    bu_json_num(j, "seconds", im->st.best);
    bu_json_num(j, "seconds_median", im->st.median);
    bu_json_num(j, "seconds_worst", im->st.worst);
    bu_json_num(j, "us_per_item", n ? im->st.best / (double)n * 1e6 : NAN);
    bu_json_bool(j, "ok", im->ok);
    if (im->rc) {
        bu_json_int(j, "rc", im->rc);
        bu_json_str(j, "status", im->rc == BCO_EBADREPORT ? "report.done != n"
                                                         : pm_err_name(im->rc));
    }
    if (!im->ok) bco_all_ok = 0;
}

/* key = a / b for best times and key_median for medians; null when either
 * side is missing. For speedups pass (serial, impl); for ratios (impl, ref). */
void bco_emit_ratio(bu_json *j, const char *key, const bu_impl *a, const bu_impl *b)
{
    char k2[80];
    int have = a && b && a->available && b->available && a->reps && b->reps;
    snprintf(k2, sizeof k2, "%s_median", key);
    bu_json_num(j, key, have ? bu_ratio(a->st.best, b->st.best) : NAN);
    bu_json_num(j, k2, have ? bu_ratio(a->st.median, b->st.median) : NAN);
}

/* goal_met: 1 true, 0 false, -1 unknown (a comparison was unavailable). */
void bco_emit_goal(bu_json *j, int met)
{
    if (met < 0) {
        bu_json_key(j, "goal_met");
        bu_json_raw(j, "null");
    } else {
        bu_json_bool(j, "goal_met", met);
    }
}

/* ---------------------------------------------------------------- main */

static const char *const case_names[] = {
    "trivial_auto", "trivial_chunk1", "spin_uniform", "spin_skewed",
    "imap_stream", "pool_reuse"
};
#define NCASES (int)(sizeof case_names / sizeof case_names[0])

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_core [--quick] [--threads N] [--reps N] [--case NAME]...\n"
            "                  [--imap-n N] [--spin-n N] [--spin-us US] [--settle-ms MS]\n"
            "  --quick      small sizes (CI smoke test; timings meaningless)\n"
            "  --case NAME  run only this case (repeatable; a prefix such as 'spin' works):\n"
            "               trivial_auto trivial_chunk1 spin_uniform spin_skewed\n"
            "               imap_stream pool_reuse\n");
}

static int parse_size(const char *s, size_t *v)
{
    char *end;
    double d = strtod(s, &end); /* accepts 1e8 */
    if (end == s || *end || d < 1 || d > 1e15) return -1;
    *v = (size_t)d;
    return 0;
}

static int selected(const char *name)
{
    int i;
    if (bco_cfg.ncases == 0) return 1;
    for (i = 0; i < bco_cfg.ncases; i++)
        if (strncmp(name, bco_cfg.cases[i], strlen(bco_cfg.cases[i])) == 0) return 1;
    return 0;
}

static int parse_args(int argc, char **argv)
{
    size_t imap_n = 0, spin_n = 0, v;
    int i, k;
    bco_cfg.threads = 2;
    bco_cfg.reps = 5;
    bco_cfg.settle_ms = 20;
    bco_cfg.spin_us = 100;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--quick") == 0) {
            bco_cfg.quick = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (!val) goto bad;
        i++;
        if (strcmp(a, "--threads") == 0 && parse_size(val, &v) == 0 && v <= PM_MAX_THREADS)
            bco_cfg.threads = (int)v;
        else if (strcmp(a, "--reps") == 0 && parse_size(val, &v) == 0 && v <= BU_MAX_REPS)
            bco_cfg.reps = (int)v;
        else if (strcmp(a, "--settle-ms") == 0 && parse_size(val, &v) == 0 && v <= 1000)
            bco_cfg.settle_ms = (int)v;
        else if (strcmp(a, "--imap-n") == 0 && parse_size(val, &imap_n) == 0)
            ;
        else if (strcmp(a, "--spin-n") == 0 && parse_size(val, &spin_n) == 0)
            ;
        else if (strcmp(a, "--spin-us") == 0 && (bco_cfg.spin_us = atof(val)) > 0)
            ;
        else if (strcmp(a, "--case") == 0 && bco_cfg.ncases < BCO_MAX_CASES) {
            for (k = 0; k < NCASES; k++)
                if (strncmp(case_names[k], val, strlen(val)) == 0) break;
            if (k == NCASES) {
                fprintf(stderr, "bench_core: no case named '%s'\n", val);
                goto bad;
            }
            bco_cfg.cases[bco_cfg.ncases++] = val;
        } else {
            goto bad;
        }
    }
    bco_cfg.trivial_n = bco_cfg.quick ? 100000 : 10000000;
    bco_cfg.chunk1_n = bco_cfg.trivial_n;
    bco_cfg.spin_n = spin_n ? spin_n : bco_cfg.quick ? 400 : 20000;
    bco_cfg.imap_n = imap_n ? imap_n : bco_cfg.quick ? 200000 : 100000000;
    bco_cfg.pool_maps = bco_cfg.quick ? 200 : 10000;
    bco_cfg.pool_items = 100;
    if (bco_cfg.quick && bco_cfg.reps > 2) bco_cfg.reps = 2;
    if (bco_cfg.quick && bco_cfg.settle_ms > 2) bco_cfg.settle_ms = 2;
    return 0;
bad:
    usage(stderr);
    return -1;
}

static void emit_machine(void)
{
    bu_json j;
    char cpu[256];
    const char *wait = getenv("OMP_WAIT_POLICY");
    bu_cpu_model(cpu, sizeof cpu);
    bu_json_begin(&j);
    bu_json_obj(&j, "machine");
    bu_json_str(&j, "cpu", cpu);
    bu_json_int(&j, "nproc", bu_nproc());
    bu_json_int(&j, "pm_cpu_count", pm_cpu_count());
    bu_json_num(&j, "loadavg_1m", bu_loadavg());
    bu_json_str(&j, "compiler", BU_COMPILER);
    bu_json_str(&j, "build_type", BCO_BUILD_TYPE);
    bu_json_str(&j, "parmap_version", pm_version());
    bu_json_str(&j, "omp", bco_omp_available() ? "available" : "unavailable");
    bu_json_int(&j, "omp_version", bco_omp_version());
    bu_json_str(&j, "omp_wait_policy", wait ? wait : "default");
    bu_json_obj_end(&j);
    bu_json_int(&j, "threads", bco_cfg.threads);
    bu_json_int(&j, "reps", bco_cfg.reps);
    bu_json_bool(&j, "quick", bco_cfg.quick);
    bu_json_int(&j, "settle_ms", bco_cfg.settle_ms);
    bu_json_end(&j);
}

int main(int argc, char **argv)
{
    double t0 = bu_now();
    int ran = 0;
    bu_json j;
    if (parse_args(argc, argv) != 0) return 2;
    emit_machine();
    if (selected("trivial_auto") && ++ran)
        case_trivial("trivial_auto", 0, bco_cfg.trivial_n);
    if (selected("trivial_chunk1") && ++ran)
        case_trivial("trivial_chunk1", 1, bco_cfg.chunk1_n);
    if (selected("spin_uniform") && ++ran) case_spin("spin_uniform", 0, bco_cfg.spin_n);
    if (selected("spin_skewed") && ++ran) case_spin("spin_skewed", 1, bco_cfg.spin_n);
    if (selected("imap_stream") && ++ran) bco_case_imap("imap_stream", bco_cfg.imap_n);
    if (selected("pool_reuse") && ++ran)
        bco_case_pool("pool_reuse", bco_cfg.pool_maps, bco_cfg.pool_items);
    bu_json_begin(&j);
    bu_json_obj(&j, "summary");
    bu_json_bool(&j, "ok", bco_all_ok);
    bu_json_int(&j, "cases", ran);
    bu_json_num(&j, "seconds", bu_now() - t0);
    bu_json_num(&j, "loadavg_1m", bu_loadavg());
    bu_json_obj_end(&j);
    bu_json_end(&j);
    return bco_all_ok ? 0 : 1;
}
