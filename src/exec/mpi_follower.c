/*
 * mpi_follower.c - the followers' side of the MPI executor (ranks other than 0):
 * receive chunks, run them on the compute threads, send codes and outputs
 * back (see mpi.c).
 */
#include "mpi.h"

/* A chunk's life here: the communication thread receives it (make_ftask:
 * no more than reading the header), a compute thread decodes its inputs,
 * runs it and packs the reply (run_ftask), and the communication thread sends
 * that reply. So a codec job (pm_vmap) encodes and decodes on every compute
 * thread, and the communication thread only talks MPI. */

/* Free a chunk's buffers, keeping its reply. */
static void ftask_release(ftask *f)
{
    const pm_codec *codec = f->codec;
    if (f->in && codec && codec->release_in)
        for (size_t k = 0; k < f->t.count; k++)
            codec->release_in(codec->ctx, f->in + k * f->in_stride);
    free(f->in);
    free(f->out);
    free(f->codes);
    free(f->msg);
    f->in = f->out = f->msg = NULL;
    f->codes = NULL;
}

static void ftask_free(ftask *f)
{
    if (f) {
        ftask_release(f);
        free(f->reply);
        free(f);
    }
}

/* A TASK message into a chunk record (NULL: out of memory or sizes that
 * overflow; the chunk then comes back with every item failed). */
static ftask *make_ftask(const pm_codec *codec, unsigned char *msg, size_t len)
{
    msg_head h;
    memcpy(&h, msg, sizeof h);
    size_t n = (size_t)h.count;
    if (h.in_stride == 0 || n > SIZE_MAX / h.in_stride ||
        (h.out_stride && n > SIZE_MAX / h.out_stride))
        return NULL;
    ftask *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->codec = codec;
    f->in_stride = (size_t)h.in_stride;
    f->out_stride = (size_t)h.out_stride;
    f->msg = msg;
    f->msg_len = len;
    f->id = h.id;
    f->seq = h.seq;
    f->t.base = (size_t)h.base;
    f->t.count = n;
    return f;
}

/* Allocate outputs and codes and decode the inputs: f->bad says what failed. */
static void prepare(ftask *f)
{
    const pm_codec *codec = f->codec;
    size_t n = f->t.count;
    f->codes = calloc(n ? n : 1, sizeof *f->codes);
    f->out = f->out_stride ? calloc(n ? n : 1, f->out_stride) : NULL;
    if (!f->codes || (f->out_stride && !f->out)) {
        f->bad = PM_ENOMEM;
    } else if (!codec) {
        if (f->msg_len - sizeof(msg_head) < n * f->in_stride)
            f->bad = PM_ESYS;
        f->t.in = f->msg + sizeof(msg_head);
    } else if (!(f->in = calloc(n ? n : 1, f->in_stride))) {
        f->bad = PM_ENOMEM;
    } else {
        const unsigned char *p = f->msg + sizeof(msg_head), *end = f->msg + f->msg_len;
        for (size_t k = 0; k < n && !f->bad; k++) {
            const unsigned char *bytes = NULL;
            size_t blen = 0;
            f->bad = pm__mpi_unpack_next(&p, end, &bytes, &blen);
            if (!f->bad)
                f->bad = codec->decode_in(codec->ctx, bytes, blen, f->in + k * f->in_stride);
        }
        f->t.in = f->in;
    }
    f->t.out = f->out;
    f->t.codes = f->codes;
}

/* A chunk's items, or every item failed when it could not be set up. The
 * items run through this rank's job (its function), with rank 0's records. */
static void run_items(const pm_job *job, ftask *f)
{
    if (!f->bad) {
        pm_task_run_strided(job, &f->t, f->in_stride, f->out_stride);
        return;
    }
    f->t.failed = 0;
    f->t.first_failed = SIZE_MAX;
    for (size_t k = 0; k < f->t.count; k++)
        pm_task_record(job, &f->t, k, f->bad);
    f->t.ran = f->t.count;
}

static int encode_output(void *ctx, void *rec, unsigned char **buf, size_t *len)
{
    const pm_codec *c = ctx;
    return c->encode(c->ctx, rec, buf, len);
}

/* The RESULT message: header, every item's code, the outputs of the items
 * that ran (raw, or encoded with the job's codec, which releases them). A
 * chunk without codes (never set up) says every item failed. */
static void pack_reply(ftask *f)
{
    msg_head h = {.kind = MSG_RESULT, .seq = f->seq, .id = f->id, .base = f->t.base,
                  .flags = f->bad == PM_EWORKERINIT ? FLAG_INIT_FAILED : 0,
                  .count = f->t.count, .ran = f->t.ran, .failed = f->t.failed,
                  .first_failed = f->t.first_failed, .first_code = f->t.first_code,
                  .wait_s = f->started - f->queued, .run_s = f->ended - f->started};
    size_t len = 0, n = f->t.count;
    int *codes = f->codes ? f->codes : calloc(n ? n : 1, sizeof *codes);
    if (!f->codes) {
        for (size_t k = 0; codes && k < n; k++)
            codes[k] = PM_ENOMEM;
        h.ran = h.failed = n;
        h.first_failed = f->t.base;
        h.first_code = PM_ENOMEM;
    }
    int stride = f->out_stride && f->out;
    unsigned char *msg =
        codes ? pm__mpi_pack(&h, codes, n * sizeof *codes, f->out, f->out_stride,
                             stride ? f->t.ran : 0, f->codec && stride ? encode_output : NULL,
                             (void *)f->codec, &len)
              : NULL;
    if (codes != f->codes)
        free(codes);
    if (!msg && (msg = malloc(sizeof h)) != NULL) {
        /* Out of memory even for the reply: a bare header, which rank 0
         * reads as "every item failed" (it finds no codes). */
        h.ran = f->t.count;
        memcpy(msg, &h, sizeof h);
        len = sizeof h;
    }
    f->reply = msg;
    f->reply_len = len;
}

/* Run by compute thread `worker` on a follower. The thread is a worker of
 * `job`, this rank's own call: its items run through that job's function
 * (with rank 0's record sizes), and with per-worker state (the job's slots
 * hold the states) its init runs before the first items it runs, and
 * pm_worker_state() gives its state inside them. */
static void run_ftask(mpi_state *st, pm_job *job, int worker, ftask *f)
{
    f->started = pm__mpi_now();
    prepare(f);
    void *saved = NULL;
    int entered = 0;
    if (!f->bad) {
        int first = st->has_state && !st->fw[worker].live;
        f->bad = pm_job_worker_enter(job, worker, &saved);
        entered = f->bad == PM_OK;
        if (entered && first) {
            /* It owes its exit now: the communication thread waits for it
             * before it sends EXITS. */
            pthread_mutex_lock(&st->lock);
            st->fw[worker].live = 1;
            st->nlive++;
            pthread_mutex_unlock(&st->lock);
        }
    }
    run_items(job, f);
    if (entered)
        pm_job_worker_leave(saved);
    f->ended = pm__mpi_now();
    pack_reply(f);
    ftask_release(f);
}

/* The job ended for compute thread `worker`: its exit, here, once; the
 * record goes to exit_buf, which the communication thread sends to rank 0. */
static void worker_exit(mpi_state *st, pm_job *job, int worker)
{
    pthread_mutex_lock(&st->lock);
    int live = st->fw[worker].live;
    unsigned char *rec = st->exit_buf ? st->exit_buf + (size_t)worker * st->exit_size : NULL;
    size_t size = st->exit_size;
    pthread_mutex_unlock(&st->lock);
    if (!live)
        return;
    /* exit_buf stays put until nlive is 0, and this slot is this thread's. */
    int wrote = pm_job_worker_exit(job, worker, rec, size);
    pthread_mutex_lock(&st->lock);
    st->fw[worker].live = 0;
    st->fw[worker].has_rec = wrote;
    st->nlive--;
    st->kick = 1;
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->lock);
}

/* Every thread that started ran its exit: their records to rank 0, in one
 * message (sent even with none, since rank 0 waits for it). */
static void send_exits(mpi_state *st, uint64_t seq, double *backoff)
{
    for (;;) {
        pthread_mutex_lock(&st->lock);
        int left = st->nlive;
        pthread_mutex_unlock(&st->lock);
        if (left == 0)
            break;
        pm__mpi_reap_sends(st, 0);
        pm__mpi_idle(st, backoff, 0); /* an exit that ends kicks this thread */
    }
    size_t size = st->exit_size, n = 0;
    unsigned char *recs = NULL;
    if (st->exit_buf) {
        /* Packed to the front: the threads that wrote a record. */
        recs = st->exit_buf;
        for (int w = 0; w < st->threads; w++)
            if (st->fw[w].has_rec) {
                if (n != (size_t)w)
                    memmove(recs + n * size, recs + (size_t)w * size, size);
                n++;
            }
    }
    msg_head h = {.kind = MSG_EXITS, .seq = seq, .count = n, .exit_size = size};
    size_t len = 0;
    unsigned char *msg = pm__mpi_pack(&h, NULL, 0, recs, size, n, NULL, NULL, &len);
    if (!msg && (msg = malloc(sizeof h)) != NULL) {
        /* Out of memory for the records: rank 0 still learns the exits ran. */
        h.count = 0;
        memcpy(msg, &h, sizeof h);
        len = sizeof h;
    }
    if (msg)
        pm__mpi_post(st, msg, len, 0, tag_up(seq));
    pthread_mutex_lock(&st->lock);
    free(st->exit_buf);
    st->exit_buf = NULL;
    pthread_mutex_unlock(&st->lock);
}

/* Rank 0 was canceled: the chunks not started yet go back as not run. */
static void drop_queued(mpi_state *st)
{
    pthread_mutex_lock(&st->lock);
    ftask *f = st->ready;
    st->ready = st->ready_tail = NULL;
    st->nready = 0;
    pthread_mutex_unlock(&st->lock);
    while (f) {
        ftask *next = f->next;
        f->started = f->ended = pm__mpi_now();
        f->t.ran = f->t.failed = 0;
        f->t.first_failed = SIZE_MAX;
        f->codes = calloc(f->t.count ? f->t.count : 1, sizeof *f->codes);
        pack_reply(f);
        ftask_release(f);
        pthread_mutex_lock(&st->lock);
        f->next = st->done;
        st->done = f;
        pthread_mutex_unlock(&st->lock);
        f = next;
    }
}

void pm__mpi_follow(mpi_state *st, pm_job *job, uint64_t seq)
{
    size_t inflight = 0;
    int got_end = 0, exits = 0;
    pm_job_info info;
    pm_job_info_get(job, &info);
    double backoff = IDLE_MIN_S;
    msg_head hello = {.kind = MSG_HELLO, .seq = seq, .count = (uint64_t)st->threads};
    unsigned char *m = malloc(sizeof hello);
    if (m) {
        memcpy(m, &hello, sizeof hello);
        pm__mpi_post(st, m, sizeof hello, 0, tag_up(seq));
    }
    while (!got_end || inflight > 0) {
        int busy = 0, from = 0;
        size_t len = 0;
        unsigned char *msg;
        while ((msg = pm__mpi_try_recv(st, 0, tag_down(seq), &from, &len)) != NULL) {
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
                f = make_ftask(info.codec, msg, len);
                if (!f) {
                    /* Not even a chunk record: fail it whole, at once. */
                    ftask bare = {.id = h.id, .seq = seq,
                                  .t = {.base = h.base, .count = h.count}};
                    pack_reply(&bare);
                    if (bare.reply)
                        pm__mpi_post(st, bare.reply, bare.reply_len, 0, tag_up(seq));
                    free(msg);
                    continue;
                }
                inflight++;
            } else {
                got_end = 1;
                exits = (h.flags & FLAG_EXITS) != 0;
                free(msg);
                if (h.flags & FLAG_CANCELED)
                    drop_queued(st);
            }
            if (f)
                f->queued = pm__mpi_now();
            pthread_mutex_lock(&st->lock);
            if (f) {
                if (st->ready_tail)
                    st->ready_tail->next = f;
                else
                    st->ready = f;
                st->ready_tail = f;
                st->nready++;
            } else {
                /* Where the threads' exits write their records (before
                 * they can see the end). Without room (out of memory, or
                 * rank 0 keeps none) the exits get NULL. */
                size_t es = (size_t)h.exit_size;
                if (exits && es && es <= SIZE_MAX / (size_t)st->threads)
                    st->exit_buf = calloc((size_t)st->threads, es);
                st->exit_size = st->exit_buf ? es : 0;
                st->got_end = 1;
            }
            pthread_mutex_unlock(&st->lock);
            pm__mpi_team_notify(&st->team);
        }
        pthread_mutex_lock(&st->lock);
        ftask *done = st->done;
        st->done = NULL;
        /* With a chunk queued per thread nothing is urgent: a compute thread
         * kicks this thread when it finishes one. */
        int calm = !got_end && st->nready >= (size_t)st->threads;
        pthread_mutex_unlock(&st->lock);
        while (done) {
            ftask *next = done->next;
            if (done->reply)
                pm__mpi_post(st, done->reply, done->reply_len, 0, tag_up(seq));
            done->reply = NULL; /* pm__mpi_post owns it now */
            ftask_free(done);
            inflight--;
            busy = 1;
            done = next;
        }
        pm__mpi_reap_sends(st, 0);
        if (busy)
            backoff = IDLE_MIN_S;
        else if (!got_end || inflight > 0)
            pm__mpi_idle(st, &backoff, calm);
    }
    if (exits)
        send_exits(st, seq, &backoff);
    pm__mpi_reap_sends(st, 1);
}

/* A compute thread on a follower: run the next received chunk. */
int pm__mpi_follower_step(void *owner, pm_job *job, int worker)
{
    mpi_state *st = owner;
    pthread_mutex_lock(&st->lock);
    ftask *f = st->ready;
    if (f) {
        st->ready = f->next;
        if (!st->ready)
            st->ready_tail = NULL;
        st->nready--;
    }
    int end = !f && st->got_end;
    pthread_mutex_unlock(&st->lock);
    if (!f) {
        if (end)
            worker_exit(st, job, worker);
        return end ? PM_STEP_END : PM_STEP_IDLE;
    }
    run_ftask(st, job, worker, f);
    pthread_mutex_lock(&st->lock);
    f->next = st->done;
    st->done = f;
    st->kick = 1;
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->lock);
    return PM_STEP_RAN;
}
