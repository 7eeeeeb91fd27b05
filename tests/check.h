/*
 * check.h - the assertions every test program shares (libuv's test/task.h
 * idea): on failure print file:line, the expression and both values, then
 * exit(1). Include it FIRST in a test: it selects the POSIX feature level.
 *
 * CHECK_CTX(fmt, ...) names the case being run (executor, chunksize, n...);
 * a failing check prints it too, so a table-driven test says which row failed.
 * Checks may run on several threads at once (the count is atomic and the
 * context is per thread).
 */
#ifndef PM_TEST_CHECK_H
#define PM_TEST_CHECK_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "parmap.h"

#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Where the test harness itself may start threads (mirrors the library's
 * platform.h rule). */
#if defined(__wasi__) && !defined(_REENTRANT)
#define PMT_HAVE_THREADS 0
#elif defined(__EMSCRIPTEN__) && !defined(__EMSCRIPTEN_PTHREADS__)
#define PMT_HAVE_THREADS 0
#else
#define PMT_HAVE_THREADS 1
#include <pthread.h>
#endif

/* Where fork() exists, so the processes backend is built (platform.h). */
#if PMT_HAVE_THREADS && !defined(__wasi__) && !defined(__EMSCRIPTEN__) && !defined(_WIN32)
#define PMT_HAVE_FORK 1
#else
#define PMT_HAVE_FORK 0
#endif

/* Sanitizer builds run 5-15x slower: big loops shrink by PMT_SCALE. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PMT_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define PMT_SANITIZED 1
#endif
#endif
#ifndef PMT_SANITIZED
#define PMT_SANITIZED 0
#endif
#define PMT_SCALE (PMT_SANITIZED ? 8 : 1)

/* Which sanitizer, for the few cases one of them cannot run. */
#if defined(__SANITIZE_THREAD__)
#define PMT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PMT_TSAN 1
#endif
#endif
#ifndef PMT_TSAN
#define PMT_TSAN 0
#endif
#if defined(__SANITIZE_ADDRESS__)
#define PMT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PMT_ASAN 1
#endif
#endif
#ifndef PMT_ASAN
#define PMT_ASAN 0
#endif

/* Run LeakSanitizer's check now instead of at exit (no-op without ASan). */
#if PMT_ASAN
#include <sanitizer/lsan_interface.h>
static inline void pmt_leak_check_now(void) { __lsan_do_leak_check(); }
#else
static inline void pmt_leak_check_now(void) {}
#endif

static atomic_long pmt_checks;
static _Thread_local char pmt_ctx[160];

static inline void pmt_set_ctx(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pmt_ctx, sizeof pmt_ctx, fmt, ap);
    va_end(ap);
}
#define CHECK_CTX(...) pmt_set_ctx(__VA_ARGS__)

/* Append to the context, e.g. the item about to fail a check. */
static inline void pmt_add_ctx(const char *fmt, ...)
{
    size_t len = strlen(pmt_ctx);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pmt_ctx + len, sizeof pmt_ctx - len, fmt, ap);
    va_end(ap);
}
#define CHECK_CTX_ADD(...) pmt_add_ctx(__VA_ARGS__)

static inline void pmt_fail(const char *file, int line, const char *expr)
{
    fprintf(stderr, "%s:%d: check failed: %s\n", file, line, expr);
    if (pmt_ctx[0])
        fprintf(stderr, "    while: %s\n", pmt_ctx);
    fflush(stderr);
    exit(1);
}

#define CHECK(expr)                                                          \
    do {                                                                     \
        atomic_fetch_add_explicit(&pmt_checks, 1, memory_order_relaxed);     \
        if (!(expr))                                                         \
            pmt_fail(__FILE__, __LINE__, #expr);                             \
    } while (0)

/* Comparisons that print both sides. Each operand is evaluated once. */
#define PMT_CMP(T, fmt, a, op, b)                                            \
    do {                                                                     \
        T pmt_a_ = (T)(a), pmt_b_ = (T)(b);                                  \
        atomic_fetch_add_explicit(&pmt_checks, 1, memory_order_relaxed);     \
        if (!(pmt_a_ op pmt_b_)) {                                           \
            fprintf(stderr, "    %s = " fmt "\n    %s = " fmt "\n", #a,      \
                    pmt_a_, #b, pmt_b_); /* #a may hold a '%' */             \
            pmt_fail(__FILE__, __LINE__, #a " " #op " " #b);                 \
        }                                                                    \
    } while (0)

#define CHECK_OP_INT(a, op, b)  PMT_CMP(long long, "%lld", a, op, b)
#define CHECK_OP_SIZE(a, op, b) PMT_CMP(size_t, "%zu", a, op, b)
#define CHECK_OP_DBL(a, op, b)  PMT_CMP(double, "%.17g", a, op, b)
#define CHECK_EQ_INT(a, b)      CHECK_OP_INT(a, ==, b)
#define CHECK_EQ_SIZE(a, b)     CHECK_OP_SIZE(a, ==, b)
#define CHECK_EQ_DBL(a, b)      CHECK_OP_DBL(a, ==, b)

#define CHECK_EQ_STR(a, b)                                                   \
    do {                                                                     \
        const char *pmt_a_ = (a), *pmt_b_ = (b);                             \
        atomic_fetch_add_explicit(&pmt_checks, 1, memory_order_relaxed);     \
        if (!pmt_a_ || !pmt_b_ || strcmp(pmt_a_, pmt_b_) != 0) {             \
            fprintf(stderr, "    " #a " = \"%s\"\n    " #b " = \"%s\"\n",    \
                    pmt_a_ ? pmt_a_ : "(null)", pmt_b_ ? pmt_b_ : "(null)"); \
            pmt_fail(__FILE__, __LINE__, #a " == " #b);                      \
        }                                                                    \
    } while (0)

/* A PM_* status: prints names, e.g. "expected ECANCELED (-6), got OK (0)". */
#define CHECK_STATUS(expected, got)                                          \
    do {                                                                     \
        int pmt_e_ = (expected), pmt_g_ = (got);                             \
        atomic_fetch_add_explicit(&pmt_checks, 1, memory_order_relaxed);     \
        if (pmt_e_ != pmt_g_) {                                              \
            fprintf(stderr, "    expected %s (%d), got %s (%d)\n",           \
                    pm_err_name(pmt_e_), pmt_e_, pm_err_name(pmt_g_), pmt_g_); \
            pmt_fail(__FILE__, __LINE__, #got " == " #expected);             \
        }                                                                    \
    } while (0)

/* Skip the whole program (ctest SKIP_RETURN_CODE 77), saying why. */
#define PMT_SKIP(why)                                                        \
    do {                                                                     \
        fprintf(stderr, "SKIP %s: %s\n", __FILE__, why);                     \
        exit(77);                                                            \
    } while (0)

/* End of main: say how much was checked. */
static inline int pmt_done(const char *name)
{
    printf("ok %s: %ld checks\n", name, (long)atomic_load(&pmt_checks));
    return 0;
}

/* Monotonic seconds, and sleeping that survives signals (EINTR). */
static inline double pmt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void pmt_sleep(double seconds)
{
    double end = pmt_now() + seconds;
    for (;;) {
        double left = end - pmt_now();
        if (left <= 0)
            return;
        struct timespec ts;
        ts.tv_sec = (time_t)left;
        ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
        nanosleep(&ts, NULL);
    }
}

/* A pm_source_fn of the int64 records next, next + 1, ..., end - 1. */
typedef struct pmt_range {
    int64_t next, end;
} pmt_range;

static inline int pmt_range_src(void *src, void *item)
{
    pmt_range *r = src;
    if (r->next >= r->end)
        return 0;
    *(int64_t *)item = r->next++;
    return 1;
}

/* Run one test function and say how long it took. */
#define PMT_RUN(call)                                                        \
    do {                                                                     \
        double pmt_t0_ = pmt_now();                                          \
        call;                                                                \
        printf("  %-32s %7.3f s\n", #call, pmt_now() - pmt_t0_);             \
        fflush(stdout);                                                      \
    } while (0)

#endif
