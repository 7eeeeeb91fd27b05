/*
 * bench_nested.c - three levels of default-option maps (an item's function
 * maps again, twice over) with CPU-bound leaves: the shared default pool
 * against a serial loop and against private threads per call (parmapper's
 * behaviour, opts.private_threads), in the same run. Prints one JSON line
 * per implementation: seconds (best and median of the reps), speedup over
 * serial, and the peak number of OS threads seen from inside the leaves
 * (goal: <= CPU count + 1 caller; speedup >= 1.9 on 2 CPUs).
 *
 *   bench_nested            4 x 6 x 6 leaves of ~1 ms, 5 reps
 *   bench_nested --quick    a smoke run (ctest)
 */
#define _POSIX_C_SOURCE 200809L
#include "bench_util.h"
#include "parmap.h"

#include <dirent.h>
#include <stdatomic.h>
#include <stdint.h>

static int private_threads;       /* the implementation being run */
static long leaf_iters = 400000;  /* ~1 ms of arithmetic */
static atomic_int peak;

static int thread_count(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static int64_t spin(int64_t x)
{
    uint64_t h = (uint64_t)x;
    for (long k = 0; k < leaf_iters; k++)
        h = h * 6364136223846793005ULL + 1442695040888963407ULL;
    return (int64_t)(h >> 40);
}

static int leaf(void *user, const void *in, void *out)
{
    (void)user;
    int n = thread_count(), seen = atomic_load(&peak);
    while (n > seen && !atomic_compare_exchange_weak(&peak, &seen, n)) {
    }
    *(int64_t *)out = spin(*(const int64_t *)in);
    return 0;
}

static int level(void *user, const void *in, void *out)
{
    int depth = *(const int *)user, next = depth + 1;
    int64_t x = *(const int64_t *)in, sub[6], res[6], sum = 0;
    for (int i = 0; i < 6; i++)
        sub[i] = x * 6 + i;
    int rc = pm_map(depth == 2 ? leaf : level, &next, sub, sizeof sub[0], res, sizeof res[0], 6,
                    &(pm_opts){.private_threads = private_threads}, NULL);
    for (int i = 0; i < 6; i++)
        sum += res[i];
    *(int64_t *)out = sum;
    return rc;
}

static int64_t result;

static int run_parmap(void *p)
{
    private_threads = *(int *)p;
    int64_t in[4] = {1, 2, 3, 4}, out[4];
    int depth = 1;
    int rc = pm_map(level, &depth, in, sizeof in[0], out, sizeof out[0], 4,
                    &(pm_opts){.private_threads = private_threads}, NULL);
    result = out[0] + out[1] + out[2] + out[3];
    return rc;
}

static int run_serial(void *p)
{
    (void)p;
    int64_t sum = 0;
    for (int64_t a = 1; a <= 4; a++)
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 6; j++)
                sum += spin((a * 6 + i) * 6 + j);
    result = sum;
    return 0;
}

static int64_t expected;

static int check(void *p)
{
    (void)p;
    return result == expected;
}

static void prep(void *p)
{
    (void)p;
    result = -1;
    atomic_store(&peak, 0);
}

int main(int argc, char **argv)
{
    int reps = 5;
    if (argc > 1 && strcmp(argv[1], "--quick") == 0) {
        leaf_iters = 2000;
        reps = 2;
    }
    run_serial(NULL);
    expected = result;
    int private_no = 0, private_yes = 1;
    bu_impl im[] = {
        {.name = "serial", .run = run_serial, .prep = prep, .check = check, .available = 1},
        {.name = "parmap_default_pool", .run = run_parmap, .prep = prep, .check = check,
         .ctx = &private_no, .available = 1},
        {.name = "parmap_private_threads", .run = run_parmap, .prep = prep, .check = check,
         .ctx = &private_yes, .available = 1},
    };
    bu_cpu_snap a = bu_cpu_snapshot();
    bu_run(im, 3, reps, 5);
    double other = bu_other_load(a, bu_cpu_snapshot());
    int ok = 1;
    for (int i = 0; i < 3; i++) {
        prep(NULL); /* one more run of each, for its peak thread count */
        im[i].run(im[i].ctx);
        int peak_threads = atomic_load(&peak);
        bu_json j;
        bu_json_begin(&j);
        bu_json_str(&j, "bench", "nested_default_maps");
        bu_json_str(&j, "impl", im[i].name);
        bu_json_int(&j, "cpus", pm_cpu_count());
        bu_json_int(&j, "levels", 3);
        bu_json_int(&j, "leaves", 4 * 6 * 6);
        bu_json_num(&j, "other_load", other);
        bu_json_num(&j, "seconds", im[i].st.best);
        bu_json_num(&j, "seconds_median", im[i].st.median);
        bu_json_num(&j, "speedup_vs_serial", bu_ratio(im[0].st.best, im[i].st.best));
        bu_json_num(&j, "speedup_vs_serial_median", bu_ratio(im[0].st.median, im[i].st.median));
        if (i > 0)
            bu_json_int(&j, "peak_os_threads", peak_threads);
        if (i == 1) {
            double s = bu_ratio(im[0].st.median, im[i].st.median);
            bu_json_str(&j, "goal", "peak_os_threads <= cpus + 1 and speedup_vs_serial_median >= 1.9 (2 cpus)");
            bu_json_bool(&j, "goal_met", peak_threads <= pm_cpu_count() + 1 && s >= 1.9);
        }
        bu_json_bool(&j, "ok", im[i].ok);
        bu_json_end(&j);
        ok &= im[i].ok;
    }
    return ok ? 0 : 1;
}
