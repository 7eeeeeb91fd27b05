/*
 * bench_util.h - what every parmap benchmark shares: a monotonic clock,
 * best/median statistics, one-line JSON output, resident-memory readings,
 * machine facts, and a runner that times several implementations of the same
 * work in an interleaved order.
 *
 * Design: header-only (static inline) so that a benchmark is one or two .c
 * files and a CMake line. Output is one JSON object per line on stdout, so a
 * script can `grep '"bench"' | jq` without parsing prose; nothing else goes to
 * stdout. The machines we run on are small and noisy (2 vCPUs under KVM), so
 * the runner interleaves implementations (rep 1 of A, B, C, then rep 2 ...)
 * instead of running all reps of A first: a burst of noise then hurts every
 * implementation a little rather than one of them a lot. It also sleeps a few
 * milliseconds before every timed run, so that OpenMP's spinning idle threads
 * (libgomp spins for a while after a parallel region) and the previous run's
 * dirty caches do not leak into the next measurement.
 *
 * Linux facts are read from /proc; elsewhere they are reported as unknown
 * (-1 or "unknown"), never faked.
 */
#ifndef PM_BENCH_UTIL_H
#define PM_BENCH_UTIL_H

#if !defined(_POSIX_C_SOURCE) || _POSIX_C_SOURCE < 200809L
#error "define _POSIX_C_SOURCE 200809L before including any header"
#endif

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- clock */

/* Seconds on a monotonic clock (arbitrary origin). */
static inline double bu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void bu_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0) {
        /* interrupted: sleep the rest */
    }
}

/* ----------------------------------------------------------- statistics */

typedef struct bu_stats {
    double best, median, worst;
} bu_stats;

static inline int bu_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Best, median and worst of n samples (n >= 1; NaN for all when n == 0). */
static inline bu_stats bu_stats_of(const double *v, int n)
{
    bu_stats s = { NAN, NAN, NAN };
    double tmp[64];
    if (n <= 0) return s;
    if (n > 64) n = 64;
    memcpy(tmp, v, (size_t)n * sizeof *v);
    qsort(tmp, (size_t)n, sizeof *tmp, bu_cmp_double);
    s.best = tmp[0];
    s.worst = tmp[n - 1];
    s.median = (n % 2) ? tmp[n / 2] : 0.5 * (tmp[n / 2 - 1] + tmp[n / 2]);
    return s;
}

/* a / b, or NaN (printed as null) when either is missing or b is 0. */
static inline double bu_ratio(double a, double b)
{
    if (!(a == a) || !(b == b) || b == 0) return NAN;
    return a / b;
}

/* ------------------------------------------------------------ JSON line */

/* A JSON object built in a fixed buffer and printed as one line. Nested
 * objects are allowed (bu_json_obj / bu_json_obj_end). Overflow truncates
 * silently to a still-printable line; 4 KB is far more than a case needs. */
typedef struct bu_json {
    char buf[4096];
    size_t len;
    int first;   /* no member written yet at the current nesting level */
} bu_json;

static inline void bu_json_raw(bu_json *j, const char *fmt, ...)
{
    va_list ap;
    int w;
    if (j->len >= sizeof j->buf - 1) return;
    va_start(ap, fmt);
    w = vsnprintf(j->buf + j->len, sizeof j->buf - j->len, fmt, ap);
    va_end(ap);
    if (w < 0) return;
    j->len += (size_t)w;
    if (j->len > sizeof j->buf - 1) j->len = sizeof j->buf - 1;
}

static inline void bu_json_key(bu_json *j, const char *key)
{
    bu_json_raw(j, "%s\"%s\":", j->first ? "" : ",", key);
    j->first = 0;
}

static inline void bu_json_begin(bu_json *j)
{
    j->len = 0;
    j->buf[0] = '\0';
    j->first = 1;
    bu_json_raw(j, "{");
}

static inline void bu_json_str(bu_json *j, const char *key, const char *v)
{
    bu_json_key(j, key);
    if (!v) {
        bu_json_raw(j, "null");
        return;
    }
    bu_json_raw(j, "\"");
    for (; *v; v++) {
        unsigned char c = (unsigned char)*v;
        if (c == '"' || c == '\\') bu_json_raw(j, "\\%c", c);
        else if (c < 0x20) bu_json_raw(j, "\\u%04x", c);
        else bu_json_raw(j, "%c", c);
    }
    bu_json_raw(j, "\"");
}

static inline void bu_json_int(bu_json *j, const char *key, long long v)
{
    bu_json_key(j, key);
    bu_json_raw(j, "%lld", v);
}

/* A number with 6 significant digits; NaN and infinities become null (JSON
 * has no NaN), which is how a missing comparison is reported. */
static inline void bu_json_num(bu_json *j, const char *key, double v)
{
    bu_json_key(j, key);
    if (isfinite(v)) bu_json_raw(j, "%.6g", v);
    else bu_json_raw(j, "null");
}

static inline void bu_json_bool(bu_json *j, const char *key, int v)
{
    bu_json_key(j, key);
    bu_json_raw(j, v ? "true" : "false");
}

static inline void bu_json_obj(bu_json *j, const char *key)
{
    bu_json_key(j, key);
    bu_json_raw(j, "{");
    j->first = 1;
}

static inline void bu_json_obj_end(bu_json *j)
{
    bu_json_raw(j, "}");
    j->first = 0;
}

/* Close the object and print it as one line; flushed at once so that a crash
 * in a later case still leaves the earlier lines. */
static inline void bu_json_end(bu_json *j)
{
    bu_json_raw(j, "}");
    fputs(j->buf, stdout);
    fputc('\n', stdout);
    fflush(stdout);
}

/* -------------------------------------------------------------- memory */

/* A "Vm...:" field of /proc/self/status in kB (e.g. "VmHWM:", "VmRSS:"),
 * or -1 where there is no such file or field. */
static inline long bu_proc_status_kb(const char *field)
{
    char line[256];
    long kb = -1;
    size_t fl = strlen(field);
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, fl) == 0) {
            kb = strtol(line + fl, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

/* Reset the peak-RSS mark (VmHWM) to the current RSS, so that a following
 * reading measures one phase only. Linux >= 4.0; returns 0 on success, -1
 * where unsupported (then VmHWM / ru_maxrss is the peak of the whole run). */
static inline int bu_reset_peak_rss(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    int ok;
    if (!f) return -1;
    ok = fputs("5", f) >= 0;
    if (fclose(f) != 0) ok = 0;
    return ok ? 0 : -1;
}

/* Peak RSS in kB: VmHWM, else getrusage's ru_maxrss (kB on Linux), else -1. */
static inline long bu_peak_rss_kb(void)
{
    struct rusage ru;
    long kb = bu_proc_status_kb("VmHWM:");
    if (kb >= 0) return kb;
    if (getrusage(RUSAGE_SELF, &ru) == 0) return (long)ru.ru_maxrss;
    return -1;
}

/* ------------------------------------------------------------- machine */

/* The CPU's "model name" from /proc/cpuinfo into buf, or "unknown". */
static inline void bu_cpu_model(char *buf, size_t size)
{
    char line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    snprintf(buf, size, "unknown");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *p = strchr(line, ':');
            size_t l;
            if (!p) continue;
            p++;
            while (*p == ' ' || *p == '\t') p++;
            l = strlen(p);
            while (l && (p[l - 1] == '\n' || p[l - 1] == ' ')) p[--l] = '\0';
            snprintf(buf, size, "%s", p);
            break;
        }
    }
    fclose(f);
}

/* Online CPUs (sysconf), or -1. */
static inline long bu_nproc(void)
{
    return sysconf(_SC_NPROCESSORS_ONLN);
}

/* The 1-minute load average from /proc/loadavg, or NaN: a high value at the
 * start of a run says its timings are not to be trusted. */
static inline double bu_loadavg(void)
{
    double l = NAN;
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f) return NAN;
    if (fscanf(f, "%lf", &l) != 1) l = NAN;
    fclose(f);
    return l;
}

/*
 * How busy the rest of the machine was: a snapshot of the machine's busy CPU
 * time (/proc/stat) and this process's own (getrusage). Between two
 * snapshots, bu_other_load() is the share of all CPUs used by OTHER processes
 * (and the hypervisor's steal): 0 on a quiet machine, 0.5 when another job
 * kept one of two CPUs busy. Jiffy resolution (10 ms), so only meaningful
 * over runs of a second or more; NaN where /proc/stat is missing.
 */
typedef struct bu_cpu_snap {
    double wall, busy_s, self_s;
} bu_cpu_snap;

static inline bu_cpu_snap bu_cpu_snapshot(void)
{
    bu_cpu_snap s = { bu_now(), NAN, NAN };
    unsigned long long v[8] = { 0 };
    struct rusage ru;
    long hz = sysconf(_SC_CLK_TCK);
    FILE *f = fopen("/proc/stat", "r");
    if (f) {
        /* cpu user nice system idle iowait irq softirq steal */
        if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8 && hz > 0)
            s.busy_s = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)hz;
        fclose(f);
    }
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        s.self_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
                   (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
    return s;
}

static inline double bu_other_load(bu_cpu_snap a, bu_cpu_snap b)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    double wall = b.wall - a.wall;
    double other = (b.busy_s - a.busy_s) - (b.self_s - a.self_s);
    if (!(wall > 0) || ncpu < 1 || other != other) return NAN;
    if (other < 0) other = 0;
    return other / (wall * (double)ncpu);
}

/* The compiler that built the benchmark (clang's __VERSION__ names itself,
 * gcc's is the bare version number). */
#if defined(__VERSION__) && defined(__GNUC__) && !defined(__clang__)
#define BU_COMPILER "gcc " __VERSION__
#elif defined(__VERSION__)
#define BU_COMPILER __VERSION__
#else
#define BU_COMPILER "unknown"
#endif

/* --------------------------------------------------------------- runner */

#define BU_MAX_REPS 64

/*
 * One implementation of a case's work. run() is timed; prep() (reset the
 * output to a poison value) and check() (compare with the reference) are not.
 * available == 0 skips it (e.g. OpenMP missing from the build).
 */
typedef struct bu_impl {
    const char *name;
    int (*run)(void *ctx);      /* 0 on success, else a status to report */
    void (*prep)(void *ctx);    /* optional */
    int (*check)(void *ctx);    /* optional: 1 when the output is right */
    void *ctx;
    int available;
    /* filled by bu_run */
    double t[BU_MAX_REPS];
    int reps;                   /* timed runs done */
    int ok;                     /* every run returned 0 and checked right */
    int rc;                     /* first nonzero run() result, else 0 */
    bu_stats st;
} bu_impl;

/* Time `reps` runs of every available implementation, interleaved, sleeping
 * settle_ms before each. An implementation that fails stops being run (its
 * later times would mean nothing) but the others go on. */
static inline void bu_run(bu_impl *im, int count, int reps, int settle_ms)
{
    int r, i;
    if (reps > BU_MAX_REPS) reps = BU_MAX_REPS;
    for (i = 0; i < count; i++) {
        im[i].reps = 0;
        im[i].ok = im[i].available;
        im[i].rc = 0;
    }
    for (r = 0; r < reps; r++) {
        for (i = 0; i < count; i++) {
            double t0, t1;
            int rc;
            if (!im[i].available || !im[i].ok) continue;
            if (im[i].prep) im[i].prep(im[i].ctx);
            if (settle_ms > 0) bu_sleep_ms(settle_ms);
            t0 = bu_now();
            rc = im[i].run(im[i].ctx);
            t1 = bu_now();
            im[i].t[im[i].reps++] = t1 - t0;
            if (rc != 0) {
                im[i].rc = rc;
                im[i].ok = 0;
            } else if (im[i].check && !im[i].check(im[i].ctx)) {
                im[i].ok = 0;
            }
        }
    }
    for (i = 0; i < count; i++) im[i].st = bu_stats_of(im[i].t, im[i].reps);
}

/* The implementation called `name` in im[0..count), or NULL. */
static inline bu_impl *bu_find(bu_impl *im, int count, const char *name)
{
    int i;
    for (i = 0; i < count; i++)
        if (strcmp(im[i].name, name) == 0) return &im[i];
    return NULL;
}

#endif /* PM_BENCH_UTIL_H */
