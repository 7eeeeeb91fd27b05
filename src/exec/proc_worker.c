/*
 * proc_worker.c - the worker processes: what a forked child runs (one thread
 * per lane, each answering "run n items" with "ran k" and publishing its
 * progress in the shared scratch), and forking / replacing them. See the
 * post-fork rules atop processes.c: the child never takes a parmap lock.
 */
#include "processes.h"

#if PM_HAVE_FORK
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <unistd.h>

/* ------------------------------------------------------------ child side */

/* A job with an output codec: encode item k's output into the slot's arena.
 * Returns 0, an item code, or -1 when the arena is full (the piece ends
 * before item k, which runs again in the next piece). */
static int ship_output(lane *l, int slot, size_t k, size_t *used, void *out)
{
    const pm__codec *codec = l->st->job->codec;
    unsigned char *buf = NULL;
    size_t len = 0;
    int code = codec->encode(codec->ctx, out, &buf, &len);
    l->spans[slot][k] = 0;
    if (code == 0 && len > l->arena_size) {
        code = PM_ENOMEM; /* could never fit: this item fails */
    } else if (code == 0 && *used + len > l->arena_size) {
        free(buf);
        return -1;
    } else if (code == 0) {
        memcpy(l->arena[slot] + *used, buf, len);
        l->spans[slot][k] = (uint64_t)*used << 32 | len;
        *used += len;
    }
    free(buf);
    return code;
}

/*
 * A lane whose socket an item closed (or whose number now means another
 * file) cannot tell the parent anything any more, so the process must end:
 * the parent sees it die, keeps what the scratch says finished and retries
 * the items that were running. It ends as soon as no lane is inside a piece
 * (`busy`), so an item that closed every fd still finishes and publishes its
 * result first: the lane that notices sets `broken` and leaves; the last
 * lane out of a piece sees it and exits (both sides use sequentially
 * consistent atomics, so one of them always sees the other).
 */
static atomic_int busy, broken;

static void lane_lost(void)
{
    atomic_store(&broken, 1);
    if (atomic_load(&busy) == 0)
        pm__child_exit(LANE_LOST_EXIT);
}

static void piece_done(void)
{
    if (atomic_fetch_sub(&busy, 1) == 1 && atomic_load(&broken))
        pm__child_exit(LANE_LOST_EXIT);
}

/* Item k's input shipped encoded (streams with an input codec): decode it
 * into the private record `own_in`. 0 or the item's code. */
static int take_input(lane *l, int slot, size_t k, unsigned char *own_in)
{
    const pm__codec *codec = l->st->job->codec;
    uint64_t span = l->in_spans[slot][k];
    size_t off = (size_t)(span >> 32), len = (size_t)(span & 0xffffffffu);
    if (span & SPAN_FAILED) { /* did not reach us: a record must still be there to release */
        codec->decode_in(codec->ctx, NULL, 0, own_in);
        return (int)(uint32_t)span;
    }
    return codec->decode_in(codec->ctx, l->in_arena[slot] + off, len, own_in);
}

/* A piece's items with the item function; with a codec each output is
 * encoded into the slot's arena (and, `own_in`, each input decoded first).
 * Returns how many ran (the piece ends early at a PM_RAISE failure, or when
 * the arena is full). */
static size_t run_items(lane *l, const msg_run *m, const unsigned char *in, unsigned char *own,
                        unsigned char *own_in)
{
    pm__job *job = l->st->job;
    unsigned char *out = l->out[m->slot];
    int *codes = l->codes[m->slot];
    size_t k, used = 0;
    for (k = 0; k < m->count; k++) {
        unsigned char *rec = own ? own : out + k * job->out_stride;
        const unsigned char *rec_in = in + k * job->in_stride;
        int code = own_in ? take_input(l, m->slot, k, own_in) : 0, undecoded = code != 0;
        if (own_in)
            rec_in = own_in;
        if (!undecoded)
            code = job->fn(job->user, rec_in, job->out_stride ? rec : NULL);
        if (own) {
            /* an input that did not decode ran nothing: no output to ship */
            int shipped = 0;
            if (undecoded)
                l->spans[m->slot][k] = 0;
            else
                shipped = ship_output(l, m->slot, k, &used, own);
            if (own_in)
                job->codec->release_in(job->codec->ctx, own_in);
            if (shipped < 0)
                break;
            if (!code)
                code = shipped;
        }
        codes[k] = code;
        atomic_store_explicit(&l->shm->pos[m->slot], k + 1, memory_order_release);
        if (code && job->raise)
            return k + 1;
    }
    return k;
}

static void *child_lane(void *arg)
{
    lane *l = arg;
    pm__job *job = l->st->job;
    /* With a codec the function writes a private record, shipped encoded;
     * inputs the worker did not inherit may come encoded too. */
    unsigned char *own = job->codec ? calloc(1, job->out_stride ? job->out_stride : 1) : NULL;
    unsigned char *own_in = NULL;
    lane_ws ws = {0, NULL};
    /* This thread may be the copy of a parent thread that was running an
     * item with a state of its own: items here see this job's state only. */
    pm__ws_set_current(NULL);
    msg_run m;
    for (;;) {
        if (pm__recv_all(l->child_fd, &m, sizeof m) != 0) {
            lane_lost(); /* EOF: the parent is gone, or an item closed the socket */
            break;
        }
        if (m.slot == MSG_QUIT) {
            pm__lane_ws_quit(l, &ws); /* the exit, in this thread, before the process ends */
            break;
        }
        if (!m.in && job->codec && job->codec->decode_in && !own_in)
            own_in = calloc(1, job->in_stride);
        if (m.slot < 0 || m.slot >= SLOTS || m.count > l->cap || (job->codec && !own) ||
            (!m.in && job->codec && job->codec->decode_in && !own_in)) {
            lane_lost();
            break;
        }
        atomic_fetch_add(&busy, 1);
        const unsigned char *in = m.in ? m.in : l->in[m.slot];
        size_t ran;
        unsigned flags = 0;
        if (!pm__lane_ws_ready(l, &ws)) {
            ran = pm__lane_ws_refuse(l, m.slot, m.count);
            flags = DONE_INIT_FAILED;
        } else if (job->batch) { /* the piece in one go (batch jobs have no codec) */
            ran = pm__batch_call(job, m.first, m.count, in,
                                 job->out_stride ? l->out[m.slot] : NULL, l->codes[m.slot], 0, NULL);
            atomic_store_explicit(&l->shm->pos[m.slot], ran, memory_order_release);
        } else {
            ran = run_items(l, &m, in, own, !m.in && job->codec && job->codec->decode_in ? own_in : NULL);
        }
        msg_done d = {ran, flags};
        /* An item may have closed fds it does not own: answer only on our
         * own socket, never on whatever file took its number. */
        int lost = atomic_load(&broken) || pm__fd_id(l->child_fd) != l->child_id ||
                   pm__send_all(l->child_fd, &d, sizeof d) != 0;
        if (lost)
            atomic_store(&broken, 1);
        piece_done();
        if (lost)
            break;
    }
    free(own);
    free(own_in);
    return NULL;
}

static void child_main(procs_state *st, proc *p, pid_t parent)
{
    pm__child_setup(parent);
    /* Keep only this process's sockets: a sibling's socket held open here
     * would hide that sibling's death (no EOF) from the parent. */
    for (int i = 0; i < st->nprocs * st->nthreads; i++) {
        lane *l = &st->lanes[i];
        pm__close(l->fd);
        pm__close(l->next_fd);
        if (l->proc != p)
            pm__close(l->child_fd);
        else
            l->child_id = pm__fd_id(l->child_fd);
    }
    pm__thread threads[PM_MAX_THREADS];
    int started = 0;
    for (int t = 1; t < st->nthreads; t++) {
        if (pm__child_thread_start(&threads[t], child_lane, &p->lanes[t]) != PM_OK)
            pm__child_exit(70); /* seen by the parent as a crash */
        started = t;
    }
    child_lane(&p->lanes[0]);
    for (int t = 1; t <= started; t++)
        pm__thread_join(threads[t]);
    pm__child_exit(0);
}

/* ------------------------------------------------------------ processes */

int pm__proc_spawn(procs_state *st, proc *p)
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
    pid_t parent = getpid();
    pid_t pid = rc == PM_OK ? pm__fork() : -1;
    if (pid == 0)
        child_main(st, p, parent); /* never returns */
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

/*
 * Who forks a replacement. The child of a fork keeps only the forking
 * thread: glibc hands the stacks of the parent's other threads to its stack
 * cache, so a thread that an item starts (OpenMP, a logger) may get one of
 * them and overwrite what the worker reads there. The caller's stack must
 * not be one of them (pm_map's input is often a local array), so when the
 * caller waits in wait() it forks the replacements too: a lane asks and
 * waits (st->cv), the caller forks (pm__procs_serve) and wakes it.
 */
void pm__proc_ensure(procs_state *st, proc *p)
{
    if (p->pid != 0 || p->dead)
        return;
    if (!st->caller_forks) {
        pm__proc_spawn(st, p);
        return;
    }
    if (!p->spawn_wanted) {
        p->spawn_wanted = 1;
        pm__crew_wake(&st->crew); /* lock order: st->lock, then the crew's */
    }
    while (p->spawn_wanted && !p->dead)
        pm__cond_wait(&st->cv, &st->lock);
}

int pm__proc_replace(procs_state *st, proc *p, unsigned gen)
{
    pm__mutex_lock(&st->lock);
    pid_t old = p->gen == gen ? p->pid : 0;
    if (old > 0)
        p->pid = 0;
    pm__mutex_unlock(&st->lock);
    if (old <= 0)
        return -1;
    /* Killed before it is waited for: a process whose socket broke may be
     * alive (an item closed the socket; another thread of it still runs).
     * If it already died, the kill changes nothing and the reap tells why. */
    pm__kill(old);
    int sig, status;
    pm__reap(old, &sig, &status);
    return sig;
}

#endif
