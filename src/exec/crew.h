/*
 * crew.h - a crew of worker threads that run the chunks of submitted jobs.
 * The threads executor is a crew whose workers run chunks right here; the
 * processes executor is a crew whose workers each drive one lane of a forked
 * worker process. Both get the same job list, sleeping and waiting logic.
 */
#ifndef PM_CREW_H
#define PM_CREW_H

#include "../core/internal.h"

typedef struct pm__crew pm__crew;

/* What a crew worker does with a job: one chunk per call, PM__STEP_*. */
typedef int (*pm__crew_step)(void *owner, pm__job *job, int worker);

typedef struct pm__crew_member {
    pm__crew *crew;
    int index;
    pm__thread thread;
} pm__crew_member;

struct pm__crew {
    pm__mutex lock;
    pm__cond work_cv;      /* members: a job was submitted, notified, or quit */
    pm__cond done_cv;      /* wait(): a job may have ended */
    int lock_ready, work_ready, done_ready;
    pm__job *jobs;         /* submitted jobs, oldest first */
    unsigned long epoch;   /* bumped whenever there may be new work */
    unsigned long done_seq; /* bumped with every done_cv broadcast */
    int quit;
    int wake_pending;      /* pm__crew_wake: the next wait() returns 0 at once */
    int size;              /* members requested */
    int helper;            /* the worker number of the thread that helps in
                              pm__crew_wait: size, unless the executor has
                              more workers than members (MPI: the followers
                              come first, the caller is workers()) */
    int started;           /* threads actually running (join these) */
    int settled;           /* of those, how many finished starting up */
    pm__crew_member *members;
    pm__crew_step step;
    void *owner;
    /* Optional, set before pm__crew_open: run by each member in its own
     * thread, start before it settles (pm__crew_settle waits for them; a
     * nonzero return counts in start_failed), stop after it quits, only if
     * its start succeeded. */
    int  (*member_start)(void *owner, int index);
    void (*member_stop)(void *owner, int index);
    atomic_int start_failed;
};

/* Start `size` threads (0 is fine). On error the crew is half-built and
 * pm__crew_close cleans it up. */
int  pm__crew_open(pm__crew *c, int size, pm__crew_step step, void *owner);
void pm__crew_close(pm__crew *c);
/* Wait until every member has finished starting up (is running jobs or
 * asleep): a fork then finds none of them inside thread start-up code, whose
 * locks (a sanitizer allocator's, say) would stay held in the child. */
void pm__crew_settle(pm__crew *c);
void pm__crew_submit(pm__crew *c, pm__job *job);
void pm__crew_notify(pm__crew *c);
/* Make the thread in pm__crew_wait return 0 now, or the next call to it if
 * none is waiting (one waiter: the executor has work for it to do). */
void pm__crew_wake(pm__crew *c);
/* Wait up to `seconds` (< 0: forever) until the job ended and no member is
 * inside it; with `help`, first run its chunks on this thread as worker
 * number `helper`. 1: ended (and forgotten), 0: timeout or pm__crew_wake. */
int  pm__crew_wait(pm__crew *c, pm__job *job, double seconds, int help);

#endif
