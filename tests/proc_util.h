/*
 * proc_util.h - what the processes executor's tests (tests/test_proc_*.c)
 * share: the watchdog, the leftover checks (children, zombies, fds and
 * threads, from Linux /proc), the procs x threads configurations, and
 * (proc_items.h, which it includes) the records and item functions that
 * crash, time out or fail on purpose, with their oracle.
 *
 * Include it FIRST in a test: it selects the feature level (_GNU_SOURCE, for
 * MAP_ANONYMOUS under -std=c11) and includes check.h and conformance.h. Its
 * own parts (and proc_items.h) exist only where fork() does (PMT_HAVE_FORK);
 * without it a test skips (test_proc_crashes checks that PM_PROCESSES says
 * PM_ENOTSUP there).
 *
 * A test's main: proc_init(name) first, then each case under the watchdog,
 * RUN(budget_s, call) or proc_matrix(name, fn) for a case on every
 * configuration; return proc_done(name). The watchdog ends a hung test with
 * the name of the case still running (ctest's TIMEOUT is 300 s).
 *
 * Sanitizers: the library forks from its crew threads, so every worker is
 * the child of a multi-threaded process, which the sanitizer runtimes of
 * clang 14 do not all survive:
 *  - TSan kills a child that starts a thread ("starting new threads after
 *    multi-threaded fork is not supported");
 *  - ASan has no fork interceptor: its allocator is not locked across fork(),
 *    so a child's first malloc/free (pthread_create does some) can wait
 *    forever for a lock another thread held at the fork.
 * So under either, worker processes get 1 thread each (the cases with 2 are
 * skipped, counted and named at the end: cfg_runs, proc_done), and under
 * ASan the items of the busy-caller case do not malloc in the workers (the
 * caller's threads still do, around the forks).
 */
#ifndef PM_TEST_PROC_UTIL_H
#define PM_TEST_PROC_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* MAP_ANONYMOUS under -std=c11 */
#endif
#include "check.h"
#include "conformance.h"

#include <limits.h>

#if PMT_HAVE_FORK

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fork_watch.h"
#include "proc_items.h"

/* PMT_TSAN, PMT_ASAN: check.h */
/* Worker processes may start threads (see above). */
#define PMT_WORKER_THREADS_OK (!PMT_TSAN && !PMT_ASAN)

/* Per-item timeout, and how soon a canceled call must return. */
#define TIMEOUT_S (PMT_SANITIZED ? 1.0 : 0.3)
#define PROMPT_S (PMT_SANITIZED ? 2.0 : 1.0)
/* How long orphaned workers may take to disappear. */
#define ORPHAN_S 2.0

typedef struct snap {
    int children, zombies, fds, threads;
} snap;

static inline snap snap_take(void)
{
    snap s = {0, 0, 0, 0}; /* (zombies: unset without /proc) */
    s.children = list_children(getpid(), NULL, 0, &s.zombies);
    s.fds = count_fds();
    s.threads = pmt_thread_count();
    return s;
}

static inline void print_children(void)
{
    pid_t pids[64];
    int n = list_children(getpid(), pids, 64, NULL);
    for (int i = 0; i < n && i < 64; i++)
        fprintf(stderr, "    child %d state %c\n", (int)pids[i], proc_state(pids[i], NULL));
}

/* Right after a call returned: no child (live or zombie), no fd more, and
 * (unless a pool keeps its threads) the threads back to what they were. */
static inline void snap_check(const snap *base, int threads_too)
{
    snap now = snap_take();
    if (base->children >= 0 && (now.children != base->children || now.zombies != base->zombies))
        print_children();
    if (base->children >= 0) {
        CHECK_EQ_INT(now.children, base->children);
        CHECK_EQ_INT(now.zombies, base->zombies);
    }
    if (base->fds >= 0)
        CHECK_EQ_INT(now.fds, base->fds);
    if (threads_too)
        CHECK_NO_THREAD_LEAK(base->threads);
}

/* ------------------------------------------------------- the watchdog */

static const char *proc_name = "test_proc"; /* (proc_init) */
static const char *volatile watchdog_case = "";

static inline void on_watchdog(int sig)
{
    (void)sig;
    const char *c = watchdog_case, *p = proc_name;
    static const char a[] = ": watchdog: still running: ";
    if (write(2, p, strlen(p)) < 0 || write(2, a, sizeof a - 1) < 0 ||
        write(2, c, strlen(c)) < 0 || write(2, "\n", 1) < 0)
        _exit(1);
    _exit(1); /* our workers die with us (PR_SET_PDEATHSIG) */
}

/* Arm the watchdog for one case (or one map): `seconds` of wall time. */
static inline void watchdog(const char *what, unsigned seconds)
{
    watchdog_case = what;
    alarm(PMT_SANITIZED ? seconds * 3 : seconds); /* (ctest's TIMEOUT is 300 s) */
}

/* ------------------------------------------------------- configurations */

typedef struct pcfg {
    int procs, threads;
} pcfg;

static const pcfg cfgs[] = {{1, 1}, {1, 2}, {2, 1}, {2, 2}, {3, 1}, {3, 2}};
#define NCFGS (sizeof cfgs / sizeof cfgs[0])

static int skipped_cfgs;

/* 2 threads per worker process cannot run under TSan or ASan (see above). */
static inline int cfg_runs(const pcfg *c)
{
    if (!PMT_WORKER_THREADS_OK && c->threads > 1) {
        skipped_cfgs++;
        return 0;
    }
    return 1;
}

static inline pm_opts popts(const pcfg *c)
{
    pm_opts o;
    memset(&o, 0, sizeof o);
    o.backend = PM_PROCESSES;
    o.procs = c->procs;
    o.threads = c->threads;
    return o;
}

/* The largest configuration this build can run. */
static inline pcfg big_cfg(void)
{
    return (pcfg){2, PMT_WORKER_THREADS_OK ? 2 : 1};
}

/* Shared memory the workers can count in (their other writes stay theirs). */
static inline void *shared_new(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    return p;
}

/* ------------------------------------------------------- a test's main */

/* First thing in main: names the test and installs the watchdog's handler. */
static inline void proc_init(const char *name)
{
    proc_name = name;
    test_pid = getpid();
    signal(SIGALRM, on_watchdog);
    if (count_fds() < 0 || list_children(getpid(), NULL, 0, NULL) < 0)
        fprintf(stderr, "note: no /proc here: children and fd counts are not checked\n");
}

/* One case (a call) under the watchdog, `budget` seconds; timed. */
#define RUN(budget, call)                                                    \
    do {                                                                     \
        watchdog(#call, budget);                                             \
        PMT_RUN(call);                                                       \
    } while (0)

/* fn on every configuration this build can run, each one under the
 * watchdog for 60 s; timed. */
static inline void proc_matrix(const char *what, void (*fn)(const pcfg *))
{
    static char name[96]; /* (the watchdog keeps the pointer) */
    for (size_t i = 0; i < NCFGS; i++) {
        if (!cfg_runs(&cfgs[i]))
            continue;
        snprintf(name, sizeof name, "%s(procs %d, threads %d)", what, cfgs[i].procs,
                 cfgs[i].threads);
        watchdog(name, 60);
        double t0 = pmt_now();
        fn(&cfgs[i]);
        printf("  %-32s %7.3f s\n", name, pmt_now() - t0);
        fflush(stdout);
    }
}

/* End of main: disarms the watchdog, names the skipped cases, counts. */
static inline int proc_done(const char *name)
{
    alarm(0);
    if (skipped_cfgs)
        printf("skipped under %s: %d case(s) with 2 threads per worker process (%s)\n",
               PMT_TSAN ? "TSan" : "ASan", skipped_cfgs,
               PMT_TSAN ? "TSan kills a child of a multi-threaded process that starts a thread"
                        : "ASan's allocator is not fork-safe: a child's thread start can hang");
    return pmt_done(name);
}

#endif /* PMT_HAVE_FORK */
#endif
