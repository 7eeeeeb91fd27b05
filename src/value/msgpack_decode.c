/*
 * msgpack_decode.c - the MessagePack decoder (pm_value_decode). It reads
 * bytes from other processes and, through the bindings, from anyone, so it
 * is strict and bounded:
 *  - every length is checked against the bytes left *before* anything is
 *    allocated (a container of n elements needs at least n bytes, a map 2n),
 *    so 5 bytes claiming a 4 GB array fail at once instead of allocating;
 *  - nesting is capped at PM_VALUE_MAX_DEPTH, so recursion is bounded;
 *  - str must be valid UTF-8 and map keys must be str, unique: the decoded
 *    value then obeys the same invariants as one built with the
 *    constructors, and encodes back without surprises;
 *  - the only extension type is parmap's error value (PM_MSGPACK_EXT_ERROR,
 *    payload [index, code, message]); others, timestamps included, are
 *    rejected rather than silently turned into something else.
 * What other encoders may legitimately send is accepted: any integer width,
 * float32 (widened). uint64 above INT64_MAX decodes to the nearest double
 * (as big JSON integers do): integer values are int64.
 */
#include "value_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct rd {
    const unsigned char *p, *end, *start;
    pm_parse_error *err;
} rd;

static int fail(rd *r, const unsigned char *at, const char *reason)
{
    if (r->err) {
        r->err->offset = (size_t)(at - r->start);
        r->err->reason = reason;
    }
    return PM_EINVAL;
}

/* Read an n-byte big-endian number (n <= 8). */
static int take(rd *r, int n, uint64_t *x)
{
    if (r->end - r->p < n)
        return fail(r, r->p, "truncated input");
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | r->p[i];
    r->p += n;
    *x = v;
    return PM_OK;
}

/* n bytes of payload: *at points at them, and they are skipped. */
static int take_bytes(rd *r, uint64_t n, const unsigned char **at)
{
    if ((uint64_t)(r->end - r->p) < n)
        return fail(r, r->p, "truncated input");
    *at = r->p;
    r->p += n;
    return PM_OK;
}

/* The str at the reader (header and bytes), checked to be UTF-8. Returns
 * PM_OK, or PM_EINVAL when it is not a str at all (*is_str 0) or bad. */
static int read_str(rd *r, const char **s, size_t *n, int *is_str)
{
    const unsigned char *at = r->p;
    uint64_t len;
    int rc;
    *is_str = 0;
    if (r->p >= r->end)
        return fail(r, r->p, "truncated input");
    unsigned c = *r->p++;
    if (c >= 0xa0 && c <= 0xbf)
        len = c & 0x1f, rc = PM_OK;
    else if (c >= 0xd9 && c <= 0xdb)
        rc = take(r, 1 << (c - 0xd9), &len);
    else
        return r->p = at, PM_EINVAL;
    *is_str = 1;
    const unsigned char *p = NULL;
    if (rc != PM_OK || (rc = take_bytes(r, len, &p)) != PM_OK)
        return rc;
    if (!pm__utf8_valid((const char *)p, (size_t)len))
        return fail(r, at, "invalid UTF-8 in a string");
    *s = (const char *)p;
    *n = (size_t)len;
    return PM_OK;
}

static int decode(rd *r, int depth, pm_value **out);

static int decode_list(rd *r, int depth, uint64_t n, const unsigned char *at, pm_value **out)
{
    if (depth >= PM_VALUE_MAX_DEPTH)
        return fail(r, at, "nesting deeper than 64");
    if (n > (uint64_t)(r->end - r->p))
        return fail(r, at, "array length exceeds the input");
    pm_value *l = pm_value_list();
    if (!l || pm_list_reserve(l, (size_t)n) != PM_OK) {
        pm_value_free(l);
        return PM_ENOMEM;
    }
    for (uint64_t i = 0; i < n; i++) {
        pm_value *item = NULL;
        int rc = decode(r, depth + 1, &item);
        if (rc == PM_OK)
            rc = pm_list_push(l, item);
        if (rc != PM_OK) {
            pm_value_free(l);
            return rc;
        }
    }
    *out = l;
    return PM_OK;
}

static int decode_map(rd *r, int depth, uint64_t n, const unsigned char *at, pm_value **out)
{
    if (depth >= PM_VALUE_MAX_DEPTH)
        return fail(r, at, "nesting deeper than 64");
    if (n > (uint64_t)(r->end - r->p) / 2)
        return fail(r, at, "map length exceeds the input");
    pm_value *d = pm_value_dict();
    if (!d)
        return PM_ENOMEM;
    for (uint64_t i = 0; i < n; i++) {
        const unsigned char *kat = r->p;
        const char *key = NULL;
        size_t klen = 0;
        int is_str, rc = read_str(r, &key, &klen, &is_str);
        pm_value *val = NULL;
        if (rc != PM_OK && !is_str)
            rc = fail(r, kat, "map key is not a string");
        if (rc == PM_OK)
            rc = decode(r, depth + 1, &val);
        if (rc == PM_OK && (rc = pm__dict_put(d, key, klen, val, 1)) == PM_EINVAL)
            rc = fail(r, kat, "duplicate map key");
        if (rc != PM_OK) {
            pm_value_free(d);
            return rc;
        }
    }
    *out = d;
    return PM_OK;
}

/* The ext payload of an error value: exactly [index, code, message] with
 * index an unsigned integer (any width, up to SIZE_MAX), code an int32 and
 * message a str. Read by hand rather than with decode(), which would turn an
 * index above INT64_MAX into a double. */
static int decode_error(rd *r, const unsigned char *p, size_t n, const unsigned char *at,
                        pm_value **out)
{
    rd sub = {p, p + n, r->start, NULL};
    uint64_t index = 0;
    int64_t code = 0;
    pm_value *cv = NULL;
    const char *msg = NULL;
    size_t len = 0;
    int is_str, ok = sub.p < sub.end && *sub.p++ == 0x93 && sub.p < sub.end;
    if (ok) {
        unsigned c = *sub.p++;
        if (c < 0x80)
            index = c;
        else
            ok = c >= 0xcc && c <= 0xcf && take(&sub, 1 << (c - 0xcc), &index) == PM_OK;
    }
    ok = ok && index <= SIZE_MAX;
    if (ok) {
        int rc = decode(&sub, PM_VALUE_MAX_DEPTH, &cv); /* a scalar: no container fits */
        if (rc == PM_ENOMEM)
            return rc;
        ok = rc == PM_OK && pm_value_get_int(cv, &code) == PM_OK && code >= INT32_MIN &&
             code <= INT32_MAX;
        pm_value_free(cv);
    }
    ok = ok && read_str(&sub, &msg, &len, &is_str) == PM_OK && sub.p == sub.end;
    if (!ok)
        return fail(r, at, "malformed error value");
    *out = pm__error_n((size_t)index, (int)code, msg, len);
    return *out ? PM_OK : PM_ENOMEM;
}

static int decode_ext(rd *r, unsigned c, const unsigned char *at, pm_value **out)
{
    uint64_t n, type;
    int rc;
    if (c >= 0xd4 && c <= 0xd8)
        n = (uint64_t)1 << (c - 0xd4), rc = PM_OK;
    else
        rc = take(r, 1 << (c - 0xc7), &n);
    const unsigned char *p = NULL;
    if (rc != PM_OK || (rc = take(r, 1, &type)) != PM_OK || (rc = take_bytes(r, n, &p)) != PM_OK)
        return rc;
    if (type != PM_MSGPACK_EXT_ERROR)
        return fail(r, at, "unsupported extension type");
    return decode_error(r, p, (size_t)n, at, out);
}

static pm_value *from_int(uint64_t u, int is_signed, int bytes)
{
    if (is_signed) {
        int shift = 64 - 8 * bytes; /* sign-extend from `bytes` bytes */
        return pm_value_int((int64_t)(u << shift) >> shift);
    }
    return u > INT64_MAX ? pm_value_double((double)u) : pm_value_int((int64_t)u);
}

static int decode(rd *r, int depth, pm_value **out)
{
    const unsigned char *at = r->p;
    uint64_t x = 0;
    int rc;
    *out = NULL;
    if (r->p >= r->end)
        return fail(r, at, "truncated input");
    unsigned c = *r->p;
    if ((c >= 0xa0 && c <= 0xbf) || (c >= 0xd9 && c <= 0xdb)) {
        const char *s = NULL;
        size_t n = 0;
        int is_str;
        if ((rc = read_str(r, &s, &n, &is_str)) != PM_OK)
            return rc;
        return (*out = pm__str_trusted(s, n)) ? PM_OK : PM_ENOMEM;
    }
    r->p++;
    if (c < 0x80)
        *out = pm_value_int((int64_t)c);
    else if (c >= 0xe0)
        *out = pm_value_int((int64_t)c - 256);
    else if (c >= 0x90 && c <= 0x9f)
        return decode_list(r, depth, c & 0x0f, at, out);
    else if (c >= 0x80 && c <= 0x8f)
        return decode_map(r, depth, c & 0x0f, at, out);
    else
        switch (c) {
        case 0xc0: *out = pm_value_null(); break;
        case 0xc1: return fail(r, at, "reserved byte 0xc1");
        case 0xc2: *out = pm_value_bool(0); break;
        case 0xc3: *out = pm_value_bool(1); break;
        case 0xc4:
        case 0xc5:
        case 0xc6: {
            const unsigned char *p = NULL;
            if ((rc = take(r, 1 << (c - 0xc4), &x)) != PM_OK ||
                (rc = take_bytes(r, x, &p)) != PM_OK)
                return rc;
            *out = pm_value_bytes(p, (size_t)x);
            break;
        }
        case 0xc7:
        case 0xc8:
        case 0xc9:
        case 0xd4:
        case 0xd5:
        case 0xd6:
        case 0xd7:
        case 0xd8: return decode_ext(r, c, at, out);
        case 0xca:
        case 0xcb:
            if ((rc = take(r, c == 0xca ? 4 : 8, &x)) != PM_OK)
                return rc;
            if (c == 0xca) {
                uint32_t bits = (uint32_t)x;
                float f;
                memcpy(&f, &bits, 4);
                *out = pm_value_double((double)f);
            } else {
                double d;
                memcpy(&d, &x, 8);
                *out = pm_value_double(d);
            }
            break;
        case 0xcc:
        case 0xcd:
        case 0xce:
        case 0xcf:
        case 0xd0:
        case 0xd1:
        case 0xd2:
        case 0xd3: {
            int bytes = 1 << ((c - 0xcc) & 3);
            if ((rc = take(r, bytes, &x)) != PM_OK)
                return rc;
            *out = from_int(x, c >= 0xd0, bytes);
            break;
        }
        case 0xdc:
        case 0xdd:
            if ((rc = take(r, c == 0xdc ? 2 : 4, &x)) != PM_OK)
                return rc;
            return decode_list(r, depth, x, at, out);
        case 0xde:
        case 0xdf:
            if ((rc = take(r, c == 0xde ? 2 : 4, &x)) != PM_OK)
                return rc;
            return decode_map(r, depth, x, at, out);
        default: return fail(r, at, "unknown type byte"); /* unreachable: all 256 are covered */
        }
    return *out ? PM_OK : PM_ENOMEM;
}

int pm_value_decode_ex(const unsigned char *buf, size_t len, pm_value **out, size_t *used,
                       pm_parse_error *err)
{
    if (err) {
        err->offset = 0;
        err->reason = NULL;
    }
    if (used)
        *used = 0;
    if (!out)
        return PM_EINVAL;
    *out = NULL;
    if (!buf && len)
        return PM_EINVAL;
    static const unsigned char none[1];
    rd r = {buf ? buf : none, (buf ? buf : none) + len, buf ? buf : none, err};
    pm_value *v = NULL;
    int rc = decode(&r, 0, &v);
    if (rc == PM_OK && !used && r.p != r.end)
        rc = fail(&r, r.p, "trailing bytes after the value");
    if (rc != PM_OK) {
        pm_value_free(v);
        if (rc == PM_ENOMEM && err)
            err->reason = "out of memory";
        return rc;
    }
    if (used)
        *used = (size_t)(r.p - r.start);
    *out = v;
    return PM_OK;
}

int pm_value_decode(const unsigned char *buf, size_t len, pm_value **out, size_t *used)
{
    return pm_value_decode_ex(buf, len, out, used, NULL);
}
