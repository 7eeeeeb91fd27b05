/*
 * bench_worker_state.c - per-worker state (opts.worker_init / worker_exit):
 * mpire's "stateful" and "expensive initialisation" benchmarks, ported to C.
 *
 * Stateful: 2,000 documents of 10,000 words (even indices 5,000 more, odd
 * ones 5,000 fewer: deliberately unbalanced), 20 random lowercase bytes per
 * word. Each worker counts 3-letter word prefixes in its state (26^3
 * counters); its worker_exit returns the prefixes seen more than 3 times (a
 * bounded record: one counter per prefix, 0 for the others); the caller
 * merges. The words live in one corpus of 2^20 words (20 MB) that documents
 * index into (wrapping), so the work is the counting, not the generation.
 * Compared in the same run with a serial loop and a hand-written pthreads
 * version (same dynamic one-document schedule, per-thread counters, the
 * same merge), on 2 threads; and the same parmap call on a processes pool of
 * 2 worker processes (1 thread each: forked per call, records shipped back
 * through the workers' shared scratch), its own JSON line beside it.
 *
 * Expensive initialisation: worker_init sleeps 100 ms; 50 small maps (100
 * trivial items) on a warm pool of 2 threads, once with the state given per
 * call (about one init per worker that takes a chunk, per call) and once
 * kept with the pool (pm_pool_new with worker_init: one init per thread for
 * the pool's life, the goal); the line reports both totals and inits.
 *
 * Output: one JSON object per line. --quick: small sizes (ctest smoke run);
 * --thp: the corpus in transparent huge pages (first_touch below says why).
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* madvise, MADV_HUGEPAGE */
#include "bench_util.h"
#include "parmap.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define WORD 20
#define PREFIXES (26 * 26 * 26)
#define CORPUS_WORDS ((size_t)1 << 20)
#define THRESHOLD 3

static unsigned char *corpus;
static size_t ndocs = 2000, base_words = 10000, delta_words = 5000;

typedef struct doc {
    size_t start, words;
} doc;

static doc *docs;
static size_t total_words;

typedef struct counts {
    uint32_t n[PREFIXES];
} counts;

/* --thp: the corpus in transparent huge pages (see first_touch below). */
static int thp;

static void make_corpus(void)
{
    size_t bytes = CORPUS_WORDS * WORD;
    if (thp) {
        corpus = aligned_alloc((size_t)2 << 20, bytes); /* 20 MB: a multiple of 2 MB */
#ifdef MADV_HUGEPAGE
        if (corpus)
            madvise(corpus, bytes, MADV_HUGEPAGE);
#endif
    } else {
        corpus = malloc(bytes);
    }
    docs = malloc(ndocs * sizeof *docs);
    if (!corpus || !docs) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < CORPUS_WORDS * WORD; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        corpus[i] = (unsigned char)('a' + (x >> 32) % 26);
    }
    total_words = 0;
    for (size_t i = 0; i < ndocs; i++) {
        docs[i].start = (i * 7919u * 1021u) % CORPUS_WORDS;
        docs[i].words = i % 2 == 0 ? base_words + delta_words : base_words - delta_words;
        total_words += docs[i].words;
    }
}

/* The work of one document: count its words' prefixes into c. */
static void count_doc(const doc *d, counts *c)
{
    size_t w = d->start;
    for (size_t k = 0; k < d->words; k++) {
        const unsigned char *p = corpus + w * WORD;
        c->n[(p[0] - 'a') * 676 + (p[1] - 'a') * 26 + (p[2] - 'a')]++;
        if (++w == CORPUS_WORDS)
            w = 0;
    }
}

/* The exit record: counters of the prefixes seen more than THRESHOLD times. */
static void keep_frequent(const counts *c, counts *rec)
{
    for (int i = 0; i < PREFIXES; i++)
        rec->n[i] = c->n[i] > THRESHOLD ? c->n[i] : 0;
}

static void merge(counts *into, const counts *rec)
{
    for (int i = 0; i < PREFIXES; i++)
        into->n[i] += rec->n[i];
}

static counts expected, result;

/* ---------------------------------------------------------------- serial */

static void run_serial(void)
{
    counts *c = calloc(1, sizeof *c);
    for (size_t i = 0; i < ndocs; i++)
        count_doc(&docs[i], c);
    memset(&result, 0, sizeof result);
    keep_frequent(c, &result);
    free(c);
}

/* ------------------------------------------------------ hand-written pthreads */

static atomic_size_t next_doc;
static counts hand_recs[64];

static void *hand_main(void *arg)
{
    counts *rec = arg;
    counts *c = calloc(1, sizeof *c);
    size_t i;
    while ((i = atomic_fetch_add(&next_doc, 1)) < ndocs)
        count_doc(&docs[i], c);
    keep_frequent(c, rec);
    free(c);
    return NULL;
}

static int nthreads = 2;

static void run_hand(void)
{
    pthread_t t[64];
    atomic_store(&next_doc, 0);
    for (int k = 1; k < nthreads; k++)
        pthread_create(&t[k], NULL, hand_main, &hand_recs[k]);
    hand_main(&hand_recs[0]); /* the caller works too, as parmap's does */
    for (int k = 1; k < nthreads; k++)
        pthread_join(t[k], NULL);
    memset(&result, 0, sizeof result);
    for (int k = 0; k < nthreads; k++)
        merge(&result, &hand_recs[k]);
}

/* ---------------------------------------------------------------- parmap */

static int pm_init(void *user, void **state)
{
    (void)user;
    *state = calloc(1, sizeof(counts));
    return *state ? 0 : -1;
}

static void pm_exit(void *user, void *state, void *rec)
{
    (void)user;
    keep_frequent(state, rec);
    free(state);
}

static int pm_item(void *user, const void *in, void *out)
{
    (void)user;
    (void)out;
    count_doc(in, pm_worker_state());
    return 0;
}

static counts pm_recs[64];
static pm_pool *pool, *procs_pool;

static int pm_skip(void *user, const void *in, void *out)
{
    (void)user, (void)in, (void)out;
    return 0;
}

static void run_fn_on(pm_fn fn, pm_pool *on)
{
    pm_report rep;
    int rc = pm_map(fn, NULL, docs, sizeof(doc), NULL, 0, ndocs,
                    &(pm_opts){.pool = on, .worker_init = pm_init, .worker_exit = pm_exit,
                               .exit_results = pm_recs, .exit_size = sizeof(counts),
                               .exit_capacity = 64},
                    &rep);
    if (rc != PM_OK) {
        fprintf(stderr, "pm_map: %s\n", pm_strerror(rc));
        exit(1);
    }
    memset(&result, 0, sizeof result);
    for (size_t k = 0; k < rep.exit_count; k++)
        merge(&result, &pm_recs[k]);
}

static void run_on(pm_pool *on)
{
    run_fn_on(pm_item, on);
}

static void run_parmap(void)
{
    run_on(pool);
}

static void run_parmap_procs(void)
{
    run_on(procs_pool);
}

/* The same call with items that do nothing: what a processes call costs
 * besides the work (the fork of the workers, the states, the records). */
static void run_procs_empty(void)
{
    run_fn_on(pm_skip, procs_pool);
}

/* What a version kept in all. Each worker keeps only the prefixes it saw
 * more than THRESHOLD times (mpire's benchmark does the same), so the
 * merged counts depend on how documents fell to workers: a parallel run can
 * only keep less than the serial one, never more (the check below). */
static uint64_t kept_total(const counts *c)
{
    uint64_t t = 0;
    for (int i = 0; i < PREFIXES; i++)
        t += c->n[i];
    return t;
}

typedef void (*impl_fn)(void);

static double time_one(impl_fn f)
{
    bu_sleep_ms(5);
    double t0 = bu_now();
    f();
    return bu_now() - t0;
}

/*
 * Why a process pool can trail threads on some machines: the first read of
 * each page in a process that is new pays whatever the machine charges to map
 * it there. On bare metal or hardware-assisted virtualisation that is nothing
 * (fork copied the page tables); under shadow paging (a PVM guest, seen here)
 * it is microseconds per 4 KB page, on every page the workers read. Time one
 * read of the corpus (a byte per cache line) in a new thread and in a freshly
 * forked child, the same run.
 */
static double touch_corpus(void)
{
    double t0 = bu_now();
    volatile unsigned char sink = 0;
    for (size_t i = 0; i < CORPUS_WORDS * WORD; i += 64)
        sink += corpus[i];
    (void)sink;
    return bu_now() - t0;
}

static void *touch_thread(void *arg)
{
    *(double *)arg = touch_corpus();
    return NULL;
}

static void first_touch(double *thread_s, double *child_s)
{
    pthread_t t;
    pthread_create(&t, NULL, touch_thread, thread_s);
    pthread_join(t, NULL);
    int fds[2];
    *child_s = NAN;
    if (pipe(fds) != 0)
        return;
    pid_t pid = fork();
    if (pid == 0) {
        double s = touch_corpus();
        _exit(write(fds[1], &s, sizeof s) == sizeof s ? 0 : 1);
    }
    close(fds[1]);
    if (pid > 0 && read(fds[0], child_s, sizeof *child_s) != sizeof *child_s)
        *child_s = NAN;
    close(fds[0]);
    if (pid > 0)
        waitpid(pid, NULL, 0);
}

/* ------------------------------------------------------ expensive init */

static atomic_int inits;

static int slow_init(void *user, void **state)
{
    (void)user;
    (void)state;
    atomic_fetch_add(&inits, 1);
    bu_sleep_ms(100);
    return 0;
}

static int tiny(void *user, const void *in, void *out)
{
    (void)user;
    *(int *)out = *(const int *)in + 1;
    return 0;
}

int main(int argc, char **argv)
{
    int quick = 0;
    for (int a = 1; a < argc; a++) {
        quick |= strcmp(argv[a], "--quick") == 0;
        thp |= strcmp(argv[a], "--thp") == 0;
    }
    int reps = quick ? 3 : 7;
    if (quick) {
        ndocs = 200;
        base_words = 1000;
        delta_words = 500;
    }
    make_corpus();
    pool = pm_pool_new(&(pm_opts){.threads = nthreads});
    procs_pool = pm_pool_new(&(pm_opts){.backend = PM_PROCESSES, .procs = nthreads});
    if (!pool || !procs_pool)
        return 1;

    run_serial();
    expected = result;
    /* Interleave: one rep of each, `reps` times (noisy shared machine). */
    double all_s[16], all_h[16], all_p[16], all_q[16], all_e[16];
    int ok = 1;
    for (int r = 0; r < reps; r++) {
        all_s[r] = time_one(run_serial);
        all_h[r] = time_one(run_hand);
        uint64_t hand_kept = kept_total(&result);
        all_p[r] = time_one(run_parmap);
        uint64_t pm_kept = kept_total(&result);
        all_q[r] = time_one(run_parmap_procs);
        if (kept_total(&result) > kept_total(&expected) || kept_total(&result) == 0)
            ok = 0;
        all_e[r] = time_one(run_procs_empty);
        /* Both parallel versions drop the same kind of prefixes (frequent
         * overall, rare in every worker); their kept totals are close to the
         * serial one and never above it. */
        if (pm_kept > kept_total(&expected) || hand_kept > kept_total(&expected))
            ok = 0;
    }
    bu_stats s = bu_stats_of(all_s, reps), h = bu_stats_of(all_h, reps),
             p = bu_stats_of(all_p, reps), q = bu_stats_of(all_q, reps),
             e = bu_stats_of(all_e, reps);
    double w = (double)total_words;
    const char *pages = thp ? "thp" : "default";
    printf("{\"bench\":\"worker_state_stateful\",\"docs\":%zu,\"words\":%zu,\"threads\":%d,"
           "\"reps\":%d,\"corpus_pages\":\"%s\",\"serial_best_s\":%.4f,\"serial_median_s\":%.4f,"
           "\"hand_pthreads_best_s\":%.4f,\"hand_pthreads_median_s\":%.4f,"
           "\"parmap_threads_best_s\":%.4f,\"parmap_threads_median_s\":%.4f,"
           "\"parmap_mwords_per_s\":%.1f,\"hand_mwords_per_s\":%.1f,"
           "\"ratio_vs_hand_best\":%.3f,\"ratio_vs_hand_median\":%.3f,"
           "\"speedup_vs_serial\":%.2f,\"results_ok\":%s}\n",
           ndocs, total_words, nthreads, reps, pages, s.best, s.median, h.best, h.median, p.best,
           p.median, w / p.best / 1e6, w / h.best / 1e6, h.best / p.best, h.median / p.median,
           s.best / p.best, ok ? "true" : "false");
    printf("{\"bench\":\"worker_state_stateful\",\"backend\":\"processes\",\"procs\":%d,"
           "\"threads_per_proc\":1,\"docs\":%zu,\"words\":%zu,\"reps\":%d,\"corpus_pages\":\"%s\","
           "\"parmap_processes_best_s\":%.4f,\"parmap_processes_median_s\":%.4f,"
           "\"parmap_mwords_per_s\":%.1f,\"hand_pthreads_best_s\":%.4f,"
           "\"ratio_vs_hand_best\":%.3f,\"ratio_vs_hand_median\":%.3f,"
           "\"ratio_vs_parmap_threads_median\":%.3f,\"speedup_vs_serial\":%.2f,"
           "\"empty_items_median_s\":%.4f,\"results_ok\":%s}\n",
           nthreads, ndocs, total_words, reps, pages, q.best, q.median, w / q.best / 1e6, h.best,
           h.best / q.best, h.median / q.median, p.median / q.median, s.best / q.best, e.median,
           ok ? "true" : "false");
    double touch_thread_s, touch_child_s;
    first_touch(&touch_thread_s, &touch_child_s);
    printf("{\"bench\":\"first_touch\",\"corpus_mb\":%zu,\"corpus_pages\":\"%s\","
           "\"new_thread_s\":%.4f,\"forked_child_s\":%.4f,\"child_us_per_4k_page\":%.2f}\n",
           CORPUS_WORDS * WORD >> 20, pages, touch_thread_s, touch_child_s,
           touch_child_s / (double)(CORPUS_WORDS * WORD / 4096) * 1e6);

    /* Expensive initialisation: 50 small maps on the warm pool. */
    int maps = quick ? 5 : 50;
    int tin[100], tout[100];
    for (int i = 0; i < 100; i++)
        tin[i] = i;
    atomic_store(&inits, 0);
    double t0 = bu_now();
    for (int k = 0; k < maps; k++)
        if (pm_map(tiny, NULL, tin, sizeof(int), tout, sizeof(int), 100,
                   &(pm_opts){.pool = pool, .worker_init = slow_init}, NULL) != PM_OK)
            return 1;
    double total = bu_now() - t0;
    t0 = bu_now();
    for (int k = 0; k < maps; k++)
        pm_map(tiny, NULL, tin, sizeof(int), tout, sizeof(int), 100, &(pm_opts){.pool = pool},
               NULL);
    double bare = bu_now() - t0;
    int per_call_inits = atomic_load(&inits);
    /* The same maps on a pool that keeps the state: one init per thread
     * for the pool's whole life (pm_pool_new with worker_init). */
    atomic_store(&inits, 0);
    t0 = bu_now();
    pm_pool *kept = pm_pool_new(&(pm_opts){.threads = nthreads, .worker_init = slow_init});
    if (!kept)
        return 1;
    for (int k = 0; k < maps; k++)
        if (pm_map(tiny, NULL, tin, sizeof(int), tout, sizeof(int), 100,
                   &(pm_opts){.pool = kept}, NULL) != PM_OK)
            return 1;
    pm_pool_free(kept);
    double kept_total = bu_now() - t0;
    int kept_inits = atomic_load(&inits);
    printf("{\"bench\":\"worker_state_expensive_init\",\"maps\":%d,\"items\":100,\"threads\":%d,"
           "\"init_s\":0.1,\"without_init_s\":%.4f,"
           "\"per_call_total_s\":%.3f,\"per_call_inits\":%d,"
           "\"pool_kept_total_s\":%.3f,\"pool_kept_inits\":%d,"
           "\"goal\":\"pool_kept_inits == threads\",\"goal_met\":%s}\n",
           maps, nthreads, bare, total, per_call_inits, kept_total, kept_inits,
           kept_inits == nthreads ? "true" : "false");
    pm_pool_free(pool);
    pm_pool_free(procs_pool);
    free(corpus);
    free(docs);
    return ok ? 0 : 1;
}
