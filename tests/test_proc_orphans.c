/*
 * test_proc_orphans.c - the processes executor's workers do not outlive their
 * parent: a test sub-process killed by SIGKILL mid-map or mid-imap, or by a
 * Ctrl-C-like SIGINT to its process group (no handler), leaves no worker
 * behind (each worker reports its pid through a pipe; all must be gone
 * within ORPHAN_S), and this process no child, zombie or fd.
 */
#include "proc_util.h"

#if !PMT_HAVE_FORK
int main(void)
{
    PMT_SKIP("no fork() on this target (test_proc_crashes checks PM_PROCESSES is PM_ENOTSUP)");
}
#else

/* ---------------------------------------------- orphans: parent killed */

/* The test's sub-process: a map (or an iterator) of items that report their
 * worker's pid on `fd` and then sleep for 30 s. Never returns. */
static void orphan_parent(int fd, int use_imap, int own_group)
{
    if (own_group)
        setpgid(0, 0);
    pcfg c = big_cfg();
    const size_t n = 16;
    rec *r = make_recs(n, NULL, 0);
    for (size_t i = 0; i < n; i++)
        r[i].action = A_REPORT;
    ctx cx = {.slow_s = 30, .report_fd = fd};
    pm_opts o = popts(&c);
    o.chunksize = 1;
    if (use_imap) {
        rec_src s = {r, n, 0, 0};
        pm_iter *it = pm_imap(item_fn, &cx, src_recs, &s, sizeof *r, sizeof(uint64_t), &o);
        uint64_t y;
        while (it && pm_iter_next(it, &y, NULL, NULL) == 1)
            ;
        pm_iter_free(it);
    } else {
        uint64_t out[16];
        pm_map(item_fn, &cx, r, sizeof *r, out, sizeof *out, n, &o, NULL);
    }
    _exit(0); /* not reached in time: killed first */
}

/* Read pids from fd until `want` distinct ones came (or the deadline). */
static int read_pids(int fd, pid_t *pids, int max, int want, double seconds)
{
    int n = 0;
    double end = pmt_now() + seconds;
    while (n < want && pmt_now() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        pid_t pid;
        ssize_t len = read(fd, &pid, sizeof pid);
        if (len < 0 && errno == EINTR)
            continue;
        if (len != (ssize_t)sizeof pid)
            break;
        int dup = 0;
        for (int i = 0; i < n; i++)
            dup |= pids[i] == pid;
        if (!dup && n < max)
            pids[n++] = pid;
    }
    return n;
}

/* Gone: no such process, or a zombie that is not ours (reparented: its new
 * parent reaps it). */
static int gone(pid_t pid)
{
    if (kill(pid, 0) == -1 && errno == ESRCH)
        return 1;
    pid_t pp = 0;
    char st = proc_state(pid, &pp);
    return st == 0 || (st == 'Z' && pp != getpid());
}

static void test_orphans(int sig, int use_imap)
{
    pcfg c = big_cfg();
    CHECK_CTX("%s the parent mid-%s, procs %d threads %d",
              sig == SIGKILL ? "SIGKILL to" : "SIGINT (no handler) to the process group of",
              use_imap ? "imap" : "map", c.procs, c.threads);
    snap base = snap_take();
    int fds[2];
    CHECK(pipe(fds) == 0);
    fflush(NULL);
    pid_t sub = fork();
    CHECK(sub >= 0);
    if (sub == 0) {
        close(fds[0]);
        orphan_parent(fds[1], use_imap, sig == SIGINT);
    }
    close(fds[1]);
    if (sig == SIGINT)
        setpgid(sub, sub); /* (also done by the child: whoever is first) */
    pid_t pids[64];
    int want = c.procs;
    int n = read_pids(fds[0], pids, 48, want, PMT_SANITIZED ? 40 : 10);
    CHECK_EQ_INT(n, want);
    /* Also every process the sub-process has now (e.g. one not yet running). */
    pid_t kids[16];
    int nk = list_children(sub, kids, 16, NULL);
    for (int i = 0; i < nk && i < 16; i++) {
        int dup = 0;
        for (int j = 0; j < n; j++)
            dup |= pids[j] == kids[i];
        if (!dup && n < 64)
            pids[n++] = kids[i];
    }
    CHECK(kill(sig == SIGINT ? -sub : sub, sig) == 0);
    int status;
    pid_t w;
    while ((w = waitpid(sub, &status, 0)) < 0 && errno == EINTR)
        ;
    CHECK_EQ_INT(w, sub);
    CHECK(WIFSIGNALED(status));
    CHECK_EQ_INT(WTERMSIG(status), sig);
    double t0 = pmt_now();
    int left = n;
    while (left > 0 && pmt_now() - t0 < ORPHAN_S) {
        left = 0;
        for (int i = 0; i < n; i++)
            left += !gone(pids[i]);
        if (left)
            pmt_sleep(0.01);
    }
    if (left) {
        for (int i = 0; i < n; i++)
            if (!gone(pids[i])) {
                fprintf(stderr, "    worker %d survived its parent (state %c)\n", (int)pids[i],
                        proc_state(pids[i], NULL));
                kill(pids[i], SIGKILL);
            }
    }
    CHECK_EQ_INT(left, 0);
    close(fds[0]);
    snap_check(&base, 1);
}

/* ---------------------------------------------------------------- main */

static void orphans_all(void)
{
    test_orphans(SIGKILL, 0);
    test_orphans(SIGKILL, 1);
    test_orphans(SIGINT, 0);
}

int main(void)
{
    proc_init("test_proc_orphans");
    /* While this process has no thread but the main one: a forked
     * sub-process that starts threads (TSan refuses it otherwise). */
    RUN(60, orphans_all());
    return proc_done("test_proc_orphans");
}

#endif
