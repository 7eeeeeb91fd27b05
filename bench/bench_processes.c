/*
 * bench_processes.c - the processes backend against a serial loop, OpenMP and
 * the threads backend, in the same run, on the same buffers (issue 4's
 * figures). One JSON line per case and implementation, then a summary.
 *
 *   processes_trivial_auto:  out = 2 * in on 1e7 doubles, auto chunking
 *                            (goal: <= 0.1 us/item)
 *   processes_chunk1:        the same on 1e5 doubles with chunksize 1
 *                            (goal: <= 5 us/item)
 *   processes_spin:          ~100 us items of busy arithmetic, uniform
 *                            (goal: speedup vs serial >= 1.9 on 2 cores)
 *
 * Usage: bench_processes [--quick] [--reps N] [--procs N]
 */
#define _POSIX_C_SOURCE 200809L

#include "bench_core.h"

#include <stdint.h>

typedef struct job {
    pm_fn fn;
    const void *in;
    size_t in_stride;
    void *out;
    size_t out_stride;
    size_t n;
    const void *ref;
    pm_opts opts;   /* for the parmap implementations */
    int procs;
} job;

static void prep(void *p)
{
    job *j = p;
    memset(j->out, 0xff, j->n * j->out_stride);
}

static int check(void *p)
{
    job *j = p;
    return memcmp(j->out, j->ref, j->n * j->out_stride) == 0;
}

static int run_serial(void *p)
{
    job *j = p;
    pm_fn volatile fn = j->fn; /* one call per item, as a library makes */
    for (size_t i = 0; i < j->n; i++)
        (void)fn(NULL, (const char *)j->in + i * j->in_stride, (char *)j->out + i * j->out_stride);
    return 0;
}

static int run_omp_static(void *p)
{
    job *j = p;
    bco_call_static(j->fn, NULL, j->in, j->in_stride, j->out, j->out_stride, j->n, j->procs);
    return 0;
}

static int run_omp_dynamic1(void *p)
{
    job *j = p;
    bco_call_dynamic1(j->fn, NULL, j->in, j->in_stride, j->out, j->out_stride, j->n, j->procs);
    return 0;
}

static int run_threads(void *p)
{
    job *j = p;
    pm_opts o = j->opts;
    o.backend = PM_THREADS;
    o.threads = j->procs;
    return pm_map(j->fn, NULL, j->in, j->in_stride, j->out, j->out_stride, j->n, &o, NULL);
}

static int run_processes(void *p)
{
    job *j = p;
    pm_opts o = j->opts;
    o.backend = PM_PROCESSES;
    o.procs = j->procs;
    return pm_map(j->fn, NULL, j->in, j->in_stride, j->out, j->out_stride, j->n, &o, NULL);
}

static bu_impl impl(const char *name, int (*run)(void *), job *j, int available)
{
    bu_impl im;
    memset(&im, 0, sizeof im);
    im.name = name;
    im.run = run;
    im.prep = prep;
    im.check = check;
    im.ctx = j;
    im.available = available;
    return im;
}

/* Run the implementations, print a line each; returns the processes line's
 * best seconds (or -1). */
static double run_case(const char *bench, job *j, bu_impl *im, int count, int reps,
                       double goal_us, double goal_speedup)
{
    bu_cpu_snap a = bu_cpu_snapshot();
    bu_run(im, count, reps, 5);
    double other = bu_other_load(a, bu_cpu_snapshot());
    bu_impl *serial = bu_find(im, count, "serial"), *procs = bu_find(im, count, "parmap_processes");
    for (int i = 0; i < count; i++) {
        if (!im[i].available)
            continue;
        bu_json js;
        bu_json_begin(&js);
        bu_json_str(&js, "bench", bench);
        bu_json_str(&js, "impl", im[i].name);
        bu_json_int(&js, "procs_or_threads", j->procs);
        bu_json_int(&js, "n", (long long)j->n);
        bu_json_int(&js, "chunksize", j->opts.chunksize);
        bu_json_num(&js, "other_load", other);
        bu_json_int(&js, "reps", im[i].reps);
        bu_json_num(&js, "seconds", im[i].st.best);
        bu_json_num(&js, "seconds_median", im[i].st.median);
        bu_json_num(&js, "us_per_item", im[i].st.best / (double)j->n * 1e6);
        bu_json_bool(&js, "ok", im[i].ok);
        if (serial && serial->ok)
            bu_json_num(&js, "speedup_vs_serial", bu_ratio(serial->st.best, im[i].st.best));
        if (&im[i] == procs) {
            double us = im[i].st.best / (double)j->n * 1e6;
            double s = serial ? bu_ratio(serial->st.best, im[i].st.best) : 0;
            for (int k = 0; k < count; k++)
                if (&im[k] != procs && im[k].available && im[k].ok && strcmp(im[k].name, "serial")) {
                    char key[64];
                    snprintf(key, sizeof key, "ratio_vs_%s", im[k].name);
                    bu_json_num(&js, key, bu_ratio(im[i].st.best, im[k].st.best));
                }
            if (goal_us > 0) {
                bu_json_num(&js, "goal_us_per_item", goal_us);
                bu_json_bool(&js, "goal_met", us <= goal_us);
            } else {
                bu_json_num(&js, "goal_speedup_vs_serial", goal_speedup);
                bu_json_bool(&js, "goal_met", s >= goal_speedup);
            }
        }
        if (im[i].rc)
            bu_json_str(&js, "status", pm_err_name(im[i].rc));
        bu_json_end(&js);
    }
    return procs && procs->ok ? procs->st.best : -1;
}

static int trivial(const char *bench, size_t n, long chunksize, int procs, int reps,
                   double goal_us)
{
    double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), *ref = malloc(n * sizeof *ref);
    if (!x || !y || !ref)
        return 0;
    for (size_t k = 0; k < n; k++) {
        x[k] = 0.5 * (double)k + 1;
        ref[k] = 2 * x[k];
    }
    job j = {bco_twice, x, sizeof *x, y, sizeof *y, n, ref, {.chunksize = chunksize}, procs};
    int omp = bco_omp_available();
    bu_impl im[4] = {
        impl("serial", run_serial, &j, 1),
        impl(chunksize == 1 ? "omp_dynamic1" : "omp_static",
             chunksize == 1 ? run_omp_dynamic1 : run_omp_static, &j, omp),
        impl("parmap_threads", run_threads, &j, 1),
        impl("parmap_processes", run_processes, &j, 1),
    };
    double t = run_case(bench, &j, im, 4, reps, goal_us, 0);
    free(x);
    free(y);
    free(ref);
    return t >= 0;
}

static int spinning(const char *bench, size_t n, int procs, int reps)
{
    double per_us = bco_calibrate_spin();
    bco_spin_item *in = malloc(n * sizeof *in);
    uint64_t *out = malloc(n * sizeof *out), *ref = malloc(n * sizeof *ref);
    if (!in || !out || !ref)
        return 0;
    for (size_t k = 0; k < n; k++) {
        in[k].seed = k;
        in[k].iters = (uint64_t)(per_us * 100 + 0.5);
        ref[k] = bco_spin(k, in[k].iters);
    }
    job j = {bco_spin_fn, in, sizeof *in, out, sizeof *out, n, ref, {0}, procs};
    bu_impl im[4] = {
        impl("serial", run_serial, &j, 1),
        impl("omp_dynamic1", run_omp_dynamic1, &j, bco_omp_available()),
        impl("parmap_threads", run_threads, &j, 1),
        impl("parmap_processes", run_processes, &j, 1),
    };
    double t = run_case(bench, &j, im, 4, reps, 0, 1.9);
    free(in);
    free(out);
    free(ref);
    return t >= 0;
}

int main(int argc, char **argv)
{
    int quick = 0, reps = 5, procs = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--procs") && i + 1 < argc)
            procs = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_processes [--quick] [--reps N] [--procs N]\n");
            return 2;
        }
    }
    if (quick)
        reps = 2;
    char cpu[256];
    bu_cpu_model(cpu, sizeof cpu);
    bu_json j;
    bu_json_begin(&j);
    bu_json_obj(&j, "machine");
    bu_json_str(&j, "cpu", cpu);
    bu_json_int(&j, "nproc", bu_nproc());
    bu_json_num(&j, "loadavg_1m", bu_loadavg());
    bu_json_str(&j, "compiler", BU_COMPILER);
    bu_json_str(&j, "omp", bco_omp_available() ? "available" : "unavailable");
    bu_json_obj_end(&j);
    bu_json_end(&j);
    int ok = trivial("processes_trivial_auto", quick ? 100000 : 10000000, 0, procs, reps, 0.1);
    ok &= trivial("processes_chunk1", quick ? 2000 : 100000, 1, procs, reps, 5.0);
    ok &= spinning("processes_spin", quick ? 200 : 4000, procs, reps);
    return ok ? 0 : 1;
}
