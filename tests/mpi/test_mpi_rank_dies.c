/*
 * test_mpi_rank_dies.c - what happens when a rank dies in the middle of a
 * PM_MPI map (documented in README, "MPI"): the engine's default error
 * handling ends the whole job, so no rank returns from the call as if all
 * were well. Rank 1 kills itself at its first item; ctest (CMakeLists.txt)
 * checks that mpirun exits nonzero, in bounded time, and that no rank printed
 * "UNEXPECTED".
 */
#include "check.h"

#include <signal.h>
#include <unistd.h>

static int die_on_rank1(void *user, const void *in, void *out)
{
    (void)user;
    if (pm_mpi_rank() == 1)
        raise(SIGKILL);
    pmt_sleep(0.001);
    memcpy(out, in, 8);
    return 0;
}

int main(int argc, char **argv)
{
    CHECK_STATUS(PM_OK, pm_mpi_init(&argc, &argv));
    enum { N = 20000 };
    static uint64_t in[N], out[N];
    for (int i = 0; i < N; i++)
        in[i] = (uint64_t)i;
    int rc = pm_map(die_on_rank1, NULL, in, 8, out, 8, N, &(pm_opts){.backend = PM_MPI}, NULL);
    printf("UNEXPECTED: rank %d came back from pm_map with %s\n", pm_mpi_rank(), pm_err_name(rc));
    pm_mpi_finalize();
    return 0;
}
