/*
 * test_mpi_state.c - per-worker state on the MPI executor (opts.worker_init /
 * worker_exit / exit_results, pm_worker_state), run by ctest under mpirun
 * with 3 ranks and with 2. A worker is one thread of one rank: its state
 * lives in that rank's process, and its exit record comes back to rank 0
 * (with results_everywhere, to every rank).
 *
 * Every state counts the items (and sums the inputs) it ran and gets a
 * serial number from its rank; its exit record carries its rank, serial,
 * count and sum. After each call every rank sums its own tallies (inits,
 * exits, items run) with the others', so the checks hold whatever rank ran
 * what: one record per worker that started, from the rank it started on,
 * none twice; the counts in the records add up to the items that ran; and
 * every worker that started ran its exit, also when the call failed (an
 * item error in PM_RAISE mode, a worker_init failing on one rank, rank 0's
 * cancellation). Cases run with an item function and a batch function, 1
 * and 2 threads per rank, plus pm_imap, pm_vmap and exit_capacity below
 * ranks x threads. A watchdog turns a hang into a failure naming the case.
 */
#include "check.h"

#include "parmap_value.h"

#include <mpi.h>
#include <signal.h>
#include <unistd.h>

#define N 4000
#define CHUNK 4
#define ITEM_S 20e-6      /* each item sleeps this long: every thread gets chunks */
#define FAIL_CODE 42
#define BAD_STATE 99      /* an item that found no state */
#define INIT_FAIL 7
#define MAX_RANKS 16

static int rank, size;

/* ------------------------------------------------------------- watchdog */

static const char *volatile current_case = "";

static void on_watchdog(int sig)
{
    (void)sig;
    static const char msg[] = "test_mpi_state: watchdog: a call hung: ";
    const char *c = current_case;
    (void)!write(2, msg, sizeof msg - 1);
    (void)!write(2, c, strlen(c));
    (void)!write(2, "\n", 1);
    _exit(3);
}

/* Name the case and give it `seconds` (more under sanitizers). */
static void start_case(const char *name, unsigned seconds)
{
    current_case = name;
    alarm(PMT_SANITIZED ? 3 * seconds : seconds);
    CHECK_CTX("rank %d of %d: %s", rank, size, name);
}

/* ---------------------------------------------------------- the states */

typedef struct wstate {
    int64_t serial, items, sum;
} wstate;

/* An exit record. */
typedef struct rec {
    int64_t rank, serial, items, sum;
} rec;

/* This process's tallies, summed over the ranks after each call. */
static atomic_long inits, init_failures, exits, ran, bad_state, serials;

/* What the current case makes fail. */
static int fail_init_rank = -1;   /* every worker_init on this rank fails */
static int64_t fail_item = -1;    /* this input fails its item */
static pm_cancel *cancel_token;   /* rank 0: requested by its first worker past... */
static int64_t cancel_after = -1; /* ...this many items */

static int w_init(void *user, void **state)
{
    (void)user;
    if (rank == fail_init_rank) {
        atomic_fetch_add(&init_failures, 1);
        return INIT_FAIL;
    }
    wstate *s = calloc(1, sizeof *s);
    if (!s)
        return 1;
    s->serial = atomic_fetch_add(&serials, 1);
    atomic_fetch_add(&inits, 1);
    *state = s;
    return 0;
}

static void w_exit(void *user, void *state, void *result)
{
    (void)user;
    wstate *s = state;
    if (result) {
        rec r = {rank, s->serial, s->items, s->sum};
        memcpy(result, &r, sizeof r);
    }
    atomic_fetch_add(&exits, 1);
    free(s);
}

/* One item in the worker's state: 0 or its code. */
static int one(wstate *s, int64_t x, int64_t *y)
{
    atomic_fetch_add(&ran, 1);
    s->items++;
    pmt_sleep(ITEM_S);
    if (x == fail_item)
        return FAIL_CODE;
    s->sum += x;
    *y = 2 * x;
    if (rank == 0 && cancel_token && s->items == cancel_after)
        pm_cancel_request(cancel_token);
    return 0;
}

/* in: int64 x; out: int64 2x. */
static int item(void *user, const void *in, void *out)
{
    (void)user;
    wstate *s = pm_worker_state();
    if (!s) {
        atomic_fetch_add(&bad_state, 1);
        return BAD_STATE;
    }
    int64_t x, y = 0;
    memcpy(&x, in, sizeof x);
    int code = one(s, x, &y);
    memcpy(out, &y, sizeof y);
    return code;
}

static size_t batch(void *user, size_t first, size_t count, const void *in, void *out,
                    int *codes)
{
    (void)user;
    (void)first;
    wstate *s = pm_worker_state();
    const int64_t *x = in;
    int64_t *y = out;
    for (size_t k = 0; k < count; k++) {
        if (!s) {
            atomic_fetch_add(&bad_state, 1);
            codes[k] = BAD_STATE;
        } else {
            codes[k] = one(s, x[k], &y[k]);
        }
        if (codes[k])
            return k + 1; /* PM_RAISE stops there; PM_RETURN calls again */
    }
    return count;
}

/* ------------------------------------------------------------ checking */

typedef struct totals {
    long inits, init_failures, exits, ran, bad_state;
    long inits_of[MAX_RANKS]; /* per rank */
} totals;

/* Every rank's tallies, summed (a collective: every rank calls it after
 * every call), then reset for the next call. */
static totals sum_tallies(void)
{
    long mine[5] = {atomic_exchange(&inits, 0), atomic_exchange(&init_failures, 0),
                    atomic_exchange(&exits, 0), atomic_exchange(&ran, 0),
                    atomic_exchange(&bad_state, 0)};
    long all[5] = {0};
    MPI_Allreduce(mine, all, 5, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    totals t = {all[0], all[1], all[2], all[3], all[4], {0}};
    MPI_Allgather(&mine[0], 1, MPI_LONG, t.inits_of, 1, MPI_LONG, MPI_COMM_WORLD);
    atomic_store(&serials, 0);
    return t;
}

/* The records against the tallies: one per worker that started, each from
 * the rank it started on and none twice, and their counts add up to the
 * items that ran. `have`: this rank holds the records (rank 0, or every
 * rank with results_everywhere). */
static void check_records(const totals *t, const pm_report *rep, const rec *recs, int have)
{
    CHECK_EQ_INT(t->bad_state, 0);
    CHECK_EQ_INT(t->exits, t->inits); /* every worker that started ran its exit */
    CHECK_EQ_SIZE(rep->exit_count, (size_t)t->inits);
    CHECK_EQ_SIZE(rep->exit_dropped, 0);
    if (!have)
        return;
    long per_rank[MAX_RANKS] = {0}, items = 0;
    for (size_t k = 0; k < rep->exit_count; k++) {
        CHECK_CTX_ADD(" (record %zu)", k);
        CHECK(recs[k].rank >= 0 && recs[k].rank < size);
        per_rank[recs[k].rank]++;
        CHECK(recs[k].serial >= 0 && recs[k].serial < t->inits_of[recs[k].rank]);
        for (size_t j = 0; j < k; j++)
            CHECK(recs[j].rank != recs[k].rank || recs[j].serial != recs[k].serial);
        items += recs[k].items;
    }
    for (int r = 0; r < size; r++)
        CHECK_EQ_INT(per_rank[r], t->inits_of[r]);
    CHECK_EQ_INT(items, t->ran);
}

static pm_opts state_opts(int threads, rec *recs, size_t capacity)
{
    return (pm_opts){.backend = PM_MPI, .threads = threads, .chunksize = CHUNK,
                     .worker_init = w_init, .worker_exit = w_exit, .exit_results = recs,
                     .exit_size = sizeof(rec), .exit_capacity = capacity};
}

static int64_t *inputs(void)
{
    int64_t *in = malloc(N * sizeof *in);
    CHECK(in != NULL);
    for (int64_t i = 0; i < N; i++)
        in[i] = i;
    return in;
}

static int run_map(int use_batch, const int64_t *in, int64_t *out, const pm_opts *o,
                   pm_report *rep)
{
    /* Followers pass no arrays (they are not read) unless results come to
     * them too. */
    int arrays = rank == 0 || o->results_everywhere;
    return use_batch ? pm_map_batch(batch, NULL, arrays ? in : NULL, 8, arrays ? out : NULL,
                                    arrays ? 8 : 0, arrays ? N : 0, o, rep)
                     : pm_map(item, NULL, arrays ? in : NULL, 8, arrays ? out : NULL,
                              arrays ? 8 : 0, arrays ? N : 0, o, rep);
}

/* --------------------------------------------------------------- cases */

/* Per-worker counts over a whole map: one record per worker (ranks x
 * threads: every thread gets chunks), adding up to n. */
static void case_counts(int threads, int use_batch, int everywhere)
{
    static char name[96];
    snprintf(name, sizeof name, "counts threads=%d batch=%d everywhere=%d", threads, use_batch,
             everywhere);
    start_case(name, 60);
    size_t cap = (size_t)size * (size_t)threads + 3;
    rec *recs = calloc(cap, sizeof *recs);
    int64_t *in = inputs(), *out = calloc(N, sizeof *out);
    CHECK(recs && out);
    pm_opts o = state_opts(threads, recs, cap);
    o.results_everywhere = everywhere;
    pm_report rep;
    CHECK_STATUS(PM_OK, run_map(use_batch, in, out, &o, &rep));
    totals t = sum_tallies();
    CHECK_EQ_SIZE(rep.done, N);
    CHECK_EQ_INT(t.ran, N);
    CHECK_EQ_INT(t.init_failures, 0);
    CHECK_EQ_INT(t.inits, (long)size * threads); /* one per worker, ranks x threads */
    int have = rank == 0 || everywhere;
    check_records(&t, &rep, recs, have);
    if (have) {
        int64_t sum = 0;
        for (size_t k = 0; k < rep.exit_count; k++)
            sum += recs[k].sum;
        CHECK_EQ_INT(sum, (int64_t)N * (N - 1) / 2);
        for (int64_t i = 0; i < N; i++)
            CHECK_EQ_INT(out[i], 2 * i);
    }
    free(recs);
    free(in);
    free(out);
}

/* Every worker_init on one rank fails: the call fails with PM_EWORKERINIT
 * on every rank, and the workers that did start (elsewhere) run their
 * exits, whose records reach rank 0. */
static void case_init_fails(int failing_rank, int threads, int use_batch, pm_on_error mode)
{
    static char name[128];
    snprintf(name, sizeof name, "init fails on rank %d threads=%d batch=%d mode=%s",
             failing_rank, threads, use_batch, mode == PM_RAISE ? "raise" : "return");
    start_case(name, 60);
    size_t cap = (size_t)size * (size_t)threads;
    rec *recs = calloc(cap, sizeof *recs);
    int64_t *in = inputs(), *out = calloc(N, sizeof *out);
    int *codes = calloc(N, sizeof *codes);
    CHECK(recs && out && codes);
    pm_opts o = state_opts(threads, recs, cap);
    o.on_error = mode;
    o.codes = rank == 0 ? codes : NULL;
    fail_init_rank = failing_rank;
    pm_report rep;
    CHECK_STATUS(PM_EWORKERINIT, run_map(use_batch, in, out, &o, &rep));
    fail_init_rank = -1;
    totals t = sum_tallies();
    CHECK_OP_INT(t.init_failures, >=, 1);
    CHECK_EQ_INT(t.inits_of[failing_rank], 0);
    CHECK_OP_SIZE(rep.done, <, (size_t)N); /* the call stopped */
    check_records(&t, &rep, recs, rank == 0);
    if (rank == 0) {
        /* The items given to a worker whose init failed say so, and none
         * of them ran there (every item that ran counts in a record). */
        size_t refused = 0;
        for (int64_t i = 0; i < N; i++)
            refused += codes[i] == PM_EWORKERINIT;
        CHECK_OP_SIZE(refused, >=, 1);
    }
    free(recs);
    free(in);
    free(out);
    free(codes);
}

/* An item fails in PM_RAISE mode: PM_EITEM everywhere with its index, and
 * still every worker that started runs its exit. */
static void case_item_error(int threads, int use_batch)
{
    static char name[96];
    snprintf(name, sizeof name, "item error threads=%d batch=%d", threads, use_batch);
    start_case(name, 60);
    size_t cap = (size_t)size * (size_t)threads;
    rec *recs = calloc(cap, sizeof *recs);
    int64_t *in = inputs(), *out = calloc(N, sizeof *out);
    CHECK(recs && out);
    pm_opts o = state_opts(threads, recs, cap);
    fail_item = N / 2;
    pm_report rep;
    CHECK_STATUS(PM_EITEM, run_map(use_batch, in, out, &o, &rep));
    fail_item = -1;
    totals t = sum_tallies();
    CHECK_EQ_SIZE(rep.first_error_index, (size_t)N / 2);
    CHECK_EQ_INT(rep.first_error_code, FAIL_CODE);
    CHECK_OP_INT(t.inits, >=, 1);
    check_records(&t, &rep, recs, rank == 0);
    free(recs);
    free(in);
    free(out);
}

/* Rank 0's token, requested by one of its workers: PM_ECANCELED
 * everywhere, every exit ran. */
static void case_cancel(int threads)
{
    start_case(threads == 1 ? "cancel threads=1" : "cancel threads=2", 60);
    size_t cap = (size_t)size * (size_t)threads;
    rec *recs = calloc(cap, sizeof *recs);
    int64_t *in = inputs(), *out = calloc(N, sizeof *out);
    CHECK(recs && out);
    pm_opts o = state_opts(threads, recs, cap);
    cancel_token = rank == 0 ? pm_cancel_new() : NULL;
    cancel_after = 20;
    o.cancel = cancel_token;
    pm_report rep;
    CHECK_STATUS(PM_ECANCELED, run_map(0, in, out, &o, &rep));
    pm_cancel_free(cancel_token);
    cancel_token = NULL;
    cancel_after = -1;
    totals t = sum_tallies();
    CHECK_OP_SIZE(rep.done, <, (size_t)N);
    check_records(&t, &rep, recs, rank == 0);
    free(recs);
    free(in);
    free(out);
}

/* exit_capacity below ranks x threads: PM_EINVAL before anything runs,
 * whether every rank's buffer is too small or only rank 0's. */
static void case_capacity(int only_rank0)
{
    start_case(only_rank0 ? "capacity short on rank 0" : "capacity short everywhere", 30);
    const int threads = 2;
    size_t cap = (size_t)size * threads;
    rec *recs = calloc(cap, sizeof *recs);
    int64_t *in = inputs(), *out = calloc(N, sizeof *out);
    CHECK(recs && out);
    pm_opts o = state_opts(threads, recs, (!only_rank0 || rank == 0) ? cap - 1 : cap);
    pm_report rep;
    CHECK_STATUS(PM_EINVAL, run_map(0, in, out, &o, &rep));
    totals t = sum_tallies();
    CHECK_EQ_INT(t.inits, 0);
    CHECK_EQ_INT(t.ran, 0);
    CHECK_EQ_SIZE(rep.exit_count, 0);
    free(recs);
    free(in);
    free(out);
}

/* pm_imap: the same records through a stream. */
static int range_src(void *src, void *item_)
{
    return pmt_range_src(src, item_);
}

static void case_imap(int threads)
{
    start_case(threads == 1 ? "imap threads=1" : "imap threads=2", 60);
    size_t cap = (size_t)size * (size_t)threads;
    rec *recs = calloc(cap, sizeof *recs);
    CHECK(recs != NULL);
    pm_opts o = state_opts(threads, recs, cap);
    pmt_range src = {0, N};
    pm_iter *it = pm_imap(item, NULL, rank == 0 ? range_src : NULL, &src, 8, 8, &o);
    CHECK(it != NULL);
    int64_t y;
    size_t index, got = 0;
    int r;
    while ((r = pm_iter_next(it, &y, &index, NULL)) == 1) {
        CHECK_EQ_INT(y, 2 * (int64_t)index);
        got++;
    }
    CHECK_STATUS(0, r);
    pm_report rep;
    CHECK_STATUS(PM_OK, pm_iter_report(it, &rep));
    CHECK_STATUS(PM_OK, pm_iter_free(it));
    totals t = sum_tallies();
    CHECK_EQ_SIZE(got, rank == 0 ? (size_t)N : 0);
    CHECK_EQ_INT(t.ran, N);
    CHECK_EQ_INT(t.bad_state, 0);
    CHECK_EQ_INT(t.exits, t.inits);
    if (rank == 0) /* (a follower's iterator reports nothing of its own) */
        check_records(&t, &rep, recs, 1);
    free(recs);
}

/* pm_vmap: the value layer passes the options through; inputs and results
 * travel as MessagePack, exit records as bytes. */
static int vitem(void *user, pm_call *call, pm_value **result)
{
    (void)user;
    wstate *s = pm_worker_state();
    if (!s) {
        atomic_fetch_add(&bad_state, 1);
        return BAD_STATE;
    }
    int64_t y = 0;
    int code = one(s, pm_arg_int(call, 0, -1), &y);
    if (code)
        return code;
    *result = pm_value_int(y);
    return *result ? 0 : PM_ENOMEM;
}

static void case_vmap(int threads, int everywhere)
{
    start_case(everywhere ? "vmap everywhere" : "vmap", 60);
    const size_t n = 1000;
    size_t cap = (size_t)size * (size_t)threads;
    rec *recs = calloc(cap, sizeof *recs);
    CHECK(recs != NULL);
    pm_value *items = NULL;
    if (rank == 0) {
        items = pm_value_list();
        CHECK(items != NULL);
        for (size_t i = 0; i < n; i++)
            CHECK_STATUS(PM_OK, pm_list_push(items, pm_value_int((int64_t)i)));
    }
    pm_report rep;
    pm_vopts vo = {.base = state_opts(threads, recs, cap), .report = &rep};
    vo.base.results_everywhere = everywhere;
    pm_value *out = NULL;
    CHECK_STATUS(PM_OK, pm_vmap(vitem, NULL, items, &vo, &out));
    totals t = sum_tallies();
    CHECK_EQ_INT(t.ran, (long)n);
    check_records(&t, &rep, recs, rank == 0 || everywhere);
    if (rank == 0) {
        CHECK_EQ_SIZE(pm_value_len(out), n);
        for (size_t i = 0; i < n; i++) {
            int64_t y = -1;
            CHECK_STATUS(PM_OK, pm_value_get_int(pm_list_get(out, i), &y));
            CHECK_EQ_INT(y, 2 * (int64_t)i);
        }
    }
    pm_value_free(out);
    pm_value_free(items);
    free(recs);
}

int main(int argc, char **argv)
{
    signal(SIGALRM, on_watchdog);
    alarm(PMT_SANITIZED ? 180 : 60); /* (pm_mpi_init itself) */
    CHECK_STATUS(PM_OK, pm_mpi_init(&argc, &argv));
    rank = pm_mpi_rank();
    size = pm_mpi_size();
    CHECK(size >= 1 && size <= MAX_RANKS);
    if (rank == 0)
        printf("%d ranks\n", size);

    for (int threads = 1; threads <= 2; threads++)
        for (int use_batch = 0; use_batch <= 1; use_batch++) {
            case_counts(threads, use_batch, 0);
            case_item_error(threads, use_batch);
        }
    case_counts(2, 0, 1);
    case_counts(2, 1, 1);
    for (int use_batch = 0; use_batch <= 1; use_batch++) {
        case_init_fails(size - 1, 2, use_batch, PM_RAISE);
        case_init_fails(size - 1, 2, use_batch, PM_RETURN);
        case_init_fails(0, 2, use_batch, PM_RAISE);
    }
    case_init_fails(size - 1, 1, 0, PM_RAISE);
    case_cancel(1);
    case_cancel(2);
    case_capacity(0);
    case_capacity(1);
    case_imap(1);
    case_imap(2);
    case_vmap(2, 0);
    case_vmap(2, 1);

    alarm(0);
    long checks = atomic_load(&pmt_checks), all = 0;
    MPI_Allreduce(&checks, &all, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0)
        printf("ok test_mpi_state: %ld checks on %d ranks\n", all, size);
    pm_mpi_finalize();
    return 0;
}
