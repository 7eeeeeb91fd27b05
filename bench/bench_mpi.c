/*
 * bench_mpi.c - the MPI executor against the threads executor on the same
 * machine, in the same run (issue 9's figures). Start it with mpirun:
 *
 *     mpirun -np 2 bench_mpi [--quick] [--reps N]
 *
 * Cases (one JSON line each, printed by rank 0):
 *   mpi_spin:     ~100 us items of busy arithmetic (bench_work.c): N ranks x 1
 *                 thread vs the threads executor with N threads (goal: >= 0.9 of
 *                 its throughput)
 *   mpi_trivial:  out = 2 * in on 1e7 doubles, auto chunking (goal: <= 1 us
 *                 per item), next to the threads executor on the same work
 *   mpi_vmap:     pm_vmap of x + 1 over 1e6 integers (items and results travel
 *                 as MessagePack), next to pm_vmap on the threads executor
 *   mpi_call:     what one small call costs (100 items): a fresh executor per
 *                 call (communicator, threads) against a warm PM_MPI pool
 * other_load is the CPU share taken by processes other than the ranks. Each
 * line also gives every rank's CPU time during the MPI runs over their
 * wall time: rank 0 computes too, so its communication thread must not burn
 * a core while it waits. While rank 0 times the threads executor the other
 * ranks sleep (a polling loop with 1 ms naps, not an MPI barrier, which
 * would spin and steal a core from the comparison).
 */
#define _POSIX_C_SOURCE 200809L

#include "bench_core.h"

#include <mpi.h>
#include <sys/resource.h>

#define TAG_GO 4242

static int rank, size, reps = 5, quick, failed;

static double cpu_seconds(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec * 1e-6 +
           (double)u.ru_stime.tv_sec + (double)u.ru_stime.tv_usec * 1e-6;
}

/* Other ranks nap until rank 0 says go (after its threads-only timing). */
static void others_wait(void)
{
    if (rank == 0) {
        char go = 1;
        for (int r = 1; r < size; r++)
            MPI_Send(&go, 1, MPI_CHAR, r, TAG_GO, MPI_COMM_WORLD);
        return;
    }
    for (;;) {
        int flag = 0;
        MPI_Iprobe(0, TAG_GO, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
        if (flag)
            break;
        bu_sleep_ms(1);
    }
    char go;
    MPI_Recv(&go, 1, MPI_CHAR, 0, TAG_GO, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
}

/* bu_other_load for the whole job: the machine's busy time minus what every
 * rank (all on this machine) used itself. Collective; the result is rank 0's. */
static double ranks_other_load(bu_cpu_snap a, bu_cpu_snap b)
{
    double mine = b.self_s - a.self_s, all = 0;
    MPI_Reduce(&mine, &all, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    b.self_s = a.self_s + all;
    return bu_other_load(a, b);
}

typedef struct work {
    const char *name;
    pm_fn fn;
    const void *in;
    size_t in_stride;
    void *out;
    size_t out_stride;
    size_t n;
} work;

/* Best wall time of `reps` runs of the map with `o` (every rank calls). */
static double best_of(const work *w, const pm_opts *o, int *ok)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = bu_now();
        int rc = pm_map(w->fn, NULL, w->in, w->in_stride, w->out, w->out_stride, w->n, o, NULL);
        double t = bu_now() - t0;
        if (rc != PM_OK)
            *ok = 0;
        if (t < best)
            best = t;
    }
    return best;
}

static void run_case(const work *w, const void *ref, double goal, int goal_is_ratio)
{
    int ok = 1;
    bu_cpu_snap s0 = bu_cpu_snapshot();
    /* 1. the threads executor with as many threads as there are ranks */
    double t_threads = 0;
    if (rank == 0) {
        pm_opts o = {.backend = PM_THREADS, .threads = size};
        t_threads = best_of(w, &o, &ok);
        ok &= memcmp(w->out, ref, w->n * w->out_stride) == 0;
        memset(w->out, 0, w->n * w->out_stride);
    }
    others_wait();
    /* 2. MPI: size ranks x 1 thread */
    pm_opts o = {.backend = PM_MPI, .threads = 1};
    double c0 = cpu_seconds(), w0 = bu_now();
    double t_mpi = best_of(w, &o, &ok);
    double cpu = cpu_seconds() - c0, wall = bu_now() - w0;
    if (rank == 0)
        ok &= memcmp(w->out, ref, w->n * w->out_stride) == 0;
    double share = cpu / wall, shares[64] = {0};
    MPI_Gather(&share, 1, MPI_DOUBLE, shares, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    int all_ok = 0;
    MPI_Reduce(&ok, &all_ok, 1, MPI_INT, MPI_LAND, 0, MPI_COMM_WORLD);
    double other = ranks_other_load(s0, bu_cpu_snapshot());
    if (rank != 0)
        return;
    failed |= !all_ok;
    double throughput = t_threads / t_mpi, us = t_mpi * 1e6 / (double)w->n;
    char cpu_model[128];
    bu_cpu_model(cpu_model, sizeof cpu_model);
    bu_json j;
    bu_json_begin(&j);
    bu_json_str(&j, "bench", w->name);
    bu_json_int(&j, "n", (long long)w->n);
    bu_json_int(&j, "ranks", size);
    bu_json_int(&j, "threads_per_rank", 1);
    bu_json_num(&j, "threads_s", t_threads);
    bu_json_num(&j, "mpi_s", t_mpi);
    bu_json_num(&j, "mpi_throughput_vs_threads", throughput);
    bu_json_num(&j, "mpi_us_per_item", us);
    bu_json_num(&j, "threads_us_per_item", t_threads * 1e6 / (double)w->n);
    bu_json_key(&j, "cpu_per_wall_by_rank");
    bu_json_raw(&j, "[");
    for (int r = 0; r < size && r < 64; r++)
        bu_json_raw(&j, "%s%.3f", r ? "," : "", shares[r]);
    bu_json_raw(&j, "]");
    bu_json_str(&j, "goal", goal_is_ratio ? "mpi_throughput_vs_threads >= 0.9"
                                          : "mpi_us_per_item <= 1");
    bu_json_bool(&j, "goal_met", goal_is_ratio ? throughput >= goal : us <= goal);
    bu_json_bool(&j, "results_ok", all_ok);
    bu_json_int(&j, "reps", reps);
    bu_json_num(&j, "other_load", other);
    bu_json_str(&j, "cpu", cpu_model);
    bu_json_int(&j, "nproc", bu_nproc());
    bu_json_end(&j);
}

static int plus_one(void *user, pm_call *call, pm_value **result)
{
    (void)user;
    *result = pm_value_int(pm_arg_int(call, 0, 0) + 1);
    return 0;
}

/* Best time of pm_vmap over `items` with `o` (every rank calls); checks
 * the results on rank 0. */
static double vmap_best(const pm_value *items, pm_backend backend, int threads, int *ok)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        pm_value *res = NULL;
        pm_vopts o = {.base = {.backend = backend, .threads = threads}};
        double t0 = bu_now();
        int rc = pm_vmap(plus_one, NULL, items, &o, &res);
        double t = bu_now() - t0;
        if (rc != PM_OK)
            *ok = 0;
        for (size_t i = 0; rank == 0 && rc == PM_OK && i < pm_value_len(items); i += 997) {
            int64_t x = -1;
            pm_value_get_int(pm_list_get(res, i), &x);
            *ok &= x == (int64_t)i + 1;
        }
        pm_value_free(res);
        if (t < best)
            best = t;
    }
    return best;
}

static void vmap_case(size_t n)
{
    int ok = 1;
    pm_value *items = pm_value_list();
    for (size_t i = 0; rank == 0 && i < n; i++)
        pm_list_push(items, pm_value_int((int64_t)i));
    bu_cpu_snap s0 = bu_cpu_snapshot();
    double t_threads = rank == 0 ? vmap_best(items, PM_THREADS, size, &ok) : 0;
    others_wait();
    double t_mpi = vmap_best(items, PM_MPI, 1, &ok);
    int all_ok = 0;
    MPI_Reduce(&ok, &all_ok, 1, MPI_INT, MPI_LAND, 0, MPI_COMM_WORLD);
    pm_value_free(items);
    double other = ranks_other_load(s0, bu_cpu_snapshot());
    if (rank != 0)
        return;
    failed |= !all_ok;
    bu_json j;
    bu_json_begin(&j);
    bu_json_str(&j, "bench", "mpi_vmap");
    bu_json_int(&j, "n", (long long)n);
    bu_json_int(&j, "ranks", size);
    bu_json_num(&j, "threads_us_per_item", t_threads * 1e6 / (double)n);
    bu_json_num(&j, "mpi_us_per_item", t_mpi * 1e6 / (double)n);
    bu_json_num(&j, "mpi_throughput_vs_threads", t_threads / t_mpi);
    bu_json_bool(&j, "results_ok", all_ok);
    bu_json_int(&j, "reps", reps);
    bu_json_num(&j, "other_load", other);
    bu_json_end(&j);
}

/* Mean wall time of `calls` maps of 100 items, fresh or on a pool. */
static double per_call(int calls, pm_pool *pool)
{
    double in[100] = {0}, out[100];
    pm_opts o = {.backend = PM_MPI, .pool = pool};
    double t0 = bu_now();
    for (int c = 0; c < calls; c++)
        pm_map(bco_twice, NULL, in, sizeof *in, out, sizeof *out, 100, &o, NULL);
    return (bu_now() - t0) / calls;
}

static void call_case(int calls)
{
    bu_cpu_snap s0 = bu_cpu_snapshot();
    double fresh = per_call(calls, NULL);
    pm_pool *pool = pm_pool_new(&(pm_opts){.backend = PM_MPI});
    double warm = pool ? per_call(calls, pool) : 0;
    pm_pool_free(pool);
    double other = ranks_other_load(s0, bu_cpu_snapshot());
    if (rank != 0)
        return;
    failed |= !pool;
    bu_json j;
    bu_json_begin(&j);
    bu_json_str(&j, "bench", "mpi_call");
    bu_json_int(&j, "items", 100);
    bu_json_int(&j, "calls", calls);
    bu_json_int(&j, "ranks", size);
    bu_json_num(&j, "fresh_ms_per_call", fresh * 1e3);
    bu_json_num(&j, "pool_ms_per_call", warm * 1e3);
    bu_json_num(&j, "other_load", other);
    bu_json_end(&j);
}

int main(int argc, char **argv)
{
    if (pm_mpi_init(&argc, &argv) != PM_OK) {
        fprintf(stderr, "bench_mpi: start it with mpirun (e.g. mpirun -np 2 bench_mpi)\n");
        return 1;
    }
    rank = pm_mpi_rank();
    size = pm_mpi_size();
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1, reps = 2;
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
    }
    if (reps < 1)
        reps = 1;

    /* Spin: ~100 us per item; every rank calibrates the same way, rank 0's
     * figure sizes the items. */
    double per_us = bco_calibrate_spin();
    MPI_Bcast(&per_us, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    size_t n = quick ? 2000 : 20000;
    bco_spin_item *items = malloc(n * sizeof *items);
    uint64_t *out = calloc(n, sizeof *out), *ref = malloc(n * sizeof *ref);
    for (size_t i = 0; i < n; i++) {
        items[i] = (bco_spin_item){i, (uint64_t)(per_us * 100)};
        ref[i] = rank == 0 ? bco_spin(items[i].seed, items[i].iters) : 0;
    }
    work spin = {"mpi_spin", bco_spin_fn, items, sizeof *items, out, sizeof *out, n};
    run_case(&spin, ref, 0.9, 1);
    free(items);
    free(out);
    free(ref);

    n = quick ? 100000 : 10000000;
    double *xin = malloc(n * sizeof *xin), *xout = calloc(n, sizeof *xout);
    double *xref = malloc(n * sizeof *xref);
    for (size_t i = 0; i < n; i++) {
        xin[i] = (double)i;
        xref[i] = 2 * (double)i;
    }
    work trivial = {"mpi_trivial", bco_twice, xin, sizeof *xin, xout, sizeof *xout, n};
    run_case(&trivial, xref, 1.0, 0);
    free(xin);
    free(xout);
    free(xref);

    vmap_case(quick ? 20000 : 1000000);
    call_case(quick ? 20 : 500);
    pm_mpi_finalize();
    return failed; /* wrong results (rank 0): the smoke test fails */
}
