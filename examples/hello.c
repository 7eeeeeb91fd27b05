/* hello.c - the smallest useful parmap program: square roots of 1000 numbers,
 * computed on all CPUs, results in input order. */
#include <parmap.h>

#include <math.h>
#include <stdio.h>

/* The item function: read one input, write one output, return 0 for success
 * (any other value marks this item as failed). It runs on several threads at
 * once, so it must not write to shared state. */
static int root(void *user, const void *in, void *out) {
    (void)user;
    double x = *(const double *)in;
    if (x < 0) return 1;            /* an item error: no real square root */
    *(double *)out = sqrt(x);
    return 0;
}

int main(void) {
    enum { N = 1000 };
    static double in[N], out[N];
    for (int i = 0; i < N; i++) in[i] = i;

    /* NULL options = defaults: threads backend, one thread per CPU. */
    int rc = pm_map(root, NULL, in, sizeof in[0], out, sizeof out[0], N, NULL, NULL);
    if (rc != PM_OK) {
        fprintf(stderr, "pm_map failed: %s\n", pm_strerror(rc));
        return 1;
    }
    for (int i = 0; i < N; i += 250)
        printf("sqrt(%g) = %.6f\n", in[i], out[i]);
    printf("sqrt(%g) = %.6f\n", in[N - 1], out[N - 1]);
    return 0;
}
