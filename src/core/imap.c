/*
 * imap.c - pm_imap: the streaming map behind pm_iter.
 *
 * Three roles share one stream job:
 *  - the feeder pulls records from the source into chunks (a thread of its own
 *    when the executor has workers; otherwise the consumer feeds inline);
 *  - workers take ready chunks (FIFO), run them, and mark them done;
 *  - the consumer (pm_iter_next) drains done chunks: in stream order through
 *    the `order` list, or in completion order through the `done` list.
 * Backpressure: `inflight` counts the items of every chunk from the moment it
 * is fed until the consumer has drained it. The feeder waits while another
 * chunk would push it over `window`, and the number of live chunks is capped
 * too, so memory is bounded whatever the stream length, and one slow item in
 * ordered mode stalls the feeder instead of letting results pile up.
 *
 * One mutex guards the lists, counters and flags below it in struct stream;
 * chunk contents are touched without it by whoever owns the chunk's current
 * stage (feeder while filling, one worker while running, consumer while
 * draining). Waits: the feeder on feed_cv (window space), the consumer on
 * result_cv (a chunk done, end, stop), both with timeouts so that a
 * cancellation requested from a signal handler (which cannot signal a
 * condition variable) is seen within ~50 ms.
 */
#include "iter.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { CHUNK_READY, CHUNK_RUNNING, CHUNK_DONE };

/* Consumer-side wait between checks of the cancel token and progress. */
#define POLL_S 0.05
/* Default window: about this many bytes of records in flight. */
#define WINDOW_BYTES ((size_t)8 << 20)
#define WINDOW_MAX ((size_t)1 << 16)

typedef struct chunk {
    struct chunk *next;        /* ready, done or free list */
    struct chunk *order_next;  /* order list (ordered mode) */
    size_t base, count, ran, cap, failed;
    int state;
    unsigned char *in, *out;
    int *codes;
} chunk;

struct pm__stream {
    pm__job job;                /* first: what the executor sees */
    pm_fn fn;
    void *user;
    pm_source_fn source;
    void *src;
    size_t in_stride, out_stride;
    int raise, ordered, workers;
    size_t fixed, window, max_chunks;
    pm_cancel *cancel;
    pm__exec own, *ex;
    pm__thread feeder;
    int has_feeder, has_lock;

    pm__mutex lock;
    pm__cond feed_cv, result_cv;
    /* --- guarded by lock --- */
    chunk *ready, *ready_tail;
    chunk *order, *order_tail;
    chunk *done, *done_tail;
    chunk *free_chunks;
    size_t inflight, live_chunks, fed, running;
    size_t done_items, failed_items, first_index;
    int first_code;
    int source_ended, source_status;
    int stop;                   /* PM_EITEM / PM_ECANCELED: the map stops */
    int closing;                /* pm_iter_free: everyone leaves */
    double sec_per_item;        /* measured, 0 = unknown */
    /* --- consumer only --- */
    chunk *cur;
    size_t cur_pos;
    pm__progress progress;
    int reporting;
    double t0;
};

/* ---------------------------------------------------------------- chunks */

static void chunk_free(chunk *c)
{
    if (!c)
        return;
    free(c->in);
    free(c->out);
    free(c->codes);
    free(c);
}

static void free_list(chunk *c, int by_order)
{
    while (c) {
        chunk *next = by_order ? c->order_next : c->next;
        chunk_free(c);
        c = next;
    }
}

static int chunk_reserve(pm__stream *s, chunk *c, size_t cap)
{
    if (c->cap >= cap)
        return PM_OK;
    unsigned char *in = realloc(c->in, cap * s->in_stride);
    if (in)
        c->in = in;
    unsigned char *out = s->out_stride ? realloc(c->out, cap * s->out_stride) : NULL;
    if (out)
        c->out = out;
    int *codes = realloc(c->codes, cap * sizeof *codes);
    if (codes)
        c->codes = codes;
    if (!in || (s->out_stride && !out) || !codes)
        return PM_ENOMEM;
    c->cap = cap;
    return PM_OK;
}

/* Items per chunk for the next feed (lock held). */
static size_t next_size(const pm__stream *s)
{
    size_t cap = s->window / (2 * (size_t)s->workers);
    size_t size = s->fixed ? s->fixed
                : s->sec_per_item > 0 ? pm__chunker_for_rate(s->sec_per_item) : 1;
    if (!s->fixed && size > cap)
        size = cap;
    if (size > s->window)
        size = s->window;
    return size ? size : 1;
}

static void wake_all(pm__stream *s)
{
    pm__cond_broadcast(&s->feed_cv);
    pm__cond_broadcast(&s->result_cv);
}

/* Stop the map for `why` unless it already stopped (lock held). */
static void set_stop(pm__stream *s, int why)
{
    if (!s->stop)
        s->stop = why;
    wake_all(s);
}

/* ---------------------------------------------------------------- feeder */

/* Pull one chunk from the source. Returns 1 while the stream goes on, 0 when
 * the source ended, the map stopped or the iterator is closing. */
static int feed_one(pm__stream *s)
{
    pm__mutex_lock(&s->lock);
    size_t size = next_size(s);
    while (!s->stop && !s->closing &&
           (s->inflight + size > s->window || s->live_chunks >= s->max_chunks)) {
        pm__cond_timedwait(&s->feed_cv, &s->lock, POLL_S);
        if (pm__canceled(s->cancel))
            set_stop(s, PM_ECANCELED);
    }
    if (!s->stop && !s->closing && pm__canceled(s->cancel))
        set_stop(s, PM_ECANCELED);
    if (s->stop || s->closing || s->source_ended) {
        pm__mutex_unlock(&s->lock);
        return 0;
    }
    chunk *c = s->free_chunks;
    if (c)
        s->free_chunks = c->next;
    s->inflight += size;
    s->live_chunks++;
    pm__mutex_unlock(&s->lock);

    int r = 1;
    size_t k = 0;
    if (!c)
        c = calloc(1, sizeof *c);
    if (!c || chunk_reserve(s, c, size) != PM_OK) {
        r = PM_ENOMEM;
    } else {
        for (; k < size; k++) {
            r = s->source(s->src, c->in + k * s->in_stride);
            if (r != 1)
                break;
        }
    }

    pm__mutex_lock(&s->lock);
    s->inflight -= size - k;
    if (c && k > 0) {
        c->base = s->fed;
        c->count = k;
        c->ran = c->failed = 0;
        c->state = CHUNK_READY;
        c->next = c->order_next = NULL;
        s->fed += k;
        *(s->ready ? &s->ready_tail->next : &s->ready) = c;
        s->ready_tail = c;
        if (s->ordered) {
            *(s->order ? &s->order_tail->order_next : &s->order) = c;
            s->order_tail = c;
        }
    } else {
        s->live_chunks--;
        if (c) {
            c->next = s->free_chunks;
            s->free_chunks = c;
        }
    }
    if (r != 1) {
        s->source_ended = 1;
        s->source_status = r < 0 ? r : 0;
    }
    pm__cond_broadcast(&s->result_cv);
    pm__mutex_unlock(&s->lock);
    if (k > 0 && s->has_feeder)
        s->ex->m->notify(s->ex->state);
    return r == 1;
}

static void *feeder_main(void *arg)
{
    pm__stream *s = arg;
    while (feed_one(s))
        ;
    /* Workers sleeping on IDLE must learn that the stream ended. */
    s->ex->m->notify(s->ex->state);
    return NULL;
}

/* --------------------------------------------------------------- workers */

static int stream_step(pm__job *job, int worker)
{
    pm__stream *s = (pm__stream *)job;
    (void)worker;
    pm__mutex_lock(&s->lock);
    if (!s->stop && !s->closing && pm__canceled(s->cancel))
        set_stop(s, PM_ECANCELED);
    if (s->stop || s->closing) {
        pm__mutex_unlock(&s->lock);
        return PM__STEP_END;
    }
    chunk *c = s->ready;
    if (!c) {
        int ended = s->source_ended;
        pm__mutex_unlock(&s->lock);
        return ended ? PM__STEP_END : PM__STEP_IDLE;
    }
    s->ready = c->next;
    c->state = CHUNK_RUNNING;
    s->running++;
    pm__mutex_unlock(&s->lock);

    int timed = !s->fixed;
    double t0 = timed ? pm__now() : 0;
    size_t i, failed = 0, first = SIZE_MAX;
    int first_code = 0;
    for (i = 0; i < c->count; i++) {
        int code = s->fn(s->user, c->in + i * s->in_stride,
                         s->out_stride ? c->out + i * s->out_stride : NULL);
        c->codes[i] = code;
        if (code) {
            if (!failed++) {
                first = c->base + i;
                first_code = code;
            }
            if (s->raise) {
                i++;
                break;
            }
        }
    }
    double spent = timed ? pm__now() - t0 : 0;

    pm__mutex_lock(&s->lock);
    c->ran = i;
    c->failed = failed;
    c->state = CHUNK_DONE;
    s->running--;
    s->done_items += i;
    s->failed_items += failed;
    if (failed && first < s->first_index) {
        s->first_index = first;
        s->first_code = first_code;
    }
    if (failed && s->raise)
        set_stop(s, PM_EITEM);
    if (timed && i > 0) {
        /* Smoothed so one odd chunk does not swing the next sizes. */
        double spi = spent / (double)i;
        s->sec_per_item = s->sec_per_item > 0 ? 0.7 * s->sec_per_item + 0.3 * spi : spi;
    }
    if (!s->ordered) {
        c->next = NULL;
        *(s->done ? &s->done_tail->next : &s->done) = c;
        s->done_tail = c;
    }
    pm__cond_broadcast(&s->result_cv);
    pm__mutex_unlock(&s->lock);
    return PM__STEP_RAN;
}

/* -------------------------------------------------------------- consumer */

/* Give the drained current chunk back to the feeder (consumer only). */
static void recycle_current(pm__stream *s)
{
    chunk *c = s->cur;
    s->cur = NULL;
    pm__mutex_lock(&s->lock);
    s->inflight -= c->count;
    s->live_chunks--;
    c->next = s->free_chunks;
    s->free_chunks = c;
    pm__cond_broadcast(&s->feed_cv);
    pm__mutex_unlock(&s->lock);
}

/* Take the next chunk the consumer may drain, or NULL (lock held). */
static chunk *take_done(pm__stream *s)
{
    chunk *c = s->ordered ? s->order : s->done;
    if (!c || c->state != CHUNK_DONE)
        return NULL;
    if (s->ordered)
        s->order = c->order_next;
    else
        s->done = c->next;
    return c;
}

/* Whether the consumer will never get another chunk (lock held): sets *status. */
static int finished(pm__stream *s, int *status)
{
    if (s->stop) {
        /* Chunks that were already running still complete and may be
         * consumed (in order, they come before anything not yet run). */
        int waiting = s->ordered ? (s->order && s->order->state == CHUNK_RUNNING)
                                 : s->running > 0;
        *status = s->stop;
        return !waiting;
    }
    if (s->source_ended && (s->ordered ? !s->order : s->inflight == 0)) {
        *status = s->source_status;
        return 1;
    }
    return 0;
}

int pm__stream_next(pm__stream *s, void *out, size_t *index, int *item_code, size_t *err_index,
                    int *err_code)
{
    for (;;) {
        chunk *c = s->cur;
        if (c && s->cur_pos < c->ran) {
            size_t k = s->cur_pos++;
            int code = c->codes[k];
            if (code && s->raise) {
                *err_index = c->base + k;
                *err_code = code;
                return PM_EITEM;
            }
            if (out && s->out_stride)
                memcpy(out, c->out + k * s->out_stride, s->out_stride);
            if (index)
                *index = c->base + k;
            if (item_code)
                *item_code = code;
            return 1;
        }
        if (c)
            recycle_current(s);

        pm__mutex_lock(&s->lock);
        if (!s->stop && pm__canceled(s->cancel))
            set_stop(s, PM_ECANCELED);
        size_t done = s->done_items, failed = s->failed_items;
        int status = 0, end = 0, serial = !s->has_feeder, runnable = s->ready != NULL;
        if ((s->cur = take_done(s)) != NULL) {
            s->cur_pos = 0;
        } else if ((end = finished(s, &status)) == 0 && !serial) {
            pm__cond_timedwait(&s->result_cv, &s->lock, POLL_S);
        }
        *err_index = s->first_index;
        *err_code = s->first_code;
        pm__mutex_unlock(&s->lock);

        if (s->reporting)
            pm__progress_update(&s->progress, done, failed, 0);
        if (end)
            return status;
        if (!s->cur && serial) {
            /* No background threads: do the next piece of work right here. */
            if (runnable)
                stream_step(&s->job, 0);
            else
                feed_one(s);
        }
    }
}

/* ------------------------------------------------------------- lifetime */

void pm__stream_counts(pm__stream *s, pm_report *r)
{
    pm__mutex_lock(&s->lock);
    r->done = s->done_items;
    r->failed = s->failed_items;
    r->first_error_index = s->first_index;
    r->first_error_code = s->first_code;
    pm__mutex_unlock(&s->lock);
    r->elapsed_s = pm__now() - s->t0;
}

void pm__stream_finish_progress(pm__stream *s)
{
    if (s->reporting) {
        pm_report r;
        pm__stream_counts(s, &r);
        pm__progress_finish(&s->progress, r.done, r.failed);
        s->reporting = 0;
    }
}

void pm__stream_free(pm__stream *s)
{
    if (!s)
        return;
    if (s->has_lock) {
        pm__mutex_lock(&s->lock);
        s->closing = 1;
        wake_all(s);
        pm__mutex_unlock(&s->lock);
    }
    if (s->has_feeder)
        pm__thread_join(s->feeder); /* waits for a source call in progress */
    if (s->ex && s->ex->m->workers(s->ex->state) > 0 && s->job.step) {
        s->ex->m->notify(s->ex->state);
        s->ex->m->wait(s->ex->state, &s->job, -1.0);
    }
    pm__exec_close(&s->own);
    /* Who owns a chunk now that nobody runs: ordered, every fed chunk is on
     * the order list; unordered, on the ready or the done list. */
    if (s->ordered) {
        free_list(s->order, 1);
    } else {
        free_list(s->ready, 0);
        free_list(s->done, 0);
    }
    free_list(s->free_chunks, 0);
    chunk_free(s->cur);
    if (s->has_lock) {
        pm__cond_destroy(&s->result_cv);
        pm__cond_destroy(&s->feed_cv);
        pm__mutex_destroy(&s->lock);
    }
    free(s);
}

static size_t default_window(size_t in_stride, size_t out_stride, int workers, size_t fixed)
{
    size_t per_item = in_stride + out_stride + sizeof(int);
    size_t w = WINDOW_BYTES / per_item;
    if (w > WINDOW_MAX)
        w = WINDOW_MAX;
    if (w < 4 * (size_t)workers)
        w = 4 * (size_t)workers;
    if (fixed && w < 2 * fixed * (size_t)workers)
        w = 2 * fixed * (size_t)workers; /* the caller asked for chunks that big */
    return w;
}

int pm__stream_new(pm__stream **out, pm_fn fn, void *user, pm_source_fn source, void *src,
                   size_t in_stride, size_t out_stride, const pm__opts *o)
{
    pm__stream *s = calloc(1, sizeof *s);
    *out = s;
    if (!s)
        return PM_ENOMEM;
    s->t0 = pm__now();
    s->fn = fn;
    s->user = user;
    s->source = source;
    s->src = src;
    s->in_stride = in_stride;
    s->out_stride = out_stride;
    s->raise = o->user.on_error == PM_RAISE;
    s->ordered = !o->user.unordered;
    s->cancel = o->user.cancel;
    s->fixed = o->chunksize;
    s->first_index = SIZE_MAX;
    int rc;
    if (o->user.pool) {
        s->ex = &o->user.pool->exec;
    } else {
        if ((rc = pm__exec_open(&s->own, o->backend, &o->cfg)) != PM_OK)
            return rc;
        s->ex = &s->own;
    }
    int workers = s->ex->m->workers(s->ex->state);
    s->workers = workers > 0 ? workers : 1;
    s->window = o->user.window ? o->user.window
                               : default_window(in_stride, out_stride, s->workers, s->fixed);
    s->max_chunks = 8 * (size_t)s->workers + 8;
    if ((rc = pm__mutex_init(&s->lock)) != PM_OK)
        return rc;
    if ((rc = pm__cond_init(&s->feed_cv)) != PM_OK) {
        pm__mutex_destroy(&s->lock);
        return rc;
    }
    if ((rc = pm__cond_init(&s->result_cv)) != PM_OK) {
        pm__cond_destroy(&s->feed_cv);
        pm__mutex_destroy(&s->lock);
        return rc;
    }
    s->has_lock = 1;
    s->reporting = pm__progress_init(&s->progress, &o->user, o->user.total);
    s->job.step = stream_step;
    if (workers > 0) {
        s->ex->m->submit(s->ex->state, &s->job);
        if ((rc = pm__thread_start(&s->feeder, feeder_main, s)) != PM_OK)
            return rc;
        s->has_feeder = 1;
    }
    return PM_OK;
}
