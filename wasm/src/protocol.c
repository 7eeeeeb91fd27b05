/*
 * protocol.c - the protocol of protocol.h as JSON, for the JavaScript side.
 *
 * pmw_protocol_json() returns one object, built once from the X-macros of
 * protocol.h and parmap.h (and offsetof for the struct fields runtime.js
 * reads from the heap):
 *
 *   { "status": {"OK": 0, ..., "ESOURCE": -100},   core + glue statuses
 *     "get": {"status": 0, ...},                    pmw_job_get selectors
 *     "ring": {"in": 0, "out": 1}, "ringField": {"val": 0, ...},
 *     "post": {"DONE": 1, ...}, "code": {"THREW": 1, ...},
 *     "kind": {"JS": 0, ...}, "bytes": {"SRC": 0, ...},
 *     "record": {"NAN_HI": ..., ...}, "tag": {"VALUE": 1, ...},
 *     "msgpack": {"EXT_ERROR_C": 1},
 *     "jobOffset": {"id": 0, ...}, "block": {"HDR": 16, "refs": 4, "size": 8} }
 *
 * js/protocol.js parses it once per realm (main thread, each worker): a few
 * microseconds of a cold start.
 */
#include "pmw.h"

#include <emscripten.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

typedef struct json {
    char *s;
    size_t cap, len;
    int first;      /* no member yet in the current object */
} json;

static void put(json *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->s + b->len, b->len < b->cap ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    b->len += n > 0 ? (size_t)n : 0;
}

static void open_obj(json *b, const char *name)
{
    put(b, "%s\"%s\":{", b->len > 1 ? "," : "", name);
    b->first = 1;
}

static void member(json *b, const char *name, long long value)
{
    put(b, "%s\"%s\":%lld", b->first ? "" : ",", name, value);
    b->first = 0;
}

static void close_obj(json *b)
{
    put(b, "}");
}

static int build(json *b)
{
    int i = 0;
    (void)i;
    put(b, "{");
#define NAMED(name, value, ...) member(b, #name, (long long)(value));
#define COUNTED(name, ...) member(b, #name, i++);
#define JOB_AT(name) member(b, #name, (long long)offsetof(pmw_job, name));
#define BLOCK_AT(name) member(b, #name, (long long)offsetof(pmw_block, name));
    open_obj(b, "status");
    PM_STATUS_MAP(NAMED)
    PMW_STATUS_MAP(NAMED)
    close_obj(b);
    open_obj(b, "get");
    i = 0;
    PMW_JOB_FIELDS(COUNTED)
    close_obj(b);
    open_obj(b, "ring");
    i = 0;
    PMW_RINGS(COUNTED)
    close_obj(b);
    open_obj(b, "ringField");
    i = 0;
    PMW_RING_FIELDS(COUNTED)
    close_obj(b);
    open_obj(b, "post");
    PMW_POSTS(NAMED)
    close_obj(b);
    open_obj(b, "code");
    PMW_ITEM_CODES(NAMED)
    close_obj(b);
    open_obj(b, "kind");
    PMW_KINDS(NAMED)
    close_obj(b);
    open_obj(b, "bytes");
    PMW_JOB_BYTES(NAMED)
    close_obj(b);
    open_obj(b, "record");
    PMW_RECORD(NAMED)
    close_obj(b);
    open_obj(b, "tag");
    PMW_TAGS(NAMED)
    close_obj(b);
    open_obj(b, "msgpack");
    PMW_MSGPACK(NAMED)
    close_obj(b);
    open_obj(b, "jobOffset");
    PMW_JOB_OFFSETS(JOB_AT)
    close_obj(b);
    open_obj(b, "block");
    member(b, "HDR", (long long)sizeof(pmw_block));
    PMW_BLOCK_OFFSETS(BLOCK_AT)
    close_obj(b);
#undef NAMED
#undef COUNTED
#undef JOB_AT
#undef BLOCK_AT
    put(b, "}");
    return b->len < b->cap;
}

static char text[4096];
static int built;

static void build_once(void)
{
    json b = { .s = text, .cap = sizeof text };
    built = build(&b);
}

/* The JSON above, built on first use by whichever thread asks first. NULL
 * if it did not fit (never: text has room for far more; protocol.js says
 * so). */
EMSCRIPTEN_KEEPALIVE const char *pmw_protocol_json(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, build_once);
    return built ? text : NULL;
}
