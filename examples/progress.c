/* progress.c - a few seconds of real work with a progress bar.
 *
 * Counts the primes below 20,000,000 (scale 1) by trial division, one block
 * of 10,000 numbers per item, and shows parmap's text progress bar on stderr while it
 * runs. Blocks further out cost more, so the work is uneven: the auto chunker
 * keeps every CPU busy anyway.
 *
 *     progress [scale]     scale 1 takes a few seconds on 2 CPUs;
 *                          0.01 is a quick smoke test.
 */
#include <parmap.h>

#include <stdio.h>
#include <stdlib.h>

#define BLOCK 10000L            /* numbers per item */
#define LIMIT 20000000L         /* numbers at scale 1 */

static int is_prime(long n) {
    if (n < 2) return 0;
    if (n % 2 == 0) return n == 2;
    for (long d = 3; d * d <= n; d += 2)
        if (n % d == 0) return 0;
    return 1;
}

/* Item: the first number of a block. Output: its primes' count and largest. */
typedef struct { long count, largest; } block_primes;

static int count_primes(void *user, const void *in, void *out) {
    (void)user;
    long first = *(const long *)in;
    block_primes r = { 0, 0 };
    for (long n = first; n < first + BLOCK; n++)
        if (is_prime(n)) r.count++, r.largest = n;
    *(block_primes *)out = r;
    return 0;
}

int main(int argc, char **argv) {
    double scale = argc > 1 ? strtod(argv[1], NULL) : 1.0;
    if (!(scale > 0 && scale <= 1000)) {
        fprintf(stderr, "usage: %s [scale]   (0 < scale <= 1000, default 1)\n", argv[0]);
        return 2;
    }
    size_t n = (size_t)(scale * (LIMIT / BLOCK));
    if (n == 0) n = 1;

    long *starts = malloc(n * sizeof *starts);
    block_primes *counts = malloc(n * sizeof *counts);
    if (!starts || !counts) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++) starts[i] = (long)i * BLOCK;

    pm_report rep;
    int rc = pm_map(count_primes, NULL, starts, sizeof starts[0], counts, sizeof counts[0], n,
                    &(pm_opts){ .progress_bar = 1, .label = "counting primes" }, &rep);
    if (rc != PM_OK) {
        fprintf(stderr, "pm_map failed: %s\n", pm_strerror(rc));
        free(starts);
        free(counts);
        return 1;
    }

    long total = 0, largest = 0;
    for (size_t i = 0; i < n; i++) {
        total += counts[i].count;
        if (counts[i].largest > largest) largest = counts[i].largest;
    }
    printf("%ld primes below %ld (the largest: %ld), in %zu blocks of %ld numbers\n", total,
           (long)n * BLOCK, largest, n, BLOCK);
    printf("%.2f s on %d CPUs, %.0f numbers/s\n", rep.elapsed_s, pm_cpu_count(),
           rep.elapsed_s > 0 ? (double)n * BLOCK / rep.elapsed_s : 0.0);
    free(starts);
    free(counts);
    return 0;
}
