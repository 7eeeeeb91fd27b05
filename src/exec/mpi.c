/*
 * mpi.c - the MPI executor (PM_MPI): ranks x threads, on the MPI engine the
 * cluster already runs. Built only when CMake finds MPI (PM_HAVE_MPI).
 *
 * SPMD: every rank makes the same calls in the same order, so every rank
 * opens this executor and submits one job per call. Rank 0 *owns* the job
 * (its core reads the input and collects results); the other ranks are
 * *followers* (the core reads nothing there, see internal.h).
 *
 * Each rank runs `threads` compute threads (on rank 0 the calling thread is
 * one of them, as with the threads executor) and one communication thread,
 * which alone talks MPI during a job:
 *  - a follower's thread grants rank 0 some *credits* (how many chunks it
 *    wants queued: 2 per compute thread, so the next chunk is already there
 *    when one finishes: network latency hides behind work), receives chunks
 *    into a local ready list that its compute threads run, and sends each
 *    chunk's codes and outputs back, which grants one credit more;
 *  - rank 0's thread turns credits into chunks with the job's own take()
 *    (each follower is one more worker, with its own chunker: the chunk time
 *    it measures is the round trip, so auto chunks grow until the latency is
 *    small beside the work), and hands results to the job's finish(). When
 *    take() says END it tells the follower so; the job is over for a
 *    follower once it got END and every chunk it had came back.
 * Workers pull, so load balances itself.
 *
 * Messages: rank 0 -> follower (TASK, END) on one tag and follower -> rank 0
 * (CREDIT, RESULT) on another, both derived from the job's number, so that a
 * fast follower's messages for the next job wait in MPI until rank 0 gets
 * there, and messages of one direction arrive in the order sent. Records
 * travel as bytes; a job with a codec (pm_vmap) ships encoded inputs and
 * outputs instead. Sends are non-blocking (both sides only ever wait in
 * their polling loop), so two big messages crossing cannot deadlock.
 *
 * Waiting: the communication thread polls MPI_Iprobe while messages flow and
 * otherwise sleeps with a growing back-off (at most IDLE_MAX_S), so a rank
 * waiting on others does not burn a core: on rank 0 that core computes.
 */
#include "crew.h"

#if PM_HAVE_MPI
#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define IDLE_MIN_S 0.00002
#define IDLE_MAX_S 0.0005
/* Tags: 2 per job number, modulo a range every MPI allows (MPI_TAG_UB >= 32767). */
#define TAG_JOBS 8192

enum { MSG_HELLO = 1, MSG_TASK, MSG_END, MSG_RESULT };

/* Flow control: rank 0 keeps enough chunks queued at each follower to cover
 * the round trip's latency (measured) several times over, at least
 * QUEUE_MIN_S of work per thread, and at most QUEUE_MAX_CHUNKS chunks. */
#define QUEUE_MIN_S 0.002
#define QUEUE_LATENCIES 4
#define QUEUE_MAX_CHUNKS 64

typedef struct msg_head {   /* every message starts with this */
    uint64_t kind, seq;
    uint64_t id, base, count;  /* TASK, RESULT: the chunk; HELLO: count = threads */
    uint64_t ran, failed, first_failed;
    int64_t first_code;
    uint64_t in_stride, out_stride; /* TASK: rank 0's record sizes (a follower's
                                       call may pass 0 for outputs it never sees) */
    double wait_s, run_s;      /* RESULT: the chunk queued, then ran, this long */
} msg_head;
/* An item whose record could not be encoded: its length word, then its code. */
#define BAD_RECORD UINT64_MAX

/* A send in flight: its buffer lives until MPI is done with it. */
typedef struct sending {
    struct sending *next;
    MPI_Request req;
    unsigned char *buf;
} sending;

/* Rank 0: a chunk out at a follower. */
typedef struct remote {
    pm__task t;
    double sent;               /* when it left */
    int worker, used;
} remote;

typedef struct peer {
    int ready, threads, ended;    /* said hello (with its threads), got END */
    size_t outstanding, out_items;
    double sec_per_item;          /* measured there (0: not yet) */
    double latency;               /* round trip minus queueing and work */
} peer;

/* A follower's chunk: received, run here, sent back. */
typedef struct ftask {
    struct ftask *next;
    uint64_t id;
    pm__task t;
    unsigned char *msg;        /* the received message (plain inputs point into it) */
    unsigned char *in, *out;   /* decoded inputs (codec jobs), outputs */
    int *codes;
    int bad;                   /* an input would not decode: every item fails with it */
    pm__job job;               /* the follower's job with rank 0's record sizes */
    double queued, started, ended;
} ftask;

typedef struct mpi_state {
    pm__crew crew;
    MPI_Comm comm;
    int rank, size, threads;
    int comm_ready, lock_ready, cv_ready, comm_started;
    pm__mutex lock;
    pm__cond cv;               /* the communication thread: a job, a kick, quit */
    pm__cond done_cv;          /* wait(): the communication thread finished the job */
    pm__thread comm_thread;
    /* guarded by lock */
    pm__job *job;              /* the job in progress: one at a time */
    uint64_t seq;              /* its number: every rank counts jobs alike */
    int quit, kick, remote_done, crew_done;
    ftask *ready, *ready_tail, *done;   /* followers: chunks to run, chunks ran */
    int got_end;
    /* the communication thread's own */
    sending *sends;
    remote *remotes;
    size_t nremotes;
    peer *peers;
} mpi_state;

/* -------------------------------------------------------------- helpers */

static int tag_down(uint64_t seq) { return (int)(seq % TAG_JOBS) * 2; }
static int tag_up(uint64_t seq) { return (int)(seq % TAG_JOBS) * 2 + 1; }

/* Rank 0's worker number for follower `r`: after the local members and the
 * calling thread (number threads - 1). */
static int worker_of(const mpi_state *st, int r) { return st->threads + r - 1; }

static int post(mpi_state *st, unsigned char *buf, size_t len, int dest, int tag)
{
    sending *s = malloc(sizeof *s);
    if (!s || len > INT32_MAX ||
        MPI_Isend(buf, (int)len, MPI_BYTE, dest, tag, st->comm, &s->req) != MPI_SUCCESS) {
        free(s);
        free(buf);
        return PM_ENOMEM;
    }
    s->buf = buf;
    s->next = st->sends;
    st->sends = s;
    return PM_OK;
}

/* Free the buffers of completed sends; with `all`, wait for every send. */
static void reap_sends(mpi_state *st, int all)
{
    for (sending **p = &st->sends; *p;) {
        sending *s = *p;
        int done = 1;
        if (all)
            MPI_Wait(&s->req, MPI_STATUS_IGNORE);
        else
            MPI_Test(&s->req, &done, MPI_STATUS_IGNORE);
        if (done) {
            *p = s->next;
            free(s->buf);
            free(s);
        } else {
            p = &s->next;
        }
    }
}

/* Receive the next message on `tag` if one is there: a malloc'd buffer. */
static unsigned char *try_recv(mpi_state *st, int source, int tag, int *from, size_t *len)
{
    int flag = 0, count = 0;
    MPI_Status status;
    if (MPI_Iprobe(source, tag, st->comm, &flag, &status) != MPI_SUCCESS || !flag)
        return NULL;
    MPI_Get_count(&status, MPI_BYTE, &count);
    unsigned char *buf = malloc(count > 0 ? (size_t)count : 1);
    if (!buf)
        return NULL; /* left in MPI's queue: the next poll tries again */
    MPI_Recv(buf, count, MPI_BYTE, status.MPI_SOURCE, tag, st->comm, MPI_STATUS_IGNORE);
    *from = status.MPI_SOURCE;
    *len = (size_t)count;
    return buf;
}

/* Nothing happened: sleep a little longer each time, unless kicked. */
static void idle(mpi_state *st, double *backoff)
{
    pm__mutex_lock(&st->lock);
    if (!st->kick)
        pm__cond_timedwait(&st->cv, &st->lock, *backoff);
    st->kick = 0;
    pm__mutex_unlock(&st->lock);
    *backoff = *backoff * 2 < IDLE_MAX_S ? *backoff * 2 : IDLE_MAX_S;
}

/* Append `count` records of `stride` bytes at `rec` to a message: raw, or
 * encoded (a length word before each) with `encode`. */
typedef int (*encode_fn)(void *ctx, void *rec, unsigned char **buf, size_t *len);

static unsigned char *pack(const msg_head *h, const void *extra, size_t extra_len,
                           unsigned char *rec, size_t stride, size_t count,
                           encode_fn encode, void *ctx, size_t *len)
{
    size_t size = sizeof *h + extra_len + (encode ? 0 : count * stride), used;
    unsigned char **bufs = NULL;
    size_t *lens = NULL;
    int *codes = NULL;
    if (encode) {
        bufs = calloc(count ? count : 1, sizeof *bufs);
        lens = calloc(count ? count : 1, sizeof *lens);
        codes = calloc(count ? count : 1, sizeof *codes);
        for (size_t k = 0; bufs && lens && codes && k < count; k++) {
            codes[k] = encode(ctx, rec + k * stride, &bufs[k], &lens[k]);
            size += sizeof(uint64_t) + (codes[k] ? sizeof(int64_t) : lens[k]);
        }
    }
    unsigned char *msg = (!encode || (bufs && lens && codes)) ? malloc(size) : NULL;
    if (msg) {
        memcpy(msg, h, sizeof *h);
        if (extra_len)
            memcpy(msg + sizeof *h, extra, extra_len);
        used = sizeof *h + extra_len;
        if (!encode) {
            if (count * stride > 0)
                memcpy(msg + used, rec, count * stride);
        } else {
            for (size_t k = 0; k < count; k++) {
                uint64_t n = codes[k] ? BAD_RECORD : lens[k];
                memcpy(msg + used, &n, sizeof n);
                used += sizeof n;
                if (codes[k]) {
                    int64_t c = codes[k];
                    memcpy(msg + used, &c, sizeof c);
                    used += sizeof c;
                } else {
                    memcpy(msg + used, bufs[k], lens[k]);
                    used += lens[k];
                }
            }
        }
        *len = size;
    }
    for (size_t k = 0; bufs && k < count; k++)
        free(bufs[k]);
    free(bufs);
    free(lens);
    free(codes);
    return msg;
}

/* Read record k of a packed message (encoded form): its bytes, or its code. */
static int unpack_next(const unsigned char **p, const unsigned char *end,
                       const unsigned char **bytes, size_t *len)
{
    uint64_t n;
    if ((size_t)(end - *p) < sizeof n)
        return PM_EINVAL;
    memcpy(&n, *p, sizeof n);
    *p += sizeof n;
    if (n == BAD_RECORD) {
        int64_t c;
        if ((size_t)(end - *p) < sizeof c)
            return PM_EINVAL;
        memcpy(&c, *p, sizeof c);
        *p += sizeof c;
        return c ? (int)c : PM_EINVAL;
    }
    if ((uint64_t)(end - *p) < n)
        return PM_EINVAL;
    *bytes = *p;
    *len = (size_t)n;
    *p += n;
    return 0;
}

/* ---------------------------------------------------------------- rank 0 */

static int encode_input(void *ctx, void *rec, unsigned char **buf, size_t *len)
{
    const pm__codec *c = ctx;
    return c->encode_in(c->ctx, rec, buf, len);
}

static remote *new_remote(mpi_state *st, uint64_t *id)
{
    for (size_t i = 0; i < st->nremotes; i++)
        if (!st->remotes[i].used) {
            *id = i;
            return &st->remotes[i];
        }
    size_t n = st->nremotes ? 2 * st->nremotes : 16;
    remote *r = realloc(st->remotes, n * sizeof *r);
    if (!r)
        return NULL;
    memset(r + st->nremotes, 0, (n - st->nremotes) * sizeof *r);
    st->remotes = r;
    *id = st->nremotes;
    st->nremotes = n;
    return &st->remotes[*id];
}

/* Send a taken chunk to follower `r`. Where it cannot be (out of memory), the
 * chunk's items fail here with the code instead: no result is lost. */
static void send_task(mpi_state *st, pm__job *job, uint64_t seq, int r, pm__task *t)
{
    uint64_t id = 0;
    remote *rem = new_remote(st, &id);
    msg_head h = {.kind = MSG_TASK, .seq = seq, .id = id, .base = t->base, .count = t->count,
                  .in_stride = job->in_stride, .out_stride = job->out_stride};
    size_t len = 0;
    unsigned char *msg = NULL;
    if (rem)
        msg = pack(&h, NULL, 0, (unsigned char *)t->in, job->in_stride, t->count,
                   job->codec ? encode_input : NULL, (void *)job->codec, &len);
    if (!msg || post(st, msg, len, r, tag_down(seq)) != PM_OK) {
        t->ran = t->count;
        t->failed = 0;
        for (size_t k = 0; k < t->count; k++)
            pm__task_record(job, t, k, PM_ENOMEM);
        job->finish(job, worker_of(st, r), t);
        return;
    }
    rem->t = *t;
    rem->sent = pm__now();
    rem->worker = worker_of(st, r);
    rem->used = 1;
    st->peers[r].outstanding++;
    st->peers[r].out_items += t->count;
}

/* A follower's RESULT: copy codes and outputs into the task, finish it. */
static void take_result(mpi_state *st, pm__job *job, int r, const unsigned char *msg,
                        size_t len)
{
    msg_head h;
    memcpy(&h, msg, sizeof h);
    if (h.id >= st->nremotes || !st->remotes[h.id].used)
        return;
    remote *rem = &st->remotes[h.id];
    pm__task *t = &rem->t;
    const unsigned char *p = msg + sizeof h, *end = msg + len;
    size_t ran = h.ran <= t->count ? (size_t)h.ran : t->count;
    int ok = (size_t)(end - p) >= t->count * sizeof(int);
    const int *codes = (const int *)p;
    if (ok)
        p += t->count * sizeof(int);
    t->ran = ran;
    t->failed = 0;
    t->first_failed = SIZE_MAX;
    t->first_code = 0;
    for (size_t k = 0; k < ran; k++) {
        int code = 0;
        memcpy(&code, ok ? codes + k : &code, sizeof code);
        unsigned char *out = t->out ? t->out + k * job->out_stride : NULL;
        if (!ok) {
            code = PM_ESYS;
        } else if (job->codec && job->out_stride) {
            const unsigned char *bytes = NULL;
            size_t n = 0;
            int bad = unpack_next(&p, end, &bytes, &n);
            if (!bad && out)
                bad = job->codec->decode(job->codec->ctx, bytes, n, out);
            if (bad && !code)
                code = bad;
        } else if (out && job->out_stride) {
            if ((size_t)(end - p) >= job->out_stride)
                memcpy(out, p, job->out_stride);
            else if (!code)
                code = PM_ESYS;
            p += job->out_stride;
        }
        pm__task_record(job, t, k, code);
    }
    /* The chunker sizes chunks by the work they hold, as measured where they
     * ran; the latency is hidden by queue depth instead (wants_more). */
    double now = pm__now();
    peer *pe = &st->peers[r];
    if (t->t0 > 0)
        t->t0 = now - h.run_s;
    double lat = now - rem->sent - h.wait_s - h.run_s;
    pe->latency = pe->latency > 0 ? 0.8 * pe->latency + 0.2 * (lat > 0 ? lat : 0) : lat;
    if (ran > 0 && h.run_s > 0) {
        double spi = h.run_s / (double)ran;
        pe->sec_per_item = pe->sec_per_item > 0 ? 0.7 * pe->sec_per_item + 0.3 * spi : spi;
    }
    job->finish(job, rem->worker, t);
    rem->used = 0;
    pe->outstanding--;
    pe->out_items -= rem->t.count <= pe->out_items ? rem->t.count : pe->out_items;
}

/* Whether follower `p` should get another chunk now. */
static int wants_more(const peer *p)
{
    if (!p->ready || p->ended || p->outstanding >= QUEUE_MAX_CHUNKS)
        return 0;
    if (p->outstanding < (size_t)p->threads + 1)
        return 1; /* one running and one waiting per thread, at least */
    if (p->sec_per_item <= 0)
        return p->outstanding < 2 * (size_t)p->threads;
    double want = QUEUE_LATENCIES * p->latency;
    if (want < QUEUE_MIN_S)
        want = QUEUE_MIN_S;
    return (double)p->out_items * p->sec_per_item < want * p->threads;
}

static void serve(mpi_state *st, pm__job *job, uint64_t seq)
{
    int live = st->size - 1;
    double backoff = IDLE_MIN_S;
    memset(st->peers, 0, (size_t)st->size * sizeof *st->peers);
    while (live > 0) {
        int busy = 0, from = 0;
        size_t len = 0;
        unsigned char *msg;
        while ((msg = try_recv(st, MPI_ANY_SOURCE, tag_up(seq), &from, &len)) != NULL) {
            msg_head h = {0};
            if (len >= sizeof h)
                memcpy(&h, msg, sizeof h);
            if (h.seq == seq && h.kind == MSG_HELLO) {
                st->peers[from].ready = 1;
                st->peers[from].threads = h.count > 0 && h.count < PM_MAX_THREADS ? (int)h.count : 1;
            }
            else if (h.seq == seq && h.kind == MSG_RESULT)
                take_result(st, job, from, msg, len);
            free(msg);
            busy = 1;
        }
        live = 0;
        for (int r = 1; r < st->size; r++) {
            peer *p = &st->peers[r];
            while (wants_more(p)) {
                pm__task t;
                int k = job->take(job, worker_of(st, r), SIZE_MAX, &t);
                if (k == PM__STEP_IDLE)
                    break;
                busy = 1;
                if (k == PM__STEP_END) {
                    msg_head h = {.kind = MSG_END, .seq = seq};
                    unsigned char *m = malloc(sizeof h);
                    if (!m)
                        break; /* try again at the next round */
                    memcpy(m, &h, sizeof h);
                    post(st, m, sizeof h, r, tag_down(seq));
                    p->ended = 1;
                    break;
                }
                send_task(st, job, seq, r, &t);
            }
            live += !(p->ended && p->outstanding == 0);
        }
        reap_sends(st, 0);
        if (busy)
            backoff = IDLE_MIN_S;
        else if (live)
            idle(st, &backoff);
    }
    reap_sends(st, 1);
}

/* ------------------------------------------------------------- followers */

static void ftask_free(ftask *f)
{
    if (!f)
        return;
    const pm__job *job = &f->job;
    if (f->in && job->codec && job->codec->release_in)
        for (size_t k = 0; k < f->t.count; k++)
            job->codec->release_in(job->codec->ctx, f->in + k * job->in_stride);
    free(f->in);
    free(f->out);
    free(f->codes);
    free(f->msg);
    free(f);
}

/* A TASK message into a runnable chunk (NULL: out of memory; the chunk then
 * comes back with every item failed, see send_result). */
static ftask *make_ftask(const pm__job *follower_job, unsigned char *msg, size_t len)
{
    msg_head h;
    memcpy(&h, msg, sizeof h);
    ftask *f = calloc(1, sizeof *f);
    size_t n = (size_t)h.count;
    if (!f)
        return NULL;
    /* What running items needs (not the executor's bookkeeping fields, which
     * the crew changes under its lock meanwhile). */
    f->job.fn = follower_job->fn;
    f->job.user = follower_job->user;
    f->job.raise = follower_job->raise;
    f->job.codec = follower_job->codec;
    f->job.in_stride = (size_t)h.in_stride;
    f->job.out_stride = (size_t)h.out_stride;
    const pm__job *job = &f->job;
    if (job->in_stride == 0 || n > SIZE_MAX / job->in_stride ||
        (job->out_stride && n > SIZE_MAX / job->out_stride)) {
        free(f);
        return NULL;
    }
    f->msg = msg;
    f->id = h.id;
    f->t.base = (size_t)h.base;
    f->t.count = n;
    f->codes = calloc(n ? n : 1, sizeof *f->codes);
    f->out = job->out_stride ? calloc(n ? n : 1, job->out_stride) : NULL;
    if (!f->codes || (job->out_stride && !f->out)) {
        f->bad = PM_ENOMEM;
    } else if (!job->codec) {
        if (len - sizeof h < n * job->in_stride)
            f->bad = PM_ESYS;
        f->t.in = msg + sizeof h;
    } else if (!(f->in = calloc(n ? n : 1, job->in_stride))) {
        f->bad = PM_ENOMEM;
    } else {
        const unsigned char *p = msg + sizeof h, *end = msg + len;
        for (size_t k = 0; k < n && !f->bad; k++) {
            const unsigned char *bytes = NULL;
            size_t blen = 0;
            f->bad = unpack_next(&p, end, &bytes, &blen);
            if (!f->bad)
                f->bad = job->codec->decode_in(job->codec->ctx, bytes, blen,
                                               f->in + k * job->in_stride);
        }
        f->t.in = f->in;
    }
    f->t.out = f->out;
    f->t.codes = f->codes;
    return f;
}

/* A chunk's items, or every item failed when it could not be set up. */
static void run_items(const pm__job *job, ftask *f)
{
    if (!f->bad) {
        pm__task_run(job, &f->t);
        return;
    }
    f->t.failed = 0;
    f->t.first_failed = SIZE_MAX;
    for (size_t k = 0; k < f->t.count; k++)
        pm__task_record(job, &f->t, k, f->bad);
    f->t.ran = f->t.count;
}

/* Run by the compute threads on a follower. */
static void run_ftask(ftask *f)
{
    const pm__job *job = &f->job;
    f->started = pm__now();
    run_items(job, f);
    f->ended = pm__now();
}

static int encode_output(void *ctx, void *rec, unsigned char **buf, size_t *len)
{
    const pm__codec *c = ctx;
    return c->encode(c->ctx, rec, buf, len);
}

static void send_result(mpi_state *st, const pm__job *job, uint64_t seq, ftask *f)
{
    msg_head h = {.kind = MSG_RESULT, .seq = seq, .id = f->id, .base = f->t.base,
                  .count = f->t.count, .ran = f->t.ran, .failed = f->t.failed,
                  .first_failed = f->t.first_failed, .first_code = f->t.first_code,
                  .wait_s = f->started - f->queued, .run_s = f->ended - f->started};
    size_t len = 0, n = f->t.count;
    int *codes = f->codes ? f->codes : calloc(n ? n : 1, sizeof *codes);
    if (!f->codes) {
        /* A chunk that could not even be set up: every item failed. */
        for (size_t k = 0; codes && k < n; k++)
            codes[k] = PM_ENOMEM;
        h.ran = h.failed = n;
        h.first_failed = f->t.base;
        h.first_code = PM_ENOMEM;
    }
    int stride = job->out_stride && f->out;
    unsigned char *msg = codes ? pack(&h, codes, n * sizeof *codes, f->out, job->out_stride,
                                      stride ? f->t.ran : 0,
                                      job->codec && stride ? encode_output : NULL,
                                      (void *)job->codec, &len)
                               : NULL;
    if (codes != f->codes)
        free(codes);
    if (!msg) {
        /* Out of memory even for the reply: say so with a bare header, which
         * rank 0 reads as "every item failed" (it finds no codes). */
        msg = malloc(sizeof h);
        h.ran = f->t.count;
        if (msg)
            memcpy(msg, &h, sizeof h);
        len = sizeof h;
    }
    if (msg)
        post(st, msg, len, 0, tag_up(seq));
}

static void follow(mpi_state *st, pm__job *job, uint64_t seq)
{
    size_t inflight = 0;
    int got_end = 0;
    double backoff = IDLE_MIN_S;
    msg_head hello = {.kind = MSG_HELLO, .seq = seq, .count = (uint64_t)st->threads};
    unsigned char *m = malloc(sizeof hello);
    if (m) {
        memcpy(m, &hello, sizeof hello);
        post(st, m, sizeof hello, 0, tag_up(seq));
    }
    while (!got_end || inflight > 0) {
        int busy = 0, from = 0;
        size_t len = 0;
        unsigned char *msg;
        while ((msg = try_recv(st, 0, tag_down(seq), &from, &len)) != NULL) {
            msg_head h = {0};
            if (len >= sizeof h)
                memcpy(&h, msg, sizeof h);
            busy = 1;
            if (h.seq != seq || (h.kind != MSG_TASK && h.kind != MSG_END)) {
                free(msg);
                continue;
            }
            ftask *f = NULL;
            if (h.kind == MSG_TASK) {
                f = make_ftask(job, msg, len);
                if (!f) {
                    /* Not even a chunk record: fail it whole, at once. */
                    ftask bare = {.id = h.id, .t = {.base = h.base, .count = h.count}};
                    send_result(st, job, seq, &bare);
                    free(msg);
                    continue;
                }
                inflight++;
            } else {
                got_end = 1;
                free(msg);
            }
            if (f)
                f->queued = pm__now();
            pm__mutex_lock(&st->lock);
            if (f) {
                if (st->ready_tail)
                    st->ready_tail->next = f;
                else
                    st->ready = f;
                st->ready_tail = f;
            } else {
                st->got_end = 1;
            }
            pm__mutex_unlock(&st->lock);
            pm__crew_notify(&st->crew);
        }
        pm__mutex_lock(&st->lock);
        ftask *done = st->done;
        st->done = NULL;
        pm__mutex_unlock(&st->lock);
        while (done) {
            ftask *next = done->next;
            send_result(st, &done->job, seq, done);
            ftask_free(done);
            inflight--;
            busy = 1;
            done = next;
        }
        reap_sends(st, 0);
        if (busy)
            backoff = IDLE_MIN_S;
        else if (!got_end || inflight > 0)
            idle(st, &backoff);
    }
    reap_sends(st, 1);
}

/* A compute thread on a follower: run the next received chunk. */
static int follower_step(void *owner, pm__job *job, int worker)
{
    mpi_state *st = owner;
    (void)worker;
    pm__mutex_lock(&st->lock);
    ftask *f = st->ready;
    if (f) {
        st->ready = f->next;
        if (!st->ready)
            st->ready_tail = NULL;
    }
    int end = !f && st->got_end;
    pm__mutex_unlock(&st->lock);
    if (!f)
        return end ? PM__STEP_END : PM__STEP_IDLE;
    (void)job;
    run_ftask(f);
    pm__mutex_lock(&st->lock);
    f->next = st->done;
    st->done = f;
    st->kick = 1;
    pm__cond_signal(&st->cv);
    pm__mutex_unlock(&st->lock);
    return PM__STEP_RAN;
}

static int owner_step(void *owner, pm__job *job, int worker)
{
    (void)owner;
    return pm__job_step(job, worker);
}

/* ------------------------------------------------- communication thread */

static void *comm_main(void *arg)
{
    mpi_state *st = arg;
    pm__mutex_lock(&st->lock);
    while (!st->quit) {
        if (!st->job || st->remote_done) {
            pm__cond_wait(&st->cv, &st->lock);
            continue;
        }
        pm__job *job = st->job;
        uint64_t seq = st->seq;
        pm__mutex_unlock(&st->lock);
        if (st->rank == 0)
            serve(st, job, seq);
        else
            follow(st, job, seq);
        pm__mutex_lock(&st->lock);
        st->remote_done = 1;
        pm__cond_broadcast(&st->done_cv);
    }
    pm__mutex_unlock(&st->lock);
    return NULL;
}

/* ------------------------------------------------------------- executor */

static int mpi_ready(void)
{
    int inited = 0, finalized = 0, level = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (!inited || finalized)
        return PM_ENOMPI;
    MPI_Query_thread(&level);
    return level >= MPI_THREAD_MULTIPLE ? PM_OK : PM_ENOTSUP;
}

static void mpi_close(void *state)
{
    mpi_state *st = state;
    if (st->comm_started) {
        pm__mutex_lock(&st->lock);
        st->quit = 1;
        pm__cond_broadcast(&st->cv);
        pm__mutex_unlock(&st->lock);
        pm__thread_join(st->comm_thread);
        st->comm_started = 0;
    }
    pm__crew_close(&st->crew);
    if (st->cv_ready) {
        pm__cond_destroy(&st->cv);
        pm__cond_destroy(&st->done_cv);
    }
    if (st->lock_ready)
        pm__mutex_destroy(&st->lock);
    st->cv_ready = st->lock_ready = 0;
    if (st->comm_ready && mpi_ready() == PM_OK)
        MPI_Comm_free(&st->comm);
    st->comm_ready = 0;
    free(st->remotes);
    free(st->peers);
    st->remotes = NULL;
    st->peers = NULL;
}

static int mpi_open(void *state, const pm__exec_config *cfg)
{
    mpi_state *st = state;
    int rc = mpi_ready();
    if (rc != PM_OK)
        return rc;
    /* A communicator of our own: our tags never meet the program's messages. */
    if (MPI_Comm_dup(MPI_COMM_WORLD, &st->comm) != MPI_SUCCESS)
        return PM_ESYS;
    st->comm_ready = 1;
    MPI_Comm_rank(st->comm, &st->rank);
    MPI_Comm_size(st->comm, &st->size);
    st->threads = cfg->threads;
    if (!(st->peers = calloc((size_t)st->size, sizeof *st->peers)))
        return PM_ENOMEM;
    if ((rc = pm__mutex_init(&st->lock)) != PM_OK)
        return rc;
    st->lock_ready = 1;
    if ((rc = pm__cond_init(&st->cv)) != PM_OK)
        return rc;
    if ((rc = pm__cond_init(&st->done_cv)) != PM_OK) {
        pm__cond_destroy(&st->cv);
        return rc;
    }
    st->cv_ready = 1;
    /* Rank 0's calling thread computes too; a follower's only waits. */
    rc = st->rank == 0 ? pm__crew_open(&st->crew, st->threads - 1, owner_step, st)
                       : pm__crew_open(&st->crew, st->threads, follower_step, st);
    if (rc != PM_OK)
        return rc;
    if ((rc = pm__thread_start(&st->comm_thread, comm_main, st)) != PM_OK)
        return rc;
    st->comm_started = 1;
    return PM_OK;
}

static int mpi_workers(const void *state)
{
    const mpi_state *st = state;
    return st->rank == 0 ? st->threads - 1 + st->size - 1 : st->threads;
}

static int mpi_submit(void *state, pm__job *job)
{
    mpi_state *st = state;
    if (job->timeout_s > 0)
        return PM_ENOTSUP;
    if (job->codec && st->size > 1 && (!job->codec->encode_in || !job->codec->decode_in))
        return PM_ENOTSUP;
    pm__mutex_lock(&st->lock);
    if (st->job) {
        pm__mutex_unlock(&st->lock);
        return PM_EINVAL; /* one call at a time: ranks must agree on the order */
    }
    st->job = job;
    st->seq++;
    st->got_end = 0;
    st->crew_done = 0;
    st->remote_done = st->size == 1;
    pm__cond_broadcast(&st->cv);
    pm__mutex_unlock(&st->lock);
    pm__crew_submit(&st->crew, job);
    return PM_OK;
}

static void mpi_notify(void *state)
{
    mpi_state *st = state;
    pm__crew_notify(&st->crew);
    pm__mutex_lock(&st->lock);
    st->kick = 1;
    pm__cond_signal(&st->cv);
    pm__mutex_unlock(&st->lock);
}

static int mpi_wait(void *state, pm__job *job, double seconds)
{
    mpi_state *st = state;
    double deadline = seconds >= 0 ? pm__now() + seconds : 0;
    if (!st->crew_done) {
        if (!pm__crew_wait(&st->crew, job, seconds, st->rank == 0))
            return 0;
        st->crew_done = 1;
    }
    pm__mutex_lock(&st->lock);
    while (!st->remote_done) {
        double left = deadline - pm__now();
        if (seconds >= 0 && left <= 0) {
            pm__mutex_unlock(&st->lock);
            return 0;
        }
        if (seconds < 0)
            pm__cond_wait(&st->done_cv, &st->lock);
        else
            pm__cond_timedwait(&st->done_cv, &st->lock, left);
    }
    st->job = NULL;
    pm__mutex_unlock(&st->lock);
    return 1;
}

static int mpi_follower(const void *state)
{
    return ((const mpi_state *)state)->rank != 0;
}

static int mpi_share(void *state, void *buf, size_t len)
{
    mpi_state *st = state;
    unsigned char *p = buf;
    while (len > 0) {
        int part = len > (size_t)1 << 30 ? 1 << 30 : (int)len;
        if (MPI_Bcast(p, part, MPI_BYTE, 0, st->comm) != MPI_SUCCESS)
            return PM_ESYS;
        p += part;
        len -= (size_t)part;
    }
    return PM_OK;
}

const pm__exec_methods pm__exec_mpi = {
    .version = 2,
    .name = "mpi",
    .state_size = sizeof(mpi_state),
    .open = mpi_open,
    .workers = mpi_workers,
    .submit = mpi_submit,
    .notify = mpi_notify,
    .wait = mpi_wait,
    .close = mpi_close,
    .follower = mpi_follower,
    .share = mpi_share,
};

/* ------------------------------------------------------------ public API */

static int we_initialized;

/* Whether an MPI launcher (mpirun, mpiexec, srun) started this process. */
static int launched(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK",
                                       "PMI_SIZE", "MPI_LOCALNRANKS", "SLURM_PROCID"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (getenv(vars[i]))
            return 1;
    return 0;
}

int pm_mpi_init(int *argc, char ***argv)
{
    int inited = 0, provided = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        if (!launched())
            return PM_ENOMPI;
        if (MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS)
            return PM_ESYS;
        we_initialized = 1;
    }
    return mpi_ready();
}

int pm_mpi_finalize(void)
{
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (we_initialized && !finalized)
        MPI_Finalize();
    we_initialized = 0;
    return PM_OK;
}

int pm_mpi_rank(void)
{
    int r = 0;
    if (mpi_ready() != PM_ENOMPI)
        MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

int pm_mpi_size(void)
{
    int s = 1;
    if (mpi_ready() != PM_ENOMPI)
        MPI_Comm_size(MPI_COMM_WORLD, &s);
    return s;
}

#else /* no MPI in this build */

int pm_mpi_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return PM_ENOTSUP;
}

int pm_mpi_finalize(void) { return PM_OK; }
int pm_mpi_rank(void) { return 0; }
int pm_mpi_size(void) { return 1; }

#endif
