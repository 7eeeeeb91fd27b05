/*
 * process.c - the POSIX calls of the processes executor: fork, sockets,
 * shared memory, reaping. Kept here so that the executor reads as policy.
 *
 * Post-fork rules (libuv's idea of documenting them where fork happens): the
 * child of pm__fork runs only the executor's worker loop and the user's item
 * function. It never touches a parmap lock (another thread of the parent may
 * have held one at the fork), and the C library makes malloc and stdio
 * usable in the child of a multi-threaded parent (it resets their locks).
 */
#define _GNU_SOURCE /* MAP_ANONYMOUS, waitid, ftrylockfile under -std=c11 */
#include "platform.h"
#include "parmap.h"

#if PM_HAVE_FORK
#include <errno.h>
#include <sys/time.h>
#include <time.h>
#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h> /* __fpurge: glibc, musl */
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif

void *pm__shared_alloc(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void pm__shared_free(void *p, size_t bytes)
{
    if (p)
        munmap(p, bytes);
}

int pm__socket_pair(int fds[2])
{
    /* CLOEXEC: a program the user execs from an item function or another
     * thread must not keep our workers' sockets open. */
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0 ? 0 : -1;
}

int pm__send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int pm__recv_all(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = recv(fd, p, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int pm__set_recv_timeout(int fd, double seconds)
{
    struct timeval tv = {.tv_sec = (time_t)seconds,
                         .tv_usec = (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6)};
    return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0 ? 0 : -1;
}

int pm__recv_msg(int fd, void *buf, size_t len)
{
    char *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t n = recv(fd, p + got, len - got, 0);
        if (n > 0) {
            got += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            if (got == 0 && errno != EINTR)
                return 1; /* a partial message is finished: the rest is on its way */
        } else {
            return -1;
        }
    }
    return 0;
}

unsigned long long pm__fd_id(int fd)
{
    struct stat sb;
    return fstat(fd, &sb) == 0 ? (unsigned long long)sb.st_ino + 1 : 0;
}

void pm__nap(double seconds)
{
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void pm__nap_longer(double *nap)
{
    pm__nap(*nap);
    *nap = *nap < 0.0005 ? *nap * 2 : 0.001;
}

void pm__close(int fd)
{
    if (fd >= 0)
        close(fd);
}

/* Flush a stream unless another thread holds it: a thread blocked reading
 * stdin holds stdin's lock for as long as it waits, and fflush(NULL) would
 * wait with it. What is not flushed here is dropped in the child
 * (pm__child_setup), so nothing prints twice either way. */
static void flush_if_free(FILE *f)
{
    for (int tries = 0; tries < 20; tries++) {
        if (ftrylockfile(f) == 0) {
            fflush(f);
            funlockfile(f);
            return;
        }
        struct timespec nap = {0, 250000}; /* a printf in progress ends soon */
        nanosleep(&nap, NULL);
    }
}

/* No stdio lock is held across fork(): the C library already takes its own
 * around fork and resets every stream's lock in the child (glibc, musl).
 * Holding stdout's lock here as well would invert the order fflush(NULL)
 * takes them in (list, then stream) and deadlock with any thread calling it;
 * unlocking it again in the child would drive glibc's reset lock count below
 * zero, so that the first thread to print kept stdout for good. */
pid_t pm__fork(void)
{
    flush_if_free(stdout);
    flush_if_free(stderr);
    return fork();
}

void pm__child_setup(pid_t parent)
{
#if defined(__linux__)
    prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
    if (getppid() != parent) /* the parent died before prctl took effect */
        _exit(0);
    /* The parent's unflushed output is the parent's to write. */
    __fpurge(stdout);
    __fpurge(stderr);
    /* Ctrl-C reaches the whole process group: the parent decides (it may
     * cancel gracefully), and kills us if it dies. */
    signal(SIGINT, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
}

void pm__child_exit(int code)
{
    /* What items printed. Only stdout and stderr: other streams may hold the
     * parent's unflushed output, which must not be written twice (an item
     * that writes to a stream of its own flushes or closes it). */
    fflush(stdout);
    fflush(stderr);
    _exit(code); /* never the parent's atexit handlers */
}

int pm__child_thread_start(pm__thread *t, void *(*fn)(void *), void *arg)
{
    size_t size = (size_t)8 << 20; /* glibc's usual default */
    void *stack = mmap(NULL, size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED)
        return PM_ESYS;
    pthread_attr_t attr;
    int rc = pthread_attr_init(&attr);
    if (rc == 0)
        rc = pthread_attr_setstack(&attr, stack, size);
    if (rc == 0)
        rc = pthread_create(t, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        munmap(stack, size);
        return PM_ESYS;
    }
    return PM_OK; /* the stack lives until the child exits */
}

int pm__has_exited(pid_t pid)
{
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0)
        return errno == ECHILD; /* reaped by someone else: gone anyway */
    return info.si_pid == pid;
}

size_t pm__rss_bytes(pid_t pid)
{
    char path[64], buf[128];
    snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    unsigned long size = 0, resident = 0;
    int got = fgets(buf, sizeof buf, f) && sscanf(buf, "%lu %lu", &size, &resident) == 2;
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return got && page > 0 ? (size_t)resident * (size_t)page : 0;
}

int pm__stopped(pid_t pid)
{
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, (id_t)pid, &info, WSTOPPED | WNOHANG | WNOWAIT) != 0)
        return 0;
    return info.si_pid == pid && info.si_code == CLD_STOPPED ? info.si_status : 0;
}

void pm__reap(pid_t pid, int *signal_out, int *status_out)
{
    int status = 0;
    pid_t r;
    do
        r = waitpid(pid, &status, 0);
    while (r < 0 && errno == EINTR);
    *signal_out = r == pid && WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    *status_out = r == pid && WIFEXITED(status) ? WEXITSTATUS(status) : 0;
}

int pm__try_reap(pid_t pid)
{
    int status;
    pid_t r;
    do
        r = waitpid(pid, &status, WNOHANG);
    while (r < 0 && errno == EINTR);
    return r == pid || r < 0; /* r < 0: not ours any more (ECHILD) */
}

void pm__kill(pid_t pid)
{
    if (pid > 0)
        kill(pid, SIGKILL);
}

#endif
