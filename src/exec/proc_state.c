/*
 * proc_state.c - per-worker state (opts.worker_init / worker_exit) on the
 * processes backend: both sides of it.
 *
 * A worker, in the sense of the API, is a lane: one worker thread of one
 * worker process. Its state lives in the child, in that thread: init runs
 * there before the lane's first item of the process's lifetime, and items
 * reach the state with pm_worker_state() (set once per lane thread). A
 * process lifetime ends in one of three ways:
 *  - the job ends, or the process is recycled: the parent sends MSG_QUIT,
 *    each lane runs its exit and answers DONE_EXIT; the record the exit
 *    wrote travels in the lane's shared scratch (its exit_rec region, so
 *    nothing is allocated in the child and any exit_size fits), and the
 *    parent copies it into opts.exit_results (pm__ws_deliver). So the
 *    caller gets one record per lane per process lifetime;
 *  - the process dies (a crash, a timeout kill, a cancellation kill): its
 *    states die with it, no exit runs, no record comes; the replacement
 *    process starts new states at its lanes' next pieces.
 * A failed init answers its pieces with PM_EWORKERINIT (DONE_INIT_FAILED),
 * which the parent turns into job->ws_failed, so the job stops as on
 * threads. The parent waits for the exits' answers before reaping, bounded
 * by timeout_s when set (an exit is user code like an item), never by an
 * EOF (other processes may hold copies of the socket).
 *
 * The parent-side ws slots of the job (job->ws, ws_live) stay untouched
 * here: crew members are not workers of a processes job, so the crew never
 * waits for them to owe an exit.
 */
#include "processes.h"

#if PM_HAVE_FORK
#include <string.h>

/* ------------------------------------------------------------ child side */

int pm__lane_ws_ready(lane *l, lane_ws *w)
{
    const pm__job *job = l->st->job;
    if (!job->ws || w->phase == 1)
        return 1;
    if (w->phase == 0) {
        void *state = NULL;
        if (job->worker_init && job->worker_init(job->worker_user, &state) != 0) {
            w->phase = 2; /* no state: no exit either, as on threads */
        } else {
            w->phase = 1;
            w->state = state;
            pm__ws_set_current(state);
        }
        /* The item timeout measures items: the parent restarts its clock. */
        atomic_fetch_add_explicit(&l->shm->beat, 1, memory_order_release);
    }
    return w->phase == 1;
}

size_t pm__lane_ws_refuse(lane *l, int slot, size_t count)
{
    for (size_t k = 0; k < count; k++)
        l->codes[slot][k] = PM_EWORKERINIT;
    atomic_store_explicit(&l->shm->pos[slot], count, memory_order_release);
    return count;
}

int pm__procs_exits_owed(const pm__job *job)
{
    /* Without worker_exit there is nothing to wait for: the process ends
     * as without state. */
    return job->ws && job->worker_exit;
}

void pm__lane_ws_quit(lane *l, lane_ws *w)
{
    const pm__job *job = l->st->job;
    if (!pm__procs_exits_owed(job))
        return;
    msg_done d = {0, DONE_EXIT};
    if (w->phase == 1) {
        void *rec = job->exit_results ? l->exit_rec : NULL;
        if (rec)
            memset(rec, 0, job->exit_size);
        job->worker_exit(job->worker_user, w->state, rec);
        pm__ws_set_current(NULL);
        w->phase = 2;
        w->state = NULL;
        if (rec)
            d.flags |= DONE_RECORD;
    }
    /* Only on our own socket (an item may have closed it, and its number
     * may now be another file); no answer means no record. */
    if (pm__fd_id(l->child_fd) == l->child_id)
        pm__send_all(l->child_fd, &d, sizeof d);
}

/* ----------------------------------------------------------- parent side */

/* The answer of lane l (on fd) to MSG_QUIT. Returns 0 when the process must
 * be given up (it died, stopped, ran out of time or the call was canceled
 * while exits ran: the caller kills it), 1 otherwise. */
static int await_exit(pm__job *job, lane *l, int fd, pid_t pid, double deadline,
                      int canceled_before)
{
    pm__set_recv_timeout(fd, CHECK_S); /* a respawn's socket a lane never adopted has none */
    int stops = 0, exited = 0;
    for (;;) {
        msg_done d;
        int r = pm__recv_msg(fd, &d, sizeof d);
        if (r == 0 && (d.flags & DONE_EXIT)) {
            if (d.flags & DONE_RECORD)
                pm__ws_deliver(job, l->exit_rec);
            return 1;
        }
        if (r == 0 || r < 0 || exited)
            return 0; /* not our protocol, or it ended without answering */
        if (pm__has_exited(pid)) {
            exited = 1; /* one more look: the answer may have come just before */
            continue;
        }
        stops = pm__stopped(pid) ? stops + 1 : 0;
        if (stops == 2 || (deadline > 0 && pm__now() > deadline) ||
            (!canceled_before && pm__canceled(job->cancel)))
            return 0;
    }
}

void pm__proc_exits(procs_state *st, proc *p, pid_t pid)
{
    pm__job *job = st->job;
    if (!pm__procs_exits_owed(job) || pid <= 0)
        return;
    double deadline = job->timeout_s > 0 ? pm__now() + job->timeout_s : 0;
    /* A call ended by its cancellation still runs the exits of the workers
     * it did not kill; a cancellation that comes while they run kills them. */
    int canceled_before = pm__canceled(job->cancel);
    for (int t = 0; t < st->nthreads; t++) {
        lane *l = &p->lanes[t];
        /* The socket to the process that got MSG_QUIT: the lane's own, or a
         * respawn's it has not adopted yet (that lane never started there,
         * but answers all the same). */
        int fd = l->gen == p->gen ? l->fd : l->next_fd;
        if (fd >= 0 && !await_exit(job, l, fd, pid, deadline, canceled_before)) {
            pm__kill(pid); /* its other lanes' states are lost with it */
            return;
        }
    }
}

#endif
