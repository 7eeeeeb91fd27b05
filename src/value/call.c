/*
 * call.c - one item's call: parmapper's star / kwstar table turned into a
 * pm_call, the value function run on it, and the getters functions use.
 *
 * Design: the call is built without copying any value. Positional arguments
 * point into the item (or the item's list) and opts.args; when there are no
 * fixed args, argv is the item's own array. Keywords are opts.kwargs, or the
 * item's kwvals, or, only when both are non-empty, a view dict that borrows
 * both (kwargs first, kwvals overriding in place, new keys after: Python's
 * dict.update). Small argument lists live in a buffer on the stack, so the
 * common rows of the table allocate nothing per item.
 *
 * An item that does not fit its row never reaches the function: it becomes
 * an error value with code PM_EINVAL and a message naming the row and what
 * was found, exactly like a failed item, so PM_RETURN and PM_RAISE treat it
 * the same way.
 *
 * pm__vcall_run is the unit of work every executor shares: it takes a value
 * and returns a value (the result or an error), nothing else. The processes
 * executor will call it in the worker after pm_value_decode and ship its
 * result back with pm_value_encode.
 */
#include "value_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SMALL_ARGS 8

typedef struct callbuf {
    pm_call call;
    const pm_value *one;                /* argv of a single positional */
    const pm_value *small[SMALL_ARGS];  /* argv when it fits */
    const pm_value **heap;              /* argv otherwise */
    int has_view;
    pm_value view;                      /* merged kwargs + kwvals */
} callbuf;

int pm__vspec_init(pm__vspec *spec, const pm_vopts *opts)
{
    static const pm_vopts defaults;
    const pm_vopts *o = opts ? opts : &defaults;
    if ((int)o->star < PM_STAR_NO || (int)o->star > PM_STAR_NONE)
        return PM_EINVAL;
    if (o->args && pm_value_type(o->args) != PM_T_LIST)
        return PM_EINVAL;
    if (o->kwargs && pm_value_type(o->kwargs) != PM_T_DICT)
        return PM_EINVAL;
    spec->star = o->star;
    spec->kwstar = o->kwstar != 0;
    spec->args = o->args && o->args->u.l.len ? o->args : NULL;
    spec->kwargs = o->kwargs && o->kwargs->u.d.len ? o->kwargs : NULL;
    return PM_OK;
}

static const char *star_name(pm_star s)
{
    return s == PM_STAR_YES ? "yes" : s == PM_STAR_NONE ? "none" : "no";
}

/* Split the item by its row: positional source and kwvals. 0, or -1 with a
 * message in why. */
static int split(const pm__vspec *s, const pm_value *item, const pm_value **pos,
                 const pm_value **kwvals, char *why, size_t whylen)
{
    pm_type t = pm_value_type(item);
    *pos = item;
    *kwvals = NULL;
    if (s->kwstar && s->star == PM_STAR_NONE) {
        if (t != PM_T_DICT) {
            snprintf(why, whylen, "star=none, kwstar=yes: the item must be a dict of "
                     "keywords, got %s", pm_type_name(t));
            return -1;
        }
        *kwvals = item;
        *pos = NULL;
    } else if (s->kwstar) {
        char got[64];
        if (t != PM_T_LIST)
            snprintf(got, sizeof got, "%s", pm_type_name(t));
        else if (item->u.l.len != 2)
            snprintf(got, sizeof got, "a list of length %zu", item->u.l.len);
        else if (pm_value_type(item->u.l.v[1]) != PM_T_DICT)
            snprintf(got, sizeof got, "a list whose second element is %s",
                     pm_type_name(pm_value_type(item->u.l.v[1])));
        else
            got[0] = '\0';
        if (got[0]) {
            snprintf(why, whylen, "star=%s, kwstar=yes: the item must be a 2-element list "
                     "[%s, kwvals] whose second element is a dict, got %s",
                     star_name(s->star), s->star == PM_STAR_YES ? "vals" : "val", got);
            return -1;
        }
        *pos = item->u.l.v[0];
        *kwvals = item->u.l.v[1];
    }
    if (s->star == PM_STAR_YES && pm_value_type(*pos) != PM_T_LIST) {
        snprintf(why, whylen, "star=yes: %s must be a list of positional arguments, got %s",
                 s->kwstar ? "the item's first element" : "the item",
                 pm_type_name(pm_value_type(*pos)));
        return -1;
    }
    return 0;
}

/* Fill cb->call from the item. PM_OK, PM_EINVAL (message in why), PM_ENOMEM. */
static int build(callbuf *cb, const pm__vspec *s, const pm_value *item, char *why,
                 size_t whylen)
{
    const pm_value *pos, *kwvals;
    if (split(s, item, &pos, &kwvals, why, whylen) != 0)
        return PM_EINVAL;

    const pm_value *const *src = NULL;
    size_t n = 0, nargs = s->args ? s->args->u.l.len : 0;
    if (s->star == PM_STAR_NO) {
        cb->one = pos;
        src = &cb->one;
        n = 1;
    } else if (s->star == PM_STAR_YES) {
        src = (const pm_value *const *)pos->u.l.v;
        n = pos->u.l.len;
    }
    if (n + nargs > INT_MAX) {
        snprintf(why, whylen, "too many positional arguments");
        return PM_EINVAL;
    }
    cb->call.argc = (int)(n + nargs);
    if (!nargs) {
        cb->call.argv = src;
    } else if (!n) {
        cb->call.argv = (const pm_value *const *)s->args->u.l.v;
    } else {
        const pm_value **argv = n + nargs <= SMALL_ARGS ? cb->small
                                : (cb->heap = malloc((n + nargs) * sizeof *argv));
        if (!argv)
            return PM_ENOMEM;
        memcpy(argv, src, n * sizeof *argv);
        memcpy(argv + n, s->args->u.l.v, nargs * sizeof *argv);
        cb->call.argv = argv;
    }

    if (!kwvals || !kwvals->u.d.len) {
        cb->call.kwargs = s->kwargs ? s->kwargs : &pm__empty_dict;
    } else if (!s->kwargs) {
        cb->call.kwargs = kwvals;
    } else {
        pm__dict_view_init(&cb->view);
        cb->has_view = 1;
        for (uint32_t i = 0; i < s->kwargs->u.d.len; i++)
            if (pm__dict_view_put(&cb->view, &s->kwargs->u.d.e[i]) != PM_OK)
                return PM_ENOMEM;
        for (uint32_t i = 0; i < kwvals->u.d.len; i++)
            if (pm__dict_view_put(&cb->view, &kwvals->u.d.e[i]) != PM_OK)
                return PM_ENOMEM;
        cb->call.kwargs = &cb->view;
    }
    return PM_OK;
}

pm_value *pm__vcall_run(pm_vfn fn, void *user, const pm__vspec *spec, const pm_value *item,
                        size_t index, int *code)
{
    callbuf cb;
    char why[200];
    cb.call.index = index;
    cb.call.argc = 0;
    cb.call.argv = NULL;
    cb.call.kwargs = &pm__empty_dict;
    cb.call.item = item;
    cb.call.pm__message = NULL;
    cb.heap = NULL;
    cb.has_view = 0;
    why[0] = '\0';

    pm_value *result = NULL;
    int rc = build(&cb, spec, item, why, sizeof why);
    if (rc == PM_OK) {
        rc = fn(user, &cb.call, &result);
        if (rc == 0 && !result) {
            rc = PM_ENOMEM;
            snprintf(why, sizeof why, "the function returned no value (out of memory?)");
        }
    } else if (rc == PM_ENOMEM) {
        snprintf(why, sizeof why, "out of memory building the call");
    }
    free(cb.heap);
    if (cb.has_view)
        pm__dict_view_release(&cb.view);
    *code = rc;
    if (rc != 0) {
        pm_value_free(result);
        const char *msg = cb.call.pm__message ? cb.call.pm__message : why;
        if (!msg[0]) {
            snprintf(why, sizeof why, "the function failed with code %d", rc);
            msg = why;
        }
        result = pm_value_error(index, rc, msg);
    }
    free(cb.call.pm__message);
    return result;
}

/* ---------------------------------------------------------- for functions */

int pm_call_vfail(pm_call *call, int code, const char *fmt, va_list ap)
{
    if (code == 0)
        code = 1;
    if (!call || !fmt)
        return code;
    va_list aq;
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, aq);
    va_end(aq);
    char *msg = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (msg) {
        vsnprintf(msg, (size_t)n + 1, fmt, ap);
        free(call->pm__message);
        call->pm__message = msg;
    }
    return code;
}

int pm_call_fail(pm_call *call, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    code = pm_call_vfail(call, code, fmt, ap);
    va_end(ap);
    return code;
}

const pm_value *pm_kw(const pm_call *call, const char *key)
{
    return call ? pm_dict_get(call->kwargs, key) : NULL;
}

const pm_value *pm_arg(const pm_call *call, int i)
{
    return call && i >= 0 && i < call->argc ? call->argv[i] : NULL;
}

/* The typed getters share one shape: look up, convert, or the default. */
static double as_double(const pm_value *v, double def)
{
    double d;
    return pm_value_get_double(v, &d) == PM_OK ? d : def;
}

static int64_t as_int(const pm_value *v, int64_t def)
{
    int64_t i;
    return pm_value_get_int(v, &i) == PM_OK ? i : def;
}

static int as_bool(const pm_value *v, int def)
{
    int b;
    return pm_value_get_bool(v, &b) == PM_OK ? b : def;
}

static const char *as_str(const pm_value *v, const char *def)
{
    const char *s;
    return pm_value_get_str(v, &s, NULL) == PM_OK ? s : def;
}

double pm_kw_double(const pm_call *c, const char *key, double def) { return as_double(pm_kw(c, key), def); }
int64_t pm_kw_int(const pm_call *c, const char *key, int64_t def) { return as_int(pm_kw(c, key), def); }
int pm_kw_bool(const pm_call *c, const char *key, int def) { return as_bool(pm_kw(c, key), def); }
const char *pm_kw_str(const pm_call *c, const char *key, const char *def) { return as_str(pm_kw(c, key), def); }
double pm_arg_double(const pm_call *c, int i, double def) { return as_double(pm_arg(c, i), def); }
int64_t pm_arg_int(const pm_call *c, int i, int64_t def) { return as_int(pm_arg(c, i), def); }
int pm_arg_bool(const pm_call *c, int i, int def) { return as_bool(pm_arg(c, i), def); }
const char *pm_arg_str(const pm_call *c, int i, const char *def) { return as_str(pm_arg(c, i), def); }

pm_value *pm__lost_result(size_t index, int code)
{
    const char *why = code == PM_ETIMEOUT ? "the item ran longer than timeout_s"
                    : code == PM_ECRASH   ? "the item crashed its worker process"
                                          : pm_strerror(code);
    return pm_value_error(index, code, why);
}
