/*
 * processes.c - the processes executor: items run in forked worker processes,
 * so a crash, abort(), exit() or an endless loop in one item costs that item
 * only, never the caller.
 *
 * Shape: `procs` processes x `threads` threads each; every worker thread is a
 * *lane*, driven from the parent by one crew member (crew.c). Per job (one at
 * a time) the lanes get a shared scratch mapping; the processes are forked at
 * the job's start by the calling thread (while no other thread of ours runs),
 * see the caller's memory as of the call, and are replaced by the crew
 * members when they die. (PR_SET_PDEATHSIG follows the forking thread: a
 * pm_imap's workers die if the thread that created it exits first; they are
 * then replaced and their items retried, at a cost but without loss.) A lane's member takes a task (a chunk) from
 * the job and sends it as *pieces* that fit the scratch: the message carries
 * only a pointer and a count when the input existed before the fork (pm_map:
 * the array is already in the child), else the input is copied into the
 * scratch (streams). Outputs and codes come back through the scratch; the
 * socket only carries "run n" / "ran k". The child publishes how many items
 * of the piece it finished in `pos`, so when it dies the parent knows exactly
 * which item was running.
 *
 * Crashes: the running item of a dead process is a *suspect*. A process may
 * have died for another reason (a sibling thread's item crashed, a stray
 * SIGKILL), so the suspect is run again alone in a fresh process, with the
 * process's other lanes held back (proc.exclusive). Only if it kills that
 * process too is it marked PM_ECRASH. An item that outlives timeout_s gets its
 * process killed and is marked PM_ETIMEOUT at once; its siblings' items are
 * suspects and retried.
 *
 * Forking from a multi-threaded caller, and why not from a spawner forked
 * early: a worker must see the caller's memory as of the call (the input
 * array, `user`, whatever the item function reads); a spawner forked at
 * startup would see none of it and every input would have to be copied. So
 * workers are forked at the call, and made safe by what the child does: only
 * the worker loop (child_main) and the item function. It takes no parmap lock
 * (another thread may have held one at the fork); the C library's fork
 * leaves malloc and stdio usable (it resets their locks in the child). The
 * rule left to users is that of every fork-based pool (Python's "fork" start
 * method too): an item function must not wait for a lock that another thread
 * of the caller may hold at the time of the call.
 *
 * Never hang, whatever an item or the program around it does: nothing blocks
 * while holding st->lock; a process that must go is killed before it is
 * waited for; the end of a job is a message (MSG_QUIT), never an EOF that a
 * copy of the socket in another process (a helper another thread forked,
 * another call's workers) would hold back; a worker whose socket an item
 * closed ends itself (lane_lost) rather than wait. A call that would wait for
 * its own pool (nested, chained) gets workers of its own (busy()).
 *
 * Recycling (opts.recycle_items / recycle_rss, proc_admit.c): a process past
 * its limit gets no new piece; the last lane out tells it to quit, reaps it
 * and the next piece starts a fresh one, so nothing is lost or run twice.
 *
 * Files: processes.c (this: the executor, a job's start and end),
 * proc_admit.c (entering a process for a piece, recycling), proc_lane.c
 * (pieces, answers, deaths, timeouts), proc_worker.c (the child's side,
 * forking and replacing).
 *
 * Locking: st->lock guards every proc (pid, gen, dead, active, exclusive) and
 * every lane's fds; a fork happens with it held (the child never touches it),
 * a reap never does. Lock order: st->lock, then the crew's (pm__crew_wake).
 * Lanes adopt a respawned process's new socket at their next piece.
 */
#include "processes.h"

#if PM_HAVE_FORK
#include <stdlib.h>
#include <unistd.h>

/* ------------------------------------------------------------- executor */

static void lanes_release(procs_state *st)
{
    for (int i = 0; i < st->nprocs * st->nthreads; i++) {
        lane *l = &st->lanes[i];
        pm__close(l->fd);
        pm__close(l->next_fd);
        l->fd = l->next_fd = -1;
        pm__shared_free(l->map, l->map_size);
        l->map = NULL;
    }
}

/* How long idle workers get to exit after MSG_QUIT before they are killed
 * (exiting flushes what their items printed). */
#define QUIT_GRACE_S 2.0

/* End of a job: tell every worker to quit, take their exits' answers (a
 * job with worker_exit, proc_state.c), then reap them. No worker is inside
 * the job any more, so nothing else needs st->lock meanwhile; it is held
 * only to take the processes and sockets, never while waiting. */
static void shutdown_procs(procs_state *st)
{
    int n = st->nprocs * st->nthreads;
    pm__mutex_lock(&st->lock);
    for (int i = 0; i < n; i++) {
        lane *l = &st->lanes[i];
        /* The socket to the lane's current process: its own, or a
         * respawn's that the lane has not adopted yet. */
        int to = l->gen == l->proc->gen ? l->fd : l->next_fd;
        msg_run quit = {NULL, 0, 0, MSG_QUIT};
        if (to >= 0 && l->proc->pid > 0)
            pm__send_all(to, &quit, sizeof quit); /* an idle lane's socket is empty: no block */
    }
    pm__mutex_unlock(&st->lock);
    /* Processes killed for a cancellation have no exits to run. */
    for (int i = 0; i < st->nprocs; i++)
        if (st->procs[i].pid > 0 && !st->procs[i].dead)
            pm__proc_exits(st, &st->procs[i], st->procs[i].pid);
    pm__mutex_lock(&st->lock);
    for (int i = 0; i < n; i++) {
        lane *l = &st->lanes[i];
        pm__close(l->fd);
        pm__close(l->next_fd);
        l->fd = l->next_fd = -1;
    }
    pm__mutex_unlock(&st->lock);
    /* One that does not exit in time (a stopped process, a thread of an
     * item stuck in the kernel) is killed. */
    double deadline = pm__now() + QUIT_GRACE_S, nap = PM__NAP_FIRST;
    for (int left = st->nprocs; left > 0;) {
        left = 0;
        for (int i = 0; i < st->nprocs; i++) {
            proc *p = &st->procs[i];
            if (p->pid <= 0)
                continue;
            if (pm__now() > deadline || pm__stopped(p->pid))
                pm__kill(p->pid);
            if (pm__try_reap(p->pid))
                p->pid = 0;
            else
                left++;
        }
        if (left)
            pm__nap_longer(&nap);
    }
    pm__mutex_lock(&st->lock);
    lanes_release(st);
    st->job = NULL;
    pm__cond_broadcast(&st->cv);
    pm__mutex_unlock(&st->lock);
}

static size_t align64(size_t n)
{
    return (n + 63) / 64 * 64;
}

static int procs_submit(void *state, pm__job *job)
{
    procs_state *st = state;
    int ships_in = job->codec && job->codec->encode_in;
    size_t span = job->codec ? sizeof(uint64_t) : 0, in_span = ships_in ? sizeof(uint64_t) : 0;
    size_t per_item = span + in_span + sizeof(int) + job->in_stride + job->out_stride;
    size_t cap = SCRATCH_BYTES / SLOTS / per_item; /* items per slot */
    if (cap == 0)
        cap = 1;
    size_t arena = job->codec ? ARENA_BYTES : 0, in_arena = ships_in ? ARENA_BYTES : 0;
    /* Every region starts on a 64-byte line, so records keep the alignment
     * their stride gives them (an item function may store a double). */
    size_t r_span = align64(cap * span), r_codes = align64(cap * sizeof(int));
    size_t r_in = align64(cap * job->in_stride), r_out = align64(cap * job->out_stride);
    size_t r_in_span = align64(cap * in_span);
    size_t slot_bytes = r_span + r_codes + r_in + r_out + arena + r_in_span + in_arena;
    /* A worker's exit record comes back through the scratch (proc_state.c). */
    size_t r_exit = job->exit_results ? align64(job->exit_size) : 0;
    pm__crew_settle(&st->crew); /* no member in start-up code at the fork below */
    pm__mutex_lock(&st->lock);
    /* One job at a time: its processes are forked for it. A call that found
     * the pool busy got an executor of its own (busy()); two calls from
     * independent threads that raced past that check wait here in turn. */
    while (st->job)
        pm__cond_wait(&st->cv, &st->lock);
    st->job = job;
    st->caller_forks = job->caller_waits;
    int rc = PM_OK;
    for (int i = 0; i < st->nprocs * st->nthreads && rc == PM_OK; i++) {
        lane *l = &st->lanes[i];
        l->map_size = 64 + SLOTS * slot_bytes + r_exit;
        l->map = pm__shared_alloc(l->map_size);
        if (!l->map) {
            rc = PM_ENOMEM;
            break;
        }
        l->shm = l->map;
        for (int k = 0; k < SLOTS; k++) {
            /* spans, then codes (alignment); records are copied with memcpy */
            unsigned char *base = (unsigned char *)l->map + 64 + (size_t)k * slot_bytes;
            l->spans[k] = (uint64_t *)base;
            l->codes[k] = (int *)(base + r_span);
            l->in[k] = base + r_span + r_codes;
            l->out[k] = l->in[k] + r_in;
            l->arena[k] = l->out[k] + r_out;
            l->in_spans[k] = (uint64_t *)(l->arena[k] + arena);
            l->in_arena[k] = (unsigned char *)l->in_spans[k] + r_in_span;
        }
        l->exit_rec = r_exit ? (unsigned char *)l->map + 64 + SLOTS * slot_bytes : NULL;
        l->arena_size = arena;
        l->in_arena_size = in_arena;
        l->cap = cap;
        l->gen = 0;
    }
    for (int i = 0; i < st->nprocs; i++) {
        st->procs[i].gen = 0;
        st->procs[i].dead = 0;
        st->procs[i].spawn_wanted = 0;
        st->procs[i].pid = 0;
    }
    /* Fork the workers here, on the calling thread, while the crew sleeps:
     * no thread of ours is inside malloc then. glibc's fork copes with that
     * anyway, but a sanitizer's allocator does not (its lock held by another
     * thread at the fork stays held in the child). A worker that fails to
     * start here is started (or reported) at its lane's first piece. */
    for (int i = 0; i < st->nprocs && rc == PM_OK; i++)
        pm__proc_spawn(st, &st->procs[i]);
    if (rc != PM_OK) {
        lanes_release(st);
        st->job = NULL;
        pm__cond_broadcast(&st->cv);
    }
    pm__mutex_unlock(&st->lock);
    if (rc == PM_OK)
        pm__crew_submit(&st->crew, job);
    return rc;
}

static int procs_busy(void *state)
{
    procs_state *st = state;
    pm__mutex_lock(&st->lock);
    int busy = st->job != NULL;
    pm__mutex_unlock(&st->lock);
    return busy;
}

/* Fork the replacements lanes asked for (pm__proc_ensure), on the calling
 * thread. */
static void serve_spawns(procs_state *st)
{
    pm__mutex_lock(&st->lock);
    int served = 0;
    for (int i = 0; i < st->nprocs; i++) {
        proc *p = &st->procs[i];
        if (!p->spawn_wanted)
            continue;
        if (p->pid == 0 && !p->dead)
            pm__proc_spawn(st, p); /* a failure leaves pid 0: the lane reports it */
        p->spawn_wanted = 0;
        served = 1;
    }
    if (served)
        pm__cond_broadcast(&st->cv);
    pm__mutex_unlock(&st->lock);
}

static int procs_wait(void *state, pm__job *job, double seconds)
{
    procs_state *st = state;
    double deadline = seconds >= 0 ? pm__now() + seconds : 0;
    /* Never help: an item must not run in the caller's process. Only fork
     * replacements when a lane asks (pm__crew_wake ends the wait early). */
    for (;;) {
        serve_spawns(st);
        double left = seconds >= 0 ? deadline - pm__now() : -1.0;
        if (seconds >= 0 && left < 0)
            left = 0;
        if (pm__crew_wait(&st->crew, job, left, 0))
            break;
        if (seconds >= 0 && pm__now() >= deadline) {
            serve_spawns(st);
            return 0;
        }
    }
    shutdown_procs(st);
    return 1;
}

static void procs_notify(void *state)
{
    pm__crew_notify(&((procs_state *)state)->crew);
}

static int procs_workers(const void *state)
{
    const procs_state *st = state;
    return st->nprocs * st->nthreads;
}

static void procs_close(void *state)
{
    procs_state *st = state;
    pm__crew_close(&st->crew);
    if (st->ready) {
        pm__cond_destroy(&st->cv);
        pm__mutex_destroy(&st->lock);
    }
    free(st->lanes);
    free(st->procs);
}

static int procs_open(void *state, const pm__exec_config *cfg)
{
    procs_state *st = state;
    st->nprocs = cfg->procs;
    st->nthreads = cfg->threads;
    st->parent = getpid();
    int n = st->nprocs * st->nthreads;
    st->procs = calloc((size_t)st->nprocs, sizeof *st->procs);
    st->lanes = calloc((size_t)n, sizeof *st->lanes);
    if (!st->procs || !st->lanes)
        return PM_ENOMEM;
    if (pm__mutex_init(&st->lock) != PM_OK)
        return PM_ESYS;
    if (pm__cond_init(&st->cv) != PM_OK) {
        pm__mutex_destroy(&st->lock);
        return PM_ESYS;
    }
    st->ready = 1;
    for (int i = 0; i < n; i++) {
        lane *l = &st->lanes[i];
        l->st = st;
        l->proc = &st->procs[i / st->nthreads];
        l->fd = l->next_fd = l->child_fd = -1;
    }
    for (int i = 0; i < st->nprocs; i++)
        st->procs[i].lanes = &st->lanes[i * st->nthreads];
    return pm__crew_open(&st->crew, n, pm__lane_step, st);
}

/* A worker with state is a thread of a worker process: procs x threads of
 * them at once (recycling brings more, counted as dropped past the
 * capacity). */
static int procs_state_workers(const pm__exec_config *cfg)
{
    return cfg->procs * cfg->threads;
}

const pm__exec_methods pm__exec_processes = {
    .version = 7,
    .name = "processes",
    .isolated = 1,
    .state_size = sizeof(procs_state),
    .open = procs_open,
    .workers = procs_workers,
    .submit = procs_submit,
    .notify = procs_notify,
    .wait = procs_wait,
    .close = procs_close,
    .busy = procs_busy,
    .ships = 1,
    .timeouts = 1,
    .recycles = 1,
    .worker_state = 1,
    .state_workers = procs_state_workers,
};

#endif /* PM_HAVE_FORK */
