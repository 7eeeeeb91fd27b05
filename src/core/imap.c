/*
 * imap.c - pm_imap: the streaming map behind pm_iter.
 *
 * Three roles share one stream job:
 *  - the feeder pulls records from the source into chunks (a thread of its own
 *    when the executor has workers; otherwise the consumer feeds inline);
 *  - workers take ready chunks (FIFO), run them, and mark them done; the
 *    consumer does too while it has nothing to consume;
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
#include "stream.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Default window: about this many bytes of records in flight. */
#define WINDOW_BYTES ((size_t)8 << 20)
#define WINDOW_MAX ((size_t)1 << 16)

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
    unsigned char *in = realloc(c->in, cap * s->job.in_stride);
    if (in)
        c->in = in;
    unsigned char *out = s->job.out_stride ? realloc(c->out, cap * s->job.out_stride) : NULL;
    if (out)
        c->out = out;
    int *codes = realloc(c->codes, cap * sizeof *codes);
    if (codes)
        c->codes = codes;
    if (!in || (s->job.out_stride && !out) || !codes)
        return PM_ENOMEM;
    c->cap = cap;
    return PM_OK;
}

/* Items per chunk for the next feed (lock held). */
static size_t next_size(const pm__stream *s)
{
    size_t cap = s->window / (2 * (size_t)s->workers);
    /* Time per item counts the source too: a slow source must not be asked
     * for thousands of records before the first result. */
    double spi = s->sec_per_item + s->src_sec_per_item;
    size_t size = s->fixed ? s->fixed : s->sec_per_item > 0 ? pm__chunker_for_rate(spi) : 1;
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

void pm__stream_stop(pm__stream *s, int why)
{
    atomic_store(&s->quit_fill, 1);
    if (!s->stop)
        s->stop = why;
    wake_all(s);
}

/* ---------------------------------------------------------------- feeder */

/* Pull one chunk from the source. Returns 1 while the stream goes on, 0 when
 * the source ended, the map stopped or the iterator is closing. */
int pm__stream_feed(pm__stream *s)
{
    pm__mutex_lock(&s->lock);
    size_t size = next_size(s);
    while (!s->stop && !s->closing &&
           (s->inflight + size > s->window || s->live_chunks >= s->max_chunks)) {
        pm__cond_timedwait(&s->feed_cv, &s->lock, POLL_S);
        if (pm__canceled(s->cancel))
            pm__stream_stop(s, PM_ECANCELED);
    }
    if (!s->stop && !s->closing && pm__canceled(s->cancel))
        pm__stream_stop(s, PM_ECANCELED);
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
        double t0 = pm__now();
        for (; k < size; k++) {
            /* Stop between records when the map stops or the iterator is
             * freed: a slow source must not hold pm_iter_free up. */
            if (atomic_load_explicit(&s->quit_fill, memory_order_relaxed) || pm__canceled(s->cancel))
                break;
            r = s->source(s->src, c->in + k * s->job.in_stride);
            if (r != PM_SOURCE_ITEM)
                break; /* PM_SOURCE_LATER: hand on what this chunk has */
        }
        if (k > 0) {
            double spi = (pm__now() - t0) / (double)k;
            pm__mutex_lock(&s->lock);
            s->src_sec_per_item = s->src_sec_per_item > 0 ? 0.7 * s->src_sec_per_item + 0.3 * spi : spi;
            pm__mutex_unlock(&s->lock);
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
    int goes_on = r == PM_SOURCE_ITEM || r == PM_SOURCE_LATER;
    if (!goes_on) {
        s->source_ended = 1;
        s->source_status = r < 0 ? r : 0;
    }
    pm__cond_broadcast(&s->result_cv);
    pm__mutex_unlock(&s->lock);
    if (k > 0)
        s->ex->m->notify(s->ex->state); /* serial: a no-op */
    return goes_on;
}

static void *feeder_main(void *arg)
{
    pm__stream *s = arg;
    while (pm__stream_feed(s))
        ;
    /* Workers sleeping on IDLE must learn that the stream ended. */
    s->ex->m->notify(s->ex->state);
    return NULL;
}

/* --------------------------------------------------------------- workers */

static int stream_take(pm__job *job, int worker, size_t max_items, pm__task *t)
{
    pm__stream *s = (pm__stream *)job;
    (void)max_items; /* chunks were sized by the feeder; a runner may split them */
    if (!pm__worker_allowed(job, worker, s->background))
        return PM__STEP_IDLE; /* beyond this call's cap: leave it to the others */
    pm__mutex_lock(&s->lock);
    if (!s->stop && !s->closing && pm__canceled(s->cancel))
        pm__stream_stop(s, PM_ECANCELED);
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
    t->base = c->base;
    t->count = c->count;
    t->in = c->in;
    t->out = job->out_stride ? c->out : NULL;
    t->codes = c->codes;
    t->inherited = 0; /* fed after the call started */
    t->t0 = s->fixed ? 0 : pm__now();
    t->ctx = c;
    return PM__STEP_RAN;
}

static void stream_finish(pm__job *job, int worker, pm__task *t)
{
    pm__stream *s = (pm__stream *)job;
    chunk *c = t->ctx;
    (void)worker;
    double spent = t->t0 > 0 ? pm__now() - t->t0 : 0;
    pm__mutex_lock(&s->lock);
    if (atomic_load_explicit(&job->ws_failed, memory_order_relaxed))
        pm__stream_stop(s, PM_EWORKERINIT); /* first: it names the call's failure */
    c->ran = t->ran;
    c->failed = t->failed;
    c->state = CHUNK_DONE;
    s->running--;
    s->done_items += t->ran;
    s->failed_items += t->failed;
    if (t->signal_index < s->signal_index) { /* signal 0: it called exit() */
        s->signal = t->signal;
        s->signal_index = t->signal_index;
    }
    if (t->failed && t->first_failed < s->first_index) {
        s->first_index = t->first_failed;
        s->first_code = t->first_code;
    }
    if (t->failed && job->raise)
        pm__stream_stop(s, pm__item_status(t->first_code));
    if (t->t0 > 0 && t->ran > 0) {
        /* Smoothed so one odd chunk does not swing the next sizes. */
        double spi = spent / (double)t->ran;
        s->sec_per_item = s->sec_per_item > 0 ? 0.7 * s->sec_per_item + 0.3 * spi : spi;
    }
    if (!s->ordered) {
        c->next = NULL;
        *(s->done ? &s->done_tail->next : &s->done) = c;
        s->done_tail = c;
    }
    pm__cond_broadcast(&s->result_cv);
    pm__mutex_unlock(&s->lock);
}

/* ------------------------------------------------------------- lifetime */

void pm__stream_counts(pm__stream *s, pm_report *r)
{
    pm__mutex_lock(&s->lock);
    r->done = s->done_items;
    r->failed = s->failed_items;
    r->first_error_index = s->first_index;
    r->first_error_code = s->first_code;
    r->signal = s->signal;
    pm__mutex_unlock(&s->lock);
    r->exit_count = pm__ws_count(&s->job);
    r->exit_dropped = pm__ws_dropped(&s->job);
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

/* Stop filling, join the feeder and wait for the executor to leave the job. */
static void quiesce(pm__stream *s)
{
    if (s->quiesced)
        return;
    s->quiesced = 1;
    if (s->has_lock) {
        pm__mutex_lock(&s->lock);
        s->closing = 1;
        atomic_store(&s->quit_fill, 1);
        wake_all(s);
        pm__mutex_unlock(&s->lock);
    }
    if (s->has_feeder)
        pm__thread_join(s->feeder); /* waits for a source call in progress */
    if (s->submitted) {
        s->ex->m->notify(s->ex->state);
        s->ex->m->wait(s->ex->state, &s->job, -1.0);
    } else if (s->has_lock && pm__ws_owes(&s->job, s->background)) {
        /* No executor thread (serial): the consumer was the one worker and
         * runs its exit here (closing: the step sees END). */
        pm__job_step(&s->job, s->background);
    }
}

int pm__stream_conclude(pm__stream *s, int status)
{
    if (!s || !s->submitted || s->shared || s->ex->m->version < 2 || !s->ex->m->share)
        return status;
    quiesce(s);
    s->shared = 1;
    struct {
        pm_report rep;
        int status;
    } oc = {.status = status};
    pm__stream_counts(s, &oc.rep);
    if (s->ex->m->share(s->ex->state, &oc, sizeof oc) != PM_OK)
        return s->follower ? PM_ESYS : status;
    if (!s->follower)
        return status;
    pm__mutex_lock(&s->lock);
    s->done_items = oc.rep.done;
    s->failed_items = oc.rep.failed;
    s->first_index = oc.rep.first_error_index;
    s->first_code = oc.rep.first_error_code;
    s->signal = oc.rep.signal;
    pm__mutex_unlock(&s->lock);
    return oc.status;
}

void pm__stream_free(pm__stream *s)
{
    if (!s)
        return;
    quiesce(s);
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
    pm__ws_free(&s->job);
    free(s);
}

void pm__stream_settle(pm__stream *s)
{
    if (s)
        quiesce(s);
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

int pm__stream_new(pm__stream **out, pm_fn fn, pm_batch_fn batch, void *user,
                   pm_source_fn source, void *src, size_t in_stride, size_t out_stride,
                   const pm__opts *o, const pm__codec *codec)
{
    pm__stream *s = calloc(1, sizeof *s);
    *out = s;
    if (!s)
        return PM_ENOMEM;
    s->t0 = pm__now();
    s->job.fn = fn;
    s->job.batch = batch;
    s->job.limit = o->limit;
    s->job.user = user;
    s->source = source;
    s->src = src;
    s->job.in_stride = in_stride;
    s->job.out_stride = out_stride;
    s->job.raise = o->user.on_error == PM_RAISE;
    s->job.cancel = o->user.cancel;
    s->job.timeout_s = o->user.timeout_s;
    s->job.recycle_items = o->user.recycle_items;
    s->job.recycle_rss = o->user.recycle_rss;
    s->job.codec = codec;
    s->ordered = !o->user.unordered;
    s->consumer_only = o->user.consumer_only;
    s->cancel = o->user.cancel;
    s->fixed = o->chunksize;
    s->first_index = SIZE_MAX;
    s->signal_index = SIZE_MAX;
    int rc;
    int limit = o->limit;
    if (o->user.pool && (s->ex = pm__pool_exec(o->user.pool)) != NULL) {
        ; /* the pool's workers; else (a busy or inherited pool) its settings */
    } else if ((s->ex = pm__default_exec(o)) != NULL) {
        /* the shared default pool: this call's share is its threads */
        int size = s->ex->m->workers(s->ex->state) + 1;
        limit = o->cfg.threads < size ? o->cfg.threads : 0;
        s->job.limit = limit;
    } else {
        if ((rc = pm__exec_open(&s->own, o->methods, &o->cfg)) != PM_OK)
            return rc;
        s->ex = &s->own;
    }
    int workers = s->ex->m->workers(s->ex->state);
    /* The consumer runs chunks too, unless items must stay out of this process. */
    s->background = workers;
    s->workers = workers + (s->ex->m->isolated ? 0 : 1);
    if (limit && limit < s->workers)
        s->workers = limit;
    s->window = o->user.window ? o->user.window
                               : default_window(in_stride, out_stride, s->workers, s->fixed);
    s->max_chunks = 8 * (size_t)s->workers + 8;
    /* worker numbers: the background workers, then the consumer */
    if ((rc = pm__ws_setup(&s->job, &o->user, workers + 1)) != PM_OK)
        return rc;
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
    s->follower = pm__exec_follower(s->ex);
    s->reporting = !s->follower && pm__progress_init(&s->progress, &o->user, o->user.total);
    s->job.take = stream_take;
    s->job.finish = stream_finish;
    if (workers > 0) {
        if ((rc = s->ex->m->submit(s->ex->state, &s->job)) != PM_OK)
            return rc;
        s->submitted = 1;
        if (s->follower)
            return PM_OK; /* the owner's stream comes through the executor */
        s->has_feeder = 1;
        if ((rc = pm__thread_start(&s->feeder, feeder_main, s)) != PM_OK) {
            s->has_feeder = 0;
            return rc;
        }
    }
    return PM_OK;
}

