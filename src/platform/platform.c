/*
 * platform.c - POSIX threads, monotonic clock, CPU count and tty checks behind
 * the small interface of platform.h. Targets without threads (WASI, the
 * single-thread WebAssembly build) get no-op locks and a thread start that
 * reports PM_ENOTSUP; the core then only ever uses the serial executor, whose
 * single thread never waits on a condition.
 */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "platform.h"
#include "parmap.h"

#include <math.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sched.h>
#endif
#ifdef __EMSCRIPTEN__
#include <emscripten/threading.h>
#endif

#if PM_HAVE_FORK
/* getpid() is a system call (glibc stopped caching it), about 0.5 us in a
 * VM, and every call on a pool or the default pool asks once or twice. So
 * the pid is cached and forgotten in every child of fork() (an atfork
 * handler: it runs in the child before fork returns, where no other thread
 * of ours exists to race with it). A child made by a raw clone or
 * syscall(SYS_fork) skips atfork handlers and would see its parent's pid:
 * parmap does not support calls from such a child. */
static atomic_long cached_pid;
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;

static atomic_int cached_cpus;

static void forget_pid(void)
{
    atomic_store_explicit(&cached_pid, 0, memory_order_relaxed);
    atomic_store_explicit(&cached_cpus, 0, memory_order_relaxed);
}

static void watch_forks(void)
{
    pthread_atfork(NULL, NULL, forget_pid);
}
#endif

int pm__cpu_count_default(void)
{
#if PM_HAVE_FORK
    /* sched_getaffinity is a system call too; the default of every call
     * asked for it. Read once per process (again in a fork child, which
     * may have been given other CPUs). */
    int n = atomic_load_explicit(&cached_cpus, memory_order_relaxed);
    if (n == 0) {
        pthread_once(&pid_once, watch_forks);
        n = pm__cpu_count();
        atomic_store_explicit(&cached_cpus, n, memory_order_relaxed);
    }
    return n;
#else
    return pm__cpu_count();
#endif
}

long pm__process_id(void)
{
#if PM_HAVE_FORK
    long pid = atomic_load_explicit(&cached_pid, memory_order_relaxed);
    if (pid == 0) {
        pthread_once(&pid_once, watch_forks);
        pid = (long)getpid();
        atomic_store_explicit(&cached_pid, pid, memory_order_relaxed);
    }
    return pid;
#else
    return 1;
#endif
}

double pm__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int pm__cpu_count(void)
{
#if defined(__linux__) && defined(CPU_COUNT)
    /* The affinity mask is what we may really use (taskset, containers). */
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return n;
    }
#endif
#if defined(_SC_NPROCESSORS_ONLN)
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n > 0)
        return n > PM_MAX_THREADS ? PM_MAX_THREADS : (int)n;
#endif
    return 1;
}

int pm__isatty(int fd)
{
    return isatty(fd) == 1;
}

#if PM_HAVE_THREADS

int pm__mutex_init(pm__mutex *m)
{
    return pthread_mutex_init(m, NULL) == 0 ? PM_OK : PM_ESYS;
}
void pm__mutex_destroy(pm__mutex *m) { pthread_mutex_destroy(m); }
void pm__mutex_lock(pm__mutex *m) { pthread_mutex_lock(m); }
void pm__mutex_unlock(pm__mutex *m) { pthread_mutex_unlock(m); }

int pm__cond_init(pm__cond *c)
{
    /* Timed waits use the monotonic clock so a wall-clock jump cannot stretch
     * a progress tick or a cancellation poll. */
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return PM_ESYS;
#if !defined(__APPLE__)
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
#endif
    int rc = pthread_cond_init(c, &attr);
    pthread_condattr_destroy(&attr);
    return rc == 0 ? PM_OK : PM_ESYS;
}
void pm__cond_destroy(pm__cond *c) { pthread_cond_destroy(c); }
void pm__cond_wait(pm__cond *c, pm__mutex *m) { pthread_cond_wait(c, m); }
void pm__cond_signal(pm__cond *c) { pthread_cond_signal(c); }
void pm__cond_broadcast(pm__cond *c) { pthread_cond_broadcast(c); }

int pm__cond_timedwait(pm__cond *c, pm__mutex *m, double seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double whole = floor(seconds);
    ts.tv_sec += (time_t)whole;
    ts.tv_nsec += (long)((seconds - whole) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec += 1;
        ts.tv_nsec -= 1000000000L;
    }
    return pthread_cond_timedwait(c, m, &ts) == 0 ? 0 : 1;
}

int pm__thread_start(pm__thread *t, void *(*fn)(void *), void *arg)
{
    return pthread_create(t, NULL, fn, arg) == 0 ? PM_OK : PM_ESYS;
}
void pm__thread_join(pm__thread t) { pthread_join(t, NULL); }
int pm__may_wait_for_thread_start(void)
{
#ifdef __EMSCRIPTEN__
    return !emscripten_is_main_runtime_thread();
#else
    return 1;
#endif
}

static pthread_mutex_t global_lock = PTHREAD_MUTEX_INITIALIZER;
void pm__global_lock(void) { pthread_mutex_lock(&global_lock); }
void pm__global_unlock(void) { pthread_mutex_unlock(&global_lock); }

#else /* no threads: one thread never waits, so locks are no-ops */

int pm__mutex_init(pm__mutex *m) { *m = 0; return PM_OK; }
void pm__mutex_destroy(pm__mutex *m) { (void)m; }
void pm__mutex_lock(pm__mutex *m) { (void)m; }
void pm__mutex_unlock(pm__mutex *m) { (void)m; }
int pm__cond_init(pm__cond *c) { *c = 0; return PM_OK; }
void pm__cond_destroy(pm__cond *c) { (void)c; }
void pm__cond_wait(pm__cond *c, pm__mutex *m) { (void)c; (void)m; }
int pm__cond_timedwait(pm__cond *c, pm__mutex *m, double s)
{
    (void)c; (void)m; (void)s;
    return 1;
}
void pm__cond_signal(pm__cond *c) { (void)c; }
void pm__cond_broadcast(pm__cond *c) { (void)c; }
int pm__thread_start(pm__thread *t, void *(*fn)(void *), void *arg)
{
    (void)t; (void)fn; (void)arg;
    return PM_ENOTSUP;
}
void pm__thread_join(pm__thread t) { (void)t; }
int pm__may_wait_for_thread_start(void) { return 1; }
void pm__global_lock(void) {}
void pm__global_unlock(void) {}

#endif
