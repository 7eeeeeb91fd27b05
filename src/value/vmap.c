/*
 * vmap.c - pm_vmap: the value map, a thin layer over pm_map.
 *
 * Design: no copy of the items and no per-item bookkeeping beyond the call
 * itself. A list is an array of pm_value pointers, so pm_map gets that array
 * as its input records (one pointer each) and the result list's zeroed array
 * as its output records; an item's index is its record's offset from the
 * array's start. Each record runs pm__vcall_run (call.c), which returns the
 * item's result or its error value, so the slot of every item that ran is
 * filled whatever happened, and the ones that never ran (PM_RAISE stopped the
 * map) stay NULL. What the slots hold then decides the outcome:
 *  - PM_OK: the list is the result, after one pass that checks every slot
 *    (an error value that could not be allocated leaves a NULL: PM_ENOMEM)
 *    and sets the list's depth;
 *  - PM_EITEM: the error value at the report's first failing index is kept
 *    and given back alone, the rest is freed;
 *  - anything else: everything is freed.
 *
 * Executors whose items run in other processes (methods' `ships`: processes,
 * MPI): a pointer to a value made there means nothing in the caller. Records
 * then carry the item's index beside its pointer, and the map runs with a
 * codec (pm__codec) that encodes and frees the worker's result and decodes
 * it into the caller's slot, and encodes items for workers that lack them
 * (MPI ranks; forked workers already have the list). The executor uses what
 * it needs; this layer never asks which one runs. Items that crashed or timed
 * out their worker have no result: they get an error value here.
 */
#include "value_internal.h"

#include "../core/internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct vmap_ctx {
    pm_vfn fn;
    void *user;
    pm__vspec spec;
    pm_value *const *base;   /* items' array: index = record - base */
    int indexed;             /* records are vrec (MPI), not pointers into base */
} vmap_ctx;

/* MPI: items travel to other ranks, where a record's address says nothing
 * about its index; so each record carries its index. */
typedef struct vrec {
    pm_value *v;
    size_t index;
} vrec;

static int run_record(void *user, const void *in, void *out)
{
    const vmap_ctx *c = user;
    pm_value *item = c->indexed ? ((const vrec *)in)->v : *(pm_value *const *)in;
    size_t index = c->indexed ? ((const vrec *)in)->index
                              : (size_t)((pm_value *const *)in - c->base);
    int code;
    pm_value *r = pm__vcall_run(c->fn, c->user, &c->spec, item, index, &code);
    if (r && r->depth >= PM_VALUE_MAX_DEPTH) {
        /* It could not sit in the result list without breaking the depth
         * limit every value keeps. */
        pm_value_free(r);
        code = PM_EINVAL;
        r = pm_value_error(index, code, "the result nests deeper than PM_VALUE_MAX_DEPTH");
    }
    *(pm_value **)out = r;
    return code;
}

static int encode_result(void *ctx, void *out, unsigned char **buf, size_t *len)
{
    (void)ctx;
    pm_value **slot = out;
    int rc = pm_value_encode(*slot, buf, len);
    pm_value_free(*slot);
    *slot = NULL;
    return rc == PM_OK ? 0 : PM_ENOMEM;
}

static int decode_result(void *ctx, const void *in, const unsigned char *buf, size_t len,
                         void *out)
{
    (void)ctx;
    (void)in;
    size_t used;
    if (!buf)
        return PM_EINVAL; /* the slot stays NULL: fill_crashed gives it an error value */
    return pm_value_decode(buf, len, (pm_value **)out, &used) == PM_OK ? 0 : PM_EINVAL;
}

/* Where the executor needs it (MPI ranks, which never saw the list): an item
 * as its index and its MessagePack (pm__item_encode). */
static int encode_item(void *ctx, const void *in, unsigned char **buf, size_t *len)
{
    (void)ctx;
    const vrec *r = in;
    return pm__item_encode(r->v, r->index, buf, len);
}

static int decode_item(void *ctx, const unsigned char *buf, size_t len, void *in)
{
    (void)ctx;
    vrec *r = in;
    return pm__item_decode(buf, len, &r->v, &r->index);
}

static void release_item(void *ctx, void *in)
{
    (void)ctx;
    vrec *r = in;
    pm_value_free(r->v);
    r->v = NULL;
}

static const pm__codec ship_codec = {.encode = encode_result, .decode = decode_result,
                                    .encode_in = encode_item, .decode_in = decode_item,
                                    .release_in = release_item};

/* An item that killed its worker process has no result value; make one. */
static void fill_crashed(pm_value *list, const int *codes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!list->u.l.v[i] && codes[i])
            list->u.l.v[i] = pm__lost_result(i, codes[i]);
}

/* Free every slot and the list. */
static void drop(pm_value *list, size_t n)
{
    list->u.l.len = n;
    pm_value_free(list);
}

/* MPI, ranks other than 0: serve rank 0's call; no results here. `items`
 * is not read (any value, NULL too). */
static int follow(pm_vfn fn, void *user, const pm_vopts *o, pm_report *report)
{
    vmap_ctx c = {.fn = fn, .user = user, .indexed = 1};
    vrec none;
    int bad = !fn || pm__vspec_init(&c.spec, o) != PM_OK;
    /* Bad arguments here still take part (pm__map_ex), or rank 0 would wait. */
    int rc = pm__map_ex(bad ? NULL : run_record, &c, &none, sizeof none, &none,
                        sizeof(pm_value *), 0, &o->base, report, &ship_codec);
    if (bad)
        rc = PM_EINVAL;
    report->status = rc;
    return rc;
}

int pm_vmap(pm_vfn fn, void *user, const pm_value *items, const pm_vopts *opts,
            pm_value **results)
{
    static const pm_vopts defaults;
    const pm_vopts *o = opts ? opts : &defaults;
    pm_report rep = {.first_error_index = SIZE_MAX};
    pm_report *report = o->report ? o->report : &rep;
    vmap_ctx c = {.fn = fn, .user = user};
    pm_value *list = NULL;
    int rc = PM_OK;

    const pm__exec_methods *m = pm__opts_methods(&o->base);
    if (!results) {
        if (pm__methods_spmd(m)) /* the other processes wait: see below */
            pm__map_ex(NULL, NULL, NULL, 0, NULL, 0, 0, &o->base, NULL, &ship_codec);
        return PM_EINVAL;
    }
    *results = NULL;
    memset(report, 0, sizeof *report);
    report->first_error_index = SIZE_MAX;
    if (pm__methods_follows(m))
        return follow(fn, user, o, report);
    if (!fn || pm_value_type(items) != PM_T_LIST || pm__vspec_init(&c.spec, o) != PM_OK)
        rc = PM_EINVAL;
    else if (!(list = pm_value_list()))
        rc = PM_ENOMEM;
    if (rc != PM_OK) {
        if (pm__methods_spmd(m))
            /* The other processes wait for this call: a map of nothing with bad
             * arguments tells them PM_EINVAL (see pm__map_ex). */
            pm__map_ex(NULL, NULL, NULL, 0, NULL, 0, 0, &o->base, report, &ship_codec);
        report->status = rc;
        return rc;
    }

    size_t n = items->u.l.len;
    pm_value *dummy = NULL;
    if (n && !(list->u.l.v = calloc(n, sizeof *list->u.l.v))) {
        pm_value_free(list);
        report->status = PM_ENOMEM;
        return PM_ENOMEM;
    }
    list->u.l.cap = n;
    c.base = n ? items->u.l.v : &dummy;
    /* Where items run in other processes, records carry their index (a
     * pointer's offset means nothing there) and values travel as MessagePack
     * (the codec: results always, items where the workers lack them). */
    int remote = PM__EXEC_HAS(m, 5, ships);
    int *codes = NULL;
    pm_opts base = o->base;
    if (remote && n && !o->base.codes) {
        if (!(codes = calloc(n, sizeof *codes))) {
            pm_value_free(list);
            report->status = PM_ENOMEM;
            return PM_ENOMEM;
        }
        base.codes = codes;
    }
    vrec *recs = NULL;
    if (remote && !(recs = malloc((n ? n : 1) * sizeof *recs))) {
        free(codes);
        pm_value_free(list);
        report->status = PM_ENOMEM;
        return PM_ENOMEM;
    }
    for (size_t i = 0; remote && i < n; i++)
        recs[i] = (vrec){items->u.l.v[i], i};
    c.indexed = remote;
    rc = remote ? pm__map_ex(run_record, &c, recs, sizeof *recs, n ? list->u.l.v : &dummy,
                             sizeof(pm_value *), n, &base, report, &ship_codec)
                : pm__map_ex(run_record, &c, c.base, sizeof(pm_value *), n ? list->u.l.v : &dummy,
                             sizeof(pm_value *), n, &base, report, NULL);
    free(recs);
    if (remote && n)
        fill_crashed(list, base.codes, n);
    free(codes);

    if (rc == PM_OK) {
        for (size_t i = 0; i < n && rc == PM_OK; i++) {
            const pm_value *v = list->u.l.v[i];
            if (!v)
                rc = PM_ENOMEM;
            else if (v->depth + 1 > list->depth)
                list->depth = (uint16_t)(v->depth + 1);
        }
        list->u.l.len = n;
        if (rc == PM_OK)
            *results = list;
        else
            drop(list, n);
    } else if ((rc == PM_EITEM || rc == PM_ECRASH || rc == PM_ETIMEOUT) &&
               report->first_error_index < n) {
        size_t i = report->first_error_index;
        pm_value *err = list->u.l.v[i];
        list->u.l.v[i] = NULL;
        drop(list, n);
        if (!err)
            err = pm_value_error(i, report->first_error_code, "");
        if (!err)
            rc = PM_ENOMEM;
        *results = err;
    } else {
        drop(list, n);
    }
    report->status = rc;
    return rc;
}
