/*
 * test_proc_imap.c - the processes executor (PM_PROCESSES) under pm_imap, on
 * procs 1, 2, 3 x threads per process 1, 2: every kind of failure through an
 * iterator, ordered and unordered (each index once, with its code; the report
 * as pm_map's), a crash in every chunk of a stream, and PM_RAISE (PM_ECRASH
 * with the failing index, after exactly the results before it when ordered).
 * After every call the process has as many children (none), zombies, open
 * fds and threads as before.
 */
#include "proc_util.h"

#if !PMT_HAVE_FORK
int main(void)
{
    PMT_SKIP("no fork() on this target (test_proc_crashes checks PM_PROCESSES is PM_ENOTSUP)");
}
#else

/* ------------------------------------------------------------ pm_imap */

/* The mixed plan through an iterator: each index once, with its code. */
static void test_imap_mixed(const pcfg *c, int unordered)
{
    CHECK_CTX("imap mixed procs %d threads %d unordered %d", c->procs, c->threads, unordered);
    snap base = snap_take();
    rec *r = make_mixed();
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

/* A crash in every chunk of a stream. */
static void test_imap_every_chunk(const pcfg *c, int unordered)
{
    CHECK_CTX("imap, a crash in every chunk, procs %d threads %d unordered %d", c->procs,
              c->threads, unordered);
    snap base = snap_take();
    const size_t n = EVERY_CHUNK_N;
    static const int kinds[] = {A_EXIT3, A_SEGV, A_ABORT};
    rec *r = make_every_chunk(53, kinds);
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

/* ---------------------------------------------------------------- main */

static void imaps(const pcfg *c)
{
    test_imap_mixed(c, 0);
    test_imap_mixed(c, 1);
    test_imap_every_chunk(c, c->procs % 2);
    test_imap_raise(c, 0);
    test_imap_raise(c, 1);
}

int main(void)
{
    proc_init("test_proc_imap");
    pmt_thread_baseline(); /* (TSan starts a thread of its own at the first thread) */
    proc_matrix("imaps", imaps);
    return proc_done("test_proc_imap");
}

#endif
