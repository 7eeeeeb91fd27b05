/*
 * test_exec_registry.c - the core's registry of executors it does not build
 * in (pm_exec_register; libparmap_mpi registers PM_MPI that way). This
 * program links libparmap only, so PM_MPI is not there: every PM_MPI call says
 * PM_ENOTSUP, as in any program without libparmap_mpi. A table registered for
 * PM_MPI (here the serial executor's) is then what PM_MPI runs on, until it is
 * unregistered; built-in and unknown backends and unversioned tables are
 * refused.
 */
#include "check.h"
#include "core/internal.h"

#include <errno.h>

static int twice(void *user, const void *in, void *out)
{
    (void)user;
    *(int *)out = 2 * *(const int *)in;
    return 0;
}

static int map_on(pm_backend b, int *out, pm_report *rep)
{
    static const int in[5] = {1, 2, 3, 4, 5};
    return pm_map(twice, NULL, in, sizeof in[0], out, sizeof out[0], 5,
                  &(pm_opts){.backend = b}, rep);
}

/* PM_MPI as in a program without libparmap_mpi. */
static void check_absent(void)
{
    int out[5] = {0};
    pm_report rep;
    CHECK(pm__backend_methods(PM_MPI) == NULL);
    CHECK_STATUS(PM_ENOTSUP, map_on(PM_MPI, out, &rep));
    CHECK_STATUS(PM_ENOTSUP, rep.status);
    CHECK_EQ_INT(out[0], 0);
    errno = 0;
    CHECK(pm_pool_new(&(pm_opts){.backend = PM_MPI}) == NULL);
    CHECK_EQ_INT(errno, ENOTSUP);
}

int main(void)
{
    check_absent();

    /* Refused: built-in, out of range, no version. */
    static const pm__exec_methods unversioned = {.version = 0, .name = "none"};
    CHECK_STATUS(PM_EINVAL, pm_exec_register(PM_SERIAL, &pm__exec_serial));
    CHECK_STATUS(PM_EINVAL, pm_exec_register(PM_THREADS, &pm__exec_serial));
    CHECK_STATUS(PM_EINVAL, pm_exec_register(PM_AUTO, &pm__exec_serial));
    CHECK_STATUS(PM_EINVAL, pm_exec_register((pm_backend)(PM_MPI + 1), &pm__exec_serial));
    CHECK_STATUS(PM_EINVAL, pm_exec_register((pm_backend)-1, &pm__exec_serial));
    CHECK_STATUS(PM_EINVAL, pm_exec_register(PM_MPI, &unversioned));
    /* A version from the future, and a table without its methods. */
    pm__exec_methods future = pm__exec_serial;
    future.version = PM_EXEC_VERSION + 1;
    CHECK_STATUS(PM_EINVAL, pm_exec_register(PM_MPI, &future));
    pm__exec_methods partial = pm__exec_serial;
    partial.wait = NULL;
    CHECK_STATUS(PM_EINVAL, pm_exec_register(PM_MPI, &partial));
    check_absent();

    /* Registered: PM_MPI runs on the table it was given (twice is fine). */
    CHECK_STATUS(PM_OK, pm_exec_register(PM_MPI, &pm__exec_serial));
    CHECK_STATUS(PM_OK, pm_exec_register(PM_MPI, &pm__exec_serial));
    CHECK(pm__backend_methods(PM_MPI) == &pm__exec_serial);
    CHECK(!pm__methods_spmd(&pm__exec_serial)); /* it has no follower() */
    CHECK(!pm__methods_follows(&pm__exec_serial));
    int out[5] = {0};
    pm_report rep;
    CHECK_STATUS(PM_OK, map_on(PM_MPI, out, &rep));
    CHECK_EQ_SIZE(rep.done, 5);
    CHECK_EQ_INT(out[4], 10);
    pm_pool *pool = pm_pool_new(&(pm_opts){.backend = PM_MPI});
    CHECK(pool != NULL);
    /* A pool keeps its table even when the backend is unregistered. */
    CHECK_STATUS(PM_OK, pm_exec_register(PM_MPI, NULL));
    static const int in[3] = {7, 8, 9};
    int pout[3] = {0};
    CHECK_STATUS(PM_OK, pm_map(twice, NULL, in, sizeof in[0], pout, sizeof pout[0], 3,
                               &(pm_opts){.pool = pool}, NULL));
    CHECK_EQ_INT(pout[2], 18);
    pm_pool_free(pool);

    check_absent();
    return pmt_done("test_exec_registry");
}
