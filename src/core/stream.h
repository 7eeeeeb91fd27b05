/*
 * stream.h - the stream job behind pm_iter, shared by imap.c (feeder, workers,
 * lifetime), collector.c (the consumer: order, errors, end) and iter.c (the
 * public handles). How the roles cooperate is described atop imap.c.
 */
#ifndef PM_STREAM_H
#define PM_STREAM_H

#include "internal.h"

enum { CHUNK_READY, CHUNK_RUNNING, CHUNK_DONE };

/* Consumer-side wait between checks of the cancel token and progress. */
#define POLL_S 0.05

typedef struct chunk {
    struct chunk *next;        /* ready, done or free list */
    struct chunk *order_next;  /* order list (ordered mode) */
    size_t base, count, ran, cap, failed;
    int state;
    unsigned char *in, *out;
    int *codes;
} chunk;

typedef struct pm__stream pm__stream;
struct pm__stream {
    pm__job job;                /* first: what the executor sees */
    pm_source_fn source;
    void *src;
    int ordered;
    int workers;                /* threads running chunks, the consumer included */
    int background;             /* the executor's background workers */
    size_t fixed, window, max_chunks;
    pm_cancel *cancel;
    pm__exec own, *ex;
    pm__thread feeder;
    int has_feeder, has_lock;
    int consumer_only;   /* opts.consumer_only: pm_iter_next never runs chunks */

    atomic_int quit_fill;       /* stop or closing: the feeder stops between records */
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
    int signal;                 /* crash signal of the lowest crashed index (processes) */
    size_t signal_index;
    int source_ended, source_status;
    int stop;                   /* PM_EITEM / PM_ECANCELED: the map stops */
    int closing;                /* pm_iter_free: everyone leaves */
    double sec_per_item;        /* measured in the item function, 0 = unknown */
    double src_sec_per_item;    /* measured in the source, 0 = unknown */
    /* --- consumer only --- */
    chunk *cur;
    size_t cur_pos;
    int cut;                    /* drained a chunk that stopped short: the end */
    pm__progress progress;
    int reporting;
    double t0;
    /* SPMD executors (MPI) */
    int follower;               /* this process serves another's stream: no feeder */
    int submitted;              /* the job went to the executor (wait for it) */
    int quiesced;               /* feeder joined and job waited for */
    int shared;                 /* the owner's outcome went to every process */
};



/* Build and start a stream job; on error *out may hold a half-built job that
 * pm__stream_free accepts. */
int  pm__stream_new(pm__stream **out, pm_fn fn, pm_batch_fn batch, void *user,
                    pm_source_fn source, void *src, size_t in_stride, size_t out_stride,
                    const pm__opts *o, const pm__codec *codec);
/* The next result (1), the end (0) or the final status (< 0); on PM_EITEM,
 * *err_index / *err_code name the failing item. Consumer thread only. */
int  pm__stream_next(pm__stream *s, void *out, size_t *index, int *item_code,
                     size_t *err_index, int *err_code);
void pm__stream_counts(pm__stream *s, pm_report *r);
void pm__stream_finish_progress(pm__stream *s);
/* SPMD executors: once the stream is over here, every process gets the
 * owner's final status (returned) and counts; other executors: `status`. */
int  pm__stream_conclude(pm__stream *s, int status);
/* Stop everything, join, free. NULL is fine. */
void pm__stream_free(pm__stream *s);


/* Between the stream's files. */
/* Stop the map for `why` unless it already stopped, wake every waiter (lock held). */
void pm__stream_stop(pm__stream *s, int why);
/* After the iteration ended: wait until the executor left the job, so that
 * every worker_exit ran (pm_iter_report's exit_count is then final). */
void pm__stream_settle(pm__stream *s);
/* Feed one chunk from the source (imap.c); 1 while the stream goes on. */
int  pm__stream_feed(pm__stream *s);

#endif
