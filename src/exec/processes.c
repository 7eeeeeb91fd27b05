/*
 * processes.c - the processes executor: items run in forked worker processes,
 * so a crash, abort(), exit() or an endless loop in one item costs that item
 * only, never the caller.
 *
 * Shape: `procs` processes x `threads` threads each; every worker thread is a
 * *lane*, driven from the parent by one crew member (crew.c). Per job (one at
 * a time) the lanes get a shared scratch mapping; the processes are forked at
 * the job's start by the crew members (they live as long as the executor, so
 * PR_SET_PDEATHSIG never fires early), see the caller's memory as of the call,
 * and are replaced when they die. A lane's member takes a task (a chunk) from
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
 * Locking: st->lock guards every proc (pid, gen, dead, active, exclusive) and
 * every lane's fds; a fork happens with it held (the child never touches it).
 * Lanes adopt a respawned process's new socket at their next piece.
 */
#include "crew.h"

#if PM_HAVE_FORK
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Shared scratch per lane: enough for ~4 MB of records per piece. */
#define SCRATCH_BYTES ((size_t)4 << 20)
/* How often a waiting member checks cancellation, timeouts, liveness. */
#define CHECK_S 0.05

/* Two scratch slots per lane, so that the next piece is already queued when
 * the worker finishes one (the worker never waits for the parent between
 * small chunks). */
#define SLOTS 2

typedef struct lane_shm {
    atomic_size_t pos[SLOTS]; /* items of the slot's piece finished (child writes) */
} lane_shm;

typedef struct msg_run {   /* parent -> worker thread */
    const void *in;        /* inherited input, or NULL: read the scratch */
    size_t count;
    int slot;
} msg_run;

typedef struct msg_done {  /* worker thread -> parent */
    size_t ran;
} msg_done;

typedef struct proc proc;
typedef struct procs_state procs_state;

typedef struct lane {
    procs_state *st;
    proc *proc;
    int fd, next_fd, child_fd;  /* ours, a respawn's not yet adopted, the child's */
    unsigned gen;               /* generation of the process `fd` talks to */
    void *map;
    size_t map_size, cap;
    lane_shm *shm;
    int *codes[SLOTS];
    unsigned char *in[SLOTS], *out[SLOTS];
} lane;

struct proc {
    pid_t pid;                 /* 0: not running */
    unsigned gen;              /* bumped at every (re)spawn */
    int dead;                  /* killed for cancellation: do not respawn */
    int last_signal;
    int active, exclusive, want_exclusive;
    lane *lanes;               /* `threads` of them */
};

struct procs_state {
    pm__crew crew;             /* first: member w drives lanes[w] */
    int nprocs, nthreads, ready;
    pid_t parent;
    pm__mutex lock;
    pm__cond cv;               /* exclusivity changes, the job slot frees */
    pm__job *job;              /* the job the processes belong to */
    proc *procs;
    lane *lanes;
};

/* ------------------------------------------------------------ child side */

static void *child_lane(void *arg)
{
    lane *l = arg;
    pm__job *job = l->st->job;
    msg_run m;
    while (pm__recv_all(l->child_fd, &m, sizeof m) == 0) {
        if (m.slot < 0 || m.slot >= SLOTS || m.count > l->cap)
            break;
        const unsigned char *in = m.in ? m.in : l->in[m.slot];
        unsigned char *out = l->out[m.slot];
        int *codes = l->codes[m.slot];
        size_t k;
        for (k = 0; k < m.count; k++) {
            int code = job->fn(job->user, in + k * job->in_stride,
                               job->out_stride ? out + k * job->out_stride : NULL);
            codes[k] = code;
            atomic_store_explicit(&l->shm->pos[m.slot], k + 1, memory_order_release);
            if (code && job->raise) {
                k++;
                break;
            }
        }
        msg_done d = {k};
        if (pm__send_all(l->child_fd, &d, sizeof d) != 0)
            break;
    }
    return NULL;
}

static void child_main(procs_state *st, proc *p)
{
    pm__child_setup(st->parent);
    /* Keep only this process's sockets: a sibling's socket held open here
     * would hide that sibling's death (no EOF) from the parent. */
    for (int i = 0; i < st->nprocs * st->nthreads; i++) {
        lane *l = &st->lanes[i];
        pm__close(l->fd);
        pm__close(l->next_fd);
        if (l->proc != p)
            pm__close(l->child_fd);
    }
    pm__thread threads[PM_MAX_THREADS];
    int started = 0;
    for (int t = 1; t < st->nthreads; t++) {
        if (pm__thread_start(&threads[t], child_lane, &p->lanes[t]) != PM_OK)
            pm__child_exit(70); /* seen by the parent as a crash */
        started = t;
    }
    child_lane(&p->lanes[0]);
    for (int t = 1; t <= started; t++)
        pm__thread_join(threads[t]);
    pm__child_exit(0);
}

/* ------------------------------------------------------------ processes */

/* Fork a (new) process for p (lock held). Its lanes adopt the sockets later. */
static int spawn(procs_state *st, proc *p)
{
    int rc = PM_OK;
    for (int t = 0; t < st->nthreads && rc == PM_OK; t++) {
        int fds[2];
        if (pm__socket_pair(fds) != 0) {
            rc = PM_ESYS;
            break;
        }
        pm__close(p->lanes[t].next_fd);
        p->lanes[t].next_fd = fds[0];
        p->lanes[t].child_fd = fds[1];
    }
    pid_t pid = rc == PM_OK ? pm__fork() : -1;
    if (pid == 0)
        child_main(st, p); /* never returns */
    for (int t = 0; t < st->nthreads; t++) {
        pm__close(p->lanes[t].child_fd);
        p->lanes[t].child_fd = -1;
    }
    if (pid < 0) {
        p->pid = 0;
        return rc == PM_OK ? PM_ESYS : rc;
    }
    p->pid = pid;
    p->gen++;
    return PM_OK;
}

/* The process behind generation `gen` died: reap it and start another, unless
 * someone already did or the job is being canceled (lock held). */
static void replace(procs_state *st, proc *p, unsigned gen)
{
    if (p->gen != gen || p->pid == 0)
        return;
    int sig, status;
    pm__reap(p->pid, &sig, &status);
    p->last_signal = sig;
    p->pid = 0;
    if (!p->dead)
        spawn(st, p);
}

/* ---------------------------------------------------------------- pieces */

enum { PIECE_OK, PIECE_DIED, PIECE_CANCELED, PIECE_NOPROC };

typedef struct piece {
    const unsigned char *in;
    size_t count;
    int inherited, exclusive, slot;
    /* out */
    size_t done;     /* items finished (their outputs and codes are in the scratch) */
    int timed_out;   /* we killed the process: the item at `done` ran too long */
    int signal;      /* what the process died of */
    pid_t pid;       /* the process it ran in */
} piece;

/* Enter the lane's process for a piece: wait for exclusivity rules, spawn or
 * adopt its process. Returns the generation talked to, or 0 when there is no
 * process (canceled: p->dead, or fork failed). */
static unsigned enter(procs_state *st, lane *l, int exclusive, pid_t *pid, int *dead)
{
    proc *p = l->proc;
    pm__mutex_lock(&st->lock);
    if (exclusive) {
        p->want_exclusive++;
        while (p->exclusive || p->active)
            pm__cond_wait(&st->cv, &st->lock);
        p->want_exclusive--;
        p->exclusive = 1;
    } else {
        while (p->exclusive || p->want_exclusive)
            pm__cond_wait(&st->cv, &st->lock);
        p->active++;
    }
    if (p->pid == 0 && !p->dead)
        spawn(st, p);
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

static void leave(procs_state *st, lane *l, int exclusive)
{
    pm__mutex_lock(&st->lock);
    if (exclusive)
        l->proc->exclusive = 0;
    else
        l->proc->active--;
    pm__cond_broadcast(&st->cv);
    pm__mutex_unlock(&st->lock);
}

/* Wait for the worker's answer, watching cancellation and the item timeout. */
static int await(procs_state *st, lane *l, pm__job *job, piece *pc)
{
    size_t last_pos = 0;
    double last_change = pm__now();
    for (;;) {
        msg_done d;
        int r = pm__recv_msg(l->fd, &d, sizeof d); /* gives up after CHECK_S */
        if (r == 0 && d.ran <= pc->count) {
            pc->done = d.ran;
            return PIECE_OK;
        }
        if (r != 1)
            return PIECE_DIED;
        if (pm__canceled(job->cancel)) {
            pm__mutex_lock(&st->lock);
            l->proc->dead = 1;
            if (l->proc->pid == pc->pid)
                pm__kill(pc->pid);
            pm__mutex_unlock(&st->lock);
            return PIECE_CANCELED;
        }
        size_t pos = atomic_load_explicit(&l->shm->pos[pc->slot], memory_order_acquire);
        double now = pm__now();
        if (pos != last_pos) {
            last_pos = pos;
            last_change = now;
        } else if (job->timeout_s > 0 && now - last_change > job->timeout_s && !pc->timed_out) {
            pc->timed_out = 1;
            pm__kill(pc->pid); /* not reaped before we say so: the pid is still ours */
        }
        if (pm__has_exited(pc->pid))
            return PIECE_DIED; /* no EOF if some other process holds our socket */
    }
}

/* Queue a piece to the lane's worker (we are inside its process). */
static int send_piece(lane *l, const pm__job *job, piece *pc)
{
    pc->done = 0;
    pc->timed_out = 0;
    pc->signal = 0;
    if (!pc->inherited)
        memcpy(l->in[pc->slot], pc->in, pc->count * job->in_stride);
    atomic_store_explicit(&l->shm->pos[pc->slot], 0, memory_order_relaxed);
    msg_run m = {pc->inherited ? pc->in : NULL, pc->count, pc->slot};
    return pm__send_all(l->fd, &m, sizeof m) == 0 ? PIECE_OK : PIECE_DIED;
}

/* Wait for a sent piece (the oldest one sent); on death, replace the process. */
static int end_piece(procs_state *st, lane *l, pm__job *job, piece *pc, int sent, unsigned gen)
{
    int r = sent == PIECE_OK ? await(st, l, job, pc) : PIECE_DIED;
    if (r != PIECE_OK)
        pc->done = atomic_load_explicit(&l->shm->pos[pc->slot], memory_order_acquire);
    if (r == PIECE_DIED) {
        pm__mutex_lock(&st->lock);
        replace(st, l->proc, gen);
        pc->signal = l->proc->last_signal;
        pm__mutex_unlock(&st->lock);
    }
    return r;
}

static int run_piece(procs_state *st, lane *l, pm__job *job, piece *pc)
{
    int canceled;
    unsigned gen = enter(st, l, pc->exclusive, &pc->pid, &canceled);
    if (!gen) {
        leave(st, l, pc->exclusive);
        return canceled ? PIECE_CANCELED : PIECE_NOPROC;
    }
    int r = end_piece(st, l, job, pc, send_piece(l, job, pc), gen);
    leave(st, l, pc->exclusive);
    return r;
}

/* Take a finished piece's results into the task, items [k, k + n). Outputs
 * of failed items are not copied: the caller's memory keeps what it had. */
static void collect(const lane *l, int slot, const pm__job *job, pm__task *t, size_t k, size_t n)
{
    const int *codes = l->codes[slot];
    const unsigned char *out = l->out[slot];
    size_t os = job->out_stride, run = 0;
    for (size_t j = 0; j <= n; j++) {
        if (j < n && codes[j] == 0) {
            pm__task_record(job, t, k + j, 0);
            run++;
            continue;
        }
        if (t->out && run)
            memcpy(t->out + (k + j - run) * os, out + (j - run) * os, run * os);
        run = 0;
        if (j < n)
            pm__task_record(job, t, k + j, codes[j]);
    }
}

static void task_reset(pm__task *t)
{
    t->failed = 0;
    t->first_failed = SIZE_MAX;
    t->first_code = 0;
    t->signal = 0;
    t->signal_index = SIZE_MAX;
    t->ran = 0;
}

/* Run a task remotely from item k on, piece by piece, one piece at a time,
 * handling deaths as described above. `died`: the piece that was running at
 * item k when its process died (its results are already collected). */
static void run_task(procs_state *st, lane *l, pm__job *job, pm__task *t, size_t k,
                     const piece *died)
{
    while (k < t->count) {
        piece pc;
        int r;
        if (died) {
            pc = *died;
            died = NULL;
            r = PIECE_DIED;
        } else {
            pc = (piece){.in = t->in + k * job->in_stride, .inherited = t->inherited};
            pc.count = t->count - k < l->cap ? t->count - k : l->cap;
            r = run_piece(st, l, job, &pc);
            collect(l, 0, job, t, k, pc.done);
            k += pc.done;
        }
        if (r == PIECE_CANCELED || (job->raise && t->failed))
            break;
        if (r == PIECE_OK || pc.done == pc.count)
            continue;
        if (r == PIECE_NOPROC) { /* fork failed: say so per item, go on */
            pm__task_record(job, t, k++, PM_ESYS);
            continue;
        }
        /* Died while running item k. */
        int code = PM_ETIMEOUT, sig = pc.signal;
        if (!pc.timed_out) {
            piece again = {.in = t->in + k * job->in_stride, .count = 1,
                           .inherited = t->inherited, .exclusive = 1};
            r = run_piece(st, l, job, &again);
            if (r == PIECE_CANCELED)
                break;
            if (r == PIECE_NOPROC) {
                pm__task_record(job, t, k++, PM_ESYS);
                continue;
            }
            if (r == PIECE_OK) {
                collect(l, 0, job, t, k, 1); /* innocent: a sibling or a stray kill */
                k++;
                continue;
            }
            code = again.timed_out ? PM_ETIMEOUT : PM_ECRASH;
            sig = again.signal;
        }
        pm__task_record(job, t, k, code);
        if (!t->signal && sig) {
            t->signal = sig;
            t->signal_index = t->base + k;
        }
        k++;
    }
    t->ran = k;
}

/*
 * A lane's step. The fast path keeps two one-piece tasks in flight: while the
 * worker runs the head, the next task is already queued in the other slot, so
 * the worker never sleeps between small chunks. Anything unusual (a task
 * bigger than a slot, no process, a death, a cancellation) ends the fast path
 * and the tasks still held go the careful way (run_task); a task queued behind
 * a dead one never started and is simply run again.
 */
static int lane_step(void *owner, pm__job *job, int worker)
{
    procs_state *st = owner;
    lane *l = &st->lanes[worker];
    pm__task t[SLOTS];
    piece pc[SLOTS];
    int sent[SLOTS];
    int r = job->take(job, worker, l->cap, &t[0]);
    if (r != PM__STEP_RAN)
        return r;
    task_reset(&t[0]);
    int head = 0, held = 1, more = 1, canceled = 0, entered = 0;
    pid_t pid = 0;
    unsigned gen = 0;
    r = PIECE_OK;
    if (t[0].count <= l->cap) {
        gen = enter(st, l, 0, &pid, &canceled);
        entered = 1;
    }
    sent[0] = 0;
    if (gen) {
        pc[0] = (piece){.in = t[0].in, .count = t[0].count, .inherited = t[0].inherited, .pid = pid};
        sent[0] = send_piece(l, job, &pc[0]) == PIECE_OK;
    }
    while (held > 0 && sent[head]) {
        int next = (head + 1) % SLOTS;
        if (held < SLOTS && more) {
            if (job->take(job, worker, l->cap, &t[next]) == PM__STEP_RAN) {
                task_reset(&t[next]);
                held++;
                sent[next] = 0;
                if (t[next].count <= l->cap) {
                    pc[next] = (piece){.in = t[next].in, .count = t[next].count,
                                       .inherited = t[next].inherited, .slot = next, .pid = pid};
                    sent[next] = send_piece(l, job, &pc[next]) == PIECE_OK;
                }
            } else {
                more = 0;
            }
        }
        r = end_piece(st, l, job, &pc[head], PIECE_OK, gen);
        collect(l, head, job, &t[head], 0, pc[head].done);
        t[head].ran = pc[head].done;
        if (r != PIECE_OK)
            break; /* the head goes the careful way below */
        job->finish(job, worker, &t[head]);
        head = next;
        held--;
    }
    if (entered)
        leave(st, l, 0);
    /* The careful way for what is still held, oldest first. */
    for (int i = 0; i < held; i++) {
        int s = (head + i) % SLOTS;
        if (i == 0 && r == PIECE_DIED)
            run_task(st, l, job, &t[s], pc[s].done, &pc[s]);
        else if (i == 0 && r == PIECE_CANCELED)
            ; /* keep what it ran */
        else
            run_task(st, l, job, &t[s], 0, NULL);
        job->finish(job, worker, &t[s]);
    }
    return PM__STEP_RAN;
}

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

/* End of a job: EOF makes idle workers exit; reap them all. */
static void shutdown_procs(procs_state *st)
{
    pm__mutex_lock(&st->lock);
    for (int i = 0; i < st->nprocs * st->nthreads; i++) {
        pm__close(st->lanes[i].fd);
        pm__close(st->lanes[i].next_fd);
        st->lanes[i].fd = st->lanes[i].next_fd = -1;
    }
    for (int i = 0; i < st->nprocs; i++) {
        proc *p = &st->procs[i];
        if (p->pid > 0) {
            int sig, status;
            pm__reap(p->pid, &sig, &status);
        }
        p->pid = 0;
    }
    lanes_release(st);
    st->job = NULL;
    pm__cond_broadcast(&st->cv);
    pm__mutex_unlock(&st->lock);
}

static int procs_submit(void *state, pm__job *job)
{
    procs_state *st = state;
    size_t per_item = job->in_stride + job->out_stride + sizeof(int);
    size_t cap = SCRATCH_BYTES / SLOTS / per_item; /* items per slot */
    if (cap == 0)
        cap = 1;
    size_t slot_bytes = cap * per_item;
    pm__mutex_lock(&st->lock);
    while (st->job) /* one job at a time: its processes are forked for it */
        pm__cond_wait(&st->cv, &st->lock);
    st->job = job;
    int rc = PM_OK;
    for (int i = 0; i < st->nprocs * st->nthreads && rc == PM_OK; i++) {
        lane *l = &st->lanes[i];
        l->map_size = 64 + SLOTS * slot_bytes;
        l->map = pm__shared_alloc(l->map_size);
        if (!l->map) {
            rc = PM_ENOMEM;
            break;
        }
        l->shm = l->map;
        for (int k = 0; k < SLOTS; k++) {
            /* codes first: int alignment; records are copied with memcpy */
            unsigned char *base = (unsigned char *)l->map + 64 + (size_t)k * slot_bytes;
            l->codes[k] = (int *)base;
            l->in[k] = base + cap * sizeof(int);
            l->out[k] = l->in[k] + cap * job->in_stride;
        }
        l->cap = cap;
        l->gen = 0;
    }
    for (int i = 0; i < st->nprocs; i++) {
        st->procs[i].gen = 0;
        st->procs[i].dead = 0;
        st->procs[i].pid = 0;
    }
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

static int procs_wait(void *state, pm__job *job, double seconds)
{
    procs_state *st = state;
    /* Never help: an item must not run in the caller's process. */
    if (!pm__crew_wait(&st->crew, job, seconds, 0))
        return 0;
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
    return pm__crew_open(&st->crew, n, lane_step, st);
}

const pm__exec_methods pm__exec_processes = {
    .version = 1,
    .name = "processes",
    .isolated = 1,
    .state_size = sizeof(procs_state),
    .open = procs_open,
    .workers = procs_workers,
    .submit = procs_submit,
    .notify = procs_notify,
    .wait = procs_wait,
    .close = procs_close,
};

#endif /* PM_HAVE_FORK */
