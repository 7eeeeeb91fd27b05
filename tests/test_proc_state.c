/*
 * test_proc_state.c - per-worker state on the processes backend
 * (opts.worker_init / worker_exit / exit_results, pm_worker_state): a worker
 * is one thread of one worker process, its state lives there, and its exit
 * record comes back to the caller, one per worker per process lifetime.
 *
 * How it checks exactly: every init takes a number from a counter in
 * MAP_SHARED memory (the tally, seen by every process), each item writes its
 * worker's number as its output, and each exit record carries the number,
 * the items and the sum of the inputs it saw. So the caller can pair every
 * record with the outputs of its lifetime (counts and sums must match), and
 * the outputs whose number has no record are the items of lifetimes that
 * died (a crash, a timeout, a cancellation kill), which the tally counts
 * too: inits - exits. Cases: pm_map, pm_map_batch, pm_imap, pm_vmap,
 * pm_vimap, a pool, 2 threads per process; PM_RAISE error, cancellation
 * (workers idle, and workers killed mid-piece), timeout, a crash, recycling
 * (records per lifetime, on map and imap, and past exit_capacity:
 * exit_dropped), failing inits, only an exit, an exit that outlives
 * timeout_s, exit_capacity below procs x threads. Each case
 * runs in a process of its own under a deadline (sandbox.h) and checks that
 * no process or fd is left behind.
 */
#define _GNU_SOURCE /* MAP_ANONYMOUS under -std=c11 */
#include "check.h"

#if !PMT_HAVE_FORK
int main(void)
{
    PMT_SKIP("no fork on this target");
}
#else

#include "sandbox.h"
#include "parmap_value.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>

#define WORKER_THREADS_OK (!PMT_TSAN && !PMT_ASAN) /* see proc_util.h */
#define TIMEOUT_S (PMT_SANITIZED ? 1.0 : 0.3)
#define MAGIC 0x57a7e
#define BAD_STATE 99
#define FAIL_CODE 7
#define CAP 4096

/* ----------------------------------------------------------- the tally */

typedef struct tally {
    atomic_long inits, init_failures, exits;
    long fail_init;        /* 0: none; k > 0: the k-th init fails; -1: every init */
    double exit_sleep_s;   /* each exit sleeps this long first */
} tally;

static tally *T; /* MAP_SHARED, made per case */

static void tally_new(long fail_init)
{
    if (!T) /* one per case process (sandbox_run forks it) */
        T = mmap(NULL, sizeof *T, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(T != MAP_FAILED);
    memset(T, 0, sizeof *T);
    T->fail_init = fail_init;
}

/* ------------------------------------------------- state and callbacks */

typedef struct wstate {
    int magic;
    pthread_t thread;
    int64_t id, items, sum;
} wstate;

typedef struct rec {
    int64_t id, items, sum;
    int64_t right_thread;
} rec;

static int w_init(void *user, void **state)
{
    (void)user;
    long seq = atomic_fetch_add(&T->inits, 1) + 1;
    if (T->fail_init == -1 || T->fail_init == seq) {
        atomic_fetch_add(&T->init_failures, 1);
        return 1;
    }
    wstate *s = calloc(1, sizeof *s);
    if (!s)
        return 1;
    *s = (wstate){MAGIC, pthread_self(), seq, 0, 0};
    *state = s;
    return 0;
}

static void w_exit(void *user, void *state, void *result)
{
    (void)user;
    wstate *s = state;
    if (T->exit_sleep_s > 0)
        pmt_sleep(T->exit_sleep_s);
    if (result && s)
        *(rec *)result = (rec){s->id, s->items, s->sum, pthread_equal(s->thread, pthread_self())};
    free(s);
    atomic_fetch_add(&T->exits, 1);
}

/* What items do, by index. */
typedef struct plan {
    int64_t fail, segv, hang; /* -1: none */
} plan;
static const plan NONE = {-1, -1, -1};

static wstate *my_state(void)
{
    wstate *s = pm_worker_state();
    return s && s->magic == MAGIC && pthread_equal(s->thread, pthread_self()) ? s : NULL;
}

static void segfault(void)
{
    signal(SIGSEGV, SIG_DFL); /* sanitizers would catch it and exit(1) */
    raise(SIGSEGV);
}

static int one(const plan *p, int64_t v, int64_t *out)
{
    wstate *s = my_state();
    if (!s)
        return BAD_STATE;
    if (v == p->fail)
        return FAIL_CODE;
    if (v == p->segv)
        segfault();
    if (v == p->hang)
        pmt_sleep(3600);
    s->items++;
    s->sum += v;
    *out = s->id;
    return 0;
}

static int item(void *user, const void *in, void *out)
{
    return one(user, *(const int64_t *)in, out);
}

static size_t batch(void *user, size_t first, size_t count, const void *in, void *out,
                    int *codes)
{
    (void)first;
    for (size_t k = 0; k < count; k++)
        codes[k] = one(user, ((const int64_t *)in)[k], (int64_t *)out + k);
    return count;
}

/* -------------------------------------------------------------- oracle */

static rec recs[CAP];

static pm_opts with_state(pm_opts o)
{
    o.backend = PM_PROCESSES;
    o.worker_init = w_init;
    o.worker_exit = w_exit;
    o.exit_results = recs;
    o.exit_size = sizeof(rec);
    if (!o.exit_capacity)
        o.exit_capacity = CAP;
    return o;
}

/* Pair the records with the outputs (ids; -1: the item did not run or
 * failed). Every record must match its lifetime's outputs exactly; returns
 * the outputs whose lifetime left no record (it died). */
static size_t check_records(const pm_report *rep, const int64_t *in, const int64_t *ids,
                            size_t n)
{
    CHECK_OP_SIZE(rep->exit_count, <=, (size_t)CAP);
    CHECK_EQ_INT((long)rep->exit_count + (long)rep->exit_dropped, atomic_load(&T->exits));
    for (size_t r = 0; r < rep->exit_count; r++) {
        CHECK_CTX("record %zu (id %lld)", r, (long long)recs[r].id);
        CHECK_EQ_INT(recs[r].right_thread, 1);
        for (size_t q = 0; q < r; q++)
            CHECK(recs[q].id != recs[r].id); /* one record per lifetime */
        int64_t items = 0, sum = 0;
        for (size_t i = 0; i < n; i++)
            if (ids[i] == recs[r].id) {
                items++;
                sum += in[i];
            }
        CHECK_EQ_INT(recs[r].items, items);
        CHECK_EQ_INT(recs[r].sum, sum);
    }
    CHECK_CTX("orphans");
    size_t orphans = 0;
    for (size_t i = 0; i < n; i++) {
        int found = ids[i] == -1;
        for (size_t r = 0; r < rep->exit_count && !found; r++)
            found = ids[i] == recs[r].id;
        orphans += !found;
    }
    return orphans;
}

static int64_t *range(size_t n)
{
    int64_t *v = malloc(n * sizeof *v);
    CHECK(v != NULL);
    for (size_t i = 0; i < n; i++)
        v[i] = (int64_t)i;
    return v;
}

static int64_t *unset(size_t n)
{
    int64_t *v = malloc(n * sizeof *v);
    CHECK(v != NULL);
    for (size_t i = 0; i < n; i++)
        v[i] = -1;
    return v;
}

/* A pm_map (or batch) with state; returns the status, fills *rep and checks
 * every record; *orphans: items of lifetimes that died. */
static int map_case(const plan *p, size_t n, pm_opts o, int use_batch, pm_report *rep,
                    size_t *orphans, int *codes)
{
    int64_t *in = range(n), *ids = unset(n);
    o = with_state(o);
    o.codes = codes;
    sandbox_snap before = sandbox_snap_take();
    int rc = use_batch
                 ? pm_map_batch(batch, (void *)p, in, sizeof *in, ids, sizeof *ids, n, &o, rep)
                 : pm_map(item, (void *)p, in, sizeof *in, ids, sizeof *ids, n, &o, rep);
    sandbox_check_leftovers(&before);
    size_t orph = check_records(rep, in, ids, n);
    if (orphans)
        *orphans = orph;
    free(in);
    free(ids);
    return rc;
}

/* --------------------------------------------------------------- cases */

static void case_map(void)
{
    int threads = WORKER_THREADS_OK ? 2 : 1;
    for (int b = 0; b < 2; b++)
        for (int t = 1; t <= threads; t++) {
            tally_new(0);
            CHECK_CTX("%s, 2 procs x %d threads", b ? "batch" : "map", t);
            pm_report rep;
            size_t orphans;
            CHECK_STATUS(PM_OK, map_case(&NONE, 5000, (pm_opts){.procs = 2, .threads = t}, b,
                                         &rep, &orphans, NULL));
            CHECK_EQ_SIZE(orphans, 0);
            CHECK_EQ_SIZE(rep.done, 5000);
            CHECK_OP_SIZE(rep.exit_count, >=, 1);
            CHECK_OP_SIZE(rep.exit_count, <=, (size_t)(2 * t));
            CHECK_EQ_INT(atomic_load(&T->inits), atomic_load(&T->exits));
        }
}

static void case_imap(void)
{
    tally_new(0);
    const size_t n = 3000;
    int64_t *in = range(n), *ids = unset(n);
    pm_opts o = with_state((pm_opts){.procs = 2});
    pmt_range src = {0, (int64_t)n};
    sandbox_snap before = sandbox_snap_take();
    pm_iter *it = pm_imap(item, (void *)&NONE, pmt_range_src, &src, sizeof(int64_t),
                          sizeof(int64_t), &o);
    CHECK(it != NULL);
    int64_t id;
    size_t index;
    int code, r;
    while ((r = pm_iter_next(it, &id, &index, &code)) == 1) {
        CHECK(index < n && code == 0);
        ids[index] = id;
    }
    CHECK_EQ_INT(r, 0);
    pm_report rep;
    CHECK_STATUS(PM_OK, pm_iter_report(it, &rep)); /* after the end: every exit ran */
    CHECK_STATUS(PM_OK, pm_iter_free(it));
    sandbox_check_leftovers(&before);
    CHECK_EQ_SIZE(check_records(&rep, in, ids, n), 0);
    CHECK_EQ_INT(atomic_load(&T->inits), (long)rep.exit_count);
    free(in);
    free(ids);
}

/* pm_vmap: the value layer passes the options through. */
static int vitem(void *user, pm_call *call, pm_value **result)
{
    (void)user;
    wstate *s = my_state();
    if (!s)
        return BAD_STATE;
    s->items++;
    int64_t v = pm_arg_int(call, 0, -1);
    if (v < 0)
        return FAIL_CODE;
    s->sum += v;
    *result = pm_value_int(s->id);
    return *result ? 0 : PM_ENOMEM;
}

static void case_vmap(void)
{
    tally_new(0);
    const size_t n = 500;
    pm_value *items = pm_value_list();
    CHECK(items != NULL);
    for (size_t i = 0; i < n; i++)
        CHECK_STATUS(PM_OK, pm_list_push(items, pm_value_int((int64_t)i)));
    pm_value *out = NULL;
    pm_report rep;
    pm_vopts vo = {.base = with_state((pm_opts){.procs = 2}), .report = &rep};
    CHECK_STATUS(PM_OK, pm_vmap(vitem, NULL, items, &vo, &out));
    int64_t *in = range(n), *ids = unset(n);
    CHECK_EQ_SIZE(pm_value_len(out), n);
    for (size_t i = 0; i < n; i++)
        CHECK_STATUS(PM_OK, pm_value_get_int(pm_list_get(out, i), &ids[i]));
    CHECK_EQ_SIZE(check_records(&rep, in, ids, n), 0);
    pm_value_free(out);
    pm_value_free(items);
    free(in);
    free(ids);
}

/* pm_vimap: the same through a value stream (inputs shipped encoded). */
static int vsrc(void *src, pm_value **item_)
{
    pmt_range *r = src;
    if (r->next >= r->end)
        return 0;
    *item_ = pm_value_int(r->next++);
    return *item_ ? 1 : PM_ENOMEM;
}

static void case_vimap(void)
{
    tally_new(0);
    const size_t n = 500;
    pmt_range src = {0, (int64_t)n};
    pm_vopts vo = {.base = with_state((pm_opts){.procs = 2})};
    pm_viter *it = pm_vimap(vitem, NULL, vsrc, &src, &vo);
    CHECK(it != NULL);
    int64_t *in = range(n), *ids = unset(n);
    pm_value *v;
    size_t index;
    int r;
    while ((r = pm_viter_next(it, &v, &index)) == 1) {
        CHECK(index < n);
        CHECK_STATUS(PM_OK, pm_value_get_int(v, &ids[index]));
        pm_value_free(v);
    }
    CHECK_EQ_INT(r, 0);
    pm_report rep;
    CHECK_STATUS(PM_OK, pm_viter_report(it, &rep));
    CHECK_STATUS(PM_OK, pm_viter_free(it));
    CHECK_EQ_SIZE(check_records(&rep, in, ids, n), 0);
    CHECK_OP_SIZE(rep.exit_count, >=, 1);
    free(in);
    free(ids);
}

/* A processes pool forks its workers per call: state lives per call. */
static void case_pool(void)
{
    tally_new(0);
    pm_pool *pool = pm_pool_new(&(pm_opts){.backend = PM_PROCESSES, .procs = 2});
    CHECK(pool != NULL);
    long inits = 0;
    for (int k = 0; k < 3; k++) {
        tally_new(0);
        pm_report rep;
        size_t orphans;
        CHECK_STATUS(PM_OK, map_case(&NONE, 400, (pm_opts){.pool = pool}, 0, &rep, &orphans,
                                     NULL));
        CHECK_EQ_SIZE(orphans, 0);
        CHECK_EQ_INT(atomic_load(&T->inits), atomic_load(&T->exits));
        inits += atomic_load(&T->inits);
    }
    CHECK_OP_INT(inits, >=, 3); /* each call inits its own workers */
    pm_pool_free(pool);
}

static void case_raise(void)
{
    tally_new(0);
    plan p = NONE;
    p.fail = 1234;
    pm_report rep;
    size_t orphans;
    CHECK_STATUS(PM_EITEM, map_case(&p, 5000, (pm_opts){.procs = 2}, 0, &rep, &orphans, NULL));
    CHECK_EQ_SIZE(orphans, 0);
    CHECK_EQ_SIZE(rep.first_error_index, 1234);
    CHECK_OP_SIZE(rep.exit_count, >=, 1);
    CHECK_EQ_INT(atomic_load(&T->inits), atomic_load(&T->exits));
}

/* Canceled from the progress callback, mid-map: processes with a piece in
 * flight are killed (their states lost), the others run their exits. */
static void cancel_on_progress(void *user, const pm_progress *pr)
{
    if (pr->done >= 2000)
        pm_cancel_request(user);
}

static int slow_item(void *user, const void *in, void *out)
{
    pmt_sleep(0.0002);
    return item(user, in, out);
}

static void case_cancel(void)
{
    tally_new(0);
    const size_t n = 200000;
    pm_cancel *c = pm_cancel_new();
    int64_t *in = range(n), *ids = unset(n);
    pm_opts o = with_state((pm_opts){.procs = 2, .cancel = c, .on_progress = cancel_on_progress,
                                     .progress_user = c});
    pm_report rep;
    sandbox_snap before = sandbox_snap_take();
    CHECK_STATUS(PM_ECANCELED,
                 pm_map(slow_item, (void *)&NONE, in, sizeof *in, ids, sizeof *ids, n, &o, &rep));
    sandbox_check_leftovers(&before);
    check_records(&rep, in, ids, n);
    CHECK_OP_SIZE(rep.done, <, n);
    CHECK_OP_INT((long)rep.exit_count, <=, atomic_load(&T->inits));
    pm_cancel_free(c);
    free(in);
    free(ids);
}

/* Canceled while every worker runs a long piece: their processes are
 * killed at once, with their states; the call still ends cleanly. */
static int slower_item(void *user, const void *in, void *out)
{
    pmt_sleep(0.02);
    return item(user, in, out);
}

static void cancel_soon(void *user, const pm_progress *pr)
{
    if (pr->done >= 10)
        pm_cancel_request(user);
}

static void case_cancel_kills(void)
{
    tally_new(0);
    const size_t n = 2000;
    pm_cancel *c = pm_cancel_new();
    int64_t *in = range(n), *ids = unset(n);
    pm_opts o = with_state((pm_opts){.procs = 2, .chunksize = 10, .cancel = c,
                                     .on_progress = cancel_soon, .progress_user = c});
    pm_report rep;
    sandbox_snap before = sandbox_snap_take();
    double t0 = pmt_now();
    CHECK_STATUS(PM_ECANCELED,
                 pm_map(slower_item, (void *)&NONE, in, sizeof *in, ids, sizeof *ids, n, &o, &rep));
    CHECK_OP_DBL(pmt_now() - t0, <, PMT_SANITIZED ? 10.0 : 3.0);
    sandbox_check_leftovers(&before);
    check_records(&rep, in, ids, n);
    CHECK_OP_INT(atomic_load(&T->inits) - atomic_load(&T->exits), >=, 1);
    pm_cancel_free(c);
    free(in);
    free(ids);
}

/* Canceled while every worker is idle (the stream waits for its source):
 * nothing is killed, every worker that started runs its exit. */
typedef struct gate {
    pmt_range r;
    atomic_int open;
} gate;

static int gated_src(void *src, void *item_)
{
    gate *g = src;
    while (g->r.next == 8 && !atomic_load(&g->open))
        pmt_sleep(0.001);
    if (g->r.next == 8)
        return 0;
    return pmt_range_src(&g->r, item_);
}

static void case_cancel_idle(void)
{
    tally_new(0);
    pm_cancel *c = pm_cancel_new();
    gate g = {{0, 100}, 0};
    pm_opts o = with_state((pm_opts){.procs = 2, .cancel = c, .chunksize = 1});
    sandbox_snap before = sandbox_snap_take();
    pm_iter *it = pm_imap(item, (void *)&NONE, gated_src, &g, sizeof(int64_t), sizeof(int64_t), &o);
    int64_t in[8], ids[8], id;
    size_t index;
    for (int k = 0; k < 8; k++) {
        CHECK_EQ_INT(pm_iter_next(it, &id, &index, NULL), 1);
        in[index] = (int64_t)index;
        ids[index] = id;
    }
    pm_cancel_request(c);
    atomic_store(&g.open, 1);
    int r;
    while ((r = pm_iter_next(it, &id, &index, NULL)) == 1)
        ;
    CHECK(r == PM_ECANCELED || r == 0);
    pm_report rep;
    CHECK_STATUS(PM_OK, pm_iter_report(it, &rep));
    pm_iter_free(it);
    sandbox_check_leftovers(&before);
    CHECK_EQ_SIZE(check_records(&rep, in, ids, 8), 0);
    CHECK_EQ_INT(atomic_load(&T->inits), atomic_load(&T->exits));
    CHECK_OP_SIZE(rep.exit_count, >=, 1);
    pm_cancel_free(c);
}

/* A timed-out item's process is killed: its lifetime leaves no record. */
static void case_timeout(void)
{
    tally_new(0);
    plan p = NONE;
    p.hang = 37;
    int codes[400];
    pm_report rep;
    size_t orphans;
    CHECK_STATUS(PM_OK, map_case(&p, 400,
                                 (pm_opts){.procs = 2, .chunksize = 4, .timeout_s = TIMEOUT_S,
                                           .on_error = PM_RETURN},
                                 0, &rep, &orphans, codes));
    CHECK_STATUS(PM_ETIMEOUT, codes[37]);
    CHECK_EQ_INT(atomic_load(&T->inits) - atomic_load(&T->exits), 1);
    CHECK_EQ_SIZE(rep.failed, 1);
    (void)orphans; /* items 36.. of its chunk before 37 may have run there */
}

/* A crashing item is retried alone in a fresh process, which it kills too:
 * two lifetimes die; every other record stays exact. */
static void case_crash(void)
{
    tally_new(0);
    plan p = NONE;
    p.segv = 250;
    int codes[600];
    pm_report rep;
    size_t orphans;
    CHECK_STATUS(PM_OK, map_case(&p, 600, (pm_opts){.procs = 2, .on_error = PM_RETURN}, 0, &rep,
                                 &orphans, codes));
    CHECK_STATUS(PM_ECRASH, codes[250]);
    CHECK_EQ_INT(rep.signal, SIGSEGV);
    CHECK_EQ_INT(atomic_load(&T->inits) - atomic_load(&T->exits), 2);
    int64_t counted = 0;
    for (size_t r = 0; r < rep.exit_count; r++)
        counted += recs[r].items;
    CHECK_EQ_INT(counted + (int64_t)orphans, 599); /* every other item, once */
}

/* Recycling: one record per process lifetime, sums exact; a buffer too
 * small for them all keeps the first ones and counts the rest. */
static void case_recycle(void)
{
    const size_t n = 1000;
    for (int small = 0; small < 2; small++) {
        tally_new(0);
        CHECK_CTX("recycle every 50, %s buffer", small ? "small" : "big");
        pm_report rep;
        size_t orphans;
        CHECK_STATUS(PM_OK, map_case(&NONE, n,
                                     (pm_opts){.procs = 2, .recycle_items = 50,
                                               .exit_capacity = small ? 2 : 0},
                                     0, &rep, &orphans, NULL));
        CHECK_EQ_INT(atomic_load(&T->inits), atomic_load(&T->exits));
        /* A lifetime ends after 50 items, or a little more: the piece
         * queued behind the one that reached the limit runs there too. */
        CHECK_OP_INT((long)(rep.exit_count + rep.exit_dropped), >=, (long)(n / 100));
        if (small) {
            CHECK_EQ_SIZE(rep.exit_count, 2);
            CHECK_OP_SIZE(rep.exit_dropped, >, 0);
        } else {
            CHECK_EQ_SIZE(orphans, 0);
            CHECK_EQ_SIZE(rep.exit_dropped, 0);
            int64_t counted = 0;
            for (size_t r = 0; r < rep.exit_count; r++) {
                CHECK_OP_INT(recs[r].items, <=, 100);
                counted += recs[r].items;
            }
            CHECK_EQ_INT(counted, (int64_t)n);
        }
    }
}

/* Recycling on a stream (replacements forked by the crew, not the caller)
 * and with 2 threads per process: still one exact record per lifetime. */
static void case_recycle_more(void)
{
    const size_t n = 1200;
    for (int t = 1; t <= (WORKER_THREADS_OK ? 2 : 1); t++) {
        tally_new(0);
        CHECK_CTX("imap, %d thread(s) per process, recycle every 40", t);
        int64_t *in = range(n), *ids = unset(n);
        pm_opts o = with_state((pm_opts){.procs = 2, .threads = t, .chunksize = 4,
                                         .recycle_items = 40});
        pmt_range src = {0, (int64_t)n};
        sandbox_snap before = sandbox_snap_take();
        pm_iter *it = pm_imap(item, (void *)&NONE, pmt_range_src, &src, sizeof(int64_t),
                              sizeof(int64_t), &o);
        int64_t id;
        size_t index;
        int code, r;
        while ((r = pm_iter_next(it, &id, &index, &code)) == 1) {
            CHECK(index < n && code == 0);
            ids[index] = id;
        }
        CHECK_EQ_INT(r, 0);
        pm_report rep;
        CHECK_STATUS(PM_OK, pm_iter_report(it, &rep));
        CHECK_STATUS(PM_OK, pm_iter_free(it));
        sandbox_check_leftovers(&before);
        CHECK_EQ_SIZE(check_records(&rep, in, ids, n), 0);
        CHECK_EQ_INT(atomic_load(&T->inits), (long)rep.exit_count);
        CHECK_OP_SIZE(rep.exit_count, >=, n / 80);
        free(in);
        free(ids);
    }
}

static void case_init_fails(void)
{
    for (long fail = -1; fail <= 2; fail += 3) {
        tally_new(fail);
        CHECK_CTX("init %ld fails", fail);
        int codes[2000];
        for (int i = 0; i < 2000; i++)
            codes[i] = 12345;
        pm_report rep;
        CHECK_STATUS(PM_EWORKERINIT, map_case(&NONE, 2000,
                                              (pm_opts){.procs = 2, .chunksize = 8,
                                                        .on_error = PM_RETURN},
                                              0, &rep, NULL, codes));
        CHECK_OP_INT(atomic_load(&T->init_failures), >=, 1);
        CHECK_EQ_INT(atomic_load(&T->inits) - atomic_load(&T->init_failures),
                     atomic_load(&T->exits)); /* no exit without a state */
        size_t refused = 0;
        for (int i = 0; i < 2000; i++)
            refused += codes[i] == PM_EWORKERINIT;
        CHECK_OP_SIZE(refused, >=, 8);
    }
}

/* Only worker_exit: the state is NULL, the exit still runs per worker. */
static void bare_exit(void *user, void *state, void *result)
{
    (void)user;
    *(int64_t *)result = state == NULL && pm_worker_state() == NULL ? 1 : 100;
    atomic_fetch_add(&T->exits, 1);
}

static int bare_item(void *user, const void *in, void *out)
{
    (void)user;
    *(int64_t *)out = *(const int64_t *)in;
    return pm_worker_state() == NULL ? 0 : BAD_STATE;
}

static void case_exit_only(void)
{
    tally_new(0);
    int64_t *in = range(300), *out = unset(300), r[8] = {0};
    pm_report rep;
    CHECK_STATUS(PM_OK, pm_map(bare_item, NULL, in, sizeof *in, out, sizeof *out, 300,
                               &(pm_opts){.backend = PM_PROCESSES, .procs = 2,
                                          .worker_exit = bare_exit, .exit_results = r,
                                          .exit_size = sizeof r[0], .exit_capacity = 8},
                               &rep));
    CHECK_OP_SIZE(rep.exit_count, >=, 1);
    for (size_t k = 0; k < rep.exit_count; k++)
        CHECK_EQ_INT(r[k], 1);
    free(in);
    free(out);
}

/* An exit that outlives timeout_s: its process is killed, the call ends. */
static void case_slow_exit(void)
{
    tally_new(0);
    T->exit_sleep_s = 3600;
    pm_report rep;
    double t0 = pmt_now();
    CHECK_STATUS(PM_OK, map_case(&NONE, 100, (pm_opts){.procs = 2, .timeout_s = TIMEOUT_S}, 0,
                                 &rep, NULL, NULL));
    CHECK_EQ_SIZE(rep.exit_count, 0);
    CHECK_OP_DBL(pmt_now() - t0, <, 10 * TIMEOUT_S + 3);
}

/* Bad input on processes: exit_capacity below procs x threads. */
static void case_bad_input(void)
{
    tally_new(0);
    int64_t in[4] = {0, 1, 2, 3}, out[4];
    pm_opts o = with_state((pm_opts){.procs = 3, .exit_capacity = 2});
    CHECK_STATUS(PM_EINVAL, pm_map(item, (void *)&NONE, in, sizeof in[0], out, sizeof out[0], 4,
                                   &o, NULL));
    CHECK_EQ_INT(atomic_load(&T->inits), 0);
}

/* ------------------------------------------------------------------ main */

typedef struct tcase {
    const char *name;
    void (*fn)(void);
    unsigned seconds;
} tcase;

static const tcase cases[] = {
    {"map and batch: records equal outputs", case_map, 60},
    {"imap", case_imap, 30},
    {"vmap", case_vmap, 30},
    {"vimap", case_vimap, 30},
    {"processes pool: state per call", case_pool, 30},
    {"raise: every started worker exits", case_raise, 30},
    {"cancel mid-map", case_cancel, 60},
    {"cancel during long pieces: killed, no record", case_cancel_kills, 30},
    {"cancel with idle workers: all exit", case_cancel_idle, 30},
    {"timeout: that lifetime is lost", case_timeout, 30},
    {"crash: two lifetimes lost, rest exact", case_crash, 30},
    {"recycling: one record per lifetime", case_recycle, 60},
    {"recycling: imap, 2 threads per process", case_recycle_more, 60},
    {"init fails: PM_EWORKERINIT", case_init_fails, 30},
    {"exit only", case_exit_only, 30},
    {"exit past timeout_s is killed", case_slow_exit, 30},
    {"bad input", case_bad_input, 10},
};

int main(int argc, char **argv)
{
    int failed = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (argc > 1 && !strstr(cases[i].name, argv[1]))
            continue;
        failed += !sandbox_run(cases[i].name, cases[i].fn, cases[i].seconds);
    }
    if (!WORKER_THREADS_OK)
        printf("  (2 threads per worker process skipped under %s)\n", PMT_TSAN ? "TSan" : "ASan");
    if (failed) {
        fprintf(stderr, "test_proc_state: %d case(s) failed\n", failed);
        return 1;
    }
    printf("ok test_proc_state\n");
    return 0;
}

#endif
