/*
 * bench_value.c - what the value layer costs per item: pm_vmap with a
 * trivial function (an int item's value + 1, returned as a new int value)
 * next to pm_map doing the same on plain int64 arrays, on the same item
 * count, in the same run, interleaved (bench_util.h's runner).
 *
 * Output: a {"machine":...} line, one JSON line per implementation, then a
 * {"summary":...} line with the per-item overhead of the value layer
 * (vmap - map, in microseconds) and the goal of issue 5: pm_vmap on the
 * threads backend at <= 0.2 us per item. Timings are never asserted (exit 1
 * only when a result is wrong or a call failed).
 *
 *   bench_value                    1e6 items, threads = CPU count, best of 7
 *   bench_value --quick            1e4 items, 3 reps (what ctest runs)
 *   bench_value --n 2000000 --threads 4 --reps 9
 *
 * What is timed for pm_vmap is the call only: building the item list and
 * freeing the result list happen outside the clock (prep), as building the
 * input arrays does for pm_map. Per item, pm_vmap builds the call (no
 * allocation on this row of the table), runs the function, which allocates
 * its result, and stores the pointer. pm_vimap on processes streams the same
 * items (made by the source after the workers were forked, so they travel
 * to them as MessagePack, and the results back) into a result list; goal
 * <= 1 us per item beside pm_vmap's.
 */
#define _POSIX_C_SOURCE 200809L

#include "bench_util.h"

#include "parmap.h"
#include "parmap_value.h"

#include <stdint.h>

#ifndef BVA_BUILD_TYPE
#define BVA_BUILD_TYPE "unknown"
#endif

#define GOAL_US 0.2
/* pm_vmap on PM_PROCESSES (results travel back as MessagePack). */
#define GOAL_PROCS_US 1.0

typedef struct ctx {
    size_t n;
    pm_opts opts;
    pm_opts popts; /* the same on PM_PROCESSES */
    /* pm_map */
    int64_t *in, *out;
    /* pm_vmap */
    pm_value *items, *results;
    int rc;
} ctx;

static int raw_plus_one(void *user, const void *in, void *out)
{
    (void)user;
    *(int64_t *)out = *(const int64_t *)in + 1;
    return 0;
}

static int value_plus_one(void *user, pm_call *call, pm_value **result)
{
    (void)user;
    *result = pm_value_int(pm_arg_int(call, 0, 0) + 1);
    return 0;
}

static int run_map(void *p)
{
    ctx *c = p;
    return pm_map(raw_plus_one, NULL, c->in, sizeof *c->in, c->out, sizeof *c->out, c->n,
                  &c->opts, NULL);
}

static int run_map_procs(void *p)
{
    ctx *c = p;
    return pm_map(raw_plus_one, NULL, c->in, sizeof *c->in, c->out, sizeof *c->out, c->n,
                  &c->popts, NULL);
}

static int run_vmap_procs(void *p)
{
    ctx *c = p;
    pm_vopts o = {.base = c->popts};
    return pm_vmap(value_plus_one, NULL, c->items, &o, &c->results);
}

typedef struct counter {
    size_t next, n;
} counter;

static int int_source(void *src, pm_value **item)
{
    counter *k = src;
    if (k->next >= k->n)
        return 0;
    *item = pm_value_int((int64_t)k->next++);
    return *item ? 1 : PM_ENOMEM;
}

static int run_vimap_procs(void *p)
{
    ctx *c = p;
    counter k = {0, c->n};
    pm_vopts o = {.base = c->popts};
    pm_viter *it = pm_vimap(value_plus_one, NULL, int_source, &k, &o);
    if (!it || !(c->results = pm_value_list()) || pm_list_reserve(c->results, c->n) != PM_OK)
        return PM_ENOMEM;
    pm_value *v;
    int r;
    while ((r = pm_viter_next(it, &v, NULL)) == 1)
        if (pm_list_push(c->results, v) != PM_OK)
            r = PM_ENOMEM;
    int rc = pm_viter_free(it);
    return r < 0 ? r : rc;
}

static void prep_map(void *p)
{
    ctx *c = p;
    memset(c->out, 0xff, c->n * sizeof *c->out);
}

static int check_map(void *p)
{
    ctx *c = p;
    for (size_t i = 0; i < c->n; i++)
        if (c->out[i] != (int64_t)i + 1)
            return 0;
    return 1;
}

static int run_vmap(void *p)
{
    ctx *c = p;
    pm_vopts o = {.base = c->opts};
    return pm_vmap(value_plus_one, NULL, c->items, &o, &c->results);
}

static void prep_vmap(void *p)
{
    ctx *c = p;
    pm_value_free(c->results);
    c->results = NULL;
}

static int check_vmap(void *p)
{
    ctx *c = p;
    if (pm_value_len(c->results) != c->n)
        return 0;
    for (size_t i = 0; i < c->n; i++) {
        int64_t x;
        if (pm_value_get_int(pm_list_get(c->results, i), &x) != PM_OK || x != (int64_t)i + 1)
            return 0;
    }
    return 1;
}

static void emit_machine(int threads)
{
    char cpu[256];
    bu_json j;
    bu_cpu_model(cpu, sizeof cpu);
    bu_json_begin(&j);
    bu_json_obj(&j, "machine");
    bu_json_str(&j, "cpu", cpu);
    bu_json_int(&j, "nproc", bu_nproc());
    bu_json_num(&j, "loadavg", bu_loadavg());
    bu_json_str(&j, "compiler", BU_COMPILER);
    bu_json_str(&j, "build_type", BVA_BUILD_TYPE);
    bu_json_int(&j, "threads", threads);
    bu_json_obj_end(&j);
    bu_json_end(&j);
}

static void emit_impl(const bu_impl *im, const ctx *c, double other_load)
{
    bu_json j;
    bu_json_begin(&j);
    bu_json_str(&j, "bench", "value_map");
    bu_json_str(&j, "impl", im->name);
    bu_json_int(&j, "threads", c->opts.threads);
    bu_json_int(&j, "n", (long long)c->n);
    bu_json_num(&j, "other_load", other_load);
    bu_json_int(&j, "reps", im->reps);
    bu_json_num(&j, "seconds", im->st.best);
    bu_json_num(&j, "seconds_median", im->st.median);
    bu_json_num(&j, "us_per_item", im->st.best / (double)c->n * 1e6);
    bu_json_num(&j, "us_per_item_median", im->st.median / (double)c->n * 1e6);
    bu_json_bool(&j, "ok", im->ok);
    if (im->rc)
        bu_json_str(&j, "status", pm_err_name(im->rc));
    bu_json_end(&j);
}

int main(int argc, char **argv)
{
    size_t n = 1000000;
    int threads = 0, reps = 7;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            n = 10000;
            reps = 3;
        } else if (strcmp(argv[i], "--n") == 0 && i + 1 < argc) {
            n = (size_t)strtod(argv[++i], NULL);
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: bench_value [--quick] [--n N] [--threads T] [--reps R]\n");
            return 2;
        }
    }
    if (n == 0 || reps < 1)
        return 2;
    if (threads <= 0)
        threads = pm_cpu_count();

    ctx c = {.n = n};
    c.opts.backend = PM_THREADS;
    c.opts.threads = threads;
    c.popts.backend = PM_PROCESSES;
    c.popts.procs = threads;
    c.in = malloc(n * sizeof *c.in);
    c.out = malloc(n * sizeof *c.out);
    c.items = pm_value_list();
    if (!c.in || !c.out || !c.items || pm_list_reserve(c.items, n) != PM_OK) {
        fprintf(stderr, "bench_value: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        c.in[i] = (int64_t)i;
        if (pm_list_push(c.items, pm_value_int((int64_t)i)) != PM_OK) {
            fprintf(stderr, "bench_value: out of memory\n");
            return 1;
        }
    }

    emit_machine(threads);
    bu_impl im[] = {
        {.name = "pm_map", .run = run_map, .prep = prep_map, .check = check_map, .ctx = &c,
         .available = 1},
        {.name = "pm_vmap", .run = run_vmap, .prep = prep_vmap, .check = check_vmap, .ctx = &c,
         .available = 1},
        {.name = "pm_map_processes", .run = run_map_procs, .prep = prep_map, .check = check_map,
         .ctx = &c, .available = 1},
        {.name = "pm_vmap_processes", .run = run_vmap_procs, .prep = prep_vmap,
         .check = check_vmap, .ctx = &c, .available = 1},
        {.name = "pm_vimap_processes", .run = run_vimap_procs, .prep = prep_vmap,
         .check = check_vmap, .ctx = &c, .available = 1},
    };
    bu_cpu_snap a = bu_cpu_snapshot();
    bu_run(im, 5, reps, 5);
    double other = bu_other_load(a, bu_cpu_snapshot());
    for (int i = 0; i < 5; i++)
        emit_impl(&im[i], &c, other);
    double pvmap_us = im[3].st.best / (double)n * 1e6;
    double pvimap_us = im[4].st.best / (double)n * 1e6;

    double map_us = im[0].st.best / (double)n * 1e6, vmap_us = im[1].st.best / (double)n * 1e6;
    bu_json j;
    bu_json_begin(&j);
    bu_json_obj(&j, "summary");
    bu_json_str(&j, "bench", "value_map");
    bu_json_int(&j, "threads", threads);
    bu_json_int(&j, "n", (long long)n);
    bu_json_num(&j, "map_us_per_item", map_us);
    bu_json_num(&j, "vmap_us_per_item", vmap_us);
    bu_json_num(&j, "overhead_us_per_item", vmap_us - map_us);
    bu_json_num(&j, "vmap_over_map", bu_ratio(im[1].st.best, im[0].st.best));
    bu_json_num(&j, "goal_us_per_item", GOAL_US);
    bu_json_bool(&j, "goal_met", vmap_us <= GOAL_US);
    bu_json_num(&j, "processes_map_us_per_item", im[2].st.best / (double)n * 1e6);
    bu_json_num(&j, "processes_vmap_us_per_item", pvmap_us);
    bu_json_num(&j, "processes_goal_us_per_item", GOAL_PROCS_US);
    bu_json_bool(&j, "processes_goal_met", pvmap_us <= GOAL_PROCS_US);
    bu_json_num(&j, "processes_vimap_us_per_item", pvimap_us);
    bu_json_bool(&j, "processes_vimap_goal_met", pvimap_us <= GOAL_PROCS_US);
    bu_json_bool(&j, "ok", im[0].ok && im[1].ok && im[2].ok && im[3].ok && im[4].ok);
    bu_json_obj_end(&j);
    bu_json_end(&j);

    int ok = im[0].ok && im[1].ok && im[2].ok && im[3].ok && im[4].ok;
    prep_vmap(&c);
    pm_value_free(c.items);
    free(c.in);
    free(c.out);
    return ok ? 0 : 1;
}
