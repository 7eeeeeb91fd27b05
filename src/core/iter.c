/*
 * iter.c - pm_iter handles: the public face of a stream job.
 *
 * A handle outlives pm_iter_free on purpose: freed handles go to a free list
 * (under the global lock) instead of back to malloc, with their magic cleared,
 * so that pm_iter_next or pm_iter_free on an iterator that was already freed
 * reads valid memory and returns PM_EINVAL instead of corrupting the heap. A
 * later pm_imap may reuse the handle (like a reused file descriptor), so this
 * catches the common mistake, not every one. Handles are 48 bytes; the free
 * list only ever holds as many as were alive at once.
 *
 * After the stream ends, its status is kept in the handle so every later call
 * returns the same value (the "sticky end").
 */
#include "stream.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC_LIVE 0x706d6974u /* "pmit" */
#define MAGIC_DEAD 0u

struct pm_iter {
    unsigned magic;
    int ended;          /* the stream ended: `final` repeats forever */
    int final;
    int final_code;     /* PM_EITEM: the failing item's code */
    size_t final_index; /* PM_EITEM: the failing item's index */
    int bad_args;       /* SPMD: bad arguments here, `final` says so whatever the owner's */
    pm__stream *stream; /* NULL: bad arguments (final says why) */
    pm_iter *free_next;
};

static pm_iter *free_handles;

static pm_iter *handle_new(void)
{
    pm__global_lock();
    pm_iter *it = free_handles;
    if (it)
        free_handles = it->free_next;
    pm__global_unlock();
    if (!it)
        it = malloc(sizeof *it);
    if (it) {
        memset(it, 0, sizeof *it);
        it->magic = MAGIC_LIVE;
    }
    return it;
}

static void handle_release(pm_iter *it)
{
    it->magic = MAGIC_DEAD;
    pm__global_lock();
    it->free_next = free_handles;
    free_handles = it;
    pm__global_unlock();
}

static int valid(const pm_iter *it)
{
    return it && it->magic == MAGIC_LIVE;
}

/* The source of a call with bad arguments on an SPMD executor (pm__imap_ex). */
static int no_items(void *src, void *item)
{
    (void)src;
    (void)item;
    return 0;
}

/* The source of an SPMD owner (MPI rank 0) that passed none: the stream
 * ends at once with PM_EINVAL, before any item, and pm_iter_free tells the
 * other processes. On a follower it is never called. */
static int missing_source(void *src, void *item)
{
    (void)src;
    (void)item;
    return PM_EINVAL;
}

static pm_iter *imap_call(pm_fn fn, pm_batch_fn batch, void *user, pm_source_fn next,
                          void *src, size_t in_stride, size_t out_stride, const pm_opts *opts,
                          const pm__codec *codec);

pm_iter *pm_imap(pm_fn fn, void *user, pm_source_fn next, void *src, size_t in_stride,
                 size_t out_stride, const pm_opts *opts)
{
    return imap_call(fn, NULL, user, next, src, in_stride, out_stride, opts, NULL);
}

pm_iter *pm_imap_batch(pm_batch_fn fn, void *user, pm_source_fn next, void *src,
                       size_t in_stride, size_t out_stride, const pm_opts *opts)
{
    return imap_call(NULL, fn, user, next, src, in_stride, out_stride, opts, NULL);
}

pm_iter *pm__imap_ex(pm_fn fn, void *user, pm_source_fn next, void *src, size_t in_stride,
                     size_t out_stride, const pm_opts *opts, const pm__codec *codec)
{
    return imap_call(fn, NULL, user, next, src, in_stride, out_stride, opts, codec);
}

static pm_iter *imap_call(pm_fn fn, pm_batch_fn batch, void *user, pm_source_fn next,
                          void *src, size_t in_stride, size_t out_stride, const pm_opts *opts,
                          const pm__codec *codec)
{
    pm_iter *it = handle_new();
    if (!it)
        return NULL;
    pm__opts o;
    int opts_rc = pm__opts_resolve(opts, &o);
    int spmd = opts_rc == PM_OK ? pm__methods_spmd(o.methods) : pm__opts_spmd_fallback(opts, &o);
    /* SPMD: a follower never reads the source, so it need not pass one (see
     * missing_source for the owner). */
    int rc = ((!fn && !batch) || (!next && !spmd) || in_stride == 0) ? PM_EINVAL : opts_rc;
    if (rc == PM_OK && o.user.codes)
        rc = PM_EINVAL; /* codes[] is for pm_map; iterators return each code */
    int made = PM_OK;
    if (rc == PM_OK) {
        made = rc = pm__stream_new(&it->stream, fn, batch, user, next ? next : missing_source,
                                   src, in_stride, out_stride, &o, codec);
    } else if (spmd) {
        /* SPMD (MPI): the other processes make this call too and wait for
         * this one (bad options too: it takes part with the least settings).
         * Take part in an empty stream that refuses, so that the executor
         * fails the call on every process (pm__refuse). */
        o.user.codes = NULL;
        made = pm__stream_new(&it->stream, pm__refuse, NULL, NULL, no_items, NULL, 1, 0, &o,
                              NULL);
        it->bad_args = 1;
    }
    if (made != PM_OK) {
        pm__stream_free(it->stream);
        it->stream = NULL;
    }
    if (rc != PM_OK) {
        it->ended = 1;
        it->final = rc;
    }
    return it;
}

int pm_iter_next(pm_iter *it, void *out, size_t *index, int *item_code)
{
    if (!valid(it))
        return PM_EINVAL;
    if (!it->ended) {
        size_t err_index = SIZE_MAX;
        int err_code = 0;
        int r = pm__stream_next(it->stream, out, index, item_code, &err_index, &err_code);
        if (r == 1)
            return 1;
        it->ended = 1;
        it->final = r;
        it->final_index = err_index;
        it->final_code = err_code;
        pm__stream_finish_progress(it->stream);
    }
    if (it->final == PM_EITEM || it->final == PM_ECRASH || it->final == PM_ETIMEOUT) {
        if (index)
            *index = it->final_index;
        if (item_code)
            *item_code = it->final_code;
    }
    return it->final;
}

int pm_iter_report(pm_iter *it, pm_report *report)
{
    if (!valid(it) || !report)
        return PM_EINVAL;
    memset(report, 0, sizeof *report);
    report->first_error_index = SIZE_MAX;
    if (it->stream && it->ended && it->stream->job.ws)
        pm__stream_settle(it->stream); /* every worker_exit ran: exit_count is final */
    if (it->stream)
        pm__stream_counts(it->stream, report);
    report->status = it->ended && it->final < 0 ? it->final : PM_OK;
    return PM_OK;
}

int pm_iter_free(pm_iter *it)
{
    if (!it)
        return PM_OK;
    if (!valid(it))
        return PM_EINVAL;
    int rc = it->ended && it->final < 0 ? it->final : PM_OK;
    if (it->stream)
        pm__stream_finish_progress(it->stream); /* the promised final report */
    /* SPMD (MPI): every process ends with the owner's status (or its own
     * bad arguments). */
    int shared = pm__stream_conclude(it->stream, rc);
    if (!it->bad_args)
        rc = shared;
    pm__stream_free(it->stream);
    handle_release(it);
    return rc;
}

int pm_iter_source(void *iter, void *item)
{
    for (;;) {
        int code = 0;
        int r = pm_iter_next(iter, item, NULL, &code);
        if (r == 1 && code != 0)
            continue; /* failed upstream (PM_RETURN there): skipped, counted upstream */
        return r;
    }
}
