/*
 * value.c - pm_value: constructors, typed accessors, clone, equality, free,
 * and the UTF-8 rules every string obeys.
 *
 * Design: a value is one small heap block (a 40-byte tagged union, layout in
 * value_internal.h); containers own their children through pointers. The
 * invariants promised in parmap_value.h are enforced here, at the only doors
 * through which values are built (constructors, push, set), so encoders and
 * the map never re-check them: strings are valid UTF-8 (checked once when
 * made), depth is capped (each value records its own depth, so a push checks
 * one number instead of walking the child), dict keys are unique (dict.c).
 * null, true and false are shared static constants: the commonest results
 * then cost no allocation and their constructors cannot fail. Accessors
 * report a wrong type as PM_EINVAL instead of trusting the caller, since
 * values often come from JSON or MessagePack written by someone else.
 */
#include "value_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static pm_value null_value = {.type = PM_T_NULL, .flags = PM__VF_STATIC};
static pm_value true_value = {.type = PM_T_BOOL, .flags = PM__VF_STATIC, .u.b = 1};
static pm_value false_value = {.type = PM_T_BOOL, .flags = PM__VF_STATIC, .u.b = 0};

/* ----------------------------------------------------------------- UTF-8 */

/* Length of the valid UTF-8 sequence at s[0..n), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t need;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 1;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        cp = c & 0x07;
    } else {
        return 0; /* continuation byte, 0xc0/0xc1 (overlong) or > U+10FFFF */
    }
    if (n - 1 < need)
        return 0;
    for (size_t k = 1; k <= need; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[k] & 0x3f);
    }
    if (need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
        return 0; /* overlong, or a UTF-16 surrogate */
    if (need == 3 && (cp < 0x10000 || cp > 0x10ffff))
        return 0;
    return need + 1;
}

int pm__utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = utf8_seq(s + i, n - i);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

/* A NUL-terminated copy of s with every invalid byte replaced by U+FFFD:
 * error messages are made from anything (file names, user input) and must
 * never fail to be made, yet must stay valid strings on the wire. */
static char *utf8_repair(const char *str, size_t n, size_t *out_len)
{
    const unsigned char *s = (const unsigned char *)str;
    if (n > (SIZE_MAX - 1) / 3)
        return NULL;
    char *out = malloc(3 * n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(s + i, n - i);
        if (k) {
            memcpy(o, s + i, k);
            o += k;
            i += k;
        } else {
            memcpy(o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    *o = '\0';
    *out_len = (size_t)(o - out);
    return out;
}

/* ---------------------------------------------------------- constructors */

pm_value *pm__value_new(pm_type t)
{
    pm_value *v = calloc(1, sizeof *v);
    if (v) {
        v->type = (uint8_t)t;
        v->depth = (t == PM_T_LIST || t == PM_T_DICT) ? 1 : 0;
    }
    return v;
}

pm_value *pm_value_null(void)
{
    return &null_value;
}

pm_value *pm_value_bool(int b)
{
    return b ? &true_value : &false_value;
}

pm_value *pm_value_int(int64_t i)
{
    pm_value *v = pm__value_new(PM_T_INT);
    if (v)
        v->u.i = i;
    return v;
}

pm_value *pm_value_double(double d)
{
    pm_value *v = pm__value_new(PM_T_DOUBLE);
    if (v)
        v->u.dbl = d;
    return v;
}

static pm_value *blob(pm_type t, const void *p, size_t len)
{
    if (len == SIZE_MAX || (!p && len))
        return NULL;
    pm_value *v = pm__value_new(t);
    char *copy = malloc(len + 1);
    if (!v || !copy) {
        free(v);
        free(copy);
        return NULL;
    }
    if (len)
        memcpy(copy, p, len);
    copy[len] = '\0';
    v->u.s.p = copy;
    v->u.s.len = len;
    return v;
}

pm_value *pm__str_trusted(const char *s, size_t len)
{
    return blob(PM_T_STR, s, len);
}

pm_value *pm_value_strn(const char *s, size_t len)
{
    if ((!s && len) || !pm__utf8_valid(s, len))
        return NULL;
    return blob(PM_T_STR, s ? s : "", len);
}

pm_value *pm_value_str(const char *s)
{
    return s ? pm_value_strn(s, strlen(s)) : NULL;
}

pm_value *pm_value_bytes(const void *p, size_t len)
{
    return blob(PM_T_BYTES, p ? p : "", len);
}

pm_value *pm_value_list(void)
{
    return pm__value_new(PM_T_LIST);
}

pm_value *pm_value_dict(void)
{
    return pm__value_new(PM_T_DICT);
}

pm_value *pm_value_error(size_t index, int code, const char *msg)
{
    return pm__error_n(index, code, msg ? msg : "", msg ? strlen(msg) : 0);
}

pm_value *pm__error_n(size_t index, int code, const char *msg, size_t msg_len)
{
    pm_value *v = pm__value_new(PM_T_ERROR);
    size_t len = 0;
    char *m = utf8_repair(msg, msg_len, &len);
    if (!v || !m) {
        free(v);
        free(m);
        return NULL;
    }
    v->u.err.msg = m;
    v->u.err.len = len;
    v->u.err.index = index;
    v->u.err.code = code;
    return v;
}

/* ------------------------------------------------------------ containers */

int pm_list_reserve(pm_value *list, size_t n)
{
    if (!list || list->type != PM_T_LIST || (list->flags & PM__VF_STATIC))
        return PM_EINVAL;
    if (n <= list->u.l.cap)
        return PM_OK;
    if (n > SIZE_MAX / sizeof(pm_value *))
        return PM_ENOMEM;
    pm_value **v = realloc(list->u.l.v, n * sizeof *v);
    if (!v)
        return PM_ENOMEM;
    list->u.l.v = v;
    list->u.l.cap = n;
    return PM_OK;
}

int pm_list_push(pm_value *list, pm_value *item)
{
    if (!item)
        return PM_ENOMEM;
    if (item == list)
        return PM_EINVAL; /* not freed: the caller still owns it as the list */
    int rc = PM_OK;
    if (!list || list->type != PM_T_LIST || (list->flags & PM__VF_STATIC) ||
        item->depth >= PM_VALUE_MAX_DEPTH)
        rc = PM_EINVAL;
    else if (list->u.l.len == list->u.l.cap)
        rc = pm_list_reserve(list, list->u.l.cap ? 2 * list->u.l.cap : 4);
    if (rc != PM_OK) {
        pm_value_free(item);
        return rc;
    }
    list->u.l.v[list->u.l.len++] = item;
    if (item->depth + 1 > list->depth)
        list->depth = (uint16_t)(item->depth + 1);
    return PM_OK;
}

int pm_dict_setn(pm_value *dict, const char *key, size_t key_len, pm_value *value)
{
    if (!value)
        return PM_ENOMEM;
    if (value == dict)
        return PM_EINVAL; /* not freed: the caller still owns it as the dict */
    if (!dict || dict->type != PM_T_DICT || (dict->flags & (PM__VF_STATIC | PM__VF_VIEW)) ||
        !key || !pm__utf8_valid(key, key_len)) {
        pm_value_free(value);
        return PM_EINVAL;
    }
    return pm__dict_put(dict, key, key_len, value, 0);
}

int pm_dict_set(pm_value *dict, const char *key, pm_value *value)
{
    return pm_dict_setn(dict, key, key ? strlen(key) : 0, value);
}

/* ------------------------------------------------------------- accessors */

pm_type pm_value_type(const pm_value *v)
{
    return v ? (pm_type)v->type : PM_T_NULL;
}

const char *pm_type_name(pm_type t)
{
    static const char *const names[] = {"null", "bool", "int",  "double", "str",
                                        "bytes", "list", "dict", "error"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

int pm_value_get_bool(const pm_value *v, int *out)
{
    if (!v || v->type != PM_T_BOOL || !out)
        return PM_EINVAL;
    *out = v->u.b;
    return PM_OK;
}

int pm_value_get_int(const pm_value *v, int64_t *out)
{
    if (!v || v->type != PM_T_INT || !out)
        return PM_EINVAL;
    *out = v->u.i;
    return PM_OK;
}

int pm_value_get_double(const pm_value *v, double *out)
{
    if (!v || !out || (v->type != PM_T_DOUBLE && v->type != PM_T_INT))
        return PM_EINVAL;
    *out = v->type == PM_T_INT ? (double)v->u.i : v->u.dbl;
    return PM_OK;
}

static int get_blob(const pm_value *v, pm_type t, const void **out, size_t *len)
{
    if (!v || v->type != t || !out)
        return PM_EINVAL;
    *out = v->u.s.p;
    if (len)
        *len = v->u.s.len;
    return PM_OK;
}

int pm_value_get_str(const pm_value *v, const char **out, size_t *len)
{
    const void *p = NULL;
    if (!out || get_blob(v, PM_T_STR, &p, len) != PM_OK)
        return PM_EINVAL;
    *out = p;
    return PM_OK;
}

int pm_value_get_bytes(const pm_value *v, const void **out, size_t *len)
{
    return get_blob(v, PM_T_BYTES, out, len);
}

int pm_value_get_error(const pm_value *v, size_t *index, int *code, const char **message)
{
    if (!v || v->type != PM_T_ERROR)
        return PM_EINVAL;
    if (index)
        *index = v->u.err.index;
    if (code)
        *code = v->u.err.code;
    if (message)
        *message = v->u.err.msg;
    return PM_OK;
}

size_t pm_value_len(const pm_value *v)
{
    switch (pm_value_type(v)) {
    case PM_T_STR:
    case PM_T_BYTES: return v->u.s.len;
    case PM_T_LIST: return v->u.l.len;
    case PM_T_DICT: return v->u.d.len;
    default: return 0;
    }
}

const pm_value *pm_list_get(const pm_value *list, size_t i)
{
    if (!list || list->type != PM_T_LIST || i >= list->u.l.len)
        return NULL;
    return list->u.l.v[i];
}

/* ----------------------------------------------- free, clone, equality */

void pm_value_free(pm_value *v)
{
    if (!v || (v->flags & PM__VF_STATIC))
        return;
    switch (v->type) {
    case PM_T_STR:
    case PM_T_BYTES: free(v->u.s.p); break;
    case PM_T_ERROR: free(v->u.err.msg); break;
    case PM_T_LIST:
        for (size_t i = 0; i < v->u.l.len; i++)
            pm_value_free(v->u.l.v[i]);
        free(v->u.l.v);
        break;
    case PM_T_DICT: pm__dict_clear(v); break;
    default: break;
    }
    free(v);
}

pm_value *pm_value_clone(const pm_value *v)
{
    if (!v)
        return NULL;
    if (v->flags & PM__VF_STATIC && v->type != PM_T_DICT)
        return (pm_value *)v; /* shared constants are never modified or freed */
    pm_value *c;
    switch (v->type) {
    case PM_T_STR:
    case PM_T_BYTES: return blob((pm_type)v->type, v->u.s.p, v->u.s.len);
    case PM_T_ERROR:
        if (!(c = pm__value_new(PM_T_ERROR)) || !(c->u.err.msg = malloc(v->u.err.len + 1))) {
            free(c);
            return NULL;
        }
        memcpy(c->u.err.msg, v->u.err.msg, v->u.err.len + 1);
        c->u.err.len = v->u.err.len;
        c->u.err.index = v->u.err.index;
        c->u.err.code = v->u.err.code;
        return c;
    case PM_T_LIST:
        if (!(c = pm_value_list()) || pm_list_reserve(c, v->u.l.len) != PM_OK) {
            pm_value_free(c);
            return NULL;
        }
        for (size_t i = 0; i < v->u.l.len; i++)
            if (pm_list_push(c, pm_value_clone(v->u.l.v[i])) != PM_OK) {
                pm_value_free(c);
                return NULL;
            }
        return c;
    case PM_T_DICT:
        if (!(c = pm_value_dict()) || pm__dict_copy(c, v) != PM_OK) {
            pm_value_free(c);
            return NULL;
        }
        return c;
    default:
        if ((c = pm__value_new((pm_type)v->type)) != NULL)
            c->u = v->u;
        return c;
    }
}

/* Object.is for doubles: NaN is NaN, and the sign of zero counts. */
static int same_double(double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return a == b && signbit(a) == signbit(b);
}

int pm_value_equal(const pm_value *a, const pm_value *b)
{
    if (!a || !b)
        return a == b;
    if (a == b)
        return 1;
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case PM_T_NULL: return 1;
    case PM_T_BOOL: return !a->u.b == !b->u.b;
    case PM_T_INT: return a->u.i == b->u.i;
    case PM_T_DOUBLE: return same_double(a->u.dbl, b->u.dbl);
    case PM_T_STR:
    case PM_T_BYTES:
        return a->u.s.len == b->u.s.len && memcmp(a->u.s.p, b->u.s.p, a->u.s.len) == 0;
    case PM_T_ERROR:
        return a->u.err.index == b->u.err.index && a->u.err.code == b->u.err.code &&
               a->u.err.len == b->u.err.len &&
               memcmp(a->u.err.msg, b->u.err.msg, a->u.err.len) == 0;
    case PM_T_LIST:
        if (a->u.l.len != b->u.l.len)
            return 0;
        for (size_t i = 0; i < a->u.l.len; i++)
            if (!pm_value_equal(a->u.l.v[i], b->u.l.v[i]))
                return 0;
        return 1;
    case PM_T_DICT: return pm__dict_equal(a, b);
    default: return 0;
    }
}
