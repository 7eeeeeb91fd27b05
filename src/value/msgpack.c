/*
 * msgpack.c - the MessagePack encoder: how values cross process (and later
 * machine) boundaries. The decoder, which reads untrusted bytes, is
 * msgpack_decode.c.
 *
 * Written here rather than taken from a library on purpose: the core must
 * build unchanged for WebAssembly (Emscripten) and WASI with nothing but a C
 * library, and the subset we need is small. The encoder always writes the
 * smallest form of each item and doubles as float64 (lossless), so equal
 * values built in the same order encode to the same bytes, and an encoding
 * decoded and encoded again is byte-identical (the fuzz target checks it).
 * The only extension type is parmap's error value, PM_MSGPACK_EXT_ERROR,
 * whose payload is itself MessagePack: [index, code, message], in the
 * smallest ext form that fits. Recursion is bounded by the depth limit every
 * value keeps.
 */
#include "value_internal.h"

#include <stdlib.h>
#include <string.h>

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

int pm__item_encode(const pm_value *v, size_t index, unsigned char **buf, size_t *len)
{
    unsigned char *body = NULL;
    size_t n = 0;
    if (pm_value_encode(v, &body, &n) != PM_OK)
        return PM_ENOMEM;
    uint64_t i = index;
    *buf = malloc(sizeof i + n);
    if (*buf) {
        memcpy(*buf, &i, sizeof i);
        memcpy(*buf + sizeof i, body, n);
        *len = sizeof i + n;
    }
    free(body);
    return *buf ? 0 : PM_ENOMEM;
}

int pm__item_decode(const unsigned char *buf, size_t len, pm_value **v, size_t *index)
{
    uint64_t i;
    size_t used;
    if (len < sizeof i)
        return PM_EINVAL;
    memcpy(&i, buf, sizeof i);
    *index = (size_t)i;
    return pm_value_decode(buf + sizeof i, len - sizeof i, v, &used) == PM_OK ? 0 : PM_EINVAL;
}
