/*
 * sandbox.h - run one test case in a process of its own, under a deadline,
 * for tests of things that used to hang. A case that hangs is killed (with
 * the workers it forked: they die with their parent) and reported by name;
 * the other cases still run, so one run shows every regression at once.
 * Include after check.h. Only where fork exists (PMT_HAVE_FORK).
 *
 * Inside a case: CHECK as usual (a failed check exits the case process with
 * 1), and sandbox_leftovers() to see that no child process or fd remains.
 */
#ifndef PM_TEST_SANDBOX_H
#define PM_TEST_SANDBOX_H

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* LeakSanitizer would check every worker process that exits through exit()
 * (and report the parent's memory held by threads that do not exist there),
 * and TSan sleeps 1 s in exit() by default: see test_processes.c. */
static pid_t sandbox_case_pid;
#if PMT_ASAN
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
    return getpid() != sandbox_case_pid;
}
#endif
#if PMT_TSAN
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "atexit_sleep_ms=0";
}
#endif

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
        sandbox_case_pid = getpid();
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

/* Children of this process (live or zombie), from /proc; -1 without /proc. */
static int sandbox_children(void)
{
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    int n = 0;
    pid_t me = getpid();
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char path[300], buf[512];
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t len = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (len <= 0)
            continue;
        buf[len] = 0;
        char *p = strrchr(buf, ')'), st;
        int ppid;
        if (p && sscanf(p + 1, " %c %d", &st, &ppid) == 2 && ppid == me)
            n++;
    }
    closedir(d);
    return n;
}

static int sandbox_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own fd */
}

/* What a call may leave behind: take it before, check it after. */
typedef struct sandbox_snap {
    int children, fds;
} sandbox_snap;

static sandbox_snap sandbox_snap_take(void)
{
    sandbox_snap s = {sandbox_children(), sandbox_fds()};
    return s;
}

static void sandbox_check_leftovers(const sandbox_snap *before)
{
    sandbox_snap now = sandbox_snap_take();
    if (before->children >= 0)
        CHECK_EQ_INT(now.children, before->children);
    if (before->fds >= 0)
        CHECK_EQ_INT(now.fds, before->fds);
}

#endif
