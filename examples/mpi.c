/* mpi.c - the same pm_map across machines: Collatz chain lengths of 1..N on
 * every rank's threads, results on rank 0. The MPI executor is a library of
 * its own, libparmap_mpi, linked beside libparmap: parmap's build makes it
 * when it finds MPI (and builds this as build/examples/mpi); elsewhere
 *
 *     cc mpi.c -o mpi $(pkg-config --cflags --libs parmap-mpi)
 *     (CMake: find_package(parmap COMPONENTS mpi), link parmap::mpi)
 *
 * then run
 *
 *     mpirun -np 4 ./mpi 2000000        (as root: add --allow-run-as-root)
 *
 * Every rank runs this same program and makes the same calls (SPMD). Rank 0
 * owns the input and gets the results; the other ranks pull chunks from it
 * and run them on their threads. If a rank dies, mpirun aborts the whole job:
 * nothing is lost silently. */
#include <parmap.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Steps until n reaches 1. Records are plain bytes: they travel between
 * ranks as they are. */
static int collatz(void *user, const void *in, void *out) {
    (void)user;
    uint64_t n = *(const uint64_t *)in, steps = 0;
    while (n != 1) {
        n = n % 2 ? 3 * n + 1 : n / 2;
        steps++;
    }
    *(uint64_t *)out = steps;
    return 0;
}

int main(int argc, char **argv) {
    int rc = pm_mpi_init(&argc, &argv);
    if (rc != PM_OK) {
        fprintf(stderr, "pm_mpi_init: %s\n", pm_strerror(rc));
        return 1;
    }
    int rank = pm_mpi_rank();
    size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;

    /* Only rank 0 needs the arrays; the others pass NULL and 0. */
    uint64_t *in = NULL, *out = NULL;
    if (rank == 0) {
        in = malloc(n * sizeof *in);
        out = malloc(n * sizeof *out);
        if (!in || !out) return 1;
        for (size_t i = 0; i < n; i++) in[i] = i + 1;
    }
    pm_opts opts = {.backend = PM_MPI, .threads = 1, .progress_bar = rank == 0,
                    .label = "collatz"};
    pm_report rep;
    rc = pm_map(collatz, NULL, in, sizeof(uint64_t), out, rank == 0 ? sizeof(uint64_t) : 0,
                rank == 0 ? n : 0, &opts, &rep);
    if (rc != PM_OK) {
        fprintf(stderr, "rank %d: pm_map: %s\n", rank, pm_strerror(rc));
        pm_mpi_finalize();
        return 1;
    }
    if (rank == 0) {
        size_t best = 0;
        for (size_t i = 1; i < n; i++)
            if (out[i] > out[best]) best = i;
        printf("%d ranks: longest chain below %zu starts at %llu (%llu steps), %.3f s\n",
               pm_mpi_size(), n + 1, (unsigned long long)in[best],
               (unsigned long long)out[best], rep.elapsed_s);
    }
    free(in);
    free(out);
    pm_mpi_finalize();
    return 0;
}
