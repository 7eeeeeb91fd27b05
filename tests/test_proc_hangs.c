/*
 * test_proc_hangs.c - the processes backend where it used to hang, deadlock
 * or report the wrong thing (issue 13): items that print from several
 * threads, other threads calling fflush(NULL) or forking helpers, items that
 * close descriptors they do not own or stop their own process, a thread of
 * the caller blocked reading stdin, nested and chained calls on one pool, and
 * the report's signal and status. Each case runs in a process of its own
 * under a deadline (sandbox.h): a hang fails the case by name.
 *
 * Cases whose worker processes start threads (lanes, an item's own threads,
 * a nested call's crew) are skipped under TSan and ASan (see proc_util.h:
 * TSan refuses a thread started in a child of a multi-threaded process, and
 * ASan's allocator is not fork-safe); the skip is printed.
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
#define FAIL_CODE 7

/* ---------------------------------------------------------------- items */

/* What an item does, chosen by its index. */
enum act { ACT_OK, ACT_PRINT, ACT_PRINT_THREADS, ACT_CLOSE_FDS, ACT_STOP, ACT_EXIT,
           ACT_SEGV, ACT_FAIL, ACT_LATE_SEGV, ACT_NAP, ACT_PRINT_NAP };

typedef struct plan {
    int64_t index;
    int act;
} plan;

typedef struct items {
    const plan *plan;  /* special items, ended by index -1 */
    int default_act;
} items;

static int act_of(const items *it, int64_t i)
{
    for (const plan *p = it->plan; p && p->index >= 0; p++)
        if (p->index == i)
            return p->act;
    return it->default_act;
}

static void *print_three(void *arg)
{
    for (int k = 0; k < 3; k++)
        printf("line from a thread of item %d\n", (int)(intptr_t)arg);
    return NULL;
}

static void close_fds_from_3(void)
{
    struct rlimit rl;
    int max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096 ? (int)rl.rlim_cur : 4096;
    for (int fd = 3; fd < max; fd++)
        close(fd);
}

/* Sanitizers catch SIGSEGV to print a report and exit(1): the default
 * action makes the worker die of the signal, as it would without them. */
static void segfault(void)
{
    signal(SIGSEGV, SIG_DFL);
    raise(SIGSEGV);
}

static int item_fn(void *user, const void *in, void *out)
{
    const items *it = user;
    int64_t i = *(const int64_t *)in;
    switch (act_of(it, i)) {
    case ACT_PRINT:
        printf("line from item %d\n", (int)i);
        break;
    case ACT_PRINT_THREADS: {
        pthread_t t[2];
        for (int k = 0; k < 2; k++)
            CHECK(pthread_create(&t[k], NULL, print_three, (void *)(intptr_t)i) == 0);
        for (int k = 0; k < 2; k++)
            pthread_join(t[k], NULL);
        break;
    }
    case ACT_CLOSE_FDS:
        close_fds_from_3(); /* as before exec'ing a tool; a second close is an EBADF */
        close_fds_from_3();
        break;
    case ACT_STOP:
        raise(SIGSTOP);
        break;
    case ACT_EXIT:
        exit(3);
    case ACT_SEGV:
        segfault();
        break;
    case ACT_FAIL:
        return FAIL_CODE;
    case ACT_LATE_SEGV:
        pmt_sleep(0.1);
        segfault();
        break;
    case ACT_NAP:
        pmt_sleep(0.02);
        break;
    case ACT_PRINT_NAP:
        printf("line from item %d\n", (int)i);
        pmt_sleep(0.01);
        break;
    default:
        break;
    }
    *(int64_t *)out = 2 * i;
    return 0;
}

static int64_t *iota(size_t n)
{
    int64_t *v = malloc(n * sizeof *v);
    CHECK(v != NULL);
    for (size_t i = 0; i < n; i++)
        v[i] = (int64_t)i;
    return v;
}

/* Map n items; every item must come back right except those in `bad`,
 * whose codes are given. Returns the report. */
static pm_report map_items(const items *it, size_t n, pm_opts o, int want_status,
                           const plan *bad_codes)
{
    int64_t *in = iota(n), *out = calloc(n, sizeof *out);
    int *codes = calloc(n, sizeof *codes);
    CHECK(out && codes);
    o.codes = codes;
    sandbox_snap before = sandbox_snap_take();
    pm_report rep;
    int rc = pm_map(item_fn, (void *)it, in, sizeof *in, out, sizeof *out, n, &o, &rep);
    sandbox_check_leftovers(&before);
    CHECK_STATUS(want_status, rc);
    if (o.on_error == PM_RETURN) {
        for (size_t i = 0; i < n; i++) {
            int want = 0;
            for (const plan *b = bad_codes; b && b->index >= 0; b++)
                if ((size_t)b->index == i)
                    want = b->act;
            CHECK_CTX("item %zu", i);
            CHECK_STATUS(want, codes[i]);
            if (!want)
                CHECK_EQ_INT(out[i], 2 * (int64_t)i);
        }
        CHECK_CTX("");
    }
    free(in);
    free(out);
    free(codes);
    return rep;
}

/* stdout to a fresh file, so that a case can count the lines items print. */
static FILE *capture_stdout(void)
{
    fflush(stdout);
    FILE *f = tmpfile();
    CHECK(f != NULL);
    CHECK(dup2(fileno(f), 1) == 1);
    return f;
}

static size_t count_lines(FILE *f, const char *prefix)
{
    fflush(stdout);
    rewind(f);
    char line[256];
    size_t n = 0;
    while (fgets(line, sizeof line, f))
        n += strncmp(line, prefix, strlen(prefix)) == 0;
    return n;
}

/* ------------------------------------------------ 1. printing threads */

static void case_print_two_lanes(void)
{
    FILE *f = capture_stdout();
    items it = {NULL, ACT_PRINT};
    map_items(&it, 100, (pm_opts){.backend = PM_PROCESSES, .procs = 1, .threads = 2,
                                  .chunksize = 1, .on_error = PM_RETURN}, PM_OK, NULL);
    CHECK_EQ_SIZE(count_lines(f, "line from item "), 100);
}

static void case_print_two_lanes_timeout(void)
{
    FILE *f = capture_stdout();
    items it = {NULL, ACT_PRINT};
    map_items(&it, 100, (pm_opts){.backend = PM_PROCESSES, .procs = 1, .threads = 2,
                                  .chunksize = 1, .timeout_s = 2, .on_error = PM_RETURN},
              PM_OK, NULL);
    CHECK_EQ_SIZE(count_lines(f, "line from item "), 100);
}

static void case_print_item_threads(void)
{
    FILE *f = capture_stdout();
    items it = {NULL, ACT_PRINT_THREADS};
    map_items(&it, 20, (pm_opts){.backend = PM_PROCESSES, .procs = 2, .chunksize = 1,
                                 .on_error = PM_RETURN}, PM_OK, NULL);
    CHECK_EQ_SIZE(count_lines(f, "line from a thread of item "), 20 * 2 * 3);
}

/* ---------------------------------------- 2. fflush(NULL) in another thread */

static atomic_int flusher_stop;

static void *flusher(void *arg)
{
    (void)arg;
    while (!atomic_load(&flusher_stop)) {
        fflush(NULL);
        fprintf(stderr, "%s", ""); /* takes stderr's lock too */
    }
    return NULL;
}

static void case_fflush_thread(void)
{
    pthread_t t;
    CHECK(pthread_create(&t, NULL, flusher, NULL) == 0);
    items it = {NULL, ACT_OK};
    int maps = PMT_SANITIZED ? 40 : 300;
    for (int k = 0; k < maps; k++)
        map_items(&it, 4, (pm_opts){.backend = PM_PROCESSES, .procs = 2, .on_error = PM_RETURN},
                  PM_OK, NULL);
    atomic_store(&flusher_stop, 1);
    pthread_join(t, NULL);
}

static void *ten_maps(void *arg)
{
    (void)arg;
    items it = {NULL, ACT_PRINT};
    int64_t in[8], out[8];
    for (int i = 0; i < 8; i++)
        in[i] = i;
    for (int k = 0; k < 10; k++) {
        int rc = pm_map(item_fn, &it, in, sizeof in[0], out, sizeof out[0], 8,
                        &(pm_opts){.backend = PM_PROCESSES, .procs = 2}, NULL);
        CHECK_STATUS(PM_OK, rc);
        for (int i = 0; i < 8; i++)
            CHECK_EQ_INT(out[i], 2 * i);
    }
    return NULL;
}

/* Two threads' processes maps: each one forks while the other's lanes are
 * open (its workers hold copies of them), and prints. No deadlock, and no
 * stall waiting for an EOF that a copy holds back. */
static void case_two_threads_maps(void)
{
    FILE *f = capture_stdout();
    int rounds = PMT_SANITIZED ? 2 : 6;
    for (int r = 0; r < rounds; r++) {
        double t0 = pmt_now();
        pthread_t t;
        CHECK(pthread_create(&t, NULL, ten_maps, NULL) == 0);
        ten_maps(NULL);
        pthread_join(t, NULL);
        CHECK_OP_DBL(pmt_now() - t0, <, PMT_SANITIZED ? 20.0 : 4.0);
    }
    CHECK_EQ_SIZE(count_lines(f, "line from item "), (size_t)rounds * 2 * 10 * 8);
}

/* ------------------------------------------------ 3. items closing fds */

static void case_close_fds_two_lanes(void)
{
    plan p[] = {{5, ACT_CLOSE_FDS}, {13, ACT_CLOSE_FDS}, {-1, 0}};
    items it = {p, ACT_NAP};
    double t0 = pmt_now();
    map_items(&it, 20, (pm_opts){.backend = PM_PROCESSES, .procs = 1, .threads = 2,
                                 .chunksize = 1, .on_error = PM_RETURN}, PM_OK, NULL);
    CHECK_OP_DBL(pmt_now() - t0, <, 5.0);
}

static void case_close_fds_timeout(void)
{
    plan p[] = {{2, ACT_CLOSE_FDS}, {-1, 0}};
    items it = {p, ACT_OK};
    double t0 = pmt_now();
    map_items(&it, 8, (pm_opts){.backend = PM_PROCESSES, .procs = 1, .chunksize = 1,
                                .timeout_s = 1, .on_error = PM_RETURN}, PM_OK, NULL);
    CHECK_OP_DBL(pmt_now() - t0, <, PMT_SANITIZED ? 6.0 : 2.0);
}

/* ------------------------------------- 4. helpers forked by another thread */

static void *fork_helper(void *arg)
{
    pid_t *pid = arg;
    pmt_sleep(0.05); /* the map's lanes are open by now */
    *pid = fork();
    if (*pid == 0) {
        pmt_sleep(3); /* holds copies of every fd the caller had */
        _exit(0);
    }
    return NULL;
}

static void case_helper_forked(void)
{
    FILE *f = capture_stdout();
    items it = {NULL, ACT_PRINT_NAP}; /* naps: the helper forks mid-map */
    pid_t helper = -1;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, fork_helper, &helper) == 0);
    int64_t *in = iota(40), out[40];
    double t0 = pmt_now();
    int rc = pm_map(item_fn, &it, in, sizeof *in, out, sizeof *out, 40,
                    &(pm_opts){.backend = PM_PROCESSES, .procs = 2, .chunksize = 1,
                               .timeout_s = 10},
                    NULL);
    double took = pmt_now() - t0;
    pthread_join(t, NULL);
    CHECK_STATUS(PM_OK, rc);
    CHECK_OP_DBL(took, <, PMT_SANITIZED ? 5.0 : 1.5);
    CHECK_EQ_SIZE(count_lines(f, "line from item "), 40);
    CHECK(helper > 0);
    kill(helper, SIGKILL);
    waitpid(helper, NULL, 0);
    free(in);
}

/* ------------------------------------------ 5. nested and chained calls */

static pm_pool *shared_pool;

static int sum_fn(void *user, const void *in, void *out)
{
    (void)user;
    *(int64_t *)out = *(const int64_t *)in + 1;
    return 0;
}

/* An item that maps on the pool it runs on. */
static int nested_fn(void *user, const void *in, void *out)
{
    const pm_opts *o = user;
    int64_t base = *(const int64_t *)in, sub[3] = {base, base + 1, base + 2}, res[3];
    int rc = pm_map(sum_fn, NULL, sub, sizeof sub[0], res, sizeof res[0], 3, o, NULL);
    if (rc != PM_OK)
        return 100 - rc;
    *(int64_t *)out = res[0] + res[1] + res[2];
    return 0;
}

static void nested(double timeout_s)
{
    pm_opts po = {.backend = PM_PROCESSES, .procs = 2};
    shared_pool = pm_pool_new(&po);
    CHECK(shared_pool != NULL);
    pm_opts o = {.pool = shared_pool, .timeout_s = timeout_s, .chunksize = 1};
    int64_t *in = iota(6), out[6];
    int codes[6];
    o.codes = codes;
    o.on_error = PM_RETURN;
    int rc = pm_map(nested_fn, &o, in, sizeof *in, out, sizeof *out, 6, &o, NULL);
    CHECK_STATUS(PM_OK, rc);
    for (int i = 0; i < 6; i++) {
        CHECK_CTX("item %d", i);
        CHECK_EQ_INT(codes[i], 0);
        CHECK_EQ_INT(out[i], 3 * i + 6);
    }
    pm_pool_free(shared_pool);
    free(in);
}

static void case_nested(void) { nested(0); }
static void case_nested_timeout(void) { nested(5); }

static void case_chained_imaps(void)
{
    pm_pool *pool = pm_pool_new(&(pm_opts){.backend = PM_PROCESSES, .procs = 2});
    CHECK(pool != NULL);
    sandbox_snap before = sandbox_snap_take();
    pmt_range c = {0, 500};
    pm_opts o = {.pool = pool};
    pm_iter *a = pm_imap(sum_fn, NULL, pmt_range_src, &c, sizeof(int64_t), sizeof(int64_t), &o);
    CHECK(a != NULL);
    pm_iter *b = pm_imap(sum_fn, NULL, pm_iter_source, a, sizeof(int64_t), sizeof(int64_t), &o);
    CHECK(b != NULL);
    int64_t v, i = 0;
    int r;
    while ((r = pm_iter_next(b, &v, NULL, NULL)) == 1) {
        CHECK_EQ_INT(v, i + 2);
        i++;
    }
    CHECK_EQ_INT(r, 0);
    CHECK_EQ_INT(i, 500);
    CHECK_STATUS(PM_OK, pm_iter_free(b));
    CHECK_STATUS(PM_OK, pm_iter_free(a));
    sandbox_check_leftovers(&before);
    pm_pool_free(pool);
}

/* ------------------------------- 6. an item that stops its own process */

static void case_stop_two_lanes(void)
{
    plan p[] = {{4, ACT_STOP}, {-1, 0}};
    plan bad[] = {{4, PM_ECRASH}, {-1, 0}};
    items it = {p, ACT_NAP};
    pm_report rep = map_items(&it, 12, (pm_opts){.backend = PM_PROCESSES, .procs = 1,
                                                 .threads = 2, .chunksize = 1, .timeout_s = 1,
                                                 .on_error = PM_RETURN},
                              PM_OK, bad);
    CHECK_EQ_SIZE(rep.first_error_index, 4);
    CHECK_EQ_INT(rep.signal, SIGSTOP);
}

static void case_stop_no_timeout(void)
{
    plan p[] = {{2, ACT_STOP}, {-1, 0}};
    plan bad[] = {{2, PM_ECRASH}, {-1, 0}};
    items it = {p, ACT_OK};
    pm_report rep = map_items(&it, 6, (pm_opts){.backend = PM_PROCESSES, .procs = 1,
                                                .chunksize = 1, .on_error = PM_RETURN},
                              PM_OK, bad);
    CHECK_EQ_INT(rep.signal, SIGSTOP);
}

/* ------------------------------------------- 7. the report's signal */

static void case_signal_of_lowest(void)
{
    plan p[] = {{3, ACT_EXIT}, {10, ACT_SEGV}, {-1, 0}};
    plan bad[] = {{3, PM_ECRASH}, {10, PM_ECRASH}, {-1, 0}};
    items it = {p, ACT_OK};
    pm_opts o = {.backend = PM_PROCESSES, .procs = 2, .chunksize = 1, .on_error = PM_RETURN};
    pm_report rep = map_items(&it, 16, o, PM_OK, bad);
    CHECK_EQ_SIZE(rep.first_error_index, 3);
    CHECK_EQ_INT(rep.signal, 0); /* exit(): no signal */
    plan q[] = {{3, ACT_SEGV}, {10, ACT_EXIT}, {-1, 0}};
    items it2 = {q, ACT_OK};
    rep = map_items(&it2, 16, o, PM_OK, bad);
    CHECK_EQ_SIZE(rep.first_error_index, 3);
    CHECK_EQ_INT(rep.signal, SIGSEGV);
}

/* ---------------------------------- 8. status and report agree (raise) */

static void case_raise_status(void)
{
    plan p[] = {{0, ACT_LATE_SEGV}, {1, ACT_FAIL}, {-1, 0}};
    items it = {p, ACT_OK};
    for (int k = 0; k < 6; k++) {
        CHECK_CTX("run %d", k);
        pm_report rep = map_items(&it, 2, (pm_opts){.backend = PM_PROCESSES, .procs = 2,
                                                    .chunksize = 1},
                                  PM_ECRASH, NULL);
        CHECK_EQ_SIZE(rep.first_error_index, 0);
        CHECK_STATUS(PM_ECRASH, rep.first_error_code);
        CHECK_EQ_INT(rep.signal, SIGSEGV);
    }
}

/* ------------------------- a thread of the caller blocked reading stdin */

static void *read_stdin(void *arg)
{
    char line[64];
    (void)arg;
    return fgets(line, sizeof line, stdin); /* holds stdin's lock while it waits */
}

static void case_stdin_reader(void)
{
    FILE *f = capture_stdout();
    int fds[2];
    CHECK(pipe(fds) == 0);
    CHECK(dup2(fds[0], 0) == 0);
    close(fds[0]);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, read_stdin, NULL) == 0);
    pmt_sleep(0.05);
    items it = {NULL, ACT_PRINT};
    map_items(&it, 8, (pm_opts){.backend = PM_PROCESSES, .procs = 2, .on_error = PM_RETURN},
              PM_OK, NULL);
    CHECK(write(fds[1], "x\n", 2) == 2);
    pthread_join(t, NULL);
    close(fds[1]);
    CHECK_EQ_SIZE(count_lines(f, "line from item "), 8);
}

/* ------------- threads started by items in a replaced worker process */

static void *scribble(void *arg)
{
    volatile char buf[16384]; /* a thread's stack in use */
    for (size_t k = 0; k < sizeof buf; k++)
        buf[k] = (char)0x77;
    return buf[100] == 1 ? arg : NULL;
}

static int scribbling_item(void *user, const void *in, void *out)
{
    (void)user;
    int64_t i = *(const int64_t *)in;
    if (i == 3)
        exit(3); /* its process is replaced */
    if (i > 3) {
        pthread_t t;
        if (pthread_create(&t, NULL, scribble, NULL) != 0)
            return 50;
        pthread_join(t, NULL);
    }
    *(int64_t *)out = 2 * *(const int64_t *)in; /* read after the thread ran */
    return 0;
}

/* pm_map's input in a local array of a thread other than main: in a worker
 * forked by any other thread, glibc would hand that thread's stack to the
 * first thread an item starts. */
static void *map_from_thread(void *arg)
{
    (void)arg;
    int64_t in[24], out[24];
    int codes[24];
    for (int i = 0; i < 24; i++)
        in[i] = i;
    int rc = pm_map(scribbling_item, NULL, in, sizeof in[0], out, sizeof out[0], 24,
                    &(pm_opts){.backend = PM_PROCESSES, .procs = 1, .chunksize = 1,
                               .on_error = PM_RETURN, .codes = codes},
                    NULL);
    CHECK_STATUS(PM_OK, rc);
    for (int i = 0; i < 24; i++) {
        CHECK_CTX("item %d", i);
        CHECK_STATUS(i == 3 ? PM_ECRASH : 0, codes[i]);
        if (i != 3)
            CHECK_EQ_INT(out[i], 2 * i);
    }
    return NULL;
}

static void case_item_threads_after_respawn(void)
{
    for (int k = 0; k < 3; k++) {
        pthread_t t;
        CHECK(pthread_create(&t, NULL, map_from_thread, NULL) == 0);
        pthread_join(t, NULL);
    }
}

/* ------------------------------------------------------------------ main */

typedef struct tcase {
    const char *name;
    void (*fn)(void);
    unsigned seconds;
    int worker_threads; /* its workers start threads (skipped under TSan/ASan) */
} tcase;

static const tcase cases[] = {
    {"print from 2 lanes", case_print_two_lanes, 20, 1},
    {"print from 2 lanes, timeout", case_print_two_lanes_timeout, 20, 1},
    {"print from an item's threads", case_print_item_threads, 20, 1},
    {"fflush(NULL) in a loop beside 300 maps", case_fflush_thread, 60, 0},
    {"two threads' processes maps", case_two_threads_maps, 60, 0},
    {"item closes fds, 2 lanes", case_close_fds_two_lanes, 20, 1},
    {"item closes fds, timeout", case_close_fds_timeout, 20, 0},
    {"helper forked mid-map", case_helper_forked, 20, 0},
    {"pm_map from an item on its pool", case_nested, 30, 1},
    {"... with timeout_s", case_nested_timeout, 30, 1},
    {"chained pm_imap on one pool", case_chained_imaps, 30, 0},
    {"item stops its process, 2 lanes", case_stop_two_lanes, 20, 1},
    {"item stops its process, no timeout", case_stop_no_timeout, 20, 0},
    {"report.signal of the lowest crash", case_signal_of_lowest, 20, 0},
    {"raise: status matches the report", case_raise_status, 30, 0},
    {"a thread blocked reading stdin", case_stdin_reader, 20, 0},
    {"item threads in a replaced worker", case_item_threads_after_respawn, 20, 1},
};

int main(int argc, char **argv)
{
    int failed = 0, skipped = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const tcase *c = &cases[i];
        if (argc > 1 && !strstr(c->name, argv[1]))
            continue;
        if (c->worker_threads && !WORKER_THREADS_OK) {
            printf("  skip %-44s (threads in workers under %s)\n", c->name,
                   PMT_TSAN ? "TSan" : "ASan");
            skipped++;
            continue;
        }
        failed += !sandbox_run(c->name, c->fn, c->seconds);
    }
    if (failed) {
        fprintf(stderr, "test_proc_hangs: %d case(s) failed\n", failed);
        return 1;
    }
    printf("ok test_proc_hangs (%d skipped under a sanitizer)\n", skipped);
    return 0;
}

#endif
