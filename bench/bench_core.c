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
 * then hands a table of implementations to bu_run (bench_util.h), which times
 * `reps` runs of each, interleaved, and the case prints best and median. This
 * file holds the options, the output helpers and main; the cases live in
 * bench_core_array.c (pm_map: cases 1-3) and bench_core_stream.c (pm_imap and
 * pools: cases 4-5), the OpenMP loops in bench_core_omp.c.
 */
#define _POSIX_C_SOURCE 200809L

#include "bench_core.h"

bco_config bco_cfg;
int bco_all_ok = 1;
static double other_load = NAN; /* of the last bco_run */

/* ---------------------------------------------------------------- runs */

void bco_run(bu_impl *im, int count)
{
    bu_cpu_snap a = bu_cpu_snapshot();
    bu_run(im, count, bco_cfg.reps, bco_cfg.settle_ms);
    other_load = bu_other_load(a, bu_cpu_snapshot());
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
    /* Share of all CPUs other processes used while this case ran: lines with
     * a high value were measured on a busy machine. */
    bu_json_num(j, "other_load", other_load);
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

static void emit_tristate(bu_json *j, const char *key, int v)
{
    if (v < 0) {
        bu_json_key(j, key);
        bu_json_raw(j, "null");
    } else {
        bu_json_bool(j, key, v);
    }
}

/* 1 true, 0 false, -1 unknown (a comparison was unavailable). */
void bco_emit_goal(bu_json *j, int met, int met_within_tolerance)
{
    emit_tristate(j, "goal_met", met);
    if (met_within_tolerance != BCO_NO_TOLERANCE)
        emit_tristate(j, "goal_met_within_2pct", met_within_tolerance);
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
            "  --quick      small sizes, 2 reps (CI smoke test; timings meaningless)\n"
            "  --reps N     timed runs per implementation (default 5; best and median)\n"
            "  --threads N  threads for parmap and OpenMP (default 2)\n"
            "  --imap-n N   items of the pm_imap stream (default 1e8)\n"
            "  --spin-n N, --spin-us US  items and cost of the spin cases (20000, 100)\n"
            "  --settle-ms MS  idle time before every timed run (default 20)\n"
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
    bco_cfg.reps = 0;       /* unset: 5, or 2 with --quick */
    bco_cfg.settle_ms = -1; /* unset: 20, or 2 with --quick */
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
        else if (strcmp(a, "--settle-ms") == 0 &&
                 (strcmp(val, "0") == 0 || (parse_size(val, &v) == 0 && v <= 1000)))
            bco_cfg.settle_ms = strcmp(val, "0") == 0 ? 0 : (int)v;
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
    if (bco_cfg.reps == 0) bco_cfg.reps = bco_cfg.quick ? 2 : 5;
    if (bco_cfg.settle_ms < 0) bco_cfg.settle_ms = bco_cfg.quick ? 2 : 20;
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
        bco_case_trivial("trivial_auto", 0, bco_cfg.trivial_n);
    if (selected("trivial_chunk1") && ++ran)
        bco_case_trivial("trivial_chunk1", 1, bco_cfg.chunk1_n);
    if (selected("spin_uniform") && ++ran) bco_case_spin("spin_uniform", 0, bco_cfg.spin_n);
    if (selected("spin_skewed") && ++ran) bco_case_spin("spin_skewed", 1, bco_cfg.spin_n);
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
