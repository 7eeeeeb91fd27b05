/*
 * native_mandelbrot.c - the mandelbrot_row kernel (wasm/kernels/mandelbrot.c,
 * the very same file) compiled natively and run with pm_map on the threads
 * executor, for the wasm-vs-native comparison in run.mjs. Prints one JSON
 * line per thread count: best-of-N wall time and a checksum of the pixels.
 *
 *   native_mandelbrot WIDTH HEIGHT MAXITER REPEAT THREADS...
 */
#include "parmap_kernel.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 6)
        return 2;
    int width = atoi(argv[1]), height = atoi(argv[2]), max_iter = atoi(argv[3]), repeat = atoi(argv[4]);
    const pm_kernel *k = pm_kernel_find("mandelbrot_row");
    if (!k)
        return 1;
    double params[PM_KERNEL_MAX_PARAMS];
    for (int i = 0; i < PM_KERNEL_MAX_PARAMS; i++)
        params[i] = k->defaults[i];
    params[0] = width;
    params[1] = height;
    params[2] = max_iter;
    int32_t *rows = malloc(sizeof *rows * (size_t)height);
    uint8_t *px = malloc((size_t)width * 4 * (size_t)height);
    for (int y = 0; y < height; y++)
        rows[y] = y;
    for (int a = 5; a < argc; a++) {
        int threads = atoi(argv[a]);
        pm_pool *pool = pm_pool_new(&(pm_opts){.threads = threads});
        double best = 1e9;
        for (int r = 0; r < repeat; r++) {
            double t0 = now();
            int rc = pm_map(k->fn, params, rows, sizeof *rows, px, (size_t)width * 4, (size_t)height,
                            &(pm_opts){.pool = pool}, NULL);
            double t = now() - t0;
            if (rc != PM_OK)
                return 1;
            if (t < best)
                best = t;
        }
        uint64_t sum = 0;
        for (size_t i = 0; i < (size_t)width * 4 * (size_t)height; i++)
            sum = sum * 31 + px[i];
        printf("{\"bench\":\"mandelbrot_row\",\"impl\":\"native-c\",\"threads\":%d,\"width\":%d,\"height\":%d,"
               "\"maxIter\":%d,\"ms\":%.2f,\"checksum\":\"%016llx\"}\n",
               threads, width, height, max_iter, best * 1e3, (unsigned long long)sum);
        pm_pool_free(pool);
    }
    free(rows);
    free(px);
    return 0;
}
