/*
 * json_parse.c - JSON text to values (pm_value_from_json): a strict
 * recursive-descent parser for untrusted text (test vectors, whatever a
 * binding hands over), bounded the same way as the MessagePack decoder:
 * values nest at most PM_VALUE_MAX_DEPTH deep, memory stays proportional to
 * the input (a string's bytes are counted before its buffer is allocated,
 * and a repeated key frees the value it replaces), strings must be UTF-8
 * (lone surrogates in \u escapes too). A repeated key keeps its last value:
 * RFC 8259 leaves it open, and JSON.parse, Python's json and pm_dict_set all
 * do so, so text they accept must not fail here (JSONTestSuite's
 * y_object_duplicated_key*). MessagePack, which parmap writes itself and
 * never with a repeated key, still rejects them. A failure reports its byte offset and a fixed reason.
 * The tagged objects json.c writes for bytes and errors are turned back into
 * those values; numbers go through strtod with the locale's decimal point.
 */
#include "value_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct jr {
    const char *p, *end, *start;
    pm_parse_error *err;
} jr;

static int fail(jr *r, const char *at, const char *reason)
{
    if (r->err) {
        r->err->offset = (size_t)(at - r->start);
        r->err->reason = reason;
    }
    return PM_EINVAL;
}

static void skip_ws(jr *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int hex4(const char *p, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return 0;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 1;
}

static size_t utf8_put(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A string at r->p (the opening quote): its decoded bytes in a malloc'd,
 * NUL-terminated *out. Decoding never grows the text (an escape of 6 or 12
 * bytes gives at most 4), so the input's length bounds the buffer. */
static int read_string(jr *r, char **out, size_t *len)
{
    const char *at = r->p++;
    const char *q = r->p;
    while (q < r->end && *q != '"')
        q += (*q == '\\' && q + 1 < r->end) ? 2 : 1;
    if (q >= r->end)
        return fail(r, at, "unterminated string");
    char *buf = malloc((size_t)(q - r->p) + 1), *o = buf;
    if (!buf)
        return PM_ENOMEM;
    while (r->p < q) {
        unsigned char c = (unsigned char)*r->p;
        if (c < 0x20) {
            free(buf);
            return fail(r, r->p, "control character in a string");
        }
        if (c != '\\') {
            *o++ = *r->p++;
            continue;
        }
        const char *esc = r->p;
        char e = r->p[1];
        r->p += 2;
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            *o++ = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
            continue;
        }
        uint32_t cp, lo;
        if (e != 'u' || q - r->p < 4 || !hex4(r->p, &cp)) {
            free(buf);
            return fail(r, esc, "invalid escape in a string");
        }
        r->p += 4;
        if (cp >= 0xd800 && cp <= 0xdbff && q - r->p >= 6 && r->p[0] == '\\' &&
            r->p[1] == 'u' && hex4(r->p + 2, &lo) && lo >= 0xdc00 && lo <= 0xdfff) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            r->p += 6;
        } else if (cp >= 0xd800 && cp <= 0xdfff) {
            free(buf);
            return fail(r, esc, "lone surrogate in a \\u escape");
        }
        o += utf8_put(o, cp);
    }
    r->p = q + 1;
    *o = '\0';
    *len = (size_t)(o - buf);
    if (!pm__utf8_valid(buf, *len)) {
        free(buf);
        return fail(r, at, "invalid UTF-8 in a string");
    }
    *out = buf;
    return PM_OK;
}

static int read_number(jr *r, pm_value **out)
{
    const char *at = r->p, *p = r->p;
    int is_int = 1;
    if (p < r->end && *p == '-')
        p++;
    if (p < r->end && *p == '0')
        p++;
    else if (p < r->end && *p >= '1' && *p <= '9')
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
    else
        return fail(r, at, "invalid number");
    if (p < r->end && *p == '.') {
        is_int = 0;
        if (++p >= r->end || *p < '0' || *p > '9')
            return fail(r, at, "invalid number");
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < r->end && (*p == 'e' || *p == 'E')) {
        is_int = 0;
        if (++p < r->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= r->end || *p < '0' || *p > '9')
            return fail(r, at, "invalid number");
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
    }
    r->p = p;
    if (is_int) {
        /* Exact int64 arithmetic, counted toward the negative side so that
         * INT64_MIN fits; on overflow fall through to a double. */
        int neg = *at == '-';
        int64_t v = 0;
        const char *d = at + neg;
        for (; d < p; d++) {
            int digit = *d - '0';
            if (v < (INT64_MIN + digit) / 10)
                break;
            v = v * 10 - digit;
        }
        if (d == p && (neg || v != INT64_MIN)) {
            *out = pm_value_int(neg ? v : -v);
            return *out ? PM_OK : PM_ENOMEM;
        }
    }
    size_t n = (size_t)(p - at);
    char small[64], *buf = n < sizeof small ? small : malloc(n + 1);
    if (!buf)
        return PM_ENOMEM;
    memcpy(buf, at, n);
    buf[n] = '\0';
    char *dot = strchr(buf, '.');
    if (dot)
        *dot = pm__decimal_point();
    double d = strtod(buf, NULL);
    if (buf != small)
        free(buf);
    *out = pm_value_double(d);
    return *out ? PM_OK : PM_ENOMEM;
}

static int read_value(jr *r, int depth, pm_value **out);

/* {"$bytes":"hex"} and {"$error":{...}} as pm_value_to_json writes them
 * become bytes and errors; any other dict stays as it is. */
static pm_value *untag(pm_value *d)
{
    const pm_value *v;
    const char *s;
    size_t n;
    if (d->u.d.len != 1)
        return d;
    if ((v = pm_dict_get(d, "$bytes")) && pm_value_get_str(v, &s, &n) == PM_OK && n % 2 == 0) {
        unsigned char *bytes = malloc(n / 2 + 1);
        size_t i;
        for (i = 0; bytes && i < n / 2; i++) {
            uint32_t x;
            char quad[4] = {'0', '0', s[2 * i], s[2 * i + 1]};
            if (!hex4(quad, &x))
                break;
            bytes[i] = (unsigned char)x;
        }
        pm_value *b = bytes && i == n / 2 ? pm_value_bytes(bytes, n / 2) : NULL;
        free(bytes);
        if (b) {
            pm_value_free(d);
            return b;
        }
        return d;
    }
    int64_t index, code;
    const pm_value *e = pm_dict_get(d, "$error"), *m;
    if (!e || pm_value_type(e) != PM_T_DICT ||
        pm_value_get_int(pm_dict_get(e, "index"), &index) != PM_OK || index < 0 ||
        (uint64_t)index > SIZE_MAX || pm_value_get_int(pm_dict_get(e, "code"), &code) != PM_OK ||
        code < INT32_MIN || code > INT32_MAX)
        return d;
    m = pm_dict_get(e, "message");
    s = "";
    n = 0;
    if (pm_value_len(e) != 2u + (m != NULL) || (m && pm_value_get_str(m, &s, &n) != PM_OK))
        return d;
    pm_value *err = pm__error_n((size_t)index, (int)code, s, n);
    if (!err)
        return d;
    pm_value_free(d);
    return err;
}

static int read_container(jr *r, int depth, pm_value **out)
{
    const char *at = r->p;
    int is_obj = *r->p++ == '{';
    char close = is_obj ? '}' : ']';
    /* Two levels of slack: {"$error":{...}} and {"$bytes":...} are leaves
     * once read, so a value at the depth limit that holds them is written
     * two (or one) levels deeper than it is. The depth of the values read
     * is what counts, checked below as each item arrives. */
    if (depth >= PM_VALUE_MAX_DEPTH + 2)
        return fail(r, at, "nesting deeper than 64");
    pm_value *c = is_obj ? pm_value_dict() : pm_value_list();
    if (!c)
        return PM_ENOMEM;
    int rc = PM_OK;
    skip_ws(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        *out = c;
        return PM_OK;
    }
    for (;;) {
        char *key = NULL;
        size_t klen = 0;
        pm_value *item = NULL;
        skip_ws(r);
        if (is_obj) {
            if (r->p >= r->end || *r->p != '"')
                rc = fail(r, r->p, r->p >= r->end ? "unexpected end of input" : "expected a key");
            else if ((rc = read_string(r, &key, &klen)) == PM_OK) {
                skip_ws(r);
                if (r->p >= r->end || *r->p != ':')
                    rc = fail(r, r->p, "expected ':'");
                else
                    r->p++;
            }
        }
        if (rc == PM_OK)
            rc = read_value(r, depth + 1, &item);
        if (rc == PM_OK && item->depth >= PM_VALUE_MAX_DEPTH) {
            pm_value_free(item);
            rc = fail(r, at, "nesting deeper than 64");
        }
        if (rc == PM_OK && is_obj)
            rc = pm__dict_put(c, key, klen, item, 0); /* last value wins */
        else if (rc == PM_OK)
            rc = pm_list_push(c, item);
        free(key);
        if (rc == PM_OK) {
            skip_ws(r);
            if (r->p < r->end && *r->p == ',') {
                r->p++;
                continue;
            }
            if (r->p < r->end && *r->p == close) {
                r->p++;
                *out = is_obj ? untag(c) : c;
                return PM_OK;
            }
            rc = fail(r, r->p, r->p >= r->end ? "unexpected end of input"
                               : is_obj ? "expected ',' or '}'" : "expected ',' or ']'");
        }
        pm_value_free(c);
        return rc;
    }
}

static int literal(jr *r, const char *word, pm_value *v, pm_value **out)
{
    size_t n = strlen(word);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
        return fail(r, r->p, "invalid literal");
    r->p += n;
    *out = v;
    return PM_OK;
}

static int read_value(jr *r, int depth, pm_value **out)
{
    *out = NULL;
    skip_ws(r);
    if (r->p >= r->end)
        return fail(r, r->p, "unexpected end of input");
    switch (*r->p) {
    case '{':
    case '[': return read_container(r, depth, out);
    case '"': {
        char *s = NULL;
        size_t n = 0;
        int rc = read_string(r, &s, &n);
        if (rc != PM_OK)
            return rc;
        *out = pm__str_trusted(s, n);
        free(s);
        return *out ? PM_OK : PM_ENOMEM;
    }
    case 't': return literal(r, "true", pm_value_bool(1), out);
    case 'f': return literal(r, "false", pm_value_bool(0), out);
    case 'n': return literal(r, "null", pm_value_null(), out);
    default:
        if (*r->p == '-' || (*r->p >= '0' && *r->p <= '9'))
            return read_number(r, out);
        return fail(r, r->p, "unexpected character");
    }
}

int pm_value_from_json(const char *text, size_t len, pm_value **out, pm_parse_error *err)
{
    if (err) {
        err->offset = 0;
        err->reason = NULL;
    }
    if (!out)
        return PM_EINVAL;
    *out = NULL;
    if (!text && len)
        return PM_EINVAL;
    jr r = {text ? text : "", (text ? text : "") + len, text ? text : "", err};
    pm_value *v = NULL;
    int rc = read_value(&r, 0, &v);
    if (rc == PM_OK) {
        skip_ws(&r);
        if (r.p != r.end)
            rc = fail(&r, r.p, "trailing characters after the value");
    }
    if (rc != PM_OK) {
        pm_value_free(v);
        if (rc == PM_ENOMEM && err)
            err->reason = "out of memory";
        return rc;
    }
    *out = v;
    return PM_OK;
}
