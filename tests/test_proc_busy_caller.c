/*
 * test_proc_busy_caller.c - the processes executor (PM_PROCESSES) called by
 * a multi-threaded program: maps and iterators (ordered and unordered) fork
 * workers again and again, with a crash in each, while two other threads of
 * the caller hammer malloc/free and a FILE; the workers' items do the same
 * (not under ASan: see proc_util.h). Every call must complete (each one under
 * the watchdog) and be right, and leave no child, zombie or fd behind.
 */
#include "proc_util.h"

#if !PMT_HAVE_FORK
int main(void)
{
    PMT_SKIP("no fork() on this target (test_proc_crashes checks PM_PROCESSES is PM_ENOTSUP)");
}
#else

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

int main(void)
{
    proc_init("test_proc_busy_caller");
    pmt_thread_baseline(); /* (TSan starts a thread of its own at the first thread) */
    RUN(60, test_busy_caller());
    if (PMT_ASAN)
        printf("under ASan: items do not malloc in the workers of the busy-caller case\n");
    return proc_done("test_proc_busy_caller");
}

#endif
