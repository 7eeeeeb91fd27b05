/* ctrl_c.c - Ctrl-C during a map in worker processes: stop cleanly, keep
 * what finished.
 *
 * A few seconds of work (100 items of ~0.1 s on 4 worker processes) with a
 * progress bar. Press Ctrl-C: the SIGINT handler calls pm_cancel_request,
 * which is async-signal-safe (and about all a handler may call); pm_map then
 * kills and reaps its workers and returns PM_ECANCELED within a fraction of a
 * second, with every item that completed in `out`. The workers ignore SIGINT
 * themselves (the terminal sends it to the whole process group): the caller
 * decides, and they die with it if it dies instead.
 *
 *     ctrl_c                          press Ctrl-C while it runs
 *     ctrl_c --self-interrupt 0.5     send ourselves SIGINT after 0.5 s
 *
 * Exit status: 0 finished, 130 interrupted (the shell's code for SIGINT),
 * 1 on error or if a worker process were left behind.
 */
#define _POSIX_C_SOURCE 200809L
#include <parmap.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ITEMS 100

static pm_cancel *cancel; /* what the handler requests */

static void on_sigint(int sig) {
    (void)sig;
    pm_cancel_request(cancel);
}

/* One item: ~0.1 s standing in for real work, then the square of the input. */
static int work(void *user, const void *in, void *out) {
    (void)user;
    nanosleep(&(struct timespec){ .tv_nsec = 100 * 1000 * 1000 }, NULL);
    long x = *(const long *)in;
    *(long *)out = x * x;
    return 0;
}

/* --self-interrupt: what a user pressing Ctrl-C after `delay` seconds does. */
static void *interrupt_later(void *arg) {
    double delay = *(const double *)arg;
    struct timespec ts = { (time_t)delay, (long)((delay - (double)(time_t)delay) * 1e9) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    kill(getpid(), SIGINT);
    return NULL;
}

int main(int argc, char **argv) {
    double delay = -1;
    if (argc == 3 && strcmp(argv[1], "--self-interrupt") == 0)
        delay = strtod(argv[2], NULL);
    if (argc != 1 && !(delay >= 0 && delay < 3600)) {
        fprintf(stderr, "usage: %s [--self-interrupt SECONDS]\n", argv[0]);
        return 2;
    }

    cancel = pm_cancel_new();
    if (!cancel) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);

    pthread_t timer;
    if (delay >= 0 && pthread_create(&timer, NULL, interrupt_later, &delay) != 0) {
        fprintf(stderr, "cannot start the timer thread\n");
        return 1;
    }

    long in[ITEMS], out[ITEMS];
    for (long i = 0; i < ITEMS; i++) {
        in[i] = i;
        out[i] = -1; /* not done */
    }
    pm_report rep;
    int rc = pm_map(work, NULL, in, sizeof in[0], out, sizeof out[0], ITEMS,
                    &(pm_opts){ .backend = PM_PROCESSES, .procs = 4, .cancel = cancel,
                                .progress_bar = 1, .label = "working (Ctrl-C to stop)" },
                    &rep);
    if (delay >= 0)
        pthread_join(timer, NULL);

    long sum = 0;
    for (long i = 0; i < ITEMS; i++)
        if (out[i] >= 0) sum += out[i];
    if (rc == PM_ECANCELED)
        printf("interrupted: %zu of %d items completed (their sum of squares: %ld)\n", rep.done,
               ITEMS, sum);
    else if (rc == PM_OK)
        printf("finished: %d items, sum of squares %ld\n", ITEMS, sum);
    else
        fprintf(stderr, "pm_map failed: %s\n", pm_strerror(rc));

    /* Nothing is left: no child process at all, running or zombie. */
    int left = !(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD);
    printf(left ? "a worker process was left behind!\n" : "no worker process left\n");
    pm_cancel_free(cancel);
    if (left || (rc != PM_OK && rc != PM_ECANCELED))
        return 1;
    return rc == PM_ECANCELED ? 130 : 0;
}
