/*
 * platform.h - the only place that knows about the operating system: threads,
 * locks, clocks, CPU count, terminals. Everything else includes this instead
 * of <pthread.h> or <unistd.h> (zstd's threading.c idea), so that a target
 * without threads (WASI) only changes this folder.
 *
 * PM_HAVE_THREADS is 1 where pthreads exist. Without them the lock calls are
 * no-ops and pm__thread_start fails with PM_ENOTSUP, which is what makes
 * PM_AUTO fall back to the serial executor.
 */
#ifndef PM_PLATFORM_H
#define PM_PLATFORM_H

#include <stddef.h>

#if defined(__wasi__) && !defined(_REENTRANT)
#define PM_HAVE_THREADS 0
#elif defined(__EMSCRIPTEN__) && !defined(__EMSCRIPTEN_PTHREADS__)
#define PM_HAVE_THREADS 0
#else
#define PM_HAVE_THREADS 1
#endif

#if PM_HAVE_THREADS
#include <pthread.h>
typedef pthread_mutex_t pm__mutex;
typedef pthread_cond_t pm__cond;
typedef pthread_t pm__thread;
#else
typedef int pm__mutex;
typedef int pm__cond;
typedef int pm__thread;
#endif

/* Locks and condition variables. Init returns a PM_* status; the others
 * cannot fail on valid objects. */
int  pm__mutex_init(pm__mutex *m);
void pm__mutex_destroy(pm__mutex *m);
void pm__mutex_lock(pm__mutex *m);
void pm__mutex_unlock(pm__mutex *m);
int  pm__cond_init(pm__cond *c);   /* waits measure CLOCK_MONOTONIC */
void pm__cond_destroy(pm__cond *c);
void pm__cond_wait(pm__cond *c, pm__mutex *m);
/* Wait at most `seconds`; returns 0 when woken (or spuriously), 1 on timeout. */
int  pm__cond_timedwait(pm__cond *c, pm__mutex *m, double seconds);
void pm__cond_signal(pm__cond *c);
void pm__cond_broadcast(pm__cond *c);

/* Start a thread running fn(arg). Returns PM_OK, PM_ESYS or PM_ENOTSUP. */
int  pm__thread_start(pm__thread *t, void *(*fn)(void *), void *arg);
void pm__thread_join(pm__thread t);

/* One process-wide lock for rare global bookkeeping (iterator handles). */
void pm__global_lock(void);
void pm__global_unlock(void);

/* Seconds on a monotonic clock (arbitrary origin). */
double pm__now(void);
/* CPUs this process may use (affinity aware), >= 1. */
int pm__cpu_count(void);
/* 1 when file descriptor fd is a terminal. */
int pm__isatty(int fd);

#endif
