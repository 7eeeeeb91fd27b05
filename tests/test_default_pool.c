/*
 * test_default_pool.c - calls without opts.pool on the threads backend share
 * one process-wide pool: repeated calls start no threads, nested calls (maps
 * from items, three levels deep) never add threads beyond the pool's, caps
 * and results hold, private_threads gives a call threads of its own, a call
 * asking for more threads than the pool has gets them, and a forked child
 * gets a fresh pool of its own.
 */
#include "check.h"
#include "conformance.h"

#if !PMT_HAVE_THREADS
int main(void)
{
    PMT_SKIP("no threads on this target");
}
#else

#include <stdint.h>
#if PMT_HAVE_FORK
#include <sys/wait.h>
#include <unistd.h>
#endif

static atomic_int peak_threads;

static void note_threads(void)
{
    int n = pmt_thread_count();
    int seen = atomic_load(&peak_threads);
    while (n > seen && !atomic_compare_exchange_weak(&peak_threads, &seen, n)) {
    }
}

static int64_t spin(int64_t x)
{
    uint64_t h = (uint64_t)x;
    for (int k = 0; k < 20000; k++)
        h = h * 6364136223846793005ULL + 1442695040888963407ULL;
    return (int64_t)(h >> 40);
}

/* Level 3: a CPU-bound leaf. */
static int leaf(void *user, const void *in, void *out)
{
    (void)user;
    note_threads();
    *(int64_t *)out = spin(*(const int64_t *)in);
    return 0;
}

/* Levels 1 and 2: a default map of 6 items from inside an item. */
static int nest(void *user, const void *in, void *out)
{
    int level = *(const int *)user, next = level + 1;
    int64_t x = *(const int64_t *)in, sub[6], res[6];
    for (int i = 0; i < 6; i++)
        sub[i] = x * 6 + i;
    int rc = pm_map(level == 2 ? leaf : nest, &next, sub, sizeof sub[0], res, sizeof res[0], 6,
                    NULL, NULL);
    if (rc != PM_OK)
        return 50;
    int64_t sum = 0;
    for (int i = 0; i < 6; i++)
        sum += res[i];
    *(int64_t *)out = sum;
    return 0;
}

static int64_t nest_ref(int level, int64_t x)
{
    int64_t sum = 0;
    for (int i = 0; i < 6; i++)
        sum += level == 2 ? spin(x * 6 + i) : nest_ref(level + 1, x * 6 + i);
    return sum;
}

static int plus_one(void *user, const void *in, void *out)
{
    (void)user;
    *(int64_t *)out = *(const int64_t *)in + 1;
    return 0;
}

static void map_plus_one(size_t n, const pm_opts *o)
{
    int64_t *in = malloc(n * sizeof *in), *out = malloc(n * sizeof *out);
    CHECK(in && out);
    for (size_t i = 0; i < n; i++)
        in[i] = (int64_t)i;
    CHECK_STATUS(PM_OK, pm_map(plus_one, NULL, in, sizeof *in, out, sizeof *out, n, o, NULL));
    for (size_t i = 0; i < n; i++)
        CHECK_EQ_INT(out[i], (int64_t)i + 1);
    free(in);
    free(out);
}

static void test_no_threads_per_call(int base)
{
    for (int k = 0; k < 200; k++) {
        map_plus_one(100, NULL);
        CHECK_EQ_INT(pmt_thread_count(), base); /* nothing started, nothing left */
    }
    map_plus_one(100000, &(pm_opts){.threads = 1});
    map_plus_one(100000, &(pm_opts){.threads = 2});
}

static void test_nested(int base)
{
    atomic_store(&peak_threads, 0);
    int64_t in[4] = {1, 2, 3, 4}, out[4];
    int level = 1;
    CHECK_STATUS(PM_OK, pm_map(nest, &level, in, sizeof in[0], out, sizeof out[0], 4, NULL, NULL));
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(out[i], nest_ref(1, in[i]));
    /* three levels of default maps: no thread beyond the pool's */
    CHECK_OP_INT(atomic_load(&peak_threads), <=, base);
    CHECK_EQ_INT(pmt_thread_count(), base);
}

static void test_private_and_bigger(int base)
{
    atomic_store(&peak_threads, 0);
    int64_t in[64], out[64];
    for (int i = 0; i < 64; i++)
        in[i] = i;
    pm_opts o = {.private_threads = 1, .threads = 2, .chunksize = 1};
    CHECK_STATUS(PM_OK, pm_map(leaf, NULL, in, sizeof in[0], out, sizeof out[0], 64, &o, NULL));
    CHECK_OP_INT(atomic_load(&peak_threads), >, base); /* its own thread */
    CHECK_NO_THREAD_LEAK(base);
    /* more threads than the pool has: an explicit choice, honoured */
    atomic_store(&peak_threads, 0);
    o = (pm_opts){.threads = pm_cpu_count() + 2, .chunksize = 1};
    CHECK_STATUS(PM_OK, pm_map(leaf, NULL, in, sizeof in[0], out, sizeof out[0], 64, &o, NULL));
    for (int i = 0; i < 64; i++)
        CHECK_EQ_INT(out[i], spin(i));
    CHECK_OP_INT(atomic_load(&peak_threads), >, base);
    CHECK_NO_THREAD_LEAK(base);
}

#if PMT_HAVE_FORK && !PMT_TSAN
/* A forked child's default calls get a pool of the child's own. */
static void test_fork_child(void)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        map_plus_one(100000, NULL);
        int64_t in[2] = {1, 2}, out[2];
        int level = 2;
        int rc = pm_map(nest, &level, in, sizeof in[0], out, sizeof out[0], 2, NULL, NULL);
        _exit(rc == PM_OK && out[0] == nest_ref(2, 1) ? 0 : 3);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ_INT(WEXITSTATUS(status), 0);
}
#endif

int main(void)
{
    int base = pmt_thread_baseline(); /* the default pool made: its threads included */
    CHECK_OP_INT(base, >=, pm_cpu_count()); /* main + (CPU count - 1) pool workers */
    PMT_RUN(test_no_threads_per_call(base));
    PMT_RUN(test_nested(base));
    PMT_RUN(test_private_and_bigger(base));
#if PMT_HAVE_FORK && !PMT_TSAN
    PMT_RUN(test_fork_child());
#endif
    return pmt_done("test_default_pool");
}

#endif
