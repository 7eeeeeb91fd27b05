/*
 * proc_lane.c - how a crew member drives its lane: a task is sent to the
 * lane's worker thread as pieces that fit a scratch slot; answers, deaths,
 * timeouts and cancellation are handled here (the policy is described atop
 * processes.c): the running item of a dead process is retried alone before it
 * is marked PM_ECRASH.
 */
#include "processes.h"

#if PM_HAVE_FORK
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- pieces */

enum { PIECE_OK, PIECE_DIED, PIECE_CANCELED, PIECE_NOPROC };

typedef struct piece {
    const unsigned char *in;
    size_t first;    /* index of its first item in the call (batch functions) */
    size_t count;
    int inherited, exclusive, slot;
    /* out */
    size_t done;     /* items finished (their outputs and codes are in the scratch) */
    int timed_out;   /* we killed the process: the item at `done` ran too long */
    int signal;      /* what the process died of */
    pid_t pid;       /* the process it ran in */
} piece;

/* 1 when the lane's process was replaced behind our back (a sibling lane saw
 * it die first): the pid we watch may then be reaped and even reused. */
static int replaced(procs_state *st, lane *l, unsigned gen)
{
    pm__mutex_lock(&st->lock);
    int r = l->proc->gen != gen;
    pm__mutex_unlock(&st->lock);
    return r;
}

/*
 * Wait for the worker's answer, watching cancellation, the item timeout and
 * the process itself. The answer comes on the socket; everything else is
 * polled every CHECK_S, so nothing depends on an EOF (another process may
 * hold a copy of the socket) and a socket that broke (an item closed it)
 * only means waiting for the worker to end, which it does by itself once it
 * notices (lane_lost). A process stopped by a signal (SIGSTOP, SIGTSTP) for
 * two checks in a row is killed: it would never answer.
 */
static int await(procs_state *st, lane *l, pm__job *job, piece *pc, unsigned gen)
{
    size_t last_pos = 0;
    size_t last_beat = atomic_load_explicit(&l->shm->beat, memory_order_acquire);
    double last_change = pm__now();
    int channel = 1, stops = 0;
    for (;;) {
        if (channel) {
            msg_done d;
            int r = pm__recv_msg(l->fd, &d, sizeof d); /* gives up after CHECK_S */
            if (r == 0 && d.ran <= pc->count && !(d.flags & ~DONE_INIT_FAILED)) {
                if (d.flags & DONE_INIT_FAILED)
                    atomic_store(&job->ws_failed, 1); /* finish() stops the job */
                pc->done = d.ran;
                return PIECE_OK;
            }
            if (r == 0) /* not our protocol: someone wrote on the socket */
                pm__kill(pc->pid);
            if (r != 1)
                channel = 0;
        } else {
            pm__nap(CHECK_S);
        }
        if (pm__canceled(job->cancel)) {
            pm__mutex_lock(&st->lock);
            l->proc->dead = 1;
            pm__cond_broadcast(&st->cv); /* a sibling lane may wait for a fork */
            if (l->proc->pid == pc->pid)
                pm__kill(pc->pid);
            pm__mutex_unlock(&st->lock);
            return PIECE_CANCELED;
        }
        size_t pos = atomic_load_explicit(&l->shm->pos[pc->slot], memory_order_acquire);
        size_t beat = atomic_load_explicit(&l->shm->beat, memory_order_acquire);
        double now = pm__now();
        if (pos != last_pos || beat != last_beat) { /* an item, or worker_init, ended */
            last_pos = pos;
            last_beat = beat;
            last_change = now;
        } else if (job->timeout_s > 0 && now - last_change > job->timeout_s && !pc->timed_out) {
            /* (a batch call reports its items only when it returns: one
             * over timeout_s is stopped and its items run one per call) */
            pc->timed_out = 1;
            pm__kill(pc->pid); /* not reaped before we say so: the pid is still ours */
        }
        int stop = pm__stopped(pc->pid);
        stops = stop ? stops + 1 : 0;
        if (stops == 2 && !pc->timed_out) {
            pc->signal = stop;
            pm__kill(pc->pid);
        }
        if (pm__has_exited(pc->pid) || replaced(st, l, gen))
            return PIECE_DIED;
    }
}

/* Queue a piece to the lane's worker (we are inside its process). */
/* Inputs the worker does not have, with a codec that ships them: each
 * record's encoding goes to the slot's input arena. The piece ends before
 * the first one that no longer fits (it goes in the next piece); one that
 * could never fit (PM_ENOMEM), or does not encode (its code), goes as a
 * span that carries the code instead (SPAN_FAILED), which fails that item
 * in the worker. */
static size_t ship_inputs(lane *l, const pm__job *job, const piece *pc)
{
    size_t used = 0;
    for (size_t k = 0; k < pc->count; k++) {
        unsigned char *buf = NULL;
        size_t len = 0;
        int code = job->codec->encode_in(job->codec->ctx, pc->in + k * job->in_stride, &buf, &len);
        if (code == 0 && len <= l->in_arena_size && used + len > l->in_arena_size && k > 0) {
            free(buf);
            return k;
        }
        if (code == 0 && used + len > l->in_arena_size)
            code = PM_ENOMEM;
        l->in_spans[pc->slot][k] = SPAN_FAILED | (uint32_t)code;
        if (code == 0) {
            memcpy(l->in_arena[pc->slot] + used, buf, len);
            l->in_spans[pc->slot][k] = (uint64_t)used << 32 | len;
            used += len;
        }
        free(buf);
    }
    return pc->count;
}

static int send_piece(lane *l, const pm__job *job, piece *pc)
{
    pc->done = 0;
    pc->timed_out = 0;
    pc->signal = 0;
    pc->count = pm__proc_budget(l, job, pc->count);
    if (!pc->inherited && job->codec && job->codec->encode_in)
        pc->count = ship_inputs(l, job, pc);
    else if (!pc->inherited)
        memcpy(l->in[pc->slot], pc->in, pc->count * job->in_stride);
    atomic_store_explicit(&l->shm->pos[pc->slot], 0, memory_order_relaxed);
    msg_run m = {pc->inherited ? pc->in : NULL, pc->first, pc->count, pc->slot};
    return pm__send_all(l->fd, &m, sizeof m) == 0 ? PIECE_OK : PIECE_DIED;
}

/* Wait for a sent piece (the oldest one sent); on death, replace the process. */
static int end_piece(procs_state *st, lane *l, pm__job *job, piece *pc, int sent, unsigned gen)
{
    int r = sent == PIECE_OK ? await(st, l, job, pc, gen) : PIECE_DIED;
    if (r == PIECE_OK)
        pm__proc_ran(st, l, job, pc->pid, pc->done);
    if (r != PIECE_OK)
        pc->done = atomic_load_explicit(&l->shm->pos[pc->slot], memory_order_acquire);
    if (r == PIECE_DIED) {
        int sig = pm__proc_replace(st, l->proc, gen);
        if (!pc->signal && sig > 0)
            pc->signal = sig;
    }
    return r;
}

static int run_piece(procs_state *st, lane *l, pm__job *job, piece *pc)
{
    int canceled;
    unsigned gen = pm__lane_enter(st, l, pc->exclusive, &pc->pid, &canceled);
    if (!gen) {
        pm__lane_leave(st, l, pc->exclusive);
        return canceled ? PIECE_CANCELED : PIECE_NOPROC;
    }
    int r = end_piece(st, l, job, pc, send_piece(l, job, pc), gen);
    pm__lane_leave(st, l, pc->exclusive);
    return r;
}

/* Take a finished piece's results into the task, items [k, k + n). Outputs
 * of failed items are not copied: the caller's memory keeps what it had. */
/* A codec job: decode each item's shipped output into the task's records
 * (failed items too: their output may say why, e.g. an error value). */
static void collect_encoded(const lane *l, int slot, const pm__job *job, pm__task *t, size_t k,
                            size_t n)
{
    for (size_t j = 0; j < n; j++) {
        int code = l->codes[slot][j];
        uint64_t span = l->spans[slot][j];
        size_t off = (size_t)(span >> 32), len = (size_t)(span & 0xffffffffu);
        if (t->out) { /* nothing shipped (a failed encoding): decode(NULL) */
            int shipped = len && off + len <= l->arena_size;
            int bad = job->codec->decode(job->codec->ctx, t->in + (k + j) * job->in_stride,
                                         shipped ? l->arena[slot] + off : NULL,
                                         shipped ? len : 0, t->out + (k + j) * job->out_stride);
            if (!code)
                code = bad;
        }
        pm__task_record(job, t, k + j, code);
    }
}

static void collect(const lane *l, int slot, const pm__job *job, pm__task *t, size_t k, size_t n)
{
    if (job->codec) {
        collect_encoded(l, slot, job, t, k, n);
        return;
    }
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

/* An item that ended without results (its process crashed, it timed out, no
 * process could be forked): with a codec, its output record is still made
 * valid (decode of nothing), as the codec contract says. */
static void record_lost(const pm__job *job, pm__task *t, size_t k, int code)
{
    if (job->codec && t->out)
        job->codec->decode(job->codec->ctx, t->in + k * job->in_stride, NULL, 0,
                           t->out + k * job->out_stride);
    pm__task_record(job, t, k, code);
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
    /* A batch function reports its items only when the call returns, so
     * after a death inside a batch the rest of the task goes one item per
     * call: exactly the guilty item is marked, at one process per crash. */
    int single = job->batch && died;
    while (k < t->count) {
        piece pc;
        int r;
        if (died) {
            pc = *died;
            died = NULL;
            r = PIECE_DIED;
        } else {
            pc = (piece){.in = t->in + k * job->in_stride, .first = t->base + k,
                         .inherited = t->inherited};
            pc.count = single ? 1 : t->count - k < l->cap ? t->count - k : l->cap;
            r = run_piece(st, l, job, &pc);
            collect(l, 0, job, t, k, pc.done);
            k += pc.done;
        }
        if (r == PIECE_CANCELED || (job->raise && t->failed))
            break;
        if (r == PIECE_OK || pc.done == pc.count)
            continue;
        if (r == PIECE_NOPROC) { /* fork failed: say so per item, go on */
            record_lost(job, t, k++, PM_ESYS);
            continue;
        }
        /* Died while running item k. It is a suspect, run again alone in a
         * fresh process, unless it already was alone and ran out of time:
         * an item that shared its process may have been stalled by a
         * sibling that stopped or froze the whole process, and a batch may
         * have died at any of its items. */
        int code = PM_ETIMEOUT, sig = pc.signal;
        single = single || job->batch;
        if (!pc.timed_out || st->nthreads > 1 || (job->batch && pc.count - pc.done > 1)) {
            piece again = {.in = t->in + k * job->in_stride, .first = t->base + k, .count = 1,
                           .inherited = t->inherited, .exclusive = 1};
            r = run_piece(st, l, job, &again);
            if (r == PIECE_CANCELED)
                break;
            if (r == PIECE_NOPROC) {
                record_lost(job, t, k++, PM_ESYS);
                continue;
            }
            if (r == PIECE_OK || again.done == again.count) {
                /* innocent: a sibling or a stray kill; or it finished and
                 * then its process ended (it closed the worker's socket) */
                collect(l, 0, job, t, k, 1);
                k++;
                continue;
            }
            code = again.timed_out ? PM_ETIMEOUT : PM_ECRASH;
            sig = again.signal;
        }
        record_lost(job, t, k, code);
        if (t->signal_index == SIZE_MAX) { /* the task's lowest crashed item, even by exit() */
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
int pm__lane_step(void *owner, pm__job *job, int worker)
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
    int drained = -1; /* the piece behind an early end, once answered (PIECE_*) */
    pid_t pid = 0;
    unsigned gen = 0;
    r = PIECE_OK;
    if (t[0].count <= l->cap) {
        gen = pm__lane_enter(st, l, 0, &pid, &canceled);
        entered = 1;
    }
    sent[0] = 0;
    if (gen) {
        pc[0] = (piece){.in = t[0].in, .first = t[0].base, .count = t[0].count,
                        .inherited = t[0].inherited, .pid = pid};
        sent[0] = send_piece(l, job, &pc[0]) == PIECE_OK;
    }
    while (held > 0 && sent[head]) {
        int next = (head + 1) % SLOTS;
        if (held < SLOTS && more && (job->recycle_items || job->recycle_rss) && pm__proc_retiring(st, l))
            more = 0; /* no new piece for a process being recycled */
        if (held < SLOTS && more) {
            if (job->take(job, worker, l->cap, &t[next]) == PM__STEP_RAN) {
                task_reset(&t[next]);
                held++;
                sent[next] = 0;
                if (t[next].count <= l->cap) {
                    pc[next] = (piece){.in = t[next].in, .first = t[next].base,
                                       .count = t[next].count,
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
        if (pc[head].done < t[head].count && !(job->raise && t[head].failed)) {
            /* Ended early (encoded outputs or inputs filled an arena): the rest goes
             * the careful way. The next piece may already be queued in the
             * worker, which will answer it first: take that answer now, so
             * that the careful way's pieces get their own. */
            if (held == SLOTS && sent[next]) {
                drained = end_piece(st, l, job, &pc[next], PIECE_OK, gen);
                collect(l, next, job, &t[next], 0, pc[next].done);
                t[next].ran = pc[next].done;
            }
            break;
        }
        job->finish(job, worker, &t[head]);
        head = next;
        held--;
    }
    if (entered)
        pm__lane_leave(st, l, 0);
    /* The careful way for what is still held, oldest first. */
    for (int i = 0; i < held; i++) {
        int s = (head + i) % SLOTS, how = i == 0 ? r : drained;
        if (how == PIECE_DIED)
            run_task(st, l, job, &t[s], pc[s].done, &pc[s]);
        else if (how == PIECE_CANCELED)
            ; /* keep what it ran */
        else if (i == 0 || how == PIECE_OK)
            run_task(st, l, job, &t[s], t[s].ran, NULL);
        else
            run_task(st, l, job, &t[s], 0, NULL); /* never started, or lost with its process */
        job->finish(job, worker, &t[s]);
    }
    return PM__STEP_RAN;
}

#endif
