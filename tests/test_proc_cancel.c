/*
 * test_proc_cancel.c - cancelling the processes executor (PM_PROCESSES): a
 * map and an endless iterator of slow items, canceled mid-way from another
 * thread (pm_cancel_request) or from a SIGINT handler (pthread_kill, kill,
 * and raise() from the caller's own progress callback), return
 * PM_ECANCELED promptly; what ran is right, the rest keeps its sentinels;
 * no worker, zombie, fd or thread is left. The handler has no SA_RESTART:
 * the library must cope with EINTR.
 */
#include "proc_util.h"

#if !PMT_HAVE_FORK
int main(void)
{
    PMT_SKIP("no fork() on this target (test_proc_crashes checks PM_PROCESSES is PM_ENOTSUP)");
}
#else

/* -------------------------------------------------------- cancellation */

static pthread_t main_thread;
static pm_cancel *volatile sigint_token;
static atomic_int sigints;

static void on_sigint(int sig)
{
    (void)sig;
    atomic_fetch_add(&sigints, 1);
    pm_cancel_request(sigint_token); /* async-signal-safe */
}

enum { BY_THREAD, BY_PTHREAD_KILL, BY_KILL, BY_RAISE };
static const char *const by_names[] = {"a thread", "pthread_kill(main, SIGINT)",
                                       "kill(getpid(), SIGINT)", "raise(SIGINT)"};

typedef struct canceller {
    pm_cancel *tok;
    double delay;
    int how;
    double requested; /* pmt_now() of the request */
} canceller;

static void *cancel_later(void *arg)
{
    canceller *k = arg;
    pmt_sleep(k->delay);
    k->requested = pmt_now();
    if (k->how == BY_THREAD)
        pm_cancel_request(k->tok);
    else if (k->how == BY_PTHREAD_KILL)
        pthread_kill(main_thread, SIGINT);
    else
        kill(getpid(), SIGINT);
    return NULL;
}

/* raise() from the calling thread: its progress callback, mid-map. */
static void raise_later(void *user, const pm_progress *p)
{
    canceller *k = user;
    if (k->requested == 0 && p->elapsed_s >= k->delay) {
        k->requested = pmt_now();
        raise(SIGINT);
    }
}

static void install_sigint(pm_cancel *tok)
{
    sigint_token = tok;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: the library must cope with EINTR */
    CHECK(sigaction(SIGINT, &sa, NULL) == 0);
}

static void restore_sigint(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGINT, &sa, NULL);
    sigint_token = NULL;
}

/* A map of slow items (seconds of work) canceled after 0.4 s. */
static void test_cancel_map(const pcfg *c, int how)
{
    CHECK_CTX("map canceled by %s, procs %d threads %d", by_names[how], c->procs, c->threads);
    snap base = snap_take();
    pm_cancel *tok = pm_cancel_new();
    CHECK(tok != NULL);
    if (how != BY_THREAD)
        install_sigint(tok);
    int seen = atomic_load(&sigints);
    const size_t n = 400;
    rec *r = make_recs(n, NULL, 0);
    for (size_t i = 0; i < n; i++)
        r[i].action = A_SLOW;
    uint64_t *out = make_out(n);
    int *codes = make_codes(n);
    ctx cx = {.slow_s = 0.05};
    pm_opts o = popts(c);
    o.codes = codes;
    o.cancel = tok;
    canceller k = {tok, 0.4, how, 0};
    pthread_t t;
    if (how == BY_RAISE) {
        o.on_progress = raise_later;
        o.progress_user = &k;
    } else {
        t = pmt_thread_start(cancel_later, &k);
    }
    pm_report rep;
    int rc = pm_map(item_fn, &cx, r, sizeof *r, out, sizeof *out, n, &o, &rep);
    double returned = pmt_now();
    if (how != BY_RAISE)
        pthread_join(t, NULL);
    CHECK_STATUS(PM_ECANCELED, rc);
    CHECK_STATUS(PM_ECANCELED, rep.status);
    CHECK(k.requested > 0);
    CHECK_OP_DBL(returned - k.requested, <, PROMPT_S);
    CHECK_OP_SIZE(rep.done, <, n);
    CHECK_EQ_SIZE(rep.failed, 0);
    if (how != BY_THREAD)
        CHECK_EQ_INT(atomic_load(&sigints), seen + 1);
    size_t ran = check_partial(r, n, out, codes);
    CHECK_EQ_SIZE(ran, rep.done);
    snap_check(&base, 1);
    if (how != BY_THREAD)
        restore_sigint();
    pm_cancel_free(tok);
    free(r);
    free(out);
    free(codes);
}

/* An iterator over an endless stream of slow items, canceled mid-way. */
typedef struct slow_src {
    size_t next;
} slow_src;

static int src_slow(void *src, void *item)
{
    slow_src *s = src;
    rec r = {s->next, s->next * 7919 + 13, A_SLOW, 0};
    s->next++;
    memcpy(item, &r, sizeof r);
    return 1;
}

static void test_cancel_imap(const pcfg *c, int how)
{
    CHECK_CTX("imap canceled by %s, procs %d threads %d", by_names[how], c->procs, c->threads);
    snap base = snap_take();
    pm_cancel *tok = pm_cancel_new();
    CHECK(tok != NULL);
    if (how != BY_THREAD)
        install_sigint(tok);
    slow_src s = {0};
    ctx cx = {.slow_s = 0.05};
    pm_opts o = popts(c);
    o.cancel = tok;
    pm_iter *it = pm_imap(item_fn, &cx, src_slow, &s, sizeof(rec), sizeof(uint64_t), &o);
    CHECK(it != NULL);
    canceller k = {tok, 0.4, how, 0};
    pthread_t t = pmt_thread_start(cancel_later, &k);
    size_t got = 0, idx;
    uint64_t y;
    int code, rc;
    while ((rc = pm_iter_next(it, &y, &idx, &code)) == 1) {
        CHECK_EQ_SIZE(idx, got);
        CHECK_STATUS(0, code);
        CHECK_EQ_SIZE(y, f(idx * 7919 + 13));
        got++;
    }
    double returned = pmt_now();
    pthread_join(t, NULL);
    CHECK_STATUS(PM_ECANCELED, rc);
    CHECK_OP_DBL(returned - k.requested, <, PROMPT_S);
    CHECK_STATUS(PM_ECANCELED, pm_iter_next(it, &y, NULL, NULL));
    CHECK_STATUS(PM_ECANCELED, pm_iter_free(it));
    CHECK_OP_DBL(pmt_now() - k.requested, <, PROMPT_S);
    snap_check(&base, 1);
    if (how != BY_THREAD)
        restore_sigint();
    pm_cancel_free(tok);
}

/* ---------------------------------------------------------------- main */

static void cancel_all(void)
{
    pcfg c = big_cfg();
    pcfg one = {1, 1};
    test_cancel_map(&c, BY_THREAD);
    test_cancel_map(&one, BY_THREAD);
    test_cancel_map(&c, BY_PTHREAD_KILL);
    test_cancel_map(&c, BY_KILL);
    test_cancel_map(&c, BY_RAISE);
    test_cancel_imap(&c, BY_THREAD);
    test_cancel_imap(&c, BY_PTHREAD_KILL);
}

int main(void)
{
    main_thread = pthread_self();
    proc_init("test_proc_cancel");
    pmt_thread_baseline(); /* (TSan starts a thread of its own at the first thread) */
    RUN(60, cancel_all());
    return proc_done("test_proc_cancel");
}

#endif
