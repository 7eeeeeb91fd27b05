/*
 * process.c - the POSIX calls of the processes executor: fork, sockets,
 * shared memory, reaping. Kept here so that the executor reads as policy.
 *
 * Post-fork rules (libuv's idea of documenting them where fork happens): the
 * child of pm__fork runs only the executor's worker loop and the user's item
 * function. It never touches a parmap lock (another thread of the parent may
 * have held one at the fork), glibc makes malloc usable in the child of a
 * multi-threaded parent, and stdout/stderr are held locked by the forking
 * thread across fork so printf in an item function cannot find them locked.
 */
#define _GNU_SOURCE /* MAP_ANONYMOUS, waitid, flockfile under -std=c11 */
#include "platform.h"
#include "parmap.h"

#if PM_HAVE_FORK
#include <errno.h>
#include <sys/time.h>
#include <time.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
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

void pm__close(int fd)
{
    if (fd >= 0)
        close(fd);
}

pid_t pm__fork(void)
{
    fflush(NULL);
    flockfile(stdout);
    flockfile(stderr);
    pid_t pid = fork();
    funlockfile(stderr);
    funlockfile(stdout);
    return pid;
}

void pm__child_setup(pid_t parent)
{
#if defined(__linux__)
    prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
    if (getppid() != parent) /* the parent died before prctl took effect */
        _exit(0);
    /* Ctrl-C reaches the whole process group: the parent decides (it may
     * cancel gracefully), and kills us if it dies. */
    signal(SIGINT, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
}

void pm__child_exit(int code)
{
    fflush(NULL); /* output of item functions (the parent flushed before fork) */
    _exit(code);  /* never the parent's atexit handlers */
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

void pm__reap_within(pid_t pid, double seconds)
{
    struct timespec nap = {0, 1000000}; /* 1 ms, growing to 20 ms */
    double waited = 0;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR))
            return;
        if (waited >= seconds) {
            kill(pid, SIGKILL);
            int sig, st;
            pm__reap(pid, &sig, &st);
            return;
        }
        nanosleep(&nap, NULL);
        waited += (double)nap.tv_nsec * 1e-9;
        if (nap.tv_nsec < 20000000)
            nap.tv_nsec *= 2;
    }
}

void pm__kill(pid_t pid)
{
    if (pid > 0)
        kill(pid, SIGKILL);
}

#endif
