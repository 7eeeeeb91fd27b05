/*
 * fork_watch.h - what every test that forks workers needs around them: the
 * sanitizer settings for processes other than the test itself, and the
 * /proc readings that tell whether a call left a child process or an fd
 * behind. Included by proc_util.h and sandbox.h (only where fork exists).
 * Set test_pid to the process whose leaks LeakSanitizer should check.
 */
#ifndef PM_TEST_FORK_WATCH_H
#define PM_TEST_FORK_WATCH_H

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* LeakSanitizer checks for leaks at exit(), also in a worker whose item
 * calls exit(3): it would report the parent's memory (threads that do not
 * exist in the child hold the pointers) and exit 23. Check this process
 * only; workers and the test's sub-processes are not. */
static pid_t test_pid; /* proc_init, sandbox_run */
#if PMT_ASAN
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
    return getpid() != test_pid;
}
#endif

/* TSan sleeps 1 s in exit() by default (atexit_sleep_ms), also in a worker
 * whose item calls exit(3): longer than the item timeout. */
#if PMT_TSAN
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "atexit_sleep_ms=0";
}
#endif

/* --------------------------------------------------- leftovers (/proc) */

/* State letter and parent of a process, from /proc/PID/stat; 0 when gone. */
static inline char proc_state(pid_t pid, pid_t *ppid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t len = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (len <= 0)
        return 0;
    buf[len] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold anything */
    char st = 0;
    int pp = 0;
    if (!p || sscanf(p + 1, " %c %d", &st, &pp) != 2)
        return 0;
    if (ppid)
        *ppid = (pid_t)pp;
    return st;
}

/* Children of `parent` (pids to `pids`, up to max), -1 without /proc. */
static inline int list_children(pid_t parent, pid_t *pids, int max, int *zombies)
{
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    int n = 0;
    if (zombies)
        *zombies = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        pid_t pp = 0;
        char st = proc_state((pid_t)pid, &pp);
        if (!st || pp != parent)
            continue;
        if (pids && n < max)
            pids[n] = (pid_t)pid;
        n++;
        if (zombies && st == 'Z')
            ++*zombies;
    }
    closedir(d);
    return n;
}

static inline int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

#endif
