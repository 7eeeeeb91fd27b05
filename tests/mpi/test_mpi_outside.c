/*
 * test_mpi_outside.c - PM_MPI in a program not started by mpirun: a clear
 * PM_ENOMPI from pm_mpi_init and from every PM_MPI call, and nothing else
 * disturbed (the threads backend still works). Runs without mpirun.
 */
#include "check.h"

static int twice(void *user, const void *in, void *out)
{
    (void)user;
    *(int *)out = 2 * *(const int *)in;
    return 0;
}

int main(int argc, char **argv)
{
    /* ctest runs this without a launcher; clear what one would set. */
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK",
                                       "PMI_SIZE", "MPI_LOCALNRANKS", "SLURM_PROCID"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
    CHECK_STATUS(PM_ENOMPI, pm_mpi_init(&argc, &argv));
    CHECK_EQ_INT(pm_mpi_rank(), 0);
    CHECK_EQ_INT(pm_mpi_size(), 1);
    int in[4] = {1, 2, 3, 4}, out[4] = {0};
    pm_report rep;
    CHECK_STATUS(PM_ENOMPI, pm_map(twice, NULL, in, sizeof(int), out, sizeof(int), 4,
                                   &(pm_opts){.backend = PM_MPI}, &rep));
    CHECK_STATUS(PM_ENOMPI, rep.status);
    CHECK(pm_pool_new(&(pm_opts){.backend = PM_MPI}) == NULL);
    CHECK_EQ_STR(pm_err_name(PM_ENOMPI), "ENOMPI");
    CHECK_STATUS(PM_OK, pm_map(twice, NULL, in, sizeof(int), out, sizeof(int), 4,
                               &(pm_opts){.backend = PM_THREADS, .threads = 2}, NULL));
    CHECK_EQ_INT(out[3], 8);
    CHECK_STATUS(PM_OK, pm_mpi_finalize());
    return pmt_done("test_mpi_outside");
}
