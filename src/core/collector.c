/*
 * collector.c - the consumer side of a stream (pm_iter_next): takes done
 * chunks in stream order (the `order` list) or completion order (the `done`
 * list), hands out their results one by one without taking the lock, turns
 * the first failing item of PM_RAISE mode into PM_EITEM, decides when the
 * stream has ended, and reports progress from the consumer's thread. While it
 * waits for a result it runs ready chunks itself (the consumer is one of the
 * `threads`); with no feeder thread (serial, threads = 1) it also feeds.
 */
#include "stream.h"

#include <string.h>

/* Give the drained current chunk back to the feeder (consumer only). */
static void recycle_current(pm__stream *s)
{
    chunk *c = s->cur;
    s->cur = NULL;
    /* A chunk cut short without a failing item (a remote worker stopped by
     * cancellation): the stream ends here, nothing after it may follow. */
    if (c->ran < c->count)
        s->cut = 1;
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
    if (s->follower) {
        /* Results stay with the owner: wait for its end and its status. */
        int status = pm__stream_conclude(s, PM_OK);
        *err_index = s->first_index;
        *err_code = s->first_code;
        return status;
    }
    for (;;) {
        if (s->cut) {
            pm__mutex_lock(&s->lock);
            int status = s->stop ? s->stop : PM_ECANCELED;
            *err_index = s->first_index;
            *err_code = s->first_code;
            pm__mutex_unlock(&s->lock);
            return status;
        }
        chunk *c = s->cur;
        if (c && s->cur_pos < c->ran) {
            size_t k = s->cur_pos++;
            int code = c->codes[k];
            if (code && s->job.raise) {
                *err_index = c->base + k;
                *err_code = code;
                return pm__item_status(code);
            }
            if (out && s->job.out_stride)
                memcpy(out, c->out + k * s->job.out_stride, s->job.out_stride);
            if (index)
                *index = c->base + k;
            if (item_code)
                *item_code = code;
            /* Handed out: the chunk leaves the window now, not at the next
             * call, so the feeder may refill while the caller works. */
            if (s->cur_pos == c->ran)
                recycle_current(s);
            return 1;
        }
        if (c)
            recycle_current(s);

        pm__mutex_lock(&s->lock);
        if (!s->stop && pm__canceled(s->cancel))
            pm__stream_stop(s, PM_ECANCELED);
        size_t done = s->done_items, failed = s->failed_items;
        int status = 0, end = 0, serial = !s->has_feeder;
        /* With a feeder there are background workers: a consumer_only
         * consumer leaves every chunk to them. */
        int runnable = s->ready != NULL && !s->ex->m->isolated && !(s->consumer_only && s->has_feeder);
        if ((s->cur = take_done(s)) != NULL) {
            s->cur_pos = 0;
        } else if ((end = finished(s, &status)) == 0 && !serial && !runnable) {
            pm__cond_timedwait(&s->result_cv, &s->lock, POLL_S);
        }
        *err_index = s->first_index;
        *err_code = s->first_code;
        pm__mutex_unlock(&s->lock);

        if (s->reporting)
            pm__progress_update(&s->progress, done, failed, 0);
        if (end)
            return status;
        if (!s->cur && !end) {
            /* Rather than sleep, run a ready chunk here (the consumer is one
             * of the `threads`); with no feeder thread, also feed. */
            if (runnable && !s->ex->m->isolated)
                pm__job_step(&s->job, s->background); /* the caller's number */
            else if (serial)
                pm__stream_feed(s);
        }
    }
}

