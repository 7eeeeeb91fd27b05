/*
 * mpi_team.c - the MPI executor's compute threads (a team of pthreads that run
 * the one job in progress) and its clock and condition-variable helpers (see
 * mpi.c). libparmap_mpi is built on public headers only, so it keeps threads
 * of its own rather than the core's crew; MPI targets are POSIX.
 *
 * Design (the core's crew, reduced to one job at a time): one mutex guards
 * the job, the epoch and the bookkeeping below. A member calls step()
 * WITHOUT the lock until it says IDLE or END. When it ran nothing it sleeps
 * on work_cv, but only while `epoch` is unchanged: submit and notify bump
 * the epoch under the lock, so work that appears between "found nothing" and
 * "sleep" is never missed. The job is over once a worker saw END, none is
 * inside step(), and none owes its exit.
 *
 * Per-worker state: a worker that ran a chunk of a job with state may have
 * started (its init ran) and then owes its exit, which it runs in its own
 * thread when step() says END to it (pm_job_step on rank 0, the follower's
 * step through pm_job_worker_exit). So such a worker steps the ended job once
 * more, and whoever marks the job ended while exits are owed wakes the
 * sleepers. (A worker whose init failed owes nothing; its extra step only
 * sees END again.) The helper may also have stepped the job outside
 * pm__mpi_team_wait (pm_imap's consumer runs chunks as worker workers()
 * itself), so in a job with state it counts as owing from the start: the
 * job is not over before it stepped the ended job itself.
 *
 * Lock order: the team's lock is never held while calling step(), nor while
 * taking the executor's own lock (st->lock) from here.
 */
#include "mpi.h"

#include <math.h>

/* ----------------------------------------------------------- clock, cvs */

double pm__mpi_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int pm__mpi_cond_init(pthread_cond_t *cv)
{
    /* Timed waits on the monotonic clock (pm__mpi_timedwait): a wall-clock
     * jump cannot stretch a nap or a progress tick. */
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return PM_ESYS;
#if !defined(__APPLE__)
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
#endif
    int rc = pthread_cond_init(cv, &attr);
    pthread_condattr_destroy(&attr);
    return rc == 0 ? PM_OK : PM_ESYS;
}

void pm__mpi_timedwait(pthread_cond_t *cv, pthread_mutex_t *lock, double seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double whole = floor(seconds);
    ts.tv_sec += (time_t)whole;
    ts.tv_nsec += (long)((seconds - whole) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec += 1;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(cv, lock, &ts);
}

/* ----------------------------------------------------------------- team */

/* Lock held. */
static int job_over(const mpi_team *t)
{
    return t->ended && t->inside == 0 && t->nowing == 0;
}

/* Lock held: worker slot `i` stepped the job; `ran` chunks, and the last
 * step said `r`. */
static void stepped(mpi_team *t, int i, int ran, int r)
{
    if (ran && t->track && !t->owes[i]) {
        t->owes[i] = 1;
        t->nowing++;
    }
    if (r != PM_STEP_END)
        return;
    if (t->owes[i]) {
        t->owes[i] = 0;
        t->nowing--;
    }
    t->ended = 1;
    if (t->nowing > 0) {
        /* The sleepers that owe their exit must step once more. */
        t->epoch++;
        pthread_cond_broadcast(&t->work_cv);
        pthread_cond_broadcast(&t->done_cv);
    }
}

typedef struct mpi_member {
    mpi_team *team;
    int index;
} member;

static void *member_main(void *arg)
{
    member *m = arg;
    mpi_team *t = m->team;
    int i = m->index;
    pthread_mutex_lock(&t->lock);
    while (!t->quit) {
        unsigned long seen = t->epoch;
        pm_job *job = t->job;
        if (job && (!t->ended || t->owes[i])) {
            t->inside++; /* keeps the job from ending while unlocked */
            pthread_mutex_unlock(&t->lock);
            int r, ran = 0;
            while ((r = t->step(t->owner, job, i)) == PM_STEP_RAN)
                ran = 1;
            pthread_mutex_lock(&t->lock);
            t->inside--;
            stepped(t, i, ran, r);
            if (job_over(t))
                pthread_cond_broadcast(&t->done_cv);
            if (ran)
                continue;
        }
        /* Nothing ran: sleep until something changes (the epoch rule). */
        while (!t->quit && t->epoch == seen)
            pthread_cond_wait(&t->work_cv, &t->lock);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

int pm__mpi_team_open(mpi_team *t, int size, int helper, pm__mpi_step_fn step, void *owner)
{
    if (pthread_mutex_init(&t->lock, NULL) != 0)
        return PM_ESYS;
    t->lock_ready = 1;
    if (pm__mpi_cond_init(&t->work_cv) != PM_OK)
        return PM_ESYS;
    t->work_ready = 1;
    if (pm__mpi_cond_init(&t->done_cv) != PM_OK)
        return PM_ESYS;
    t->done_ready = 1;
    t->size = size;
    t->helper = helper;
    t->step = step;
    t->owner = owner;
    /* Slot `size` is the helper's (the thread in pm__mpi_team_wait). */
    t->owes = calloc((size_t)size + 1, sizeof *t->owes);
    t->threads = calloc((size_t)size + 1, sizeof *t->threads);
    t->members = calloc((size_t)size + 1, sizeof *t->members);
    if (!t->owes || !t->threads || !t->members)
        return PM_ENOMEM;
    member *ms = t->members;
    for (int i = 0; i < size; i++) {
        ms[i].team = t;
        ms[i].index = i;
        if (pthread_create(&t->threads[i], NULL, member_main, &ms[i]) != 0)
            return PM_ESYS; /* the caller closes: joins the ones that started */
        t->started++;
    }
    return PM_OK;
}

void pm__mpi_team_close(mpi_team *t)
{
    if (t->lock_ready && t->work_ready) {
        pthread_mutex_lock(&t->lock);
        t->quit = 1;
        pthread_cond_broadcast(&t->work_cv);
        pthread_mutex_unlock(&t->lock);
    }
    for (int i = 0; i < t->started; i++)
        pthread_join(t->threads[i], NULL);
    t->started = 0;
    free(t->threads);
    free(t->members);
    free(t->owes);
    t->threads = NULL;
    t->members = NULL;
    t->owes = NULL;
    if (t->done_ready)
        pthread_cond_destroy(&t->done_cv);
    if (t->work_ready)
        pthread_cond_destroy(&t->work_cv);
    if (t->lock_ready)
        pthread_mutex_destroy(&t->lock);
    t->lock_ready = t->work_ready = t->done_ready = 0;
}

void pm__mpi_team_submit(mpi_team *t, pm_job *job)
{
    pm_job_info info;
    pm_job_info_get(job, &info);
    pthread_mutex_lock(&t->lock);
    t->job = job;
    t->ended = 0;
    t->inside = 0;
    t->track = info.worker_state;
    memset(t->owes, 0, (size_t)t->size + 1);
    t->nowing = 0;
    if (t->track && t->helper >= 0) {
        t->owes[t->size] = 1;
        t->nowing = 1;
    }
    t->epoch++;
    pthread_cond_broadcast(&t->work_cv);
    pthread_mutex_unlock(&t->lock);
}

void pm__mpi_team_notify(mpi_team *t)
{
    pthread_mutex_lock(&t->lock);
    t->epoch++;
    pthread_cond_broadcast(&t->work_cv);
    pthread_mutex_unlock(&t->lock);
}

/* Lock held: run the job's chunks on this thread as the helper until none
 * is left, or (`seconds` >= 0) the deadline passed. Returns the last step's
 * PM_STEP_*. */
static int help(mpi_team *t, pm_job *job, double seconds, double deadline)
{
    int r, ran = 0;
    t->inside++;
    pthread_mutex_unlock(&t->lock);
    while ((r = t->step(t->owner, job, t->helper)) == PM_STEP_RAN) {
        ran = 1;
        if (seconds >= 0 && pm__mpi_now() >= deadline)
            break;
    }
    pthread_mutex_lock(&t->lock);
    t->inside--;
    stepped(t, t->size, ran, r);
    return r;
}

int pm__mpi_team_wait(mpi_team *t, pm_job *job, double seconds, int helps)
{
    double deadline = seconds >= 0 ? pm__mpi_now() + seconds : 0;
    pthread_mutex_lock(&t->lock);
    /* Once per call, as the threads executor's caller does: after that it
     * only waits (a stream's consumer comes back on its next call). */
    if (helps && (!t->ended || t->owes[t->size]) &&
        help(t, job, seconds, deadline) == PM_STEP_RAN) {
        pthread_mutex_unlock(&t->lock);
        return 0; /* time for the caller's progress report */
    }
    while (!job_over(t)) {
        if (helps && t->ended && t->owes[t->size]) {
            help(t, job, seconds, deadline); /* its exit, now the job ended */
            continue;
        }
        if (seconds < 0) {
            pthread_cond_wait(&t->done_cv, &t->lock);
            continue;
        }
        double left = deadline - pm__mpi_now();
        if (left <= 0) {
            pthread_mutex_unlock(&t->lock);
            return 0;
        }
        pm__mpi_timedwait(&t->done_cv, &t->lock, left);
    }
    t->job = NULL;
    pthread_mutex_unlock(&t->lock);
    return 1;
}
