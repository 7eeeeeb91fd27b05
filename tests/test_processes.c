/*
 * test_processes.c - the processes executor (PM_PROCESSES): crash isolation,
 * per-item timeouts, cleanup, cancellation and signals (issue 4).
 *
 * Items are records {index, value, action}: most compute f(value), some
 * segfault, abort(), exit(3), loop forever (timeout_s), fail with a code, or
 * sleep. Every map runs on procs 1, 2, 3 x threads per process 1, 2 and is
 * compared with a serial loop: crashed items are PM_ECRASH, timed-out ones
 * PM_ETIMEOUT, item errors keep their code, every other output equals the
 * serial result and failed items' outputs keep their sentinel. The same runs
 * through pm_imap (ordered and unordered: each index once, with its code),
 * in PM_RAISE mode (PM_ECRASH / PM_ETIMEOUT with the index), with a crash in
 * every chunk, in == out, no outputs, 8-byte, 100 KB and > 4 MB records
 * (record pointers as aligned as the caller's), on a pool shared by threads
 * whose stacks hold the data. With 2 threads per process, the item running
 * beside a crashing or timed-out one is retried and not marked. After every
 * call the process has as many children (none), zombies, open
 * fds and threads as before (Linux /proc). Cancellation from a thread and
 * from a SIGINT handler (pthread_kill, kill, raise) returns promptly; a test
 * sub-process killed by SIGKILL, or by a Ctrl-C-like SIGINT to its process
 * group, mid-map leaves no worker behind; maps keep completing while other
 * threads of the caller hammer malloc and stdio.
 *
 * Without fork (WASI, Emscripten) PM_PROCESSES must say PM_ENOTSUP cleanly,
 * which is all this program checks there.
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
 * skipped, counted and named at the end), and under ASan the items of the
 * busy-caller case do not malloc in the workers (the caller's threads still
 * do, around the forks).
 */
#define _GNU_SOURCE /* MAP_ANONYMOUS under -std=c11 */
#include "check.h"
#include "conformance.h"

#include <limits.h>

#if defined(__wasi__) || defined(__EMSCRIPTEN__) || !PMT_HAVE_FORK
/* ------------------------------------------------- targets without fork */

static atomic_int calls;

static int fn_count(void *user, const void *in, void *out)
{
    (void)user;
    atomic_fetch_add(&calls, 1);
    *(int *)out = *(const int *)in;
    return 0;
}

static int src_ints(void *src, void *item)
{
    int *k = src;
    if (*k >= 10)
        return 0;
    memcpy(item, k, sizeof *k);
    ++*k;
    return 1;
}

int main(void)
{
    int in[10] = {0}, out[10] = {0}, codes[10];
    for (int i = 0; i < 10; i++)
        codes[i] = INT_MIN;
    CHECK_CTX("PM_PROCESSES pm_map without fork");
    pm_report r;
    CHECK_STATUS(PM_ENOTSUP, pm_map(fn_count, NULL, in, sizeof in[0], out, sizeof out[0], 10,
                                    &(pm_opts){.backend = PM_PROCESSES, .codes = codes},
                                    &r));
    CHECK_STATUS(PM_ENOTSUP, r.status);
    CHECK_EQ_SIZE(r.done, 0);
    CHECK_EQ_INT(atomic_load(&calls), 0);
    for (int i = 0; i < 10; i++)
        CHECK_EQ_INT(codes[i], INT_MIN);
    CHECK_STATUS(PM_ENOTSUP, pm_map(fn_count, NULL, in, sizeof in[0], out, sizeof out[0], 10,
                                    &(pm_opts){.backend = PM_PROCESSES, .procs = 2,
                                               .threads = 2, .timeout_s = 1},
                                    NULL));

    CHECK_CTX("PM_PROCESSES pm_imap without fork");
    int k = 0;
    pm_iter *it = pm_imap(fn_count, NULL, src_ints, &k, sizeof(int), sizeof(int),
                          &(pm_opts){.backend = PM_PROCESSES});
    CHECK(it != NULL);
    CHECK_STATUS(PM_ENOTSUP, pm_iter_next(it, out, NULL, NULL));
    CHECK_STATUS(PM_ENOTSUP, pm_iter_next(it, out, NULL, NULL));
    CHECK_STATUS(PM_ENOTSUP, pm_iter_free(it));
    CHECK_EQ_INT(atomic_load(&calls), 0);

    CHECK_CTX("PM_PROCESSES pool without fork");
    CHECK(pm_pool_new(&(pm_opts){.backend = PM_PROCESSES}) == NULL);
    return pmt_done("test_processes (no fork: PM_ENOTSUP checked)");
}

#else /* ------------------------------------------------- targets with fork */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* PMT_TSAN, PMT_ASAN: check.h */
/* Worker processes may start threads (see the top). */
#define PMT_WORKER_THREADS_OK (!PMT_TSAN && !PMT_ASAN)

/* LeakSanitizer checks for leaks at exit(), also in a worker whose item
 * calls exit(3): it would report the parent's memory (threads that do not
 * exist in the child hold the pointers) and exit 23. Check this process
 * only; workers and the test's sub-processes are not. */
static pid_t test_pid;
#if PMT_ASAN
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
    return getpid() != test_pid;
}
#endif

/* TSan sleeps 1 s in exit() by default (atexit_sleep_ms), also in a worker
 * whose item calls exit(3): longer than the item timeout. */
#if PMT_TSAN
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "atexit_sleep_ms=0";
}
#endif

#define SENT_CODE INT_MIN
#define SENT_OUT 0x5E5E5E5E5E5E5E5EULL
#define FAIL_CODE 7
/* Codes of items that got a record pointer less aligned than the caller's
 * arrays give (a multiple of gcd(stride, 16)): the function casts it. */
#define MISALIGNED_IN 95
#define MISALIGNED_OUT 96
/* Per-item timeout, and how soon a canceled call must return. */
#define TIMEOUT_S (PMT_SANITIZED ? 1.0 : 0.3)
#define PROMPT_S (PMT_SANITIZED ? 2.0 : 1.0)
/* How long orphaned workers may take to disappear. */
#define ORPHAN_S 2.0

enum action {
    A_OK, A_SEGV, A_ABORT, A_EXIT3, A_LOOP, A_FAIL, A_SLOW, A_REPORT, A_HAMMER,
    A_LATE_SEGV /* sleeps slow_s / 3, then segfaults */
};

typedef struct rec {
    uint64_t i;  /* position (streams copy records, so it travels with them) */
    uint64_t x;  /* the value mapped */
    int action;
    int pad;
} rec;

typedef struct ctx {
    double slow_s;        /* A_SLOW, A_REPORT: sleep this long */
    int report_fd;        /* A_REPORT: write getpid() here first */
    atomic_long *calls;   /* MAP_SHARED: items started in any process, or NULL */
    atomic_int *hits;     /* MAP_SHARED: starts per index, or NULL */
} ctx;

static uint64_t f(uint64_t x) { return pmt_mix(x ^ 0x9E3779B97F4A7C15ULL); }

static int expected_code(int action)
{
    switch (action) {
    case A_SEGV: case A_ABORT: case A_EXIT3: case A_LATE_SEGV: return PM_ECRASH;
    case A_LOOP: return PM_ETIMEOUT;
    case A_FAIL: return FAIL_CODE;
    default: return 0;
    }
}

static const char *action_name(int a)
{
    static const char *names[] = {"ok",   "segv", "abort",  "exit3",  "loop",
                                  "fail", "slow", "report", "hammer", "late segv"};
    return a >= 0 && a <= A_LATE_SEGV ? names[a] : "?";
}

/* A real segfault. Sanitizers catch SIGSEGV to print a report and exit(1):
 * restore the default action so the worker dies of the signal, as it would
 * without them. */
static void segfault(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGSEGV, &sa, NULL);
    volatile int *p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == (volatile int *)MAP_FAILED)
        raise(SIGSEGV);
    *p = 1;
    raise(SIGSEGV);
}

/* malloc/free of assorted sizes and stdio formatting, in the worker, while
 * the parent's other threads do the same: returns 0 when all was well. */
static int hammer_item(uint64_t x)
{
    char line[64];
    size_t sizes[] = {16, 200, 4000, 70000, 300000};
    for (int k = 0; k < 5 && !PMT_ASAN; k++) { /* (ASan: see the top) */
        unsigned char *p = malloc(sizes[k]);
        if (!p)
            return 90;
        memset(p, (int)(x & 0xff), sizes[k]);
        int bad = p[sizes[k] - 1] != (unsigned char)(x & 0xff);
        free(p);
        if (bad)
            return 91;
    }
    snprintf(line, sizeof line, "%llu %.3f", (unsigned long long)x, (double)x / 3);
    return strtoull(line, NULL, 10) == x ? 0 : 92;
}

static int do_action(const ctx *c, const rec *r)
{
    switch (r->action) {
    case A_SEGV: segfault(); break;
    case A_ABORT: abort();
    case A_EXIT3: exit(3);
    case A_LOOP: {
        volatile unsigned long spin = 0;
        for (;;)
            spin++;
    }
    case A_FAIL: return FAIL_CODE;
    case A_SLOW: pmt_sleep(c->slow_s); break;
    case A_REPORT: {
        pid_t me = getpid();
        if (write(c->report_fd, &me, sizeof me) != (ssize_t)sizeof me)
            return 93;
        pmt_sleep(c->slow_s);
        break;
    }
    case A_HAMMER: return hammer_item(r->x);
    case A_LATE_SEGV:
        pmt_sleep(c->slow_s / 3);
        segfault();
        break;
    default: break;
    }
    return 0;
}

static int aligned(const void *p, size_t stride)
{
    size_t a = 16;
    while (stride % a)
        a /= 2;
    return (uintptr_t)p % a == 0;
}

/* Whether the record pointers are fit to be cast: 0 or a MISALIGNED code. */
static int check_align(const void *in, size_t in_stride, const void *out, size_t out_stride)
{
    if (!aligned(in, in_stride))
        return MISALIGNED_IN;
    if (out && !aligned(out, out_stride))
        return MISALIGNED_OUT;
    return 0;
}

/* The item function: out = f(x), unless the action says otherwise. */
static int item_fn(void *user, const void *in, void *out)
{
    const ctx *c = user;
    int bad = check_align(in, sizeof(rec), out, sizeof(uint64_t));
    if (bad)
        return bad;
    const rec *r = in;
    if (c && c->calls)
        atomic_fetch_add(c->calls, 1);
    if (c && c->hits)
        atomic_fetch_add(&c->hits[r->i], 1);
    int code = do_action(c, r);
    if (code)
        return code;
    if (out)
        *(uint64_t *)out = f(r->x);
    return 0;
}

/* In place (in == out, records both ways): reads the whole record first. */
static int inplace_fn(void *user, const void *in, void *out)
{
    int bad = check_align(in, sizeof(rec), out, sizeof(rec));
    if (bad)
        return bad;
    rec r = *(const rec *)in;
    int code = do_action(user, &r);
    if (code)
        return code;
    r.x = f(r.x);
    *(rec *)out = r;
    return 0;
}

/* Big records: a rec header, then payload bytes; out = header + payload ^ x. */
static size_t big_stride;

static int big_fn(void *user, const void *in, void *out)
{
    int bad = check_align(in, big_stride, out, big_stride);
    if (bad)
        return bad;
    const rec *r = in;
    int code = do_action(user, r);
    if (code)
        return code;
    const unsigned char *ip = in;
    unsigned char *op = out;
    memcpy(op, ip, sizeof *r);
    for (size_t j = sizeof *r; j < big_stride; j++)
        op[j] = ip[j] ^ (unsigned char)r->x;
    return 0;
}

/* ------------------------------------------------------------ plans */

typedef struct plan {
    size_t at;
    int action;
} plan;

static rec *make_recs(size_t n, const plan *p, size_t np)
{
    rec *r = calloc(n ? n : 1, sizeof *r);
    CHECK(r != NULL);
    for (size_t i = 0; i < n; i++) {
        r[i].i = i;
        r[i].x = i * 7919 + 13;
    }
    for (size_t k = 0; k < np; k++)
        if (p[k].at < n)
            r[p[k].at].action = p[k].action;
    return r;
}

/* The plan most cases use: every kind of failure, including the last item. */
static const plan mixed_plan[] = {
    {3, A_SEGV},  {10, A_ABORT}, {17, A_EXIT3}, {24, A_LOOP},
    {31, A_FAIL}, {45, A_SEGV},  {63, A_ABORT},
};
#define MIXED_N 64
#define MIXED_NP (sizeof mixed_plan / sizeof mixed_plan[0])

static size_t count_failures(const rec *r, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += expected_code(r[i].action) != 0;
    return k;
}

static const char *code_hint(int code)
{
    return code == MISALIGNED_IN    ? " = the input record pointer was misaligned"
         : code == MISALIGNED_OUT   ? " = the output record pointer was misaligned"
                                    : "";
}

/* PM_RETURN results against a serial loop: codes, outputs, sentinels. */
static void check_results(const rec *r, size_t n, const uint64_t *out, const int *codes)
{
    for (size_t i = 0; i < n; i++) {
        int want = expected_code(r[i].action);
        uint64_t want_out = want ? SENT_OUT : f(r[i].x); /* the serial loop */
        if (codes[i] != want || (out && out[i] != want_out)) {
            CHECK_CTX_ADD("; item %zu (%s) code %d%s", i, action_name(r[i].action), codes[i],
                          code_hint(codes[i]));
            CHECK_STATUS(want, codes[i]);
            if (out)
                CHECK_EQ_SIZE(out[i], want_out);
        }
    }
}

/* PM_RAISE / canceled results: items either ran (code 0 and the serial
 * output, or the expected failure) or were never run (sentinels). */
static size_t check_partial(const rec *r, size_t n, const uint64_t *out, const int *codes)
{
    size_t ran = 0;
    for (size_t i = 0; i < n; i++) {
        int want = expected_code(r[i].action);
        int ok = codes[i] == SENT_CODE ? out[i] == SENT_OUT
               : codes[i] == 0         ? want == 0 && out[i] == f(r[i].x)
                                       : codes[i] == want && out[i] == SENT_OUT;
        if (!ok) {
            CHECK_CTX_ADD("; item %zu (%s) code %d out %llx", i, action_name(r[i].action),
                          codes[i], (unsigned long long)out[i]);
            CHECK(ok);
        }
        ran += codes[i] != SENT_CODE;
    }
    return ran;
}

static uint64_t *make_out(size_t n)
{
    uint64_t *o = malloc((n ? n : 1) * sizeof *o);
    CHECK(o != NULL);
    for (size_t i = 0; i < n; i++)
        o[i] = SENT_OUT;
    return o;
}

static int *make_codes(size_t n)
{
    int *c = malloc((n ? n : 1) * sizeof *c);
    CHECK(c != NULL);
    for (size_t i = 0; i < n; i++)
        c[i] = SENT_CODE;
    return c;
}

/* --------------------------------------------------- leftovers (/proc) */

/* State letter and parent of a process, from /proc/PID/stat; 0 when gone. */
static char proc_state(pid_t pid, pid_t *ppid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t len = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (len <= 0)
        return 0;
    buf[len] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold anything */
    char st = 0;
    int pp = 0;
    if (!p || sscanf(p + 1, " %c %d", &st, &pp) != 2)
        return 0;
    if (ppid)
        *ppid = (pid_t)pp;
    return st;
}

/* Children of `parent` (pids to `pids`, up to max), -1 without /proc. */
static int list_children(pid_t parent, pid_t *pids, int max, int *zombies)
{
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    int n = 0;
    if (zombies)
        *zombies = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        pid_t pp = 0;
        char st = proc_state((pid_t)pid, &pp);
        if (!st || pp != parent)
            continue;
        if (pids && n < max)
            pids[n] = (pid_t)pid;
        n++;
        if (zombies && st == 'Z')
            ++*zombies;
    }
    closedir(d);
    return n;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

typedef struct snap {
    int children, zombies, fds, threads;
} snap;

static snap snap_take(void)
{
    snap s;
    s.children = list_children(getpid(), NULL, 0, &s.zombies);
    s.fds = count_fds();
    s.threads = pmt_thread_count();
    return s;
}

static void print_children(void)
{
    pid_t pids[64];
    int n = list_children(getpid(), pids, 64, NULL);
    for (int i = 0; i < n && i < 64; i++)
        fprintf(stderr, "    child %d state %c\n", (int)pids[i], proc_state(pids[i], NULL));
}

/* Right after a call returned: no child (live or zombie), no fd more, and
 * (unless a pool keeps its threads) the threads back to what they were. */
static void snap_check(const snap *base, int threads_too)
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

static const char *volatile watchdog_case = "";

static void on_watchdog(int sig)
{
    (void)sig;
    const char *c = watchdog_case;
    static const char a[] = "test_processes: watchdog: still running: ";
    if (write(2, a, sizeof a - 1) < 0 || write(2, c, strlen(c)) < 0 || write(2, "\n", 1) < 0)
        _exit(1);
    _exit(1); /* our workers die with us (PR_SET_PDEATHSIG) */
}

/* Arm the watchdog for one case (or one map): `seconds` of wall time. */
static void watchdog(const char *what, unsigned seconds)
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

/* 2 threads per worker process cannot run under TSan or ASan (see the top). */
static int cfg_runs(const pcfg *c)
{
    if (!PMT_WORKER_THREADS_OK && c->threads > 1) {
        skipped_cfgs++;
        return 0;
    }
    return 1;
}

static pm_opts popts(const pcfg *c)
{
    pm_opts o;
    memset(&o, 0, sizeof o);
    o.backend = PM_PROCESSES;
    o.procs = c->procs;
    o.threads = c->threads;
    return o;
}

/* The largest configuration this build can run. */
static pcfg big_cfg(void)
{
    return (pcfg){2, PMT_WORKER_THREADS_OK ? 2 : 1};
}

/* ------------------------------------------------------------ pm_map */

/* Every kind of failure in one map, PM_RETURN, chunksize auto and 5. */
static void test_mixed(const pcfg *c, long chunksize)
{
    CHECK_CTX("mixed map procs %d threads %d chunksize %ld", c->procs, c->threads, chunksize);
    snap base = snap_take();
    rec *r = make_recs(MIXED_N, mixed_plan, MIXED_NP);
    uint64_t *out = make_out(MIXED_N);
    int *codes = make_codes(MIXED_N);
    ctx cx = {0};
    pm_opts o = popts(c);
    o.on_error = PM_RETURN;
    o.codes = codes;
    o.timeout_s = TIMEOUT_S;
    o.chunksize = chunksize;
    pm_report rep;
    int rc = pm_map(item_fn, &cx, r, sizeof *r, out, sizeof *out, MIXED_N, &o, &rep);
    CHECK_STATUS(PM_OK, rc);
    CHECK_STATUS(PM_OK, rep.status);
    check_results(r, MIXED_N, out, codes);
    CHECK_EQ_SIZE(rep.done, MIXED_N);
    CHECK_EQ_SIZE(rep.failed, count_failures(r, MIXED_N));
    CHECK_EQ_SIZE(rep.first_error_index, 3);
    CHECK_STATUS(PM_ECRASH, rep.first_error_code);
    CHECK_EQ_INT(rep.signal, SIGSEGV); /* that of the lowest crashed index */
    snap_check(&base, 1);
    free(r);
    free(out);
    free(codes);
}

/* One failing item per map: the report names its signal. */
static void test_signals(const pcfg *c)
{
    static const struct {
        int action, code, signal;
    } cases[] = {
        {A_SEGV, PM_ECRASH, SIGSEGV},
        {A_ABORT, PM_ECRASH, SIGABRT},
        {A_EXIT3, PM_ECRASH, 0},
        {A_LOOP, PM_ETIMEOUT, SIGKILL}, /* we killed it; 0 accepted too */
        {A_FAIL, FAIL_CODE, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        CHECK_CTX("one %s item, procs %d threads %d", action_name(cases[k].action), c->procs,
                  c->threads);
        snap base = snap_take();
        const size_t n = 24;
        plan p = {11, cases[k].action};
        rec *r = make_recs(n, &p, 1);
        uint64_t *out = make_out(n);
        int *codes = make_codes(n);
        ctx cx = {0};
        pm_opts o = popts(c);
        o.on_error = PM_RETURN;
        o.codes = codes;
        o.timeout_s = TIMEOUT_S;
        pm_report rep;
        CHECK_STATUS(PM_OK, pm_map(item_fn, &cx, r, sizeof *r, out, sizeof *out, n, &o, &rep));
        check_results(r, n, out, codes);
        CHECK_EQ_SIZE(rep.done, n);
        CHECK_EQ_SIZE(rep.failed, 1);
        CHECK_EQ_SIZE(rep.first_error_index, 11);
        CHECK_STATUS(cases[k].code, rep.first_error_code);
        if (!(cases[k].action == A_LOOP && rep.signal == 0))
            CHECK_EQ_INT(rep.signal, cases[k].signal);
        snap_check(&base, 1);
        free(r);
        free(out);
        free(codes);
    }
}

/* A crash in every chunk: 1000 items, chunks of 100, one crash in each. */
static void test_every_chunk(const pcfg *c)
{
    CHECK_CTX("a crash in every chunk, procs %d threads %d", c->procs, c->threads);
    snap base = snap_take();
    const size_t n = 1000;
    plan p[10];
    static const int kinds[] = {A_SEGV, A_ABORT, A_EXIT3};
    for (size_t k = 0; k < 10; k++)
        p[k] = (plan){k * 100 + (k * 37) % 100, kinds[k % 3]};
    rec *r = make_recs(n, p, 10);
    uint64_t *out = make_out(n);
    int *codes = make_codes(n);
    ctx cx = {0};
    pm_opts o = popts(c);
    o.on_error = PM_RETURN;
    o.codes = codes;
    o.chunksize = 100;
    pm_report rep;
    CHECK_STATUS(PM_OK, pm_map(item_fn, &cx, r, sizeof *r, out, sizeof *out, n, &o, &rep));
    check_results(r, n, out, codes);
    CHECK_EQ_SIZE(rep.done, n);
    CHECK_EQ_SIZE(rep.failed, 10);
    CHECK_EQ_SIZE(rep.first_error_index, 0);
    CHECK_EQ_INT(rep.signal, SIGSEGV);
    snap_check(&base, 1);
    free(r);
    free(out);
    free(codes);
}

/* PM_RAISE: the map stops with PM_ECRASH (PM_ETIMEOUT) and the index. */
static void test_raise(const pcfg *c, int action, int want, long chunksize)
{
    CHECK_CTX("raise %s procs %d threads %d chunksize %ld", action_name(action), c->procs,
              c->threads, chunksize);
    snap base = snap_take();
    const size_t n = 400, at = 150;
    plan p = {at, action};
    rec *r = make_recs(n, &p, 1);
    uint64_t *out = make_out(n);
    int *codes = make_codes(n);
    ctx cx = {0};
    pm_opts o = popts(c);
    o.codes = codes;
    o.timeout_s = TIMEOUT_S;
    o.chunksize = chunksize;
    pm_report rep;
    int rc = pm_map(item_fn, &cx, r, sizeof *r, out, sizeof *out, n, &o, &rep);
    CHECK_STATUS(want, rc);
    CHECK_STATUS(want, rep.status);
    CHECK_EQ_SIZE(rep.first_error_index, at);
    CHECK_STATUS(want, rep.first_error_code);
    CHECK_EQ_SIZE(rep.failed, 1);
    CHECK_STATUS(want, codes[at]);
    if (action == A_SEGV)
        CHECK_EQ_INT(rep.signal, SIGSEGV);
    size_t ran = check_partial(r, n, out, codes);
    CHECK_EQ_SIZE(ran, rep.done);
    snap_check(&base, 1);
    free(r);
    free(out);
    free(codes);
}

/* Shared memory the workers can count in (their other writes stay theirs). */
static void *shared_new(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    return p;
}

/* 2 threads per process: an item that crashes (or times out) takes down the
 * item its sibling thread is running; that one is retried, and only the
 * guilty item is marked. Per-index start counts (shared memory) show who ran
 * again: the victim and the crashed item (retried alone), nobody else. */
static void test_siblings(const pcfg *c)
{
    const size_t n = 6;
    atomic_int *hits = shared_new(n * sizeof *hits);
    for (int timeout = 0; timeout < 2; timeout++) {
        CHECK_CTX("sibling of a %s item, procs 1 threads %d", timeout ? "timed-out" : "crashing",
                  c->threads);
        snap base = snap_take();
        for (size_t i = 0; i < n; i++)
            atomic_init(&hits[i], 0);
        rec *r = make_recs(n, NULL, 0);
        /* Crash: items of 0.3 s, one of which crashes after 0.1 s: the
         * other thread is inside an item then (1.5 s of work in all).
         * Timeout: one item loops; the other thread runs items of 0.4 x
         * timeout, one of which is running when the process gets killed. */
        for (size_t i = 0; i < n; i++)
            r[i].action = A_SLOW;
        r[timeout ? 0 : 1].action = timeout ? A_LOOP : A_LATE_SEGV;
        uint64_t *out = make_out(n);
        int *codes = make_codes(n);
        ctx cx = {.slow_s = timeout ? 0.4 * TIMEOUT_S : 0.3 * PMT_SCALE, .hits = hits};
        pcfg one = {1, c->threads};
        pm_opts o = popts(&one);
        o.on_error = PM_RETURN;
        o.codes = codes;
        o.chunksize = 1;
        if (timeout)
            o.timeout_s = TIMEOUT_S;
        pm_report rep;
        CHECK_STATUS(PM_OK, pm_map(item_fn, &cx, r, sizeof *r, out, sizeof *out, n, &o, &rep));
        check_results(r, n, out, codes);
        CHECK_EQ_SIZE(rep.failed, 1);
        int again = 0;
        for (size_t i = 0; i < n; i++) {
            int h = atomic_load(&hits[i]);
            CHECK_CTX_ADD("; item %zu (%s) started %d times", i, action_name(r[i].action), h);
            if (r[i].action == A_LATE_SEGV)
                CHECK_EQ_INT(h, 2); /* and alone the second time */
            else if (r[i].action == A_LOOP)
                CHECK_EQ_INT(h, 1); /* a timeout is not retried */
            else {
                CHECK_OP_INT(h, <=, 2);
                again += h - 1;
            }
            CHECK_CTX("sibling of a %s item, procs 1 threads %d",
                      timeout ? "timed-out" : "crashing", c->threads);
        }
        if (timeout)
            CHECK_OP_INT(again, <=, 1); /* (0 if the kill fell between two items) */
        else
            CHECK_EQ_INT(again, 1); /* the other thread was inside an item */
        snap_check(&base, 1);
        free(r);
        free(out);
        free(codes);
    }
    munmap(hits, n * sizeof *hits);
}

/* ------------------------------------------------------------ pm_imap */

typedef struct rec_src {
    const rec *r;
    size_t n, next;
    size_t stride; /* 0: sizeof(rec) */
} rec_src;

static int src_recs(void *src, void *item)
{
    rec_src *s = src;
    if (s->next >= s->n)
        return 0;
    size_t st = s->stride ? s->stride : sizeof(rec);
    memcpy(item, (const unsigned char *)s->r + s->next * st, st);
    s->next++;
    return 1;
}

/* The mixed plan through an iterator: each index once, with its code. */
static void test_imap_mixed(const pcfg *c, int unordered)
{
    CHECK_CTX("imap mixed procs %d threads %d unordered %d", c->procs, c->threads, unordered);
    snap base = snap_take();
    rec *r = make_recs(MIXED_N, mixed_plan, MIXED_NP);
    rec_src s = {r, MIXED_N, 0, 0};
    ctx cx = {0};
    pm_opts o = popts(c);
    o.on_error = PM_RETURN;
    o.unordered = unordered;
    o.timeout_s = TIMEOUT_S;
    pm_iter *it = pm_imap(item_fn, &cx, src_recs, &s, sizeof(rec), sizeof(uint64_t), &o);
    CHECK(it != NULL);
    unsigned char seen[MIXED_N] = {0};
    size_t got = 0, idx;
    uint64_t y;
    int code, rc;
    while ((rc = pm_iter_next(it, &y, &idx, &code)) == 1) {
        CHECK_OP_SIZE(idx, <, MIXED_N);
        CHECK_CTX_ADD("; index %zu code %d%s", idx, code, code_hint(code));
        if (!unordered)
            CHECK_EQ_SIZE(idx, got);
        CHECK_EQ_INT(seen[idx], 0);
        seen[idx] = 1;
        CHECK_STATUS(expected_code(r[idx].action), code);
        if (code == 0)
            CHECK_EQ_SIZE(y, f(r[idx].x));
        CHECK_CTX("imap mixed procs %d threads %d unordered %d", c->procs, c->threads,
                  unordered);
        got++;
    }
    CHECK_STATUS(0, rc);
    CHECK_EQ_SIZE(got, MIXED_N);
    CHECK_STATUS(0, pm_iter_next(it, &y, &idx, &code));
    pm_report rep;
    CHECK_STATUS(PM_OK, pm_iter_report(it, &rep));
    CHECK_EQ_SIZE(rep.done, MIXED_N);
    CHECK_EQ_SIZE(rep.failed, count_failures(r, MIXED_N));
    CHECK_EQ_SIZE(rep.first_error_index, 3);
    CHECK_STATUS(PM_ECRASH, rep.first_error_code);
    CHECK_EQ_INT(rep.signal, SIGSEGV);
    CHECK_STATUS(PM_OK, pm_iter_free(it));
    snap_check(&base, 1);
    free(r);
}

/* Run recs through an iterator into out[index] / codes[index] (each index
 * once; in order unless unordered). Returns how the iterator ended. */
static int imap_collect(const rec *r, size_t n, pm_opts o, uint64_t *out, int *codes)
{
    rec_src s = {r, n, 0, 0};
    ctx cx = {0};
    pm_iter *it = pm_imap(item_fn, &cx, src_recs, &s, sizeof *r, sizeof *out, &o);
    CHECK(it != NULL);
    size_t got = 0, idx;
    uint64_t y;
    int code, rc;
    while ((rc = pm_iter_next(it, &y, &idx, &code)) == 1) {
        CHECK_OP_SIZE(idx, <, n);
        if (!o.unordered)
            CHECK_EQ_SIZE(idx, got);
        CHECK_EQ_INT(codes[idx], SENT_CODE); /* once */
        codes[idx] = code;
        if (!code)
            out[idx] = y;
        got++;
    }
    CHECK_EQ_SIZE(got, n);
    int rc_free = pm_iter_free(it);
    CHECK_STATUS(rc < 0 ? rc : PM_OK, rc_free);
    return rc;
}

/* A crash in every chunk of a stream. */
static void test_imap_every_chunk(const pcfg *c, int unordered)
{
    CHECK_CTX("imap, a crash in every chunk, procs %d threads %d unordered %d", c->procs,
              c->threads, unordered);
    snap base = snap_take();
    const size_t n = 1000;
    plan p[10];
    static const int kinds[] = {A_EXIT3, A_SEGV, A_ABORT};
    for (size_t k = 0; k < 10; k++)
        p[k] = (plan){k * 100 + (k * 53) % 100, kinds[k % 3]};
    rec *r = make_recs(n, p, 10);
    uint64_t *out = make_out(n);
    int *codes = make_codes(n);
    pm_opts o = popts(c);
    o.on_error = PM_RETURN;
    o.chunksize = 100;
    o.unordered = unordered;
    CHECK_STATUS(0, imap_collect(r, n, o, out, codes));
    check_results(r, n, out, codes);
    snap_check(&base, 1);
    free(r);
    free(out);
    free(codes);
}

/* PM_RAISE through an iterator: PM_ECRASH with the failing index. */
static void test_imap_raise(const pcfg *c, int unordered)
{
    CHECK_CTX("imap raise procs %d threads %d unordered %d", c->procs, c->threads, unordered);
    snap base = snap_take();
    const size_t n = 400, at = 150;
    plan p = {at, A_SEGV};
    rec *r = make_recs(n, &p, 1);
    rec_src s = {r, n, 0, 0};
    ctx cx = {0};
    pm_opts o = popts(c);
    o.unordered = unordered;
    pm_iter *it = pm_imap(item_fn, &cx, src_recs, &s, sizeof(rec), sizeof(uint64_t), &o);
    CHECK(it != NULL);
    unsigned char *seen = calloc(n, 1);
    CHECK(seen != NULL);
    size_t got = 0, idx = SIZE_MAX;
    uint64_t y;
    int code = SENT_CODE, rc;
    while ((rc = pm_iter_next(it, &y, &idx, &code)) == 1) {
        CHECK_OP_SIZE(idx, <, n);
        CHECK_EQ_INT(seen[idx], 0);
        seen[idx] = 1;
        if (!unordered) {
            CHECK_EQ_SIZE(idx, got);
            CHECK_OP_SIZE(idx, <, at);
        }
        CHECK_STATUS(0, code);
        CHECK_EQ_SIZE(y, f(r[idx].x));
        got++;
        idx = SIZE_MAX;
        code = SENT_CODE;
    }
    CHECK_STATUS(PM_ECRASH, rc);
    CHECK_EQ_SIZE(idx, at);
    CHECK_STATUS(PM_ECRASH, code);
    if (!unordered) /* "an error at item k comes after exactly the k results before it" */
        CHECK_EQ_SIZE(got, at);
    CHECK_STATUS(PM_ECRASH, pm_iter_next(it, &y, NULL, NULL));
    pm_report rep;
    CHECK_STATUS(PM_OK, pm_iter_report(it, &rep));
    CHECK_STATUS(PM_ECRASH, rep.status);
    CHECK_EQ_SIZE(rep.first_error_index, at);
    CHECK_STATUS(PM_ECRASH, rep.first_error_code);
    CHECK_EQ_INT(rep.signal, SIGSEGV);
    CHECK_STATUS(PM_ECRASH, pm_iter_free(it));
    snap_check(&base, 1);
    free(seen);
    free(r);
}

/* ------------------------------------------------ in == out, no outputs */

static void test_inplace(const pcfg *c)
{
    CHECK_CTX("in == out procs %d threads %d", c->procs, c->threads);
    snap base = snap_take();
    const size_t n = 200;
    plan p[] = {{50, A_SEGV}, {120, A_FAIL}, {199, A_EXIT3}};
    rec *r = make_recs(n, p, 3), *orig = make_recs(n, p, 3);
    int *codes = make_codes(n);
    pm_opts o = popts(c);
    o.on_error = PM_RETURN;
    o.codes = codes;
    ctx cx = {0};
    pm_report rep;
    CHECK_STATUS(PM_OK, pm_map(inplace_fn, &cx, r, sizeof *r, r, sizeof *r, n, &o, &rep));
    for (size_t i = 0; i < n; i++) {
        int want = expected_code(orig[i].action);
        CHECK_CTX("in == out procs %d threads %d; item %zu code %d%s", c->procs, c->threads, i,
                  codes[i], code_hint(codes[i]));
        CHECK_STATUS(want, codes[i]);
        CHECK_EQ_SIZE(r[i].i, i);
        CHECK_EQ_SIZE(r[i].x, want ? orig[i].x : f(orig[i].x)); /* failed: untouched */
    }
    CHECK_CTX("in == out procs %d threads %d", c->procs, c->threads);
    CHECK_EQ_SIZE(rep.done, n);
    CHECK_EQ_SIZE(rep.failed, 3);
    snap_check(&base, 1);
    free(r);
    free(orig);
    free(codes);
}

static void test_no_outputs(const pcfg *c)
{
    CHECK_CTX("out NULL procs %d threads %d", c->procs, c->threads);
    snap base = snap_take();
    /* Side effects of workers are invisible to the parent, except in shared
     * memory: count the calls there. */
    atomic_long *calls = shared_new(sizeof *calls);
    atomic_init(calls, 0);
    const size_t n = 300;
    plan p = {77, A_FAIL};
    rec *r = make_recs(n, &p, 1);
    int *codes = make_codes(n);
    ctx cx = {.calls = calls};
    pm_opts o = popts(c);
    o.on_error = PM_RETURN;
    o.codes = codes;
    pm_report rep;
    CHECK_STATUS(PM_OK, pm_map(item_fn, &cx, r, sizeof *r, NULL, 0, n, &o, &rep));
    check_results(r, n, NULL, codes);
    CHECK_EQ_SIZE(rep.done, n);
    CHECK_EQ_SIZE(rep.failed, 1);
    CHECK_EQ_INT(atomic_load(calls), (long)n);

    /* The same through an iterator with out_stride 0. */
    atomic_store(calls, 0);
    rec_src s = {r, n, 0, 0};
    o.codes = NULL;
    pm_iter *it = pm_imap(item_fn, &cx, src_recs, &s, sizeof *r, 0, &o);
    CHECK(it != NULL);
    size_t got = 0, idx;
    int code, rc;
    while ((rc = pm_iter_next(it, NULL, &idx, &code)) == 1) {
        CHECK_STATUS(expected_code(r[idx].action), code);
        got++;
    }
    CHECK_STATUS(0, rc);
    CHECK_EQ_SIZE(got, n);
    CHECK_STATUS(PM_OK, pm_iter_free(it));
    CHECK_EQ_INT(atomic_load(calls), (long)n);
    munmap(calls, sizeof *calls);
    snap_check(&base, 1);
    free(r);
    free(codes);
}

/* ------------------------------------------------------- big records */

static unsigned char *make_big(size_t n, size_t stride, const plan *p, size_t np)
{
    unsigned char *b = malloc(n * stride);
    CHECK(b != NULL);
    rec *hdr = make_recs(n, p, np);
    for (size_t i = 0; i < n; i++) {
        unsigned char *rp = b + i * stride;
        memcpy(rp, &hdr[i], sizeof hdr[i]);
        for (size_t j = sizeof(rec); j < stride; j++)
            rp[j] = (unsigned char)(j * 31 + i);
    }
    free(hdr);
    return b;
}

/* One big output against the serial computation (or the sentinel fill). */
static void check_big(const unsigned char *in, const unsigned char *out, size_t i, int code)
{
    const rec *h = (const rec *)in;
    CHECK_CTX_ADD("; big item %zu code %d%s", i, code, code_hint(code));
    CHECK_STATUS(expected_code(h->action), code);
    for (size_t j = 0; j < big_stride; j++) {
        unsigned char want = code ? 0xEE : j < sizeof(rec) ? in[j] : in[j] ^ (unsigned char)h->x;
        if (out[j] != want) {
            CHECK_CTX_ADD(" byte %zu", j);
            CHECK_EQ_INT(out[j], want);
        }
    }
}

static void test_big(size_t stride, size_t n, const plan *p, size_t np)
{
    pcfg c = big_cfg();
    CHECK_CTX("records of %zu bytes x %zu, procs %d threads %d", stride, n, c.procs, c.threads);
    snap base = snap_take();
    big_stride = stride;
    unsigned char *in = make_big(n, stride, p, np), *out = malloc(n * stride);
    int *codes = make_codes(n);
    CHECK(out != NULL);
    memset(out, 0xEE, n * stride);
    pm_opts o = popts(&c);
    o.on_error = PM_RETURN;
    o.codes = codes;
    ctx cx = {0};
    pm_report rep;
    CHECK_STATUS(PM_OK, pm_map(big_fn, &cx, in, stride, out, stride, n, &o, &rep));
    CHECK_EQ_SIZE(rep.done, n);
    for (size_t i = 0; i < n; i++)
        check_big(in + i * stride, out + i * stride, i, codes[i]);
    snap_check(&base, 1);

    /* Through an iterator: the records are copied into the workers' scratch. */
    CHECK_CTX("imap records of %zu bytes x %zu", stride, n);
    rec_src s = {(const rec *)in, n, 0, stride};
    o.codes = NULL; /* (pm_map only) */
    pm_iter *it = pm_imap(big_fn, &cx, src_recs, &s, stride, stride, &o);
    CHECK(it != NULL);
    unsigned char *y = malloc(stride);
    CHECK(y != NULL);
    size_t got = 0, idx;
    int code, rc;
    while ((rc = pm_iter_next(it, y, &idx, &code)) == 1) {
        CHECK_EQ_SIZE(idx, got);
        if (code) /* a failed item's output is unspecified here */
            memset(y, 0xEE, stride);
        check_big(in + idx * stride, y, idx, code);
        got++;
    }
    CHECK_STATUS(0, rc);
    CHECK_EQ_SIZE(got, n);
    CHECK_STATUS(PM_OK, pm_iter_free(it));
    snap_check(&base, 1);
    free(y);
    free(in);
    free(out);
    free(codes);
}

/* Plain 8-byte records (doubles, say): pointers fit for uint64_t. */
static int u64_fn(void *user, const void *in, void *out)
{
    (void)user;
    int bad = check_align(in, 8, out, 8);
    if (bad)
        return bad;
    *(uint64_t *)out = f(*(const uint64_t *)in);
    return 0;
}

static int src_u64(void *src, void *item)
{
    size_t *k = src;
    if (*k >= 5000)
        return 0;
    uint64_t v = *k * 7919 + 13;
    memcpy(item, &v, sizeof v);
    ++*k;
    return 1;
}

static void test_small_records(void)
{
    pcfg c = big_cfg();
    CHECK_CTX("8-byte records, procs %d threads %d", c.procs, c.threads);
    snap base = snap_take();
    const size_t n = 5000;
    uint64_t *in = malloc(n * sizeof *in), *out = make_out(n);
    int *codes = make_codes(n);
    CHECK(in != NULL);
    for (size_t i = 0; i < n; i++)
        in[i] = i * 7919 + 13;
    pm_opts o = popts(&c);
    o.on_error = PM_RETURN;
    o.codes = codes;
    CHECK_STATUS(PM_OK, pm_map(u64_fn, NULL, in, 8, out, 8, n, &o, NULL));
    for (size_t i = 0; i < n; i++)
        if (codes[i] || out[i] != f(in[i])) {
            CHECK_CTX_ADD("; item %zu code %d%s", i, codes[i], code_hint(codes[i]));
            CHECK_STATUS(0, codes[i]);
            CHECK_EQ_SIZE(out[i], f(in[i]));
        }
    CHECK_CTX("imap of 8-byte records, procs %d threads %d", c.procs, c.threads);
    o.codes = NULL;
    size_t k = 0, got = 0, idx;
    pm_iter *it = pm_imap(u64_fn, NULL, src_u64, &k, 8, 8, &o);
    CHECK(it != NULL);
    uint64_t y;
    int code, rc;
    while ((rc = pm_iter_next(it, &y, &idx, &code)) == 1) {
        CHECK_EQ_SIZE(idx, got);
        if (code || y != f(idx * 7919 + 13)) {
            CHECK_CTX_ADD("; index %zu code %d%s", idx, code, code_hint(code));
            CHECK_STATUS(0, code);
            CHECK_EQ_SIZE(y, f(idx * 7919 + 13));
        }
        got++;
    }
    CHECK_STATUS(0, rc);
    CHECK_EQ_SIZE(got, n);
    CHECK_STATUS(PM_OK, pm_iter_free(it));
    snap_check(&base, 1);
    free(in);
    free(out);
    free(codes);
}

static void test_record_sizes(void)
{
    test_small_records();
    plan p[] = {{30, A_SEGV}, {41, A_FAIL}};
    test_big(100 * 1024, 64, p, 2);       /* ~10 items per piece (~4 MB of scratch per lane) */
    plan q = {1, A_ABORT};
    test_big((size_t)5 << 20, 3, &q, 1);  /* bigger than the scratch: 1 item per piece */
}

/* --------------------------------------------------------------- pool */

typedef struct pool_user {
    pm_pool *pool;
    int rounds, id;
} pool_user;

/* One map on a pool with a crash at `at`, checked. */
static void pool_map(pm_pool *pool, size_t n, size_t at)
{
    plan p[] = {{at, A_SEGV}, {at + 1, A_FAIL}};
    rec *r = make_recs(n, p, 2);
    uint64_t *out = make_out(n);
    int *codes = make_codes(n);
    ctx cx = {0};
    pm_report rep;
    CHECK_STATUS(PM_OK, pm_map(item_fn, &cx, r, sizeof *r, out, sizeof *out, n,
                               &(pm_opts){.pool = pool, .on_error = PM_RETURN, .codes = codes},
                               &rep));
    check_results(r, n, out, codes);
    CHECK_EQ_SIZE(rep.done, n);
    CHECK_EQ_SIZE(rep.failed, at + 1 < n ? 2 : at < n ? 1 : 0);
    free(r);
    free(out);
    free(codes);
}

/* The same with the records, outputs, codes and `user` on this thread's
 * stack: workers see the caller's memory as of the call, stacks included
 * (a worker's own threads must not land on a copy of ours). */
static void pool_stack_map(pm_pool *pool, size_t at)
{
    enum { N = 64 };
    rec r[N];
    uint64_t out[N];
    int codes[N];
    plan p = {at, A_SEGV};
    rec *h = make_recs(N, &p, 1);
    memcpy(r, h, sizeof r);
    free(h);
    for (size_t i = 0; i < N; i++) {
        out[i] = SENT_OUT;
        codes[i] = SENT_CODE;
    }
    ctx cx = {0};
    CHECK_STATUS(PM_OK, pm_map(item_fn, &cx, r, sizeof r[0], out, sizeof out[0], N,
                               &(pm_opts){.pool = pool, .on_error = PM_RETURN, .codes = codes},
                               NULL));
    check_results(r, N, out, codes);
}

static void *pool_user_main(void *arg)
{
    pool_user *u = arg;
    CHECK_CTX("pool shared by two threads: thread %d", u->id);
    for (int k = 0; k < u->rounds; k++) {
        pool_map(u->pool, 100 + (size_t)k, (size_t)(k * 13 + u->id) % 90);
        pool_stack_map(u->pool, (size_t)(k * 7 + u->id) % 64);
    }
    return NULL;
}

static void test_pool(int threads)
{
    pcfg c = {2, threads};
    if (!cfg_runs(&c))
        return;
    CHECK_CTX("pool procs 2 threads %d", threads);
    snap before = snap_take();
    pm_opts po = popts(&c);
    pm_pool *pool = pm_pool_new(&po);
    CHECK(pool != NULL);
    CHECK_OP_INT(pm_pool_workers(pool), >=, 1);
    snap base = snap_take();
    CHECK_EQ_INT(base.children, before.children); /* processes come per call */
    for (int k = 0; k < 5; k++) {
        CHECK_CTX("pool procs 2 threads %d, map %d", threads, k);
        pool_map(pool, 200, (size_t)k * 37);
        snap_check(&base, 0);
    }
    CHECK_CTX("pool procs 2 threads %d, imap", threads);
    rec *r = make_recs(MIXED_N, mixed_plan, MIXED_NP);
    rec_src s = {r, MIXED_N, 0, 0};
    ctx cx = {0};
    pm_iter *it = pm_imap(item_fn, &cx, src_recs, &s, sizeof *r, sizeof(uint64_t),
                          &(pm_opts){.pool = pool, .on_error = PM_RETURN,
                                     .timeout_s = TIMEOUT_S});
    CHECK(it != NULL);
    size_t got = 0, idx;
    uint64_t y;
    int code, rc;
    while ((rc = pm_iter_next(it, &y, &idx, &code)) == 1) {
        CHECK_EQ_SIZE(idx, got);
        CHECK_STATUS(expected_code(r[idx].action), code);
        if (!code)
            CHECK_EQ_SIZE(y, f(r[idx].x));
        got++;
    }
    CHECK_STATUS(0, rc);
    CHECK_EQ_SIZE(got, MIXED_N);
    CHECK_STATUS(PM_OK, pm_iter_free(it));
    free(r);
    snap_check(&base, 0);

    /* Two threads mapping on the pool at once (the calls take turns). They
     * start after the pool: in a worker forked from them, glibc's stack
     * cache holds their stacks, free for the worker's threads to reuse. */
    pool_user u[2] = {{pool, 3, 0}, {pool, 3, 1}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        t[i] = pmt_thread_start(pool_user_main, &u[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    CHECK_CTX("pool procs 2 threads %d, after the two threads", threads);
    snap_check(&base, 0);
    pm_pool_free(pool);
    snap_check(&before, 1);
}

/* -------------------------------------------------------- cancellation */

static pthread_t main_thread;
static pm_cancel *volatile sigint_token;
static atomic_int sigints;

static void on_sigint(int sig)
{
    (void)sig;
    atomic_fetch_add(&sigints, 1);
    pm_cancel_request(sigint_token); /* async-signal-safe */
}

enum { BY_THREAD, BY_PTHREAD_KILL, BY_KILL, BY_RAISE };
static const char *const by_names[] = {"a thread", "pthread_kill(main, SIGINT)",
                                       "kill(getpid(), SIGINT)", "raise(SIGINT)"};

typedef struct canceller {
    pm_cancel *tok;
    double delay;
    int how;
    double requested; /* pmt_now() of the request */
} canceller;

static void *cancel_later(void *arg)
{
    canceller *k = arg;
    pmt_sleep(k->delay);
    k->requested = pmt_now();
    if (k->how == BY_THREAD)
        pm_cancel_request(k->tok);
    else if (k->how == BY_PTHREAD_KILL)
        pthread_kill(main_thread, SIGINT);
    else
        kill(getpid(), SIGINT);
    return NULL;
}

/* raise() from the calling thread: its progress callback, mid-map. */
static void raise_later(void *user, const pm_progress *p)
{
    canceller *k = user;
    if (k->requested == 0 && p->elapsed_s >= k->delay) {
        k->requested = pmt_now();
        raise(SIGINT);
    }
}

static void install_sigint(pm_cancel *tok)
{
    sigint_token = tok;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: the library must cope with EINTR */
    CHECK(sigaction(SIGINT, &sa, NULL) == 0);
}

static void restore_sigint(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGINT, &sa, NULL);
    sigint_token = NULL;
}

/* A map of slow items (seconds of work) canceled after 0.4 s. */
static void test_cancel_map(const pcfg *c, int how)
{
    CHECK_CTX("map canceled by %s, procs %d threads %d", by_names[how], c->procs, c->threads);
    snap base = snap_take();
    pm_cancel *tok = pm_cancel_new();
    CHECK(tok != NULL);
    if (how != BY_THREAD)
        install_sigint(tok);
    int seen = atomic_load(&sigints);
    const size_t n = 400;
    rec *r = make_recs(n, NULL, 0);
    for (size_t i = 0; i < n; i++)
        r[i].action = A_SLOW;
    uint64_t *out = make_out(n);
    int *codes = make_codes(n);
    ctx cx = {.slow_s = 0.05};
    pm_opts o = popts(c);
    o.codes = codes;
    o.cancel = tok;
    canceller k = {tok, 0.4, how, 0};
    pthread_t t;
    if (how == BY_RAISE) {
        o.on_progress = raise_later;
        o.progress_user = &k;
    } else {
        t = pmt_thread_start(cancel_later, &k);
    }
    pm_report rep;
    int rc = pm_map(item_fn, &cx, r, sizeof *r, out, sizeof *out, n, &o, &rep);
    double returned = pmt_now();
    if (how != BY_RAISE)
        pthread_join(t, NULL);
    CHECK_STATUS(PM_ECANCELED, rc);
    CHECK_STATUS(PM_ECANCELED, rep.status);
    CHECK(k.requested > 0);
    CHECK_OP_DBL(returned - k.requested, <, PROMPT_S);
    CHECK_OP_SIZE(rep.done, <, n);
    CHECK_EQ_SIZE(rep.failed, 0);
    if (how != BY_THREAD)
        CHECK_EQ_INT(atomic_load(&sigints), seen + 1);
    size_t ran = check_partial(r, n, out, codes);
    CHECK_EQ_SIZE(ran, rep.done);
    snap_check(&base, 1);
    if (how != BY_THREAD)
        restore_sigint();
    pm_cancel_free(tok);
    free(r);
    free(out);
    free(codes);
}

/* An iterator over an endless stream of slow items, canceled mid-way. */
typedef struct slow_src {
    size_t next;
} slow_src;

static int src_slow(void *src, void *item)
{
    slow_src *s = src;
    rec r = {s->next, s->next * 7919 + 13, A_SLOW, 0};
    s->next++;
    memcpy(item, &r, sizeof r);
    return 1;
}

static void test_cancel_imap(const pcfg *c, int how)
{
    CHECK_CTX("imap canceled by %s, procs %d threads %d", by_names[how], c->procs, c->threads);
    snap base = snap_take();
    pm_cancel *tok = pm_cancel_new();
    CHECK(tok != NULL);
    if (how != BY_THREAD)
        install_sigint(tok);
    slow_src s = {0};
    ctx cx = {.slow_s = 0.05};
    pm_opts o = popts(c);
    o.cancel = tok;
    pm_iter *it = pm_imap(item_fn, &cx, src_slow, &s, sizeof(rec), sizeof(uint64_t), &o);
    CHECK(it != NULL);
    canceller k = {tok, 0.4, how, 0};
    pthread_t t = pmt_thread_start(cancel_later, &k);
    size_t got = 0, idx;
    uint64_t y;
    int code, rc;
    while ((rc = pm_iter_next(it, &y, &idx, &code)) == 1) {
        CHECK_EQ_SIZE(idx, got);
        CHECK_STATUS(0, code);
        CHECK_EQ_SIZE(y, f(idx * 7919 + 13));
        got++;
    }
    double returned = pmt_now();
    pthread_join(t, NULL);
    CHECK_STATUS(PM_ECANCELED, rc);
    CHECK_OP_DBL(returned - k.requested, <, PROMPT_S);
    CHECK_STATUS(PM_ECANCELED, pm_iter_next(it, &y, NULL, NULL));
    CHECK_STATUS(PM_ECANCELED, pm_iter_free(it));
    CHECK_OP_DBL(pmt_now() - k.requested, <, PROMPT_S);
    snap_check(&base, 1);
    if (how != BY_THREAD)
        restore_sigint();
    pm_cancel_free(tok);
}

/* ---------------------------------------------- orphans: parent killed */

/* The test's sub-process: a map (or an iterator) of items that report their
 * worker's pid on `fd` and then sleep for 30 s. Never returns. */
static void orphan_parent(int fd, int use_imap, int own_group)
{
    if (own_group)
        setpgid(0, 0);
    pcfg c = big_cfg();
    const size_t n = 16;
    rec *r = make_recs(n, NULL, 0);
    for (size_t i = 0; i < n; i++)
        r[i].action = A_REPORT;
    ctx cx = {.slow_s = 30, .report_fd = fd};
    pm_opts o = popts(&c);
    o.chunksize = 1;
    if (use_imap) {
        rec_src s = {r, n, 0, 0};
        pm_iter *it = pm_imap(item_fn, &cx, src_recs, &s, sizeof *r, sizeof(uint64_t), &o);
        uint64_t y;
        while (it && pm_iter_next(it, &y, NULL, NULL) == 1)
            ;
        pm_iter_free(it);
    } else {
        uint64_t out[16];
        pm_map(item_fn, &cx, r, sizeof *r, out, sizeof *out, n, &o, NULL);
    }
    _exit(0); /* not reached in time: killed first */
}

/* Read pids from fd until `want` distinct ones came (or the deadline). */
static int read_pids(int fd, pid_t *pids, int max, int want, double seconds)
{
    int n = 0;
    double end = pmt_now() + seconds;
    while (n < want && pmt_now() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        pid_t pid;
        ssize_t len = read(fd, &pid, sizeof pid);
        if (len < 0 && errno == EINTR)
            continue;
        if (len != (ssize_t)sizeof pid)
            break;
        int dup = 0;
        for (int i = 0; i < n; i++)
            dup |= pids[i] == pid;
        if (!dup && n < max)
            pids[n++] = pid;
    }
    return n;
}

/* Gone: no such process, or a zombie that is not ours (reparented: its new
 * parent reaps it). */
static int gone(pid_t pid)
{
    if (kill(pid, 0) == -1 && errno == ESRCH)
        return 1;
    pid_t pp = 0;
    char st = proc_state(pid, &pp);
    return st == 0 || (st == 'Z' && pp != getpid());
}

static void test_orphans(int sig, int use_imap)
{
    pcfg c = big_cfg();
    CHECK_CTX("%s the parent mid-%s, procs %d threads %d",
              sig == SIGKILL ? "SIGKILL to" : "SIGINT (no handler) to the process group of",
              use_imap ? "imap" : "map", c.procs, c.threads);
    snap base = snap_take();
    int fds[2];
    CHECK(pipe(fds) == 0);
    fflush(NULL);
    pid_t sub = fork();
    CHECK(sub >= 0);
    if (sub == 0) {
        close(fds[0]);
        orphan_parent(fds[1], use_imap, sig == SIGINT);
    }
    close(fds[1]);
    if (sig == SIGINT)
        setpgid(sub, sub); /* (also done by the child: whoever is first) */
    pid_t pids[64];
    int want = c.procs;
    int n = read_pids(fds[0], pids, 48, want, PMT_SANITIZED ? 40 : 10);
    CHECK_EQ_INT(n, want);
    /* Also every process the sub-process has now (e.g. one not yet running). */
    pid_t kids[16];
    int nk = list_children(sub, kids, 16, NULL);
    for (int i = 0; i < nk && i < 16; i++) {
        int dup = 0;
        for (int j = 0; j < n; j++)
            dup |= pids[j] == kids[i];
        if (!dup && n < 64)
            pids[n++] = kids[i];
    }
    CHECK(kill(sig == SIGINT ? -sub : sub, sig) == 0);
    int status;
    pid_t w;
    while ((w = waitpid(sub, &status, 0)) < 0 && errno == EINTR)
        ;
    CHECK_EQ_INT(w, sub);
    CHECK(WIFSIGNALED(status));
    CHECK_EQ_INT(WTERMSIG(status), sig);
    double t0 = pmt_now();
    int left = n;
    while (left > 0 && pmt_now() - t0 < ORPHAN_S) {
        left = 0;
        for (int i = 0; i < n; i++)
            left += !gone(pids[i]);
        if (left)
            pmt_sleep(0.01);
    }
    if (left) {
        for (int i = 0; i < n; i++)
            if (!gone(pids[i])) {
                fprintf(stderr, "    worker %d survived its parent (state %c)\n", (int)pids[i],
                        proc_state(pids[i], NULL));
                kill(pids[i], SIGKILL);
            }
    }
    CHECK_EQ_INT(left, 0);
    close(fds[0]);
    snap_check(&base, 1);
}

/* ---------------------------------------- a multi-threaded caller */

static atomic_int hammer_stop;
static FILE *hammer_file;

static void *hammer_main(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    unsigned long k = 0;
    void *keep[8] = {0};
    while (!atomic_load(&hammer_stop)) {
        seed = seed * 1103515245u + 12345u;
        size_t size = 1 + (seed >> 8) % 100000;
        int slot = (int)(seed >> 4) % 8;
        free(keep[slot]);
        keep[slot] = malloc(size);
        if (keep[slot])
            memset(keep[slot], 1, size < 64 ? size : 64);
        if (++k % 16 == 0)
            fprintf(hammer_file, "hammer %lu %zu %s\n", k, size, "line of text");
        if (k % 256 == 0)
            fflush(hammer_file);
    }
    for (int i = 0; i < 8; i++)
        free(keep[i]);
    return NULL;
}

/* Maps and iterators fork workers again and again while two other threads
 * hammer malloc/free and a FILE; every call must complete and be right. */
static void test_busy_caller(void)
{
    snap base_files = snap_take();
    hammer_file = fopen("/dev/null", "w");
    CHECK(hammer_file != NULL);
    snap base = snap_take();
    atomic_store(&hammer_stop, 0);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        t[i] = pmt_thread_start(hammer_main, (void *)(uintptr_t)(i + 1));
    const int rounds = PMT_SANITIZED ? 8 : 24;
    for (int k = 0; k < rounds; k++) {
        pcfg c = {1 + k % 2, 1 + (k / 2) % 2};
        if (!PMT_WORKER_THREADS_OK)
            c.threads = 1;
        int use_imap = k % 3 == 2;
        CHECK_CTX("busy caller round %d, %s procs %d threads %d", k, use_imap ? "imap" : "map",
                  c.procs, c.threads);
        watchdog("busy caller: one map (hung?)", 20);
        const size_t n = 48;
        plan p = {(size_t)(k * 11) % n, A_SEGV};
        rec *r = make_recs(n, &p, 1);
        for (size_t i = 0; i < n; i++)
            if (!r[i].action)
                r[i].action = A_HAMMER;
        uint64_t *out = make_out(n);
        int *codes = make_codes(n);
        ctx cx = {0};
        pm_opts o = popts(&c);
        o.on_error = PM_RETURN;
        if (use_imap) {
            o.unordered = k % 2;
            CHECK_STATUS(0, imap_collect(r, n, o, out, codes));
        } else {
            o.codes = codes;
            CHECK_STATUS(PM_OK, pm_map(item_fn, &cx, r, sizeof *r, out, sizeof *out, n, &o,
                                       NULL));
        }
        check_results(r, n, out, codes);
        snap_check(&base, 0); /* (the hammer threads are still there) */
        free(r);
        free(out);
        free(codes);
    }
    atomic_store(&hammer_stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    fclose(hammer_file);
    snap_check(&base_files, 1);
}

/* ---------------------------------------------------------------- main */

#define RUN(budget, call)                                                    \
    do {                                                                     \
        watchdog(#call, budget);                                             \
        PMT_RUN(call);                                                       \
    } while (0)

static void matrix(const pcfg *c)
{
    test_mixed(c, 0);
    test_mixed(c, 5);
    test_signals(c);
    test_every_chunk(c);
    if (c->threads > 1 && c->procs == 1)
        test_siblings(c);
    test_raise(c, A_SEGV, PM_ECRASH, 0);
    test_raise(c, A_EXIT3, PM_ECRASH, 7);
    test_raise(c, A_LOOP, PM_ETIMEOUT, 0);
    test_imap_mixed(c, 0);
    test_imap_mixed(c, 1);
    test_imap_every_chunk(c, c->procs % 2);
    test_imap_raise(c, 0);
    test_imap_raise(c, 1);
    test_inplace(c);
    test_no_outputs(c);
}

static void cancel_all(void)
{
    pcfg c = big_cfg();
    pcfg one = {1, 1};
    test_cancel_map(&c, BY_THREAD);
    test_cancel_map(&one, BY_THREAD);
    test_cancel_map(&c, BY_PTHREAD_KILL);
    test_cancel_map(&c, BY_KILL);
    test_cancel_map(&c, BY_RAISE);
    test_cancel_imap(&c, BY_THREAD);
    test_cancel_imap(&c, BY_PTHREAD_KILL);
}

static void orphans_all(void)
{
    test_orphans(SIGKILL, 0);
    test_orphans(SIGKILL, 1);
    test_orphans(SIGINT, 0);
}

static void pools_all(void)
{
    test_pool(1);
    test_pool(2);
}

int main(void)
{
    main_thread = pthread_self();
    test_pid = getpid();
    signal(SIGALRM, on_watchdog);
    if (count_fds() < 0 || list_children(getpid(), NULL, 0, NULL) < 0)
        fprintf(stderr, "note: no /proc here: children and fd counts are not checked\n");
    /* First, while this process has no thread but the main one: a forked
     * sub-process that starts threads (TSan refuses it otherwise). */
    RUN(60, orphans_all());
    pmt_thread_baseline(); /* (TSan starts a thread of its own at the first thread) */
    for (size_t i = 0; i < NCFGS; i++) {
        if (!cfg_runs(&cfgs[i]))
            continue;
        char name[64];
        snprintf(name, sizeof name, "matrix(procs %d, threads %d)", cfgs[i].procs,
                 cfgs[i].threads);
        watchdog(name, 60);
        double t0 = pmt_now();
        matrix(&cfgs[i]);
        printf("  %-32s %7.3f s\n", name, pmt_now() - t0);
        fflush(stdout);
    }
    RUN(60, test_record_sizes());
    RUN(60, pools_all());
    RUN(60, cancel_all());
    RUN(60, test_busy_caller());
    alarm(0);
    if (skipped_cfgs)
        printf("skipped under %s: %d case(s) with 2 threads per worker process (%s)\n",
               PMT_TSAN ? "TSan" : "ASan", skipped_cfgs,
               PMT_TSAN ? "TSan kills a child of a multi-threaded process that starts a thread"
                        : "ASan's allocator is not fork-safe: a child's thread start can hang");
    if (PMT_ASAN)
        printf("under ASan: items do not malloc in the workers of the busy-caller case\n");
    return pmt_done("test_processes");
}

#endif
