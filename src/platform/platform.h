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

/* fork(), socketpair() and shared mappings: the processes executor. */
#if PM_HAVE_THREADS && !defined(__wasi__) && !defined(__EMSCRIPTEN__) && !defined(_WIN32)
#define PM_HAVE_FORK 1
#else
#define PM_HAVE_FORK 0
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
/* 1 when this thread may block until a thread it started is running. 0 on
 * Emscripten's main runtime thread: a new pthread there starts only after
 * this thread returns to its event loop, so such a wait never ends. */
int  pm__may_wait_for_thread_start(void);

/* One process-wide lock for rare global bookkeeping (iterator handles). */
void pm__global_lock(void);
void pm__global_unlock(void);

/* This process's id (getpid; 1 where there are no processes). */
long pm__process_id(void);
/* Seconds on a monotonic clock (arbitrary origin). */
double pm__now(void);
/* CPUs this process may use (affinity aware), >= 1. */
int pm__cpu_count(void);
/* The same, read once per process (and again after fork): what options
 * default to, so that a call does not pay a system call for it. */
int pm__cpu_count_default(void);
/* 1 when file descriptor fd is a terminal. */
int pm__isatty(int fd);

#if PM_HAVE_FORK
#include <sys/types.h>
/* Processes (process.c). Sockets are AF_UNIX stream pairs; sends never raise
 * SIGPIPE. Return values: 0 / -1 unless said otherwise. */
void *pm__shared_alloc(size_t bytes);          /* MAP_SHARED anonymous, zeroed; NULL */
void  pm__shared_free(void *p, size_t bytes);
int   pm__socket_pair(int fds[2]);
int   pm__send_all(int fd, const void *buf, size_t len);
int   pm__recv_all(int fd, void *buf, size_t len);  /* -1 on EOF too */
/* Make pm__recv_msg on fd give up after `seconds` without data. */
int   pm__set_recv_timeout(int fd, double seconds);
/* Receive exactly len bytes: 0, 1 when the timeout passed before any byte
 * came, -1 on EOF or error. One syscall in the common case. */
int   pm__recv_msg(int fd, void *buf, size_t len);
void  pm__close(int fd);                            /* ignores -1 */
/* What fd refers to (its inode + 1), 0 when it is not open: tells whether a
 * descriptor number still means the same open file. */
unsigned long long pm__fd_id(int fd);
void  pm__nap(double seconds);
/* A wait for something that usually comes within microseconds (a worker's
 * exit): nap *nap seconds, then double it up to 1 ms for the next time, so
 * the wait ends soon after the event without spinning when it is late.
 * Start with *nap = PM__NAP_FIRST. */
#define PM__NAP_FIRST 0.00005
void  pm__nap_longer(double *nap);
/* fork() with stdout/stderr flushed unless another thread holds them (it
 * never waits for a stream's lock). */
pid_t pm__fork(void);
/* In the child, first thing: die with the parent (`parent`: getpid() before
 * the fork), drop the parent's unflushed output, leave SIGINT to the parent. */
void  pm__child_setup(pid_t parent);
void  pm__child_exit(int code);                     /* flush stdout/stderr, _exit */
/* In a forked child: start a thread on a freshly mapped stack. (glibc would
 * reuse the stack of a parent thread that does not exist in the child, and
 * that memory is the caller's data as of the fork: item inputs may live there.) */
int   pm__child_thread_start(pm__thread *t, void *(*fn)(void *), void *arg);
int   pm__has_exited(pid_t pid);                    /* 1 when it is a zombie (not reaped) */
/* Its resident memory in bytes (Linux /proc; 0 when unknown). */
size_t pm__rss_bytes(pid_t pid);
/* The signal that stopped it (SIGSTOP, SIGTSTP...) while it is stopped, else 0. */
int   pm__stopped(pid_t pid);
/* Reap; *signal gets the killing signal (0 if it exited) and *status its exit
 * code. Blocks until it exits: only for a process that exited or was killed. */
void  pm__reap(pid_t pid, int *signal, int *status);
/* Reap it if it exited: 1 when reaped (or not ours any more), else 0. */
int   pm__try_reap(pid_t pid);
void  pm__kill(pid_t pid);                          /* SIGKILL */
#endif

#endif
