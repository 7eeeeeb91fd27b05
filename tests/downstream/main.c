/* main.c - the downstream smoke test: uses only the installed <parmap.h> and
 * library, maps a function over an array and checks every result, the status
 * strings and that header and library agree on the version. Exit 0 = ok. */
#include <parmap.h>

#include <stdio.h>
#include <string.h>

static int square(void *user, const void *in, void *out) {
    (void)user;
    long v = *(const long *)in;
    *(long *)out = v * v;
    return 0;
}

int main(void) {
    enum { N = 10000 };
    static long in[N], out[N];
    for (long i = 0; i < N; i++) in[i] = i;

    pm_report rep;
    int rc = pm_map(square, NULL, in, sizeof in[0], out, sizeof out[0], N,
                    &(pm_opts){ .threads = 2 }, &rep);
    if (rc != PM_OK) {
        fprintf(stderr, "pm_map: %s (%s)\n", pm_strerror(rc), pm_err_name(rc));
        return 1;
    }
    for (long i = 0; i < N; i++) {
        if (out[i] != i * i) {
            fprintf(stderr, "out[%ld] = %ld, want %ld\n", i, out[i], i * i);
            return 1;
        }
    }
    if (rep.done != N || rep.failed != 0) {
        fprintf(stderr, "report: done %zu failed %zu\n", rep.done, rep.failed);
        return 1;
    }
    if (strcmp(pm_version(), PM_VERSION_STRING) != 0) {
        fprintf(stderr, "library %s, header %s\n", pm_version(), PM_VERSION_STRING);
        return 1;
    }
    if (strcmp(pm_err_name(PM_EINVAL), "EINVAL") != 0) {
        fprintf(stderr, "pm_err_name(PM_EINVAL) = %s\n", pm_err_name(PM_EINVAL));
        return 1;
    }
    /* Without libparmap_mpi in the program, PM_MPI is not there. */
    rc = pm_map(square, NULL, in, sizeof in[0], out, sizeof out[0], N,
                &(pm_opts){ .backend = PM_MPI }, NULL);
    if (rc != PM_ENOTSUP) {
        fprintf(stderr, "PM_MPI without libparmap_mpi: %s, want ENOTSUP\n", pm_err_name(rc));
        return 1;
    }
    printf("downstream ok: parmap %s, %d items\n", pm_version(), N);
    return 0;
}
