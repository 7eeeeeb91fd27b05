/*
 * proc_admit.c - who may send pieces to a worker process, and when it is
 * replaced for good behaviour (recycling). A lane enters its process before
 * a piece and leaves after it; a suspect retried alone enters exclusively
 * (the process's other lanes held back), and a process being recycled
 * admits nobody until the last lane out has replaced it. The policy is
 * described atop processes.c.
 */
#include "processes.h"

#if PM_HAVE_FORK

/* Enter the lane's process for a piece: wait for exclusivity rules, spawn or
 * adopt its process. Returns the generation talked to, or 0 when there is no
 * process (canceled: p->dead, or fork failed). */
unsigned pm__lane_enter(procs_state *st, lane *l, int exclusive, pid_t *pid, int *dead)
{
    proc *p = l->proc;
    pm__mutex_lock(&st->lock);
    if (exclusive) {
        p->want_exclusive++;
        while (p->exclusive || p->active || p->retiring)
            pm__cond_wait(&st->cv, &st->lock);
        p->want_exclusive--;
        p->exclusive = 1;
    } else {
        while (p->exclusive || p->want_exclusive || p->retiring)
            pm__cond_wait(&st->cv, &st->lock);
        p->active++;
    }
    /* The process may die again between its spawn and this lane waking up
     * (another lane's item crashed it): then ask again. Only a fork that
     * keeps failing leaves it without a process (the lane's items: PM_ESYS). */
    for (int tries = 0; tries < 3 && p->pid == 0 && !p->dead; tries++)
        pm__proc_ensure(st, p);
    if (l->gen != p->gen && l->next_fd >= 0) {
        pm__close(l->fd);
        l->fd = l->next_fd;
        l->next_fd = -1;
        l->gen = p->gen;
        pm__set_recv_timeout(l->fd, CHECK_S);
    }
    *dead = p->dead;
    unsigned gen = p->dead || p->pid == 0 ? 0 : l->gen;
    *pid = p->pid;
    pm__mutex_unlock(&st->lock);
    return gen;
}

/*
 * Recycling (opts.recycle_items / recycle_rss): a process past its limit is
 * marked retiring after a piece (note_done); no lane starts another piece in
 * it, and the last lane out (leave) tells it to quit, reaps it, and lets the
 * next piece start a fresh one. Every piece in it had been answered, so no
 * item is lost or run twice. With st->lock held; waits (the reap) without it.
 */
static void retire(procs_state *st, proc *p)
{
    pid_t old = p->pid;
    p->pid = 0;
    msg_run quit = {NULL, 0, 0, MSG_QUIT};
    for (int t = 0; t < st->nthreads && old > 0; t++) {
        lane *l = &p->lanes[t];
        int to = l->gen == p->gen ? l->fd : l->next_fd;
        if (to >= 0)
            pm__send_all(to, &quit, sizeof quit); /* idle lanes: an empty buffer, no block */
    }
    pm__mutex_unlock(&st->lock);
    /* Its workers' exits run now, and their records come back, before it
     * is reaped: one record per process lifetime (proc_state.c). Nobody
     * else touches p's lanes meanwhile (retiring keeps them out). */
    pm__proc_exits(st, p, old);
    double deadline = pm__now() + 2.0, nap = PM__NAP_FIRST; /* then it is killed, as at the end of a job */
    while (old > 0 && !pm__try_reap(old)) {
        if (pm__now() > deadline)
            pm__kill(old);
        pm__nap_longer(&nap);
    }
    pm__mutex_lock(&st->lock);
    p->items_run = 0;
    p->retiring = 0;
}

void pm__lane_leave(procs_state *st, lane *l, int exclusive)
{
    proc *p = l->proc;
    pm__mutex_lock(&st->lock);
    if (exclusive)
        p->exclusive = 0;
    else
        p->active--;
    if (p->retiring && !p->active && !p->exclusive)
        retire(st, p);
    pm__cond_broadcast(&st->cv);
    pm__mutex_unlock(&st->lock);
}

void pm__proc_ran(procs_state *st, lane *l, const pm__job *job, pid_t pid, size_t done)
{
    if (!job->recycle_items && !job->recycle_rss)
        return;
    size_t rss = job->recycle_rss ? pm__rss_bytes(pid) : 0;
    pm__mutex_lock(&st->lock);
    proc *p = l->proc;
    if (p->pid == pid) {
        p->items_run += done;
        if ((job->recycle_items && p->items_run >= job->recycle_items) ||
            (job->recycle_rss && rss > job->recycle_rss))
            p->retiring = 1;
    }
    pm__mutex_unlock(&st->lock);
}

int pm__proc_retiring(procs_state *st, const lane *l)
{
    pm__mutex_lock(&st->lock);
    int r = l->proc->retiring;
    pm__mutex_unlock(&st->lock);
    return r;
}

/* Recycling by item count: a piece never takes a process past its budget
 * (pieces already in flight aside), so that a process is replaced after
 * about recycle_items items even when chunks are long. */
size_t pm__proc_budget(lane *l, const pm__job *job, size_t count)
{
    if (!job->recycle_items)
        return count;
    procs_state *st = l->st;
    pm__mutex_lock(&st->lock);
    size_t run = l->proc->items_run;
    pm__mutex_unlock(&st->lock);
    size_t left = job->recycle_items > run ? job->recycle_items - run : 1;
    return count < left ? count : left;
}

#endif
