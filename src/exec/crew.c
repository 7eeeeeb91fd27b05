/*
 * crew.c - a crew of threads running the chunks of every job submitted to it
 * (one job for a plain call, several at once when a pm_pool is shared).
 *
 * Design (after zstd's pool.c and libuv's threadpool.c): one mutex guards the
 * job list, the epoch and every job's exec_* fields. A member walks the list
 * and calls step() WITHOUT the lock until the job says IDLE or END. When it
 * found nothing to run it sleeps on work_cv, but only while `epoch` is
 * unchanged: submit() and notify() bump the epoch under the lock, so work
 * that appears between "found nothing" and "sleep" is never missed.
 * A job leaves the list in wait(), once someone has seen END and no member is
 * inside step() any more; only then may the core free it.
 *
 * Lock order: the crew's lock is never held while calling step(), so a job's
 * own locks are never taken inside it (no ordering to respect).
 *
 * Nesting: an item may submit a job to the crew it runs on (a nested map on
 * a shared pool). Its thread then waits for that job in pm__crew_wait, and
 * while it waits it runs any job's chunks (run_jobs) instead of sleeping, so
 * the crew's threads are never more than its size and never idle while a
 * nested job has work. No cycle can form: a wait only ever waits for chunks
 * that other threads are running to the end.
 */
#include "crew.h"

/* Per-worker state (opts.worker_init/worker_exit): a worker that started in
 * a job runs its exit in its own thread when its step() sees END. So a job
 * is over only once no worker owes an exit (pm__ws_pending), and a member
 * that owes one steps an ended job once more. Whoever marks a job ended
 * while exits are owed wakes the sleeping members (an imap's worker may be
 * asleep on IDLE when the stream ends), bumping the epoch as submit does. */
static int job_over(pm__job *job)
{
    return job->exec_ended && job->exec_inside == 0 && !pm__ws_pending(job);
}

/* Lock held. */
static void mark_ended(pm__crew *s, pm__job *job)
{
    job->exec_ended = 1;
    if (pm__ws_pending(job)) {
        s->epoch++;
        pm__cond_broadcast(&s->work_cv);
    }
}

#include <stdlib.h>

/* Lock held. Every done_cv broadcast goes through here: a waiter that
 * opened the lock (to run chunks) compares done_seq to know it missed one. */
static void done_changed(pm__crew *s)
{
    s->done_seq++;
    pm__cond_broadcast(&s->done_cv);
}

/* Run every job's chunks as worker `w` until none has work. Called and
 * returns with the lock held. Returns 1 when it ran anything. */
static int run_jobs(pm__crew *s, pm__crew_member *w)
{
    int ran = 0;
    for (pm__job *job = s->jobs; job; job = job->exec_next) {
        if (job->exec_ended && !pm__ws_owes(job, w->index))
            continue;
        job->exec_inside++; /* pins the job in the list while unlocked */
        pm__mutex_unlock(&s->lock);
        int r;
        while ((r = s->step(s->owner, job, w->index)) == PM__STEP_RAN)
            ran = 1;
        pm__mutex_lock(&s->lock);
        job->exec_inside--;
        if (r == PM__STEP_END)
            mark_ended(s, job);
        if (job_over(job))
            done_changed(s);
    }
    return ran;
}

/* The crew member this thread is (NULL: not a member). A member that waits
 * for a call it made from an item (a nested map on the same pool) helps the
 * other jobs meanwhile, as itself (see pm__crew_wait). */
#if PM_HAVE_THREADS
static _Thread_local pm__crew_member *self;
#else
static pm__crew_member *self;
#endif

static void *worker_main(void *arg)
{
    pm__crew_member *w = arg;
    pm__crew *s = w->crew;
    self = w;
    int started = !s->member_start || s->member_start(s->owner, w->index) == 0;
    if (!started)
        atomic_fetch_add(&s->start_failed, 1);
    pm__mutex_lock(&s->lock);
    s->settled++; /* started up: from now on it only runs jobs or sleeps */
    done_changed(s);
    while (!s->quit) {
        unsigned long seen = s->epoch;
        if (run_jobs(s, w))
            continue;
        /* Nothing ran: sleep until something changes (see the epoch rule). */
        while (!s->quit && s->epoch == seen)
            pm__cond_wait(&s->work_cv, &s->lock);
    }
    pm__mutex_unlock(&s->lock);
    if (started && s->member_stop)
        s->member_stop(s->owner, w->index);
    return NULL;
}

void pm__crew_close(pm__crew *s)
{
    if (s->lock_ready && s->work_ready) {
        pm__mutex_lock(&s->lock);
        s->quit = 1;
        pm__cond_broadcast(&s->work_cv);
        pm__mutex_unlock(&s->lock);
    }
    for (int i = 0; i < s->started; i++)
        pm__thread_join(s->members[i].thread);
    s->started = 0;
    free(s->members);
    s->members = NULL;
    if (s->done_ready)
        pm__cond_destroy(&s->done_cv);
    if (s->work_ready)
        pm__cond_destroy(&s->work_cv);
    if (s->lock_ready)
        pm__mutex_destroy(&s->lock);
    s->lock_ready = s->work_ready = s->done_ready = 0;
}

int pm__crew_open(pm__crew *s, int size, pm__crew_step step, void *owner)
{
    int rc;
    if ((rc = pm__mutex_init(&s->lock)) != PM_OK)
        return rc;
    s->lock_ready = 1;
    if ((rc = pm__cond_init(&s->work_cv)) != PM_OK)
        return rc;
    s->work_ready = 1;
    if ((rc = pm__cond_init(&s->done_cv)) != PM_OK)
        return rc;
    s->done_ready = 1;
    s->size = size;
    s->helper = size;
    s->step = step;
    s->owner = owner;
    s->members = calloc((size_t)size + 1, sizeof *s->members);
    if (!s->members)
        return PM_ENOMEM;
    for (int i = 0; i < s->size; i++) {
        s->members[i].crew = s;
        s->members[i].index = i;
        if ((rc = pm__thread_start(&s->members[i].thread, worker_main, &s->members[i])) != PM_OK)
            return rc; /* the caller closes: joins the ones that started */
        s->started++;
    }
    return PM_OK;
}

void pm__crew_settle(pm__crew *s)
{
    pm__mutex_lock(&s->lock);
    while (s->settled < s->started)
        pm__cond_wait(&s->done_cv, &s->lock);
    pm__mutex_unlock(&s->lock);
}

void pm__crew_submit(pm__crew *s, pm__job *job)
{
    job->exec_next = NULL;
    job->exec_inside = 0;
    job->exec_ended = 0;
    pm__mutex_lock(&s->lock);
    pm__job **tail = &s->jobs;
    while (*tail)
        tail = &(*tail)->exec_next;
    *tail = job;
    /* A job capped to its caller alone (limit 1: a one-item call, or
     * threads = 1 on a shared pool) has nothing for a member: waking them
     * would only cost the caller the wake-ups, and its wait() the members'
     * passes through the job (the threaded wasm engine's small call paid
     * ~30% for it). The members see the job in the list when they next wake. */
    if (job->limit != 1) {
        s->epoch++;
        pm__cond_broadcast(&s->work_cv);
    }
    pm__mutex_unlock(&s->lock);
}

void pm__crew_notify(pm__crew *s)
{
    pm__mutex_lock(&s->lock);
    s->epoch++;
    pm__cond_broadcast(&s->work_cv);
    pm__mutex_unlock(&s->lock);
}

void pm__crew_wake(pm__crew *s)
{
    pm__mutex_lock(&s->lock);
    s->wake_pending = 1;
    done_changed(s);
    pm__mutex_unlock(&s->lock);
}

int pm__crew_wait(pm__crew *s, pm__job *job, double seconds, int help)
{
    double deadline = seconds >= 0 ? pm__now() + seconds : 0;
    pm__mutex_lock(&s->lock);
    if (help && (!job->exec_ended || pm__ws_owes(job, s->helper))) {
        /* Help: run chunks here, as worker number nworkers, until there are
         * none left (or it is time to return for a progress report). */
        job->exec_inside++;
        pm__mutex_unlock(&s->lock);
        int r;
        while ((r = s->step(s->owner, job, s->helper)) == PM__STEP_RAN)
            if (seconds >= 0 && pm__now() >= deadline)
                break;
        pm__mutex_lock(&s->lock);
        job->exec_inside--;
        if (r == PM__STEP_END)
            mark_ended(s, job);
        if (r == PM__STEP_RAN) {
            pm__mutex_unlock(&s->lock);
            return 0;
        }
    }
    while (!job_over(job)) {
        if (s->wake_pending) {
            s->wake_pending = 0;
            pm__mutex_unlock(&s->lock);
            return 0;
        }
        /* A member waiting for its own nested call runs whatever has work
         * (its caller's chunks, a sibling's nested call) rather than sleep
         * beside it: nested maps then keep every thread busy. It may take a
         * chunk of a job it is already inside further down its stack; it is
         * the same thread, so its worker slot is only ever used in turn.
         * run_jobs opens the lock while it steps: a broadcast in that window
         * (this job ended on another thread) would be lost, so a changed
         * done_seq means "look again" rather than "sleep". */
        unsigned long seen = s->done_seq;
        if (self && self->crew == s && run_jobs(s, self))
            continue;
        if (s->done_seq != seen)
            continue;
        if (seconds < 0) {
            pm__cond_wait(&s->done_cv, &s->lock);
            continue;
        }
        double left = deadline - pm__now();
        if (left <= 0) {
            pm__mutex_unlock(&s->lock);
            return 0;
        }
        pm__cond_timedwait(&s->done_cv, &s->lock, left);
    }
    for (pm__job **p = &s->jobs; *p; p = &(*p)->exec_next) {
        if (*p == job) {
            *p = job->exec_next;
            break;
        }
    }
    pm__mutex_unlock(&s->lock);
    return 1;
}

