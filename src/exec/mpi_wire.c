/*
 * mpi_wire.c - the MPI executor's messages: non-blocking sends whose buffers live
 * until sent, polling receives, the back-off sleep, and packing records raw or
 * encoded (see mpi.c).
 */
#include "mpi.h"

/* -------------------------------------------------------------- helpers */

int pm__mpi_post(mpi_state *st, unsigned char *buf, size_t len, int dest, int tag)
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
void pm__mpi_reap_sends(mpi_state *st, int all)
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
unsigned char *pm__mpi_try_recv(mpi_state *st, int source, int tag, int *from, size_t *len)
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
void pm__mpi_idle(mpi_state *st, double *backoff, int calm)
{
    if (calm)
        *backoff = IDLE_CALM_S;
    pthread_mutex_lock(&st->lock);
    if (!st->kick)
        pm__mpi_timedwait(&st->cv, &st->lock, *backoff);
    st->kick = 0;
    pthread_mutex_unlock(&st->lock);
    *backoff = calm ? IDLE_MIN_S : *backoff * 2 < IDLE_MAX_S ? *backoff * 2 : IDLE_MAX_S;
}

/* Append `count` records of `stride` bytes at `rec` to a message: raw, or
 * encoded (a length word before each) with `encode`. */
unsigned char *pm__mpi_pack(const msg_head *h, const void *extra, size_t extra_len,
                           unsigned char *rec, size_t stride, size_t count,
                           pm__mpi_encode_fn encode, void *ctx, size_t *len)
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
int pm__mpi_unpack_next(const unsigned char **p, const unsigned char *end,
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
