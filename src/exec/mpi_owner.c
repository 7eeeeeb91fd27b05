/*
 * mpi_owner.c - rank 0's side of the MPI executor: turn followers' demand into
 * chunks with the job's take(), and their results into finish() (see mpi.c).
 */
#include "mpi.h"

/* ---------------------------------------------------------------- rank 0 */

static int encode_input(void *ctx, void *rec, unsigned char **buf, size_t *len)
{
    const pm_codec *c = ctx;
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
static void send_task(mpi_state *st, pm_job *job, const pm_job_info *info, uint64_t seq, int r,
                      pm_task *t)
{
    uint64_t id = 0;
    remote *rem = new_remote(st, &id);
    msg_head h = {.kind = MSG_TASK, .seq = seq, .id = id, .base = t->base, .count = t->count,
                  .in_stride = info->in_stride, .out_stride = info->out_stride};
    size_t len = 0;
    unsigned char *msg = NULL;
    if (rem)
        msg = pm__mpi_pack(&h, NULL, 0, (unsigned char *)t->in, info->in_stride, t->count,
                   info->codec ? encode_input : NULL, (void *)info->codec, &len);
    if (!msg || pm__mpi_post(st, msg, len, r, tag_down(seq)) != PM_OK) {
        t->ran = t->count;
        t->failed = 0;
        for (size_t k = 0; k < t->count; k++)
            pm_task_record(job, t, k, PM_ENOMEM);
        pm_job_finish(job, worker_of(st, r), t);
        return;
    }
    rem->t = *t;
    rem->sent = pm__mpi_now();
    rem->worker = worker_of(st, r);
    rem->used = 1;
    st->peers[r].outstanding++;
    st->peers[r].out_items += t->count;
}

/* A follower's RESULT: copy codes and outputs into the task, finish it. */
static void take_result(mpi_state *st, pm_job *job, const pm_job_info *info, int r,
                        const unsigned char *msg, size_t len)
{
    const pm_codec *codec = info->codec;
    size_t in_stride = info->in_stride, out_stride = info->out_stride;
    msg_head h;
    memcpy(&h, msg, sizeof h);
    if (h.id >= st->nremotes || !st->remotes[h.id].used)
        return;
    remote *rem = &st->remotes[h.id];
    pm_task *t = &rem->t;
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
        unsigned char *out = t->out ? t->out + k * out_stride : NULL;
        if (!ok) {
            code = PM_ESYS;
            if (codec && out)
                codec->decode(codec->ctx, t->in + k * in_stride, NULL, 0, out);
        } else if (codec && out_stride) {
            /* The codec makes `out` valid even when nothing usable came. */
            const unsigned char *bytes = NULL;
            size_t n = 0;
            int bad = pm__mpi_unpack_next(&p, end, &bytes, &n);
            if (out) {
                int d = codec->decode(codec->ctx, t->in + k * in_stride,
                                      bad ? NULL : bytes, bad ? 0 : n, out);
                bad = bad ? bad : d;
            }
            if (bad && !code)
                code = bad;
        } else if (out && out_stride) {
            if ((size_t)(end - p) >= out_stride)
                memcpy(out, p, out_stride);
            else if (!code)
                code = PM_ESYS;
            p += out_stride;
        }
        pm_task_record(job, t, k, code);
    }
    /* The chunker sizes chunks by the work they hold, as measured where they
     * ran; the latency is hidden by queue depth instead (wants_more). */
    double now = pm__mpi_now();
    peer *pe = &st->peers[r];
    if (t->t0 > 0)
        t->t0 = now - h.run_s / REMOTE_SCALE;
    double lat = now - rem->sent - h.wait_s - h.run_s;
    lat = lat > 0 ? lat : 0;
    pe->latency = pe->latency > 0 ? 0.8 * pe->latency + 0.2 * lat : lat;
    if (ran > 0 && h.run_s > 0) {
        double spi = h.run_s / (double)ran;
        pe->sec_per_item = pe->sec_per_item > 0 ? 0.7 * pe->sec_per_item + 0.3 * spi : spi;
    }
    /* A thread there whose worker_init failed: its items came back with
     * PM_EWORKERINIT, and the call stops as for a local one. */
    if (h.flags & FLAG_INIT_FAILED)
        pm_job_worker_failed(job);
    pm_job_finish(job, rem->worker, t);
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

/* A follower's EXITS: the records its threads' exits wrote, into the
 * call's exit_results. A message too short for what it claims brings what
 * it holds. */
static void take_exits(pm_job *job, const unsigned char *msg, size_t len, size_t exit_size)
{
    msg_head h;
    memcpy(&h, msg, sizeof h);
    if (!exit_size || h.exit_size != exit_size)
        return;
    size_t have = (len - sizeof h) / exit_size;
    size_t n = h.count < have ? (size_t)h.count : have;
    for (size_t k = 0; k < n; k++)
        pm_job_exit_deliver(job, msg + sizeof h + k * exit_size);
}

/* Whether follower `p` is done with the job: it got END, every chunk it had
 * came back, and (with per-worker state) its threads' exits ran. */
static int peer_done(const peer *p, int exits)
{
    return p->ended && p->outstanding == 0 && (!exits || p->exited);
}

void pm__mpi_serve(mpi_state *st, pm_job *job, uint64_t seq)
{
    int live = st->size - 1;
    double backoff = IDLE_MIN_S;
    pm_job_info info;
    pm_job_info_get(job, &info);
    memset(st->peers, 0, (size_t)st->size * sizeof *st->peers);
    while (live > 0) {
        int busy = 0, from = 0;
        size_t len = 0;
        unsigned char *msg;
        while ((msg = pm__mpi_try_recv(st, MPI_ANY_SOURCE, tag_up(seq), &from, &len)) != NULL) {
            msg_head h = {0};
            if (len >= sizeof h)
                memcpy(&h, msg, sizeof h);
            if (h.seq == seq && h.kind == MSG_HELLO) {
                st->peers[from].ready = 1;
                st->peers[from].threads = h.count > 0 && h.count < PM_MAX_THREADS ? (int)h.count : 1;
            }
            else if (h.seq == seq && h.kind == MSG_RESULT)
                take_result(st, job, &info, from, msg, len);
            else if (h.seq == seq && h.kind == MSG_EXITS) {
                take_exits(job, msg, len, info.exit_size);
                st->peers[from].exited = 1;
            }
            free(msg);
            busy = 1;
        }
        live = 0;
        int calm = 1; /* every follower has its fill of chunks */
        for (int r = 1; r < st->size; r++) {
            peer *p = &st->peers[r];
            while (wants_more(p)) {
                pm_task t;
                int k = pm_job_take(job, worker_of(st, r), SIZE_MAX, &t);
                if (k == PM_STEP_IDLE)
                    break;
                busy = 1;
                if (k == PM_STEP_END) {
                    /* Canceled: the follower drops the chunks it has not
                     * started (they come back as not run), so the call ends
                     * within about one chunk per thread there too. With
                     * per-worker state its threads then run their exits,
                     * and it sends their records (EXITS): the call is not
                     * over before every worker's exit ran. */
                    msg_head h = {.kind = MSG_END, .seq = seq,
                                  .flags = (pm_cancel_requested(info.cancel) ? FLAG_CANCELED : 0) |
                                           (info.worker_state ? FLAG_EXITS : 0),
                                  .exit_size = info.exit_size};
                    unsigned char *m = malloc(sizeof h);
                    if (!m)
                        break; /* try again at the next round */
                    memcpy(m, &h, sizeof h);
                    pm__mpi_post(st, m, sizeof h, r, tag_down(seq));
                    p->ended = 1;
                    break;
                }
                send_task(st, job, &info, seq, r, &t);
            }
            live += !peer_done(p, info.worker_state);
            calm &= p->ready && !p->ended && !wants_more(p);
        }
        pm__mpi_reap_sends(st, 0);
        if (busy)
            backoff = IDLE_MIN_S;
        else if (live)
            pm__mpi_idle(st, &backoff, calm);
    }
    pm__mpi_reap_sends(st, 1);
}

/* A compute thread on rank 0: chunks straight from the job. */
int pm__mpi_owner_step(void *owner, pm_job *job, int worker)
{
    (void)owner;
    return pm_job_step(job, worker);
}
