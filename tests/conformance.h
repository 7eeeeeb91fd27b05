/*
 * conformance.h - what the table-driven tests share: the list of executors
 * every case runs on (serial is the oracle), and small helpers to start test
 * threads and to count the process's threads (leak checks).
 * Include after check.h.
 */
#ifndef PM_TEST_CONFORMANCE_H
#define PM_TEST_CONFORMANCE_H

#include "check.h"

#include <dirent.h>
#include <limits.h>

typedef struct pmt_exec {
    const char *name;
    pm_backend backend;
    int threads;
} pmt_exec;

/* Every executor of this release. Without threads only serial and auto. */
static const pmt_exec pmt_execs[] = {
    {"serial", PM_SERIAL, 0},
#if PMT_HAVE_THREADS
    {"threads1", PM_THREADS, 1},
    {"threads2", PM_THREADS, 2},
    {"threads3", PM_THREADS, 3},
    {"threads4", PM_THREADS, 4},
    {"threads8", PM_THREADS, 8},
#endif
    {"auto", PM_AUTO, 0},
};
#define PMT_NEXECS (sizeof pmt_execs / sizeof pmt_execs[0])

/* Options for one executor (the rest zero = defaults). */
static inline pm_opts pmt_opts(const pmt_exec *e)
{
    pm_opts o;
    memset(&o, 0, sizeof o);
    o.backend = e->backend;
    o.threads = e->threads;
    return o;
}

/* Workers an executor really has (0 threads = CPU count). */
static inline int pmt_workers(const pmt_exec *e)
{
    if (e->backend == PM_SERIAL || !PMT_HAVE_THREADS)
        return 1;
    return e->threads > 0 ? e->threads : pm_cpu_count();
}

/* Threads of this process, or -1 where /proc/self/task does not exist. */
static inline int pmt_thread_count(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

#if PMT_HAVE_THREADS
static inline void *pmt_nothing(void *arg) { return arg; }
#endif

static inline int pmt_noop_item(void *user, const void *in, void *out)
{
    (void)user, (void)in, (void)out;
    return 0;
}

/* The thread count to come back to. Starts and joins one thread first:
 * sanitizers (TSan) start a helper thread of their own at the first
 * pthread_create, which is no leak of ours. And makes the shared default
 * pool, whose threads live until exit by design. */
static inline int pmt_thread_baseline(void)
{
#if PMT_HAVE_THREADS
    pthread_t t;
    if (pthread_create(&t, NULL, pmt_nothing, NULL) == 0)
        pthread_join(t, NULL);
    char two[2];
    pm_map(pmt_noop_item, NULL, two, 1, NULL, 0, 2, NULL, NULL);
#endif
    int n = pmt_thread_count();
    for (int i = 0; i < 10; i++) { /* the joined thread leaving /proc */
        pmt_sleep(0.005);
        int m = pmt_thread_count();
        if (m < n)
            n = m;
    }
    return n;
}

/* No leaked threads: the count comes back to `base` (a joined thread may
 * take a moment to leave /proc, so wait up to 2 s). Checks nothing where
 * threads cannot be counted. */
#define CHECK_NO_THREAD_LEAK(base)                                           \
    do {                                                                     \
        int pmt_n_ = pmt_thread_count();                                     \
        for (int pmt_i_ = 0; pmt_i_ < 200 && pmt_n_ > (base); pmt_i_++) {    \
            pmt_sleep(0.01);                                                 \
            pmt_n_ = pmt_thread_count();                                     \
        }                                                                    \
        if ((base) >= 0)                                                     \
            CHECK_EQ_INT(pmt_n_, (base));                                    \
    } while (0)

#if PMT_HAVE_THREADS
/* Start a test thread; failing to start one is a broken machine, not a
 * library bug, so say so and fail. */
static inline pthread_t pmt_thread_start(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    int rc = pthread_create(&t, NULL, fn, arg);
    if (rc != 0) {
        fprintf(stderr, "pthread_create failed: %s\n", strerror(rc));
        exit(1);
    }
    return t;
}
#endif

/* A small deterministic hash used as the test function and its oracle. */
static inline uint64_t pmt_mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

#endif
