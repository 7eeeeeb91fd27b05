/*
 * bench_work.c - the work the benchmarks time, shared by bench_core and
 * bench_processes so that both measure exactly the same item functions.
 */
#define _POSIX_C_SOURCE 200809L

#include "bench_core.h"

#include <stdint.h>

/* ------------------------------------------------------------ the work */

int bco_twice(void *user, const void *in, void *out)
{
    (void)user;
    *(double *)out = 2 * *(const double *)in;
    return 0;
}

/* The calibrated item: a dependent chain of xorshift steps feeding a
 * floating-point sum. Its iteration count comes from the input at run time, so
 * the compiler can neither vectorise it nor precompute it, and its result is
 * stored, so it cannot be dropped. Deterministic, so any scheduling gives the
 * serial loop's bits. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#endif
uint64_t bco_spin(uint64_t seed, uint64_t iters)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15u + 1;
    double acc = 0;
    uint64_t k;
    for (k = 0; k < iters; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        acc += (double)(x >> 11) * 0x1p-53;
    }
    return x ^ (uint64_t)(acc * 1024.0);
}

int bco_spin_fn(void *user, const void *in, void *out)
{
    const bco_spin_item *it = in;
    (void)user;
    *(uint64_t *)out = bco_spin(it->seed, it->iters);
    return 0;
}

/* Iterations of spin() per microsecond on one idle core: best of 7 runs of
 * ~2^21 iterations (a few ms each). */
double bco_calibrate_spin(void)
{
    volatile uint64_t sink = 0;
    double best = 1e30;
    int r;
    const uint64_t k = (uint64_t)1 << 21;
    for (r = 0; r < 7; r++) {
        double t0 = bu_now(), t;
        sink ^= bco_spin((uint64_t)r, k);
        t = bu_now() - t0;
        if (t < best) best = t;
    }
    (void)sink;
    return (double)k / (best * 1e6);
}

