/*
 * test_proc_stress.c - the processes backend under everything at once, for a
 * bounded time: items that print (from threads too), close every fd, stop
 * their own process, segfault, exit(), run away, fail; beside them a thread
 * calling fflush(NULL) in a loop and a thread forking helpers that hold
 * copies of every fd. procs 1-4 x threads 1-3, pm_map and pm_imap (ordered
 * and not), two copies of the whole sweep running at once. Every item's
 * code must be exact, no call may hang (a watchdog fails the test), and no
 * process or fd may be left behind.
 *
 * Under TSan and ASan only threads = 1 runs (a thread started in a child of
 * a multi-threaded process is beyond the sanitizers' runtimes; see
 * test_proc_hangs.c), and items do not start threads.
 */
#include "check.h"

#if !PMT_HAVE_FORK
int main(void)
{
    PMT_SKIP("no fork on this target");
}
#else

#include "sandbox.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/resource.h>

#define WORKER_THREADS_OK (!PMT_TSAN && !PMT_ASAN)
#define FAIL_CODE 9
#define N_ITEMS 24
#define TIMEOUT_S (PMT_SANITIZED ? 1.5 : 0.4)

enum act { ACT_OK, ACT_PRINT, ACT_PRINT_THREADS, ACT_CLOSE_FDS, ACT_STOP, ACT_SEGV, ACT_EXIT,
           ACT_LOOP, ACT_FAIL };

/* What item i of sweep step `step` does: every kind in every map, at
 * positions that move with the step so that they meet different lanes. */
static int act_of(int64_t i, int step)
{
    static const int special[] = {ACT_SEGV, ACT_EXIT, ACT_STOP, ACT_LOOP, ACT_CLOSE_FDS, ACT_FAIL};
    int64_t k = (i + step) % N_ITEMS;
    if (k % 4 == 1 && k / 4 < (int64_t)(sizeof special / sizeof special[0]))
        return special[k / 4];
    if (k % 3 == 0)
        return WORKER_THREADS_OK ? ACT_PRINT_THREADS : ACT_PRINT;
    return k % 2 ? ACT_PRINT : ACT_OK;
}

static int expected_code(int act)
{
    switch (act) {
    case ACT_STOP:
    case ACT_SEGV:
    case ACT_EXIT: return PM_ECRASH;
    case ACT_LOOP: return PM_ETIMEOUT;
    case ACT_FAIL: return FAIL_CODE;
    default: return 0;
    }
}

typedef struct rec {
    int64_t i;
    int step, pad;
} rec;

static void *print_two(void *arg)
{
    printf("thread line of item %d\n", (int)(intptr_t)arg);
    printf("thread line of item %d\n", (int)(intptr_t)arg);
    return NULL;
}

static int item_fn(void *user, const void *in, void *out)
{
    (void)user;
    const rec *r = in;
    switch (act_of(r->i, r->step)) {
    case ACT_PRINT:
        printf("line of item %d\n", (int)r->i);
        break;
    case ACT_PRINT_THREADS: {
        pthread_t t;
        if (pthread_create(&t, NULL, print_two, (void *)(intptr_t)r->i) == 0)
            pthread_join(t, NULL);
        break;
    }
    case ACT_CLOSE_FDS: {
        struct rlimit rl;
        int max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096 ? (int)rl.rlim_cur
                                                                           : 4096;
        for (int fd = 3; fd < max; fd++)
            close(fd);
        break;
    }
    case ACT_STOP:
        raise(SIGSTOP);
        break;
    case ACT_SEGV:
        signal(SIGSEGV, SIG_DFL); /* not the sanitizer's report-and-exit */
        raise(SIGSEGV);
        break;
    case ACT_EXIT:
        exit(3);
    case ACT_LOOP:
        for (;;)
            pmt_sleep(1);
    case ACT_FAIL:
        return FAIL_CODE;
    default:
        break;
    }
    *(int64_t *)out = 3 * r->i + 1;
    return 0;
}

static void check_item(const rec *r, int code, int64_t out)
{
    size_t len = strlen(pmt_ctx);
    CHECK_CTX_ADD(" item %d (act %d)", (int)r->i, act_of(r->i, r->step));
    CHECK_STATUS(expected_code(act_of(r->i, r->step)), code);
    if (code == 0)
        CHECK_EQ_INT(out, 3 * r->i + 1);
    pmt_ctx[len] = 0;
}

typedef struct stream {
    rec *recs;
    size_t next, n;
} stream;

static int stream_src(void *src, void *item)
{
    stream *s = src;
    if (s->next >= s->n)
        return 0;
    *(rec *)item = s->recs[s->next++];
    return 1;
}

static void one_map(int procs, int threads, int how, int step)
{
    rec recs[N_ITEMS];
    int64_t out[N_ITEMS];
    int codes[N_ITEMS];
    for (int i = 0; i < N_ITEMS; i++)
        recs[i] = (rec){i, step, 0};
    pm_opts o = {.backend = PM_PROCESSES, .procs = procs, .threads = threads,
                 .chunksize = step % 2 ? 1 : 0, .on_error = PM_RETURN, .timeout_s = TIMEOUT_S};
    CHECK_CTX("procs %d threads %d %s step %d", procs, threads,
              how == 0 ? "map" : how == 1 ? "imap" : "imap unordered", step);
    if (how == 0) {
        o.codes = codes;
        CHECK_STATUS(PM_OK, pm_map(item_fn, NULL, recs, sizeof recs[0], out, sizeof out[0],
                                   N_ITEMS, &o, NULL));
        for (int i = 0; i < N_ITEMS; i++)
            check_item(&recs[i], codes[i], out[i]);
        return;
    }
    o.unordered = how == 2;
    stream s = {recs, 0, N_ITEMS};
    pm_iter *it = pm_imap(item_fn, NULL, stream_src, &s, sizeof(rec), sizeof(int64_t), &o);
    CHECK(it != NULL);
    int seen[N_ITEMS] = {0}, r, got = 0;
    int64_t v;
    size_t index;
    int code;
    while ((r = pm_iter_next(it, &v, &index, &code)) == 1) {
        CHECK(index < N_ITEMS);
        if (!o.unordered)
            CHECK_EQ_INT(index, got);
        seen[index]++;
        got++;
        check_item(&recs[index], code, v);
    }
    CHECK_STATUS(PM_OK, r);
    CHECK_EQ_INT(got, N_ITEMS);
    for (int i = 0; i < N_ITEMS; i++)
        CHECK_EQ_INT(seen[i], 1);
    CHECK_STATUS(PM_OK, pm_iter_free(it));
}

static void *sweep(void *arg)
{
    int copy = (int)(intptr_t)arg, step = copy * 5;
    int max_threads = WORKER_THREADS_OK ? 3 : 1;
    for (int procs = 1; procs <= 4; procs++)
        for (int threads = 1; threads <= max_threads; threads++)
            for (int how = 0; how < 3; how++)
                if ((procs + threads + how) % 2 == copy % 2 || how == 0)
                    one_map(procs, threads, how, step++);
    return NULL;
}

/* ------------------------------------------------ the program around it */

static atomic_int stop_noise;

static void *flusher(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_noise)) {
        fflush(NULL);
        pmt_sleep(0.0005);
    }
    return NULL;
}

static void *forker(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_noise)) {
        pid_t pid = fork();
        if (pid == 0) {
            pmt_sleep(0.3); /* holds copies of every fd of the moment */
            _exit(0);
        }
        if (pid > 0)
            waitpid(pid, NULL, 0);
        pmt_sleep(0.1);
    }
    return NULL;
}

static void stress(void)
{
    FILE *f = tmpfile(); /* what items print goes here, not to the log */
    CHECK(f != NULL);
    fflush(stdout);
    CHECK(dup2(fileno(f), 1) == 1);
    sandbox_snap before = sandbox_snap_take();
    pthread_t noise[2], copies[2];
    CHECK(pthread_create(&noise[0], NULL, flusher, NULL) == 0);
    CHECK(pthread_create(&noise[1], NULL, forker, NULL) == 0);
    for (int c = 0; c < 2; c++)
        CHECK(pthread_create(&copies[c], NULL, sweep, (void *)(intptr_t)c) == 0);
    for (int c = 0; c < 2; c++)
        pthread_join(copies[c], NULL);
    atomic_store(&stop_noise, 1);
    for (int k = 0; k < 2; k++)
        pthread_join(noise[k], NULL);
    sandbox_check_leftovers(&before);
}

int main(void)
{
    if (!sandbox_run("stress: everything at once, two copies", stress, 100))
        return 1;
    printf("ok test_proc_stress%s\n", WORKER_THREADS_OK ? "" : " (threads 1 only under a sanitizer)");
    return 0;
}

#endif
