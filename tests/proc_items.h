/*
 * proc_items.h - the items the processes executor's tests map (included by
 * proc_util.h, where fork() exists): records {index, value, action}; most
 * compute f(value), some segfault, abort(), exit(3), loop forever
 * (timeout_s), fail with a code, sleep, report their worker's pid, or hammer
 * malloc and stdio. Plans say which item does what; the oracle is a serial
 * loop: crashed items are PM_ECRASH, timed-out ones PM_ETIMEOUT, item errors
 * keep their code, every other output equals f(value), and failed items'
 * outputs keep their sentinel. Item functions also check that the record
 * pointers they get are as aligned as the caller's arrays.
 */
#ifndef PM_TEST_PROC_ITEMS_H
#define PM_TEST_PROC_ITEMS_H

#define SENT_CODE INT_MIN
#define SENT_OUT 0x5E5E5E5E5E5E5E5EULL
#define FAIL_CODE 7
/* Codes of items that got a record pointer less aligned than the caller's
 * arrays give (a multiple of gcd(stride, 16)): the function casts it. */
#define MISALIGNED_IN 95
#define MISALIGNED_OUT 96

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

static inline uint64_t f(uint64_t x) { return pmt_mix(x ^ 0x9E3779B97F4A7C15ULL); }

static inline int expected_code(int action)
{
    switch (action) {
    case A_SEGV: case A_ABORT: case A_EXIT3: case A_LATE_SEGV: return PM_ECRASH;
    case A_LOOP: return PM_ETIMEOUT;
    case A_FAIL: return FAIL_CODE;
    default: return 0;
    }
}

static inline const char *action_name(int a)
{
    static const char *names[] = {"ok",   "segv", "abort",  "exit3",  "loop",
                                  "fail", "slow", "report", "hammer", "late segv"};
    return a >= 0 && a <= A_LATE_SEGV ? names[a] : "?";
}

/* A real segfault. Sanitizers catch SIGSEGV to print a report and exit(1):
 * restore the default action so the worker dies of the signal, as it would
 * without them. */
static inline void segfault(void)
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
static inline int hammer_item(uint64_t x)
{
    char line[64];
    size_t sizes[] = {16, 200, 4000, 70000, 300000};
    for (int k = 0; k < 5 && !PMT_ASAN; k++) { /* (ASan: see proc_util.h) */
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

static inline int do_action(const ctx *c, const rec *r)
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

static inline int aligned(const void *p, size_t stride)
{
    size_t a = 16;
    while (stride % a)
        a /= 2;
    return (uintptr_t)p % a == 0;
}

/* Whether the record pointers are fit to be cast: 0 or a MISALIGNED code. */
static inline int check_align(const void *in, size_t in_stride, const void *out,
                              size_t out_stride)
{
    if (!aligned(in, in_stride))
        return MISALIGNED_IN;
    if (out && !aligned(out, out_stride))
        return MISALIGNED_OUT;
    return 0;
}

/* The item function: out = f(x), unless the action says otherwise. */
static inline int item_fn(void *user, const void *in, void *out)
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
/* ------------------------------------------------------------ plans */

typedef struct plan {
    size_t at;
    int action;
} plan;

static inline rec *make_recs(size_t n, const plan *p, size_t np)
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

static inline rec *make_mixed(void) { return make_recs(MIXED_N, mixed_plan, MIXED_NP); }

/* A crash in every chunk of 100: 1000 records, record k * 100 + (k * skew) %
 * 100 does kinds[k % 3]. */
#define EVERY_CHUNK_N 1000
static inline rec *make_every_chunk(size_t skew, const int kinds[3])
{
    plan p[10];
    for (size_t k = 0; k < 10; k++)
        p[k] = (plan){k * 100 + (k * skew) % 100, kinds[k % 3]};
    return make_recs(EVERY_CHUNK_N, p, 10);
}

static inline size_t count_failures(const rec *r, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += expected_code(r[i].action) != 0;
    return k;
}

static inline const char *code_hint(int code)
{
    return code == MISALIGNED_IN    ? " = the input record pointer was misaligned"
         : code == MISALIGNED_OUT   ? " = the output record pointer was misaligned"
                                    : "";
}

/* PM_RETURN results against a serial loop: codes, outputs, sentinels. */
static inline void check_results(const rec *r, size_t n, const uint64_t *out, const int *codes)
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
static inline size_t check_partial(const rec *r, size_t n, const uint64_t *out, const int *codes)
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

static inline uint64_t *make_out(size_t n)
{
    uint64_t *o = malloc((n ? n : 1) * sizeof *o);
    CHECK(o != NULL);
    for (size_t i = 0; i < n; i++)
        o[i] = SENT_OUT;
    return o;
}

static inline int *make_codes(size_t n)
{
    int *c = malloc((n ? n : 1) * sizeof *c);
    CHECK(c != NULL);
    for (size_t i = 0; i < n; i++)
        c[i] = SENT_CODE;
    return c;
}

/* ------------------------------------------------------------ streams */

typedef struct rec_src {
    const rec *r;
    size_t n, next;
    size_t stride; /* 0: sizeof(rec) */
} rec_src;

static inline int src_recs(void *src, void *item)
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
/* Run recs through an iterator into out[index] / codes[index] (each index
 * once; in order unless unordered). Returns how the iterator ended. */
static inline int imap_collect(const rec *r, size_t n, pm_opts o, uint64_t *out, int *codes)
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

#endif
