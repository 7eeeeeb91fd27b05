/*
 * json.c - values to JSON text: the format of tests/vectors/ (which C and
 * JavaScript tests both load), of debugging output, and what bindings most
 * easily exchange. The reader is json_parse.c.
 *
 * Compact output, keys in dict order. Types JSON lacks become tagged
 * objects, {"$bytes":"hex"} and {"$error":{...}}, which the reader turns back
 * into bytes and errors, so everything but NaN and the infinities (no JSON
 * form: written as null) survives a round trip. Doubles are written with the
 * fewest digits that read back to the same double (as Python's repr does),
 * always with a '.' or an exponent so they stay doubles.
 *
 * Locale: printf and strtod use the C locale's decimal point, which a
 * program may have changed (setlocale); numbers are converted between '.'
 * and the current decimal point (here and in json_parse.c), so JSON is the
 * same in every locale.
 */
#include "value_internal.h"

#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- writer */

typedef struct jbuf {
    char *p;
    size_t len, cap;
    int rc;
} jbuf;

static void put(jbuf *b, const char *s, size_t n)
{
    if (b->rc != PM_OK)
        return;
    if (n >= b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 64;
        while (n >= cap - b->len) {
            if (cap > SIZE_MAX / 2) {
                b->rc = PM_ENOMEM;
                return;
            }
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (!p) {
            b->rc = PM_ENOMEM;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(jbuf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void put_string(jbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    put(b, "\"", 1);
    size_t run = 0; /* bytes copied as they are, flushed before an escape */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            run++;
            continue;
        }
        put(b, s + i - run, run);
        run = 0;
        char esc[7] = {'\\', 0};
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
        }
        puts_(b, esc);
    }
    put(b, s + n - run, run);
    put(b, "\"", 1);
}

char pm__decimal_point(void)
{
    const struct lconv *lc = localeconv();
    return lc && lc->decimal_point && lc->decimal_point[0] ? lc->decimal_point[0] : '.';
}

/* d written with `prec` significant digits reads back as d. */
static int round_trips(double d, int prec, char *tmp, size_t size)
{
    snprintf(tmp, size, "%.*g", prec, d);
    return strtod(tmp, NULL) == d;
}

/* The shortest text that reads back to d, like Python's repr: the fewest
 * significant digits that round-trip (found by bisection: if p digits round
 * trip, so do p + 1, since p digits are p + 1 digits ending in 0), written
 * in fixed notation when the exponent is in [-4, 16), else with one. */
static void put_double(jbuf *b, double d)
{
    char tmp[48];
    if (!isfinite(d)) {
        puts_(b, "null");
        return;
    }
    int lo = 1, hi = 17;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (round_trips(d, mid, tmp, sizeof tmp))
            hi = mid;
        else
            lo = mid + 1;
    }
    snprintf(tmp, sizeof tmp, "%.*e", lo - 1, d);
    const char *e = strchr(tmp, 'e');
    int exp10 = e ? atoi(e + 1) : 0;
    snprintf(tmp, sizeof tmp, "%.*g", exp10 >= -4 && exp10 < 16 && exp10 + 1 > lo ? exp10 + 1 : lo,
             d);
    char dp = pm__decimal_point();
    int looks_double = 0;
    for (char *p = tmp; *p; p++) {
        if (*p == dp)
            *p = '.';
        if (*p == '.' || *p == 'e')
            looks_double = 1;
    }
    puts_(b, tmp);
    if (!looks_double)
        puts_(b, ".0");
}

static void write_value(jbuf *b, const pm_value *v)
{
    char tmp[128]; /* the longest: an error's head with 20-digit index, 11-digit code */
    switch (v->type) {
    case PM_T_NULL: puts_(b, "null"); break;
    case PM_T_BOOL: puts_(b, v->u.b ? "true" : "false"); break;
    case PM_T_INT:
        snprintf(tmp, sizeof tmp, "%" PRId64, v->u.i);
        puts_(b, tmp);
        break;
    case PM_T_DOUBLE: put_double(b, v->u.dbl); break;
    case PM_T_STR: put_string(b, v->u.s.p, v->u.s.len); break;
    case PM_T_BYTES:
        puts_(b, "{\"$bytes\":\"");
        for (size_t i = 0; i < v->u.s.len; i++) {
            snprintf(tmp, sizeof tmp, "%02x", (unsigned char)v->u.s.p[i]);
            put(b, tmp, 2);
        }
        puts_(b, "\"}");
        break;
    case PM_T_LIST:
        put(b, "[", 1);
        for (size_t i = 0; i < v->u.l.len; i++) {
            if (i)
                put(b, ",", 1);
            write_value(b, v->u.l.v[i]);
        }
        put(b, "]", 1);
        break;
    case PM_T_DICT:
        put(b, "{", 1);
        for (uint32_t i = 0; i < v->u.d.len; i++) {
            if (i)
                put(b, ",", 1);
            put_string(b, v->u.d.e[i].key, v->u.d.e[i].klen);
            put(b, ":", 1);
            write_value(b, v->u.d.e[i].val);
        }
        put(b, "}", 1);
        break;
    case PM_T_ERROR:
        snprintf(tmp, sizeof tmp, "{\"$error\":{\"index\":%" PRIu64 ",\"code\":%d,\"message\":",
                 (uint64_t)v->u.err.index, v->u.err.code);
        puts_(b, tmp);
        put_string(b, v->u.err.msg, v->u.err.len);
        puts_(b, "}}");
        break;
    default: b->rc = PM_EINVAL;
    }
}

int pm_value_to_json(const pm_value *v, char **out, size_t *len)
{
    if (out)
        *out = NULL;
    if (len)
        *len = 0;
    if (!v || !out)
        return PM_EINVAL;
    jbuf b = {0};
    write_value(&b, v);
    if (b.rc != PM_OK) {
        free(b.p);
        return b.rc;
    }
    *out = b.p;
    if (len)
        *len = b.len;
    return PM_OK;
}
