/*
 * iter.h - the stream job behind pm_iter (imap.c), as seen by the iterator
 * handles (iter.c).
 */
#ifndef PM_ITER_H
#define PM_ITER_H

#include "internal.h"

typedef struct pm__stream pm__stream;

/* Build and start a stream job; on error *out may hold a half-built job that
 * pm__stream_free accepts. */
int  pm__stream_new(pm__stream **out, pm_fn fn, void *user, pm_source_fn source, void *src,
                    size_t in_stride, size_t out_stride, const pm__opts *o);
/* The next result (1), the end (0) or the final status (< 0); on PM_EITEM,
 * *err_index / *err_code name the failing item. Consumer thread only. */
int  pm__stream_next(pm__stream *s, void *out, size_t *index, int *item_code,
                     size_t *err_index, int *err_code);
void pm__stream_counts(pm__stream *s, pm_report *r);
void pm__stream_finish_progress(pm__stream *s);
/* Stop everything, join, free. NULL is fine. */
void pm__stream_free(pm__stream *s);

#endif
