/*
 * bench_recycle.c - worker recycling on the processes backend: what it
 * costs and what it bounds. Three runs on 2 worker processes, same n:
 *   plain        items that leak nothing, no recycling (the reference);
 *   recycled     the same items, a fresh worker every `every` items
 *                (throughput cost of recycling alone);
 *   leaky        items that leak 1 MB each (allocated and touched, never
 *                freed), recycled every `every` items: the largest worker
 *                RSS stays bounded (without recycling it would reach
 *                n / 2 MB per worker).
 * One JSON line per run: seconds, items per second, workers started (the
 * distinct pids the items saw), largest worker RSS in MB, ratio to plain.
 *
 *   bench_recycle                     n 1e5, every 1000, leak 1 MB
 *   bench_recycle --n N --every K     other sizes
 *   bench_recycle --quick             a smoke run (ctest)
 */
#define _POSIX_C_SOURCE 200809L
#include "bench_util.h"
#include "parmap.h"

#include <stdint.h>
#include <unistd.h>

typedef struct out_rec {
    int64_t pid, rss;
} out_rec;

static void *volatile leaked; /* keeps the compiler from eliding the leak */

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

static int item(void *user, const void *in, void *out)
{
    size_t leak = *(const size_t *)user;
    (void)in;
    if (leak) {
        char *p = malloc(leak);
        if (!p)
            return 90;
        memset(p, 1, leak);
        leaked = p;
    }
    out_rec *o = out;
    o->pid = (int64_t)getpid();
    o->rss = leak || (*(const int64_t *)in % 256) == 0 ? own_rss() : 0;
    return 0;
}

static int run(const char *name, size_t n, size_t every, size_t leak, double ref_s,
               double *took)
{
    int64_t *in = malloc(n * sizeof *in);
    out_rec *out = calloc(n, sizeof *out);
    for (size_t i = 0; i < n; i++)
        in[i] = (int64_t)i;
    pm_opts o = {.backend = PM_PROCESSES, .procs = 2, .recycle_items = every};
    pm_report rep;
    double t0 = bu_now();
    int rc = pm_map(item, &leak, in, sizeof *in, out, sizeof *out, n, &o, &rep);
    double s = bu_now() - t0;
    int64_t max_rss = 0, pids[4096];
    int npids = 0;
    for (size_t i = 0; i < n; i++) {
        if (out[i].rss > max_rss)
            max_rss = out[i].rss;
        int known = 0;
        for (int k = 0; k < npids && !known; k++)
            known = pids[k] == out[i].pid;
        if (!known && npids < 4096)
            pids[npids++] = out[i].pid;
    }
    bu_json j;
    bu_json_begin(&j);
    bu_json_str(&j, "bench", "recycle");
    bu_json_str(&j, "impl", name);
    bu_json_int(&j, "n", (long long)n);
    bu_json_int(&j, "recycle_items", (long long)every);
    bu_json_num(&j, "leak_mb_per_item", (double)leak / (1 << 20));
    bu_json_num(&j, "seconds", s);
    bu_json_num(&j, "items_per_s", (double)n / s);
    bu_json_int(&j, "worker_processes", npids);
    bu_json_num(&j, "max_worker_rss_mb", (double)max_rss / (1 << 20));
    if (ref_s > 0)
        bu_json_num(&j, "time_vs_plain", bu_ratio(s, ref_s));
    bu_json_bool(&j, "ok", rc == PM_OK && rep.done == n);
    bu_json_end(&j);
    *took = s;
    free(in);
    free(out);
    return npids;
}

int main(int argc, char **argv)
{
    size_t n = 100000, every = 1000, leak = (size_t)1 << 20;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            n = 2000;
            every = 100;
        } else if (strcmp(argv[i], "--n") == 0 && i + 1 < argc) {
            n = (size_t)strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--every") == 0 && i + 1 < argc) {
            every = (size_t)strtoull(argv[++i], NULL, 10);
        }
    }
    double plain, recycled, leaky;
    bu_cpu_snap a = bu_cpu_snapshot();
    int base = run("plain", n, 0, 0, 0, &plain);
    int workers = run("recycled", n, every, 0, plain, &recycled);
    run("leaky_recycled", n, every, leak, plain, &leaky);
    bu_json j;
    bu_json_begin(&j);
    bu_json_obj(&j, "summary");
    bu_json_int(&j, "nproc", bu_nproc());
    bu_json_num(&j, "other_load", bu_other_load(a, bu_cpu_snapshot()));
    bu_json_num(&j, "recycling_cost_per_worker_ms",
                workers > base ? (recycled - plain) / (double)(workers - base) * 1e3 : 0);
    bu_json_obj_end(&j);
    bu_json_end(&j);
    return 0;
}
