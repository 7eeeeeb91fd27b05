/* main_mpi.c - the downstream smoke test of libparmap_mpi: an MPI program
 * built against the installed <parmap.h>, libparmap_mpi and libparmap only.
 * Under mpirun it maps over every rank and checks the results on rank 0;
 * run plainly (no launcher) it checks that the executor is there all the
 * same: PM_MPI calls say PM_ENOMPI, not PM_ENOTSUP (which is what a program
 * without libparmap_mpi gets). Exit 0 = ok. */
#include <parmap.h>

#include <stdio.h>

static int cube(void *user, const void *in, void *out) {
    (void)user;
    long v = *(const long *)in;
    *(long *)out = v * v * v;
    return 0;
}

int main(int argc, char **argv) {
    enum { N = 5000 };
    static long in[N], out[N];
    for (long i = 0; i < N; i++) in[i] = i;

    int rc = pm_mpi_init(&argc, &argv);
    if (rc == PM_ENOMPI) { /* not started by mpirun */
        rc = pm_map(cube, NULL, in, sizeof in[0], out, sizeof out[0], N,
                    &(pm_opts){ .backend = PM_MPI }, NULL);
        if (rc != PM_ENOMPI || pm_mpi_rank() != 0 || pm_mpi_size() != 1) {
            fprintf(stderr, "outside mpirun: PM_MPI map %s, rank %d, size %d\n",
                    pm_err_name(rc), pm_mpi_rank(), pm_mpi_size());
            return 1;
        }
        printf("downstream mpi ok (outside mpirun): PM_MPI says ENOMPI\n");
        return 0;
    }
    if (rc != PM_OK) {
        fprintf(stderr, "pm_mpi_init: %s\n", pm_strerror(rc));
        return 1;
    }
    int rank = pm_mpi_rank(), size = pm_mpi_size();
    pm_report rep;
    rc = pm_map(cube, NULL, in, sizeof in[0], out, sizeof out[0], N,
                &(pm_opts){ .backend = PM_MPI, .threads = 1, .chunksize = 64 }, &rep);
    int bad = rc != PM_OK || rep.done != N;
    for (long i = 0; rank == 0 && !bad && i < N; i++)
        bad = out[i] != i * i * i;
    pm_mpi_finalize();
    if (bad) {
        fprintf(stderr, "rank %d: pm_map %s, done %zu\n", rank, pm_err_name(rc), rep.done);
        return 1;
    }
    if (rank == 0)
        printf("downstream mpi ok: %d ranks, %d items\n", size, N);
    return 0;
}
