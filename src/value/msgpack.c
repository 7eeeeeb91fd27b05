/*
 * msgpack.c - the MessagePack codec: how values cross process (and later
 * machine) boundaries.
 *
 * Written here rather than taken from a library on purpose: the core must
 * build unchanged for WebAssembly (Emscripten) and WASI with nothing but a C
 * library, and the subset we need is small. It is also strict, because the
 * decoder reads bytes from other processes and, through the bindings, from
 * anyone:
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
 * The encoder always writes the smallest form, doubles as float64, so equal
 * values built in the same order encode to the same bytes. uint64 above
 * INT64_MAX decodes to a double (as big JSON integers do): values are int64.
 */
#include "value_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- encode */

typedef struct wbuf {
    unsigned char *p;
    size_t len, cap;
    int rc;   /* PM_OK until something failed; later writes are no-ops */
} wbuf;

static void put(wbuf *b, const void *src, size_t n)
{
    if (b->rc != PM_OK)
        return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2) {
                b->rc = PM_ENOMEM;
                return;
            }
            cap *= 2;
        }
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->rc = PM_ENOMEM;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

/* A type byte followed by `bytes` bytes of x, big-endian. */
static void put_tagged(wbuf *b, unsigned tag, uint64_t x, int bytes)
{
    unsigned char tmp[9];
    tmp[0] = (unsigned char)tag;
    for (int i = 0; i < bytes; i++)
        tmp[1 + i] = (unsigned char)(x >> (8 * (bytes - 1 - i)));
    put(b, tmp, 1 + (size_t)bytes);
}

static void put_int(wbuf *b, int64_t i)
{
    if (i >= 0) {
        uint64_t u = (uint64_t)i;
        if (u < 0x80)
            put_tagged(b, (unsigned)u, 0, 0);
        else if (u <= 0xff)
            put_tagged(b, 0xcc, u, 1);
        else if (u <= 0xffff)
            put_tagged(b, 0xcd, u, 2);
        else if (u <= 0xffffffffu)
            put_tagged(b, 0xce, u, 4);
        else
            put_tagged(b, 0xcf, u, 8);
    } else if (i >= -32) {
        put_tagged(b, (unsigned)(i & 0xff), 0, 0);
    } else if (i >= INT8_MIN) {
        put_tagged(b, 0xd0, (uint64_t)i, 1);
    } else if (i >= INT16_MIN) {
        put_tagged(b, 0xd1, (uint64_t)i, 2);
    } else if (i >= INT32_MIN) {
        put_tagged(b, 0xd2, (uint64_t)i, 4);
    } else {
        put_tagged(b, 0xd3, (uint64_t)i, 8);
    }
}

/* A header for str / bin / array / map: fix form when given (fix_max > 0),
 * else the 8-, 16- or 32-bit length form. */
static void put_header(wbuf *b, size_t n, unsigned fix, size_t fix_max, unsigned t8,
                       unsigned t16, unsigned t32)
{
    if (fix_max && n <= fix_max)
        put_tagged(b, fix | (unsigned)n, 0, 0);
    else if (t8 && n <= 0xff)
        put_tagged(b, t8, n, 1);
    else if (n <= 0xffff)
        put_tagged(b, t16, n, 2);
    else if ((uint64_t)n <= 0xffffffffu)
        put_tagged(b, t32, n, 4);
    else if (b->rc == PM_OK)
        b->rc = PM_EINVAL; /* more than MessagePack can say */
}

static void put_str(wbuf *b, const char *s, size_t n)
{
    put_header(b, n, 0xa0, 31, 0xd9, 0xda, 0xdb);
    put(b, s, n);
}

static void encode(wbuf *b, const pm_value *v);

/* The error value: ext PM_MSGPACK_EXT_ERROR around [index, code, message]. */
static void put_error(wbuf *b, const pm_value *v)
{
    wbuf in = {0};
    put_tagged(&in, 0x93, 0, 0);
    if ((uint64_t)v->u.err.index > INT64_MAX)
        put_tagged(&in, 0xcf, (uint64_t)v->u.err.index, 8);
    else
        put_int(&in, (int64_t)v->u.err.index);
    put_int(&in, v->u.err.code);
    put_str(&in, v->u.err.msg, v->u.err.len);
    if (in.rc != PM_OK) {
        b->rc = in.rc;
    } else {
        static const unsigned char fixext[17] = {[1] = 0xd4, [2] = 0xd5, [4] = 0xd6,
                                                 [8] = 0xd7, [16] = 0xd8};
        if (in.len <= 16 && fixext[in.len])
            put_tagged(b, fixext[in.len], 0, 0);
        else
            put_header(b, in.len, 0, 0, 0xc7, 0xc8, 0xc9);
        put_tagged(b, PM_MSGPACK_EXT_ERROR, 0, 0);
        put(b, in.p, in.len);
    }
    free(in.p);
}

static void encode(wbuf *b, const pm_value *v)
{
    uint64_t bits;
    switch (v->type) {
    case PM_T_NULL: put_tagged(b, 0xc0, 0, 0); break;
    case PM_T_BOOL: put_tagged(b, v->u.b ? 0xc3 : 0xc2, 0, 0); break;
    case PM_T_INT: put_int(b, v->u.i); break;
    case PM_T_DOUBLE:
        memcpy(&bits, &v->u.dbl, 8);
        put_tagged(b, 0xcb, bits, 8);
        break;
    case PM_T_STR: put_str(b, v->u.s.p, v->u.s.len); break;
    case PM_T_BYTES:
        put_header(b, v->u.s.len, 0, 0, 0xc4, 0xc5, 0xc6);
        put(b, v->u.s.p, v->u.s.len);
        break;
    case PM_T_LIST:
        put_header(b, v->u.l.len, 0x90, 15, 0, 0xdc, 0xdd);
        for (size_t i = 0; i < v->u.l.len && b->rc == PM_OK; i++)
            encode(b, v->u.l.v[i]);
        break;
    case PM_T_DICT:
        put_header(b, v->u.d.len, 0x80, 15, 0, 0xde, 0xdf);
        for (uint32_t i = 0; i < v->u.d.len && b->rc == PM_OK; i++) {
            put_str(b, v->u.d.e[i].key, v->u.d.e[i].klen);
            encode(b, v->u.d.e[i].val);
        }
        break;
    case PM_T_ERROR: put_error(b, v); break;
    default: b->rc = PM_EINVAL;
    }
}

int pm_value_encode(const pm_value *v, unsigned char **buf, size_t *len)
{
    if (buf)
        *buf = NULL;
    if (len)
        *len = 0;
    if (!v || !buf || !len)
        return PM_EINVAL;
    wbuf b = {0};
    encode(&b, v);
    if (b.rc != PM_OK) {
        free(b.p);
        return b.rc;
    }
    *buf = b.p;
    *len = b.len;
    return PM_OK;
}

/* ---------------------------------------------------------------- decode */

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
