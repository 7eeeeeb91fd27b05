/*
 * test_proc_records.c - what the processes executor (PM_PROCESSES) does with
 * the caller's records: in == out, no outputs (pm_map with out NULL, pm_imap
 * with out_stride 0: side effects only, counted in shared memory), on procs
 * 1, 2, 3 x threads per process 1, 2; then 8-byte, 100 KB and > 4 MB records
 * (bigger than a worker's scratch) through pm_map and pm_imap, with record
 * pointers as aligned as the caller's. Failed items keep their sentinels.
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

/* ---------------------------------------------------------------- main */

static void layouts(const pcfg *c)
{
    test_inplace(c);
    test_no_outputs(c);
}

int main(void)
{
    proc_init("test_proc_records");
    pmt_thread_baseline(); /* (TSan starts a thread of its own at the first thread) */
    proc_matrix("layouts", layouts);
    RUN(60, test_record_sizes());
    return proc_done("test_proc_records");
}

#endif
