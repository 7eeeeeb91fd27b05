/*
 * collatz.c - the collatz_steps kernel: for each n of a Float64Array (whole
 * numbers below 2^53), the number of 3n+1 / n/2 steps to reach 1, as an
 * Int32Array. Per-item cost varies a lot, which exercises the chunker.
 * n < 1 or not a whole number is an item error. Parameter maxSteps (default
 * 100000): a longer trajectory is an item error too.
 */
#include "parmap_kernel.h"

#include <math.h>
#include <stdint.h>

static int collatz_steps(void *params, const void *in, void *out)
{
    const double *p = params;
    double v = *(const double *)in;
    if (!(v >= 1) || v > 9007199254740991.0 || floor(v) != v)
        return 1;
    uint64_t n = (uint64_t)v;
    int32_t steps = 0, max = (int32_t)p[0];
    while (n != 1) {
        n = (n & 1) ? 3 * n + 1 : n / 2;
        if (++steps > max)
            return 2;
    }
    *(int32_t *)out = steps;
    return 0;
}

PM_KERNEL(collatz_steps, PM_K_F64, PM_K_I32, "maxSteps", collatz_steps, .defaults = {100000},
          .doc = "numbers (Float64Array) -> Collatz step counts (Int32Array)")
