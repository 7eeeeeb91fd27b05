/*
 * viter.c - pm_vimap / pm_viter: the streaming value map, built on pm_imap.
 *
 * Design: pm_imap moves fixed-size records and may drop records it holds
 * (pm_iter_free with results not consumed, PM_RAISE stopping the stream,
 * cancellation) without telling anyone, which is fine for plain bytes but
 * would leak owned values. So the records are pointers to *cells* that this
 * layer owns: the source wrapper puts each item in a new cell, links it into
 * the iterator's `live` list and feeds the cell's pointer; a worker runs the
 * call (pm__vcall_run), frees the item and leaves the result in the cell;
 * pm_viter_next unlinks the cell and hands its result out. Whatever pm_imap
 * dropped is still on the live list when pm_viter_free runs (after
 * pm_iter_free has joined every thread), and is freed there. In PM_RAISE
 * mode the failing item's record is never handed out either: its error value
 * is found on the live list by index.
 *
 * Lock: `lock` guards the live list's links only; the feeder (one thread)
 * links, the consumer unlinks. A cell's contents are written by the feeder
 * before it is fed and by one worker while its chunk runs, and read by the
 * consumer after pm_iter_next has handed it over: pm_imap's own lock orders
 * those, as it does for raw records.
 */
#include "value_internal.h"

#include "../core/internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct cell {
    pm_value *item;      /* owned until the worker has run it */
    pm_value *result;    /* owned until handed out */
    size_t index;
    struct cell *prev, *next;
} cell;

struct pm_viter {
    pm_iter *it;         /* NULL: the arguments were bad (final says why) */
    pm_vfn fn;
    void *user;
    pm__vspec spec;
    pm_vsource_fn next;
    void *src;
    size_t fed;          /* feeder only: index of the next item */
    int has_lock;
    pm__mutex lock;
    cell live;           /* sentinel of the circular live list (under lock) */
    /* consumer only */
    int ended, final, last_code;
    pm_value *error;     /* PM_EITEM: the failing item's error value */
    size_t error_index;
};

static void link_cell(pm_viter *v, cell *c)
{
    pm__mutex_lock(&v->lock);
    c->next = &v->live;
    c->prev = v->live.prev;
    v->live.prev->next = c;
    v->live.prev = c;
    pm__mutex_unlock(&v->lock);
}

static void unlink_cell(pm_viter *v, cell *c)
{
    pm__mutex_lock(&v->lock);
    c->prev->next = c->next;
    c->next->prev = c->prev;
    pm__mutex_unlock(&v->lock);
}

/* pm_imap's source: the user's source, one value per cell. */
static int feed(void *src, void *record)
{
    pm_viter *v = src;
    pm_value *item = NULL;
    int r = v->next(v->src, &item);
    if (r != 1)
        return r < 0 || r == PM_SOURCE_LATER ? r : 0;
    if (!item)
        return PM_ENOMEM; /* a constructor failed inside the source */
    cell *c = malloc(sizeof *c);
    if (!c) {
        pm_value_free(item);
        return PM_ENOMEM;
    }
    c->item = item;
    c->result = NULL;
    c->index = v->fed++;
    link_cell(v, c);
    memcpy(record, &c, sizeof c);
    return 1;
}

/* pm_imap's function: run the call, keep the result in the cell. */
static int run(void *user, const void *in, void *out)
{
    const pm_viter *v = user;
    cell *c;
    int code;
    memcpy(&c, in, sizeof c);
    c->result = pm__vcall_run(v->fn, v->user, &v->spec, c->item, c->index, &code);
    pm_value_free(c->item);
    c->item = NULL;
    memcpy(out, &c, sizeof c);
    return code;
}

/* ------------------------------ processes and MPI: cells travel encoded
 *
 * A cell's address means nothing in another process (an MPI rank, or a
 * worker process forked before the cell was made). Chunks sent there carry
 * each cell as its index and its item's MessagePack (encode_item, in the
 * caller; the cell stays). The worker decodes it into a cell of its own
 * (decode_item), runs it as usual, and sends the result back as MessagePack
 * (encode_result; release_item then frees that cell). The caller decodes the
 * result into the original cell, found through the input record, frees its
 * item, and hands the cell on (decode_result) as a local worker would have;
 * an item that came back with nothing (its worker crashed) keeps a NULL
 * result, which pm_viter_next turns into an error value with its code. */

static int encode_item(void *ctx, const void *in, unsigned char **buf, size_t *len)
{
    (void)ctx;
    cell *c;
    memcpy(&c, in, sizeof c);
    return pm__item_encode(c->item, c->index, buf, len);
}

static int decode_item(void *ctx, const unsigned char *buf, size_t len, void *in)
{
    (void)ctx;
    cell *c = calloc(1, sizeof *c);
    memcpy(in, &c, sizeof c); /* release_item frees it, whatever happens */
    return c ? pm__item_decode(buf, len, &c->item, &c->index) : PM_ENOMEM;
}

static void release_item(void *ctx, void *in)
{
    (void)ctx;
    cell *c;
    memcpy(&c, in, sizeof c);
    if (c) {
        pm_value_free(c->item);
        pm_value_free(c->result);
        free(c);
    }
}

static int encode_result(void *ctx, void *out, unsigned char **buf, size_t *len)
{
    (void)ctx;
    cell *c;
    memcpy(&c, out, sizeof c);
    int rc = pm_value_encode(c->result, buf, len);
    pm_value_free(c->result);
    c->result = NULL;
    return rc == PM_OK ? 0 : PM_ENOMEM;
}

static int decode_result(void *ctx, const void *in, const unsigned char *buf, size_t len,
                         void *out)
{
    (void)ctx;
    cell *c;
    size_t used;
    memcpy(&c, in, sizeof c);
    int rc = 0;
    if (!buf) /* it ended without a result: pm_viter_next makes one from its code */
        rc = PM_EINVAL;
    else if (pm_value_decode(buf, len, &c->result, &used) != PM_OK)
        c->result = pm_value_error(c->index, rc = PM_EINVAL, "the result did not decode");
    pm_value_free(c->item);
    c->item = NULL;
    memcpy(out, &c, sizeof c);
    return rc;
}

static const pm__codec ship_codec = {.encode = encode_result, .decode = decode_result,
                                    .encode_in = encode_item, .decode_in = decode_item,
                                    .release_in = release_item};

pm_viter *pm_vimap(pm_vfn fn, void *user, pm_vsource_fn next, void *src, const pm_vopts *opts)
{
    static const pm_vopts defaults;
    const pm_vopts *o = opts ? opts : &defaults;
    pm_viter *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    v->live.next = v->live.prev = &v->live;
    v->fn = fn;
    v->user = user;
    v->next = next;
    v->src = src;
    int rc = (!fn || !next) ? PM_EINVAL : pm__vspec_init(&v->spec, o);
    const pm__exec_methods *m = pm__opts_methods(&o->base);
    int ships = PM__EXEC_HAS(m, 5, ships); /* cells travel encoded: see above */
    if (rc == PM_OK && (rc = pm__mutex_init(&v->lock)) == PM_OK)
        v->has_lock = 1;
    if (rc == PM_OK) {
        v->it = pm__imap_ex(run, v, feed, v, sizeof(cell *), sizeof(cell *), &o->base,
                            ships ? &ship_codec : NULL);
        if (!v->it) {
            pm__mutex_destroy(&v->lock);
            free(v);
            return NULL;
        }
    }
    if (rc != PM_OK) {
        v->ended = 1;
        v->final = rc;
        /* MPI: the other ranks make this call too; an empty stream with bad
         * arguments tells them the status (see pm__imap_ex). */
        if (pm__methods_spmd(m))
            v->it = pm__imap_ex(NULL, NULL, NULL, NULL, 0, 0, &o->base, NULL);
    }
    return v;
}

/* The failing item's error value in PM_RAISE mode: still on the live list,
 * since its record was never handed out. */
static pm_value *take_error(pm_viter *v, size_t index, int code)
{
    pm_value *err = NULL;
    pm__mutex_lock(&v->lock);
    for (cell *c = v->live.next; c != &v->live; c = c->next)
        if (c->index == index) {
            err = c->result;
            c->result = NULL;
            break;
        }
    pm__mutex_unlock(&v->lock);
    return err ? err : pm_value_error(index, code, "");
}

int pm_viter_next(pm_viter *v, pm_value **out, size_t *index)
{
    if (out)
        *out = NULL;
    if (!v || !out)
        return PM_EINVAL;
    if (!v->ended) {
        cell *c = NULL;
        size_t i = 0;
        int code = 0;
        int r = pm_iter_next(v->it, &c, &i, &code);
        if (r == 1) {
            unlink_cell(v, c);
            pm_value *res = c->result;
            free(c);
            if (!res && code)
                res = pm__lost_result(i, code); /* a worker process crashed or timed out */
            if (res) {
                v->last_code = code;
                *out = res;
                if (index)
                    *index = i;
                return 1;
            }
            r = PM_ENOMEM; /* not even its error value could be made */
        }
        v->ended = 1;
        v->final = r;
        if (r == PM_EITEM) {
            v->error_index = i;
            v->error = take_error(v, i, code);
        }
    }
    if (v->final == PM_EITEM) {
        *out = pm_value_clone(v->error);
        if (index)
            *index = v->error_index;
    }
    return v->final;
}

int pm_viter_report(pm_viter *v, pm_report *report)
{
    if (!v || !report)
        return PM_EINVAL;
    if (v->it) {
        int rc = pm_iter_report(v->it, report);
        if (rc == PM_OK && v->ended && v->final < 0)
            report->status = v->final;
        return rc;
    }
    memset(report, 0, sizeof *report);
    report->first_error_index = SIZE_MAX;
    report->status = v->final;
    return PM_OK;
}

int pm_viter_free(pm_viter *v)
{
    if (!v)
        return PM_OK;
    int rc = pm_iter_free(v->it); /* joins every thread: nobody touches a cell now */
    if (v->ended && v->final < 0)
        rc = v->final;
    for (cell *c = v->live.next, *next; c != &v->live; c = next) {
        next = c->next;
        pm_value_free(c->item);
        pm_value_free(c->result);
        free(c);
    }
    pm_value_free(v->error);
    if (v->has_lock)
        pm__mutex_destroy(&v->lock);
    free(v);
    return rc;
}

int pm_viter_source(void *viter, pm_value **item)
{
    pm_viter *v = viter;
    for (;;) {
        int r = pm_viter_next(v, item, NULL);
        if (r == 1 && v->last_code != 0) {
            pm_value_free(*item); /* failed upstream (PM_RETURN there): skipped */
            *item = NULL;
            continue;
        }
        if (r != 1 && item) {
            pm_value_free(*item); /* PM_EITEM's copy: the status says it all */
            *item = NULL;
        }
        return r;
    }
}
