/*
 * sandbox.h - run one test case in a process of its own, under a deadline,
 * for tests of things that used to hang. A case that hangs is killed (with
 * the workers it forked: they die with their parent) and reported by name;
 * the other cases still run, so one run shows every regression at once.
 * Include after check.h. Only where fork exists (PMT_HAVE_FORK).
 *
 * Inside a case: CHECK as usual (a failed check exits the case process with
 * 1), and sandbox_snap_take / sandbox_check_leftovers around a call to see
 * that no child process (live or zombie) or fd remains.
 */
#ifndef PM_TEST_SANDBOX_H
#define PM_TEST_SANDBOX_H

#include "fork_watch.h"

#include <signal.h>
#include <sys/wait.h>

static const char *volatile sandbox_name = "";

static void sandbox_on_alarm(int sig)
{
    (void)sig;
    static const char a[] = "HANG (watchdog): ";
    const char *n = sandbox_name;
    if (write(2, a, sizeof a - 1) < 0 || write(2, n, strlen(n)) < 0 || write(2, "\n", 1) < 0)
        _exit(2);
    _exit(2);
}

/* Run fn() in a child process; it must finish within `seconds` (3x under a
 * sanitizer). Returns 1 when it passed. */
static int sandbox_run(const char *name, void (*fn)(void), unsigned seconds)
{
    fflush(stdout);
    fflush(stderr);
    double t0 = pmt_now();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "sandbox: fork failed for %s\n", name);
        return 0;
    }
    if (pid == 0) {
        test_pid = getpid(); /* LeakSanitizer checks the case's process */
        sandbox_name = name;
        signal(SIGALRM, sandbox_on_alarm);
        alarm(PMT_SANITIZED ? seconds * 3 : seconds);
        fn();
        fflush(stdout);
        exit(0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
    }
    int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    printf("  %-4s %-44s %7.3f s", ok ? "ok" : "FAIL", name, pmt_now() - t0);
    if (WIFSIGNALED(status))
        printf(" (signal %d)", WTERMSIG(status));
    else if (WIFEXITED(status) && WEXITSTATUS(status) == 2)
        printf(" (hang)");
    printf("\n");
    fflush(stdout);
    return ok;
}

/* What a call may leave behind: take it before, check it after. */
typedef struct sandbox_snap {
    int children, zombies, fds;
} sandbox_snap;

static sandbox_snap sandbox_snap_take(void)
{
    sandbox_snap s;
    s.children = list_children(getpid(), NULL, 0, &s.zombies);
    s.fds = count_fds();
    return s;
}

static void sandbox_check_leftovers(const sandbox_snap *before)
{
    sandbox_snap now = sandbox_snap_take();
    if (before->children >= 0) {
        CHECK_EQ_INT(now.children, before->children);
        CHECK_EQ_INT(now.zombies, before->zombies);
    }
    if (before->fds >= 0)
        CHECK_EQ_INT(now.fds, before->fds);
}

#endif
