/*
 * test_proc_values.c - pm_vimap on the processes backend, where the items
 * (made after the workers were forked) travel to them as MessagePack: every
 * result in place, pieces cut short when their items fill a worker's input
 * arena (chunks of 25 items, a third of them 300 KB), an item too big to
 * ship failing alone with PM_ENOMEM, crashed and timed-out items failing
 * alone (retried first) with their codes as error values, in both orders and with 1 or 2 threads per worker. (pm_vmap and
 * pm_vimap over the shared vectors run on processes in test_vectors.c.)
 */
#include "check.h"

#if !PMT_HAVE_FORK
int main(void)
{
    PMT_SKIP("no fork on this target");
}
#else

#include "sandbox.h"

#include <signal.h>

#define BIG_LEN ((size_t)300 << 10) /* 300 KB strings: 7 fill a 2 MB arena */
#define WORKER_THREADS_OK (!PMT_TSAN && !PMT_ASAN)

/* Each item is [i, payload]; the result is [i, len(payload)], unless i is
 * the index that crashes or loops. */
typedef struct plan {
    size_t n, crash_at, loop_at, huge_at;
    size_t next;
} plan;

static int source(void *src, pm_value **item)
{
    plan *p = src;
    if (p->next >= p->n)
        return 0;
    size_t i = p->next++;
    size_t len = i == p->huge_at ? (size_t)3 << 20 : i % 3 == 0 ? BIG_LEN : 5;
    char *s = malloc(len + 1);
    CHECK(s != NULL);
    memset(s, 'a' + (int)(i % 26), len);
    s[len] = 0;
    pm_value *l = pm_value_list();
    CHECK(l && pm_list_push(l, pm_value_int((int64_t)i)) == PM_OK &&
          pm_list_push(l, pm_value_str(s)) == PM_OK);
    free(s);
    *item = l;
    return 1;
}

static int measure(void *user, pm_call *call, pm_value **result)
{
    const plan *p = user;
    int64_t i = 0;
    CHECK(call->argc == 2 && pm_value_get_int(call->argv[0], &i) == PM_OK);
    if ((size_t)i == p->crash_at) {
        signal(SIGSEGV, SIG_DFL);
        raise(SIGSEGV);
    }
    if ((size_t)i == p->loop_at)
        for (;;)
            pmt_sleep(1);
    const char *s = NULL;
    size_t len = 0;
    CHECK(pm_value_get_str(call->argv[1], &s, &len) == PM_OK);
    pm_value *r = pm_value_list();
    CHECK(r && pm_list_push(r, pm_value_int(i)) == PM_OK &&
          pm_list_push(r, pm_value_int((int64_t)len)) == PM_OK);
    *result = r;
    return 0;
}

static void run(plan p, int threads, int unordered, double timeout_s)
{
    CHECK_CTX("vimap on processes: n %zu crash %zu loop %zu huge %zu, threads %d, %s",
              p.n, p.crash_at, p.loop_at, p.huge_at, threads, unordered ? "unordered" : "ordered");
    sandbox_snap before = sandbox_snap_take();
    pm_vopts o = {.base = {.backend = PM_PROCESSES, .procs = 2, .threads = threads,
                           .on_error = PM_RETURN, .unordered = unordered,
                           .timeout_s = timeout_s, .chunksize = 25},
                  .star = PM_STAR_YES};
    pm_viter *it = pm_vimap(measure, &p, source, &p, &o);
    CHECK(it != NULL);
    char *seen = calloc(p.n, 1);
    pm_value *v = NULL;
    size_t index = 0, got = 0, expect = 0;
    int r;
    while ((r = pm_viter_next(it, &v, &index)) == 1) {
        CHECK(index < p.n && !seen[index]);
        seen[index] = 1;
        if (!unordered)
            CHECK_EQ_SIZE(index, expect++);
        size_t ei;
        int code;
        const char *msg;
        if (index == p.crash_at || index == p.loop_at || index == p.huge_at) {
            CHECK(pm_value_get_error(v, &ei, &code, &msg) == PM_OK);
            CHECK_EQ_SIZE(ei, index);
            CHECK_STATUS(index == p.crash_at ? PM_ECRASH
                         : index == p.loop_at ? PM_ETIMEOUT : PM_ENOMEM, code);
        } else {
            int64_t i = -1, len = -1;
            CHECK(pm_value_len(v) == 2);
            CHECK(pm_value_get_int(pm_list_get(v, 0), &i) == PM_OK &&
                  pm_value_get_int(pm_list_get(v, 1), &len) == PM_OK);
            CHECK_EQ_INT(i, (int64_t)index);
            CHECK_EQ_INT(len, index % 3 == 0 ? (int64_t)BIG_LEN : 5);
        }
        pm_value_free(v);
        got++;
    }
    CHECK_EQ_INT(r, 0);
    CHECK_EQ_SIZE(got, p.n);
    pm_report rep;
    CHECK_STATUS(PM_OK, pm_viter_report(it, &rep));
    size_t want_failed = (p.crash_at < p.n) + (p.loop_at < p.n) + (p.huge_at < p.n);
    CHECK_EQ_SIZE(rep.failed, want_failed);
    CHECK_STATUS(PM_OK, pm_viter_free(it));
    free(seen);
    sandbox_check_leftovers(&before);
}

static void cases(int threads)
{
    const size_t none = SIZE_MAX;
    double t = PMT_SANITIZED ? 1.5 : 0.4;
    for (int unordered = 0; unordered < 2; unordered++) {
        run((plan){60, none, none, none, 0}, threads, unordered, 0);  /* pieces cut short */
        run((plan){40, 17, none, none, 0}, threads, unordered, 0);    /* a crash */
        run((plan){40, none, 23, none, 0}, threads, unordered, t);    /* a runaway */
        run((plan){30, none, none, 9, 0}, threads, unordered, 0);     /* too big to ship */
    }
}

static void one_thread(void) { cases(1); }
static void two_threads(void) { cases(2); }

int main(void)
{
    int failed = !sandbox_run("pm_vimap on processes, 1 thread per worker", one_thread, 120);
    if (WORKER_THREADS_OK)
        failed += !sandbox_run("pm_vimap on processes, 2 threads per worker", two_threads, 120);
    else
        printf("  skip 2 threads per worker (under %s: see proc_util.h)\n",
               PMT_TSAN ? "TSan" : "ASan");
    if (failed)
        return 1;
    printf("ok test_proc_values\n");
    return 0;
}

#endif
