/*
 * test_proc_crashes.c - the processes executor (PM_PROCESSES) under pm_map:
 * crash isolation and per-item timeouts (issue 4). Every map runs on procs
 * 1, 2, 3 x threads per process 1, 2, its items segfault, abort(), exit(3),
 * loop forever or fail here and there (proc_items.h), and it is compared with
 * a serial loop: PM_RETURN mode with chunksize auto and 5, one failing item
 * per map (the report names its signal), a crash in every chunk; PM_RAISE
 * mode (PM_ECRASH / PM_ETIMEOUT with the index). With 2 threads per process,
 * the item running beside a crashing or timed-out one is retried and not
 * marked. After every call the process has as many children (none), zombies,
 * open fds and threads as before (proc_util.h).
 *
 * Without fork (WASI, Emscripten) PM_PROCESSES must say PM_ENOTSUP cleanly,
 * from pm_map, pm_imap and pm_pool_new, which is all this program checks
 * there (the other test_proc_* programs skip).
 */
#include "proc_util.h"

#if !PMT_HAVE_FORK
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
    return pmt_done("test_proc_crashes (no fork: PM_ENOTSUP checked)");
}

#else /* ------------------------------------------------- targets with fork */

/* ------------------------------------------------------------ pm_map */

/* Every kind of failure in one map, PM_RETURN, chunksize auto and 5. */
static void test_mixed(const pcfg *c, long chunksize)
{
    CHECK_CTX("mixed map procs %d threads %d chunksize %ld", c->procs, c->threads, chunksize);
    snap base = snap_take();
    rec *r = make_mixed();
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
    const size_t n = EVERY_CHUNK_N;
    static const int kinds[] = {A_SEGV, A_ABORT, A_EXIT3};
    rec *r = make_every_chunk(37, kinds);
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
                /* timed out beside a sibling: retried alone once, since a
                 * sibling may have stalled the whole process (SIGSTOP) */
                CHECK_EQ_INT(h, c->threads > 1 ? 2 : 1);
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

/* ---------------------------------------------------------------- main */

static void crashes(const pcfg *c)
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
}

int main(void)
{
    proc_init("test_proc_crashes");
    pmt_thread_baseline(); /* (TSan starts a thread of its own at the first thread) */
    proc_matrix("crashes", crashes);
    return proc_done("test_proc_crashes");
}

#endif
