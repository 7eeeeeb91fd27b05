/*
 * parmap_value.h - the value layer: dynamically typed values (pm_value), their
 * JSON and MessagePack forms, and pm_vmap / pm_vimap, which map a function
 * over a list of values with parmapper's args / kwargs / star / kwstar.
 *
 * This header is the user's manual for the value layer; parmap.h documents
 * the raw layer (fixed-size records) it is built on.
 *
 * Quick start:
 *
 *     static int scale(void *user, pm_call *call, pm_value **result) {
 *         double x = pm_arg_double(call, 0, 0.0);
 *         double by = pm_kw_double(call, "by", 2.0);
 *         if (x < 0)
 *             return pm_call_fail(call, 1, "negative input %g", x);
 *         *result = pm_value_double(x * by);
 *         return 0;
 *     }
 *     pm_value *items = pm_value_list(), *kw = pm_value_dict(), *out = NULL;
 *     for (int i = 0; i < 100; i++)
 *         pm_list_push(items, pm_value_int(i));
 *     pm_dict_set(kw, "by", pm_value_double(10));
 *     int rc = pm_vmap(scale, NULL, items,
 *                      &(pm_vopts){ .base.threads = 4, .kwargs = kw }, &out);
 *     // rc == PM_OK: out is a list of 100 doubles. Free all three.
 *
 * Values. A pm_value is a tree: null, bool, int (int64), double, str (UTF-8
 * with a length; embedded NUL allowed), bytes, list, dict (string keys, kept
 * in insertion order) and error {index, code, message} (a failed item).
 *  - Ownership: constructors return a new value the caller owns and frees
 *    with pm_value_free (which frees the whole tree). pm_list_push and
 *    pm_dict_set take ownership of the value they are given, also when they
 *    fail (it is then freed), so `pm_list_push(l, pm_value_int(1))` never
 *    leaks. After that the caller must not use the pointer it handed over:
 *    containers are built bottom-up (build the child, then add it).
 *  - Constructors return NULL only when out of memory (and pm_value_str /
 *    pm_value_strn also for text that is not valid UTF-8). pm_value_null and
 *    pm_value_bool never fail (they return shared constants; freeing them is
 *    a no-op).
 *  - Invariants every value keeps, whoever built it (constructors, JSON,
 *    MessagePack): strings and dict keys are valid UTF-8 (error messages are
 *    repaired with U+FFFD, never rejected); dict keys are unique; nesting is
 *    at most PM_VALUE_MAX_DEPTH containers deep. So any value encodes, and
 *    decodes back equal.
 *  - Thread-safety: a value that nobody modifies may be read from any number
 *    of threads at once (reads never modify, not even lazily). Modifying
 *    needs exclusive access.
 *
 * Errors are values here too: every call that can fail returns PM_OK or a
 * negative PM_E* status; nothing aborts on bad input, including malformed
 * JSON and MessagePack from untrusted sources.
 */
#ifndef PARMAP_VALUE_H
#define PARMAP_VALUE_H

#include "parmap.h"

#include <stdarg.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define PM_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define PM_PRINTF(f, a)
#endif

/* ---------------------------------------------------------------- values */

typedef enum pm_type {
    PM_T_NULL = 0,
    PM_T_BOOL,
    PM_T_INT,     /* int64_t */
    PM_T_DOUBLE,
    PM_T_STR,     /* UTF-8, with length, NUL-terminated for convenience */
    PM_T_BYTES,
    PM_T_LIST,
    PM_T_DICT,    /* string keys, insertion order, unique */
    PM_T_ERROR    /* a failed item: index, code, message */
} pm_type;

typedef struct pm_value pm_value;

/* Containers nested deeper than this are refused everywhere (push, set,
 * JSON, MessagePack): every recursive walk of a value is then bounded.
 * A scalar has depth 0, [] has 1, [[]] has 2. */
#define PM_VALUE_MAX_DEPTH 64

/* Constructors. NULL only when out of memory (see above). */
PM_API pm_value *pm_value_null(void);
PM_API pm_value *pm_value_bool(int b);
PM_API pm_value *pm_value_int(int64_t i);
PM_API pm_value *pm_value_double(double d);
/* A copy of the NUL-terminated UTF-8 text s (NULL s: NULL). */
PM_API pm_value *pm_value_str(const char *s);
/* A copy of len bytes of UTF-8 text (may contain NUL). NULL when s is not
 * valid UTF-8 (overlong forms, surrogates and code points above U+10FFFF are
 * invalid): binary data belongs in pm_value_bytes. */
PM_API pm_value *pm_value_strn(const char *s, size_t len);
/* A copy of len bytes (p may be NULL when len is 0). */
PM_API pm_value *pm_value_bytes(const void *p, size_t len);
PM_API pm_value *pm_value_list(void);
PM_API pm_value *pm_value_dict(void);
/* An error value, what a failed item becomes: the item's index, its code and
 * a copy of msg (NULL: ""; invalid UTF-8 is replaced by U+FFFD). */
PM_API pm_value *pm_value_error(size_t index, int code, const char *msg);

/* Append item to list, taking ownership of item (freed on failure too).
 * PM_OK; PM_EINVAL (list is not a list, or the result would nest deeper
 * than PM_VALUE_MAX_DEPTH; also item == list, which is not freed); PM_ENOMEM
 * (also when item is NULL, so that a failed constructor passed straight in
 * is reported). */
PM_API int pm_list_push(pm_value *list, pm_value *item);
/* Make room for n elements in total (an optimisation only). PM_OK, PM_EINVAL
 * (not a list), PM_ENOMEM. */
PM_API int pm_list_reserve(pm_value *list, size_t n);
/* dict[key] = value: copies the key, takes ownership of value (freed on
 * failure too). An existing key keeps its place and gets the new value (the
 * old one is freed): the last write wins, like Python's dict. PM_OK;
 * PM_EINVAL (not a dict, key NULL or not valid UTF-8, too deep; also
 * value == dict, which is not freed); PM_ENOMEM (also when value is NULL). */
PM_API int pm_dict_set(pm_value *dict, const char *key, pm_value *value);
PM_API int pm_dict_setn(pm_value *dict, const char *key, size_t key_len, pm_value *value);

/* The type; NULL counts as PM_T_NULL (a missing keyword reads as null). */
PM_API pm_type pm_value_type(const pm_value *v);
/* "null", "bool", "int", "double", "str", "bytes", "list", "dict", "error"
 * (or "unknown"). */
PM_API const char *pm_type_name(pm_type t);

/* Typed accessors: PM_OK and *out set, or PM_EINVAL (v is NULL or of another
 * type; *out untouched). pm_value_get_double also accepts an int (converted).
 * Strings and bytes are borrowed: valid while v lives and is not modified;
 * str is NUL-terminated, len (optional) excludes the NUL. */
PM_API int pm_value_get_bool(const pm_value *v, int *out);
PM_API int pm_value_get_int(const pm_value *v, int64_t *out);
PM_API int pm_value_get_double(const pm_value *v, double *out);
PM_API int pm_value_get_str(const pm_value *v, const char **out, size_t *len);
PM_API int pm_value_get_bytes(const pm_value *v, const void **out, size_t *len);
/* Any of index, code, message may be NULL. */
PM_API int pm_value_get_error(const pm_value *v, size_t *index, int *code, const char **message);

/* Elements of a list, entries of a dict, bytes of a str or bytes; else 0. */
PM_API size_t pm_value_len(const pm_value *v);
/* list[i], or NULL (not a list, out of range). Borrowed. */
PM_API const pm_value *pm_list_get(const pm_value *list, size_t i);
/* dict[key], or NULL (not a dict, no such key). Borrowed. O(1) on average. */
PM_API const pm_value *pm_dict_get(const pm_value *dict, const char *key);
PM_API const pm_value *pm_dict_getn(const pm_value *dict, const char *key, size_t key_len);
/* The i-th entry in insertion order: its key (len optional) and value, or
 * NULL when out of range. Borrowed. */
PM_API const char *pm_dict_key(const pm_value *dict, size_t i, size_t *len);
PM_API const pm_value *pm_dict_value(const pm_value *dict, size_t i);

/* A deep copy (NULL: out of memory, or v is NULL). */
PM_API pm_value *pm_value_clone(const pm_value *v);
/* Free v and everything in it. NULL is ignored. */
PM_API void pm_value_free(pm_value *v);
/* Deep equality, 1 or 0. Types must match (int 1 != double 1.0). Doubles
 * compare like JavaScript's Object.is: NaN equals NaN, 0.0 differs from -0.0
 * (so a round trip that loses a sign or a NaN is caught). Dicts are equal
 * when they hold the same keys with equal values, whatever the order (as in
 * Python and JSON); lists compare in order. Errors compare index, code and
 * message. Two NULLs are equal; NULL and a value are not. */
PM_API int pm_value_equal(const pm_value *a, const pm_value *b);

/* ------------------------------------------------------------------ JSON */

/* Where and why a parse failed: byte offset into the input and a fixed
 * English reason ("unexpected end of input", "nesting deeper than 64"...). */
typedef struct pm_parse_error {
    size_t offset;
    const char *reason;   /* static string; NULL when the parse succeeded */
} pm_parse_error;

/*
 * pm_value_to_json: compact JSON text (no spaces) in *out, malloc'd and
 * NUL-terminated (free with free()); *len (optional) gets its length.
 * Dicts keep their order. Non-JSON types map to tagged objects:
 *   bytes   -> {"$bytes":"0aff"}                      (lowercase hex)
 *   error   -> {"$error":{"index":3,"code":1,"message":"..."}} (an index
 *              above INT64_MAX, such as (size_t)-1, reads back as a double,
 *              so such an error reads back as a dict)
 *   doubles -> shortest text that reads back to the same double, always with
 *              a '.' or an exponent (1.0, not 1) so the type survives;
 *              NaN and +-Infinity have no JSON form and become null.
 * Returns PM_OK, PM_EINVAL (v NULL) or PM_ENOMEM.
 */
PM_API int pm_value_to_json(const pm_value *v, char **out, size_t *len);

/*
 * pm_value_from_json: parse len bytes of JSON (RFC 8259, strict: no comments,
 * no trailing commas, no NaN; the input must be valid UTF-8) into *out.
 *  - numbers without fraction or exponent that fit int64 become ints, all
 *    others doubles (1.0 and 1e2 are doubles; 2^63 is a double);
 *  - {"$bytes":"<hex>"} and {"$error":{"index":i,"code":c,"message":m}}
 *    (message optional), exactly as pm_value_to_json writes them, read back
 *    as bytes and error values; any other object is a dict;
 *  - a key repeated in an object keeps its last value, as JSON.parse,
 *    Python's json and pm_dict_set do ({"a":1,"a":2} reads as {"a":2}, in
 *    the place where "a" first appeared); pm_value_decode, reading what
 *    parmap itself wrote, still rejects repeated MessagePack map keys;
 *  - \u escapes must form valid UTF-8 (lone surrogates are rejected);
 *  - nesting deeper than PM_VALUE_MAX_DEPTH is rejected.
 * Returns PM_OK, PM_EINVAL (malformed: *err, if given, says where and why) or
 * PM_ENOMEM. *out is NULL on failure.
 */
PM_API int pm_value_from_json(const char *text, size_t len, pm_value **out,
                              pm_parse_error *err);

/* ----------------------------------------------------------- MessagePack */

/* The MessagePack extension type that carries an error value. Its payload is
 * itself MessagePack: the array [index (uint), code (int32), message (str)]. */
#define PM_MSGPACK_EXT_ERROR 1

/*
 * pm_value_encode: the MessagePack form of v in *buf (malloc'd, free with
 * free()), its size in *len. Always the smallest encoding of each item; doubles
 * are always float64 (lossless); errors are ext type PM_MSGPACK_EXT_ERROR.
 * Encoding is deterministic: equal values built in the same order give the
 * same bytes. PM_OK, PM_EINVAL (v NULL), PM_ENOMEM.
 */
PM_API int pm_value_encode(const pm_value *v, unsigned char **buf, size_t *len);

/*
 * pm_value_decode: one value from untrusted bytes. Never crashes, never reads
 * past buf + len, and allocates at most a small multiple of len (every length
 * is checked against the bytes left before anything is allocated).
 *  - used non-NULL: decode the first value and report the bytes it took
 *    (values may follow each other); used NULL: buf must hold exactly one
 *    value (trailing bytes are an error).
 *  - Accepted: every MessagePack format family, any (even non-minimal) integer
 *    width, float32 (widened) and float64. uint64 values above INT64_MAX
 *    become the nearest double, like big JSON integers.
 *  - Rejected with PM_EINVAL: truncated input, the reserved byte 0xc1, str
 *    that is not valid UTF-8 (use bin for binary), map keys that are not str,
 *    duplicate map keys, nesting deeper than PM_VALUE_MAX_DEPTH, extension
 *    types other than PM_MSGPACK_EXT_ERROR (timestamps included) and a
 *    malformed error payload.
 * Returns PM_OK, PM_EINVAL or PM_ENOMEM; *out is NULL on failure.
 * pm_value_decode_ex also says where and why it failed.
 */
PM_API int pm_value_decode(const unsigned char *buf, size_t len, pm_value **out, size_t *used);
PM_API int pm_value_decode_ex(const unsigned char *buf, size_t len, pm_value **out,
                              size_t *used, pm_parse_error *err);

/* ------------------------------------------------------------- the call */

/*
 * What a value function receives for one item: positional arguments,
 * keywords and the item's index, built from the item and the options by
 * parmapper's table (see pm_vopts). Everything is borrowed and read-only,
 * valid during the call only (clone what you keep). The fields below the
 * line are private.
 */
typedef struct pm_call {
    size_t index;                 /* the item's position in the input */
    int argc;                     /* positional arguments */
    const pm_value *const *argv;  /* argv[0..argc) */
    const pm_value *kwargs;       /* a dict, never NULL (empty when none) */
    const pm_value *item;         /* the item as given */
    /* private */
    char *pm__message;
} pm_call;

/*
 * A value function: read `call`, store a new value in *result (the library
 * takes ownership) and return 0; or return a nonzero code to fail this item
 * (positive codes are yours; negative ones are parmap's). A value stored in
 * *result by a failing function is freed. Returning 0 with *result NULL
 * (typically a constructor that ran out of memory) fails the item with code
 * PM_ENOMEM. Called concurrently from several threads.
 */
typedef int (*pm_vfn)(void *user, pm_call *call, pm_value **result);

/* Fail the item: record a printf-style message for its error value and
 * return code, so a function can `return pm_call_fail(call, 2, "bad x %d", x);`.
 * code 0 would mean success and becomes 1. A later call replaces the
 * message. */
PM_API int pm_call_fail(pm_call *call, int code, const char *fmt, ...) PM_PRINTF(3, 4);
PM_API int pm_call_vfail(pm_call *call, int code, const char *fmt, va_list ap);

/* Keyword getters: the keyword's value, or def when it is missing or of
 * another type (pm_kw_double accepts ints). pm_kw returns NULL when missing.
 * Strings are borrowed for the duration of the call. */
PM_API const pm_value *pm_kw(const pm_call *call, const char *key);
PM_API double pm_kw_double(const pm_call *call, const char *key, double def);
PM_API int64_t pm_kw_int(const pm_call *call, const char *key, int64_t def);
PM_API int pm_kw_bool(const pm_call *call, const char *key, int def);
PM_API const char *pm_kw_str(const pm_call *call, const char *key, const char *def);

/* Positional getters, the same way: argv[i], or def when i >= argc or the
 * argument is of another type. pm_arg returns NULL when i is out of range. */
PM_API const pm_value *pm_arg(const pm_call *call, int i);
PM_API double pm_arg_double(const pm_call *call, int i, double def);
PM_API int64_t pm_arg_int(const pm_call *call, int i, int64_t def);
PM_API int pm_arg_bool(const pm_call *call, int i, int def);
PM_API const char *pm_arg_str(const pm_call *call, int i, const char *def);

/* ------------------------------------------------------------ the map */

typedef enum pm_star {
    PM_STAR_NO = 0,  /* the item is one positional argument */
    PM_STAR_YES,     /* the item is a list of positional arguments */
    PM_STAR_NONE     /* the item is not passed at all (only args; kwstar: only keywords) */
} pm_star;

/*
 * Options of pm_vmap / pm_vimap: the raw options plus parmapper's arguments.
 * Zero-initialised = defaults (star no, kwstar no, no args, no kwargs).
 *
 * How a call is built from an item (parmapper's table; "kwargs + kwvals" is
 * kwargs updated by kwvals: kwvals win, a key of kwargs keeps its place, new
 * keys come after):
 *
 *   star  kwstar  the item must be   positional      keywords
 *   no    no      val                val, *args      kwargs
 *   yes   no      vals (a list)      *vals, *args    kwargs
 *   none  no      anything (unused)  *args           kwargs
 *   none  yes     kwvals (a dict)    *args           kwargs + kwvals
 *   no    yes     [val, kwvals]      val, *args      kwargs + kwvals
 *   yes   yes     [vals, kwvals]     *vals, *args    kwargs + kwvals
 *
 * An item that does not fit its row (a non-list with star, a kwstar item that
 * is not a 2-element list ending in a dict, ...) is not passed to the
 * function: it fails with code PM_EINVAL and a message saying what was
 * expected, exactly like an item whose function failed (so PM_RETURN mode
 * gives an error value in its place and PM_RAISE mode stops the map).
 */
typedef struct pm_vopts {
    pm_opts base;            /* backend, threads, chunksize, on_error, progress...
                                (base.codes works for pm_vmap as for pm_map) */
    pm_star star;
    int kwstar;              /* nonzero: items carry keywords (see the table) */
    const pm_value *args;    /* a list appended to every call's positional arguments, or NULL */
    const pm_value *kwargs;  /* a dict of keywords for every call, or NULL */
    pm_report *report;       /* pm_vmap only, optional, out: filled as pm_map fills its
                                report (pm_viter_report for iterators) */
} pm_vopts;

/*
 * pm_vmap: results[i] = fn(call built from items[i]) for every element of
 * the list `items`, in parallel. items, args and kwargs are only read (from
 * several threads), never modified or kept. opts NULL = defaults.
 *
 * *results is set on every return (NULL when there is nothing to give):
 *  - PM_OK: a new list, as long as items, results[i] for items[i]. In
 *    PM_RETURN mode a failed item's slot holds an error value
 *    {index, code, message} (report->failed counts them).
 *  - PM_EITEM (PM_RAISE mode, an item failed): the error value of the lowest
 *    failing index seen: like an exception, it replaces the results (the map
 *    stopped early, so there is no complete list to give). PM_ECRASH /
 *    PM_ETIMEOUT the same, when that item crashed or timed out its worker.
 *  - PM_EINVAL (items not a list, args not a list, kwargs not a dict, a bad
 *    option; nothing ran), PM_ECANCELED, PM_ENOMEM, PM_ESYS, PM_ENOTSUP: NULL.
 * On PM_PROCESSES each result travels back from its worker process as
 * MessagePack (a result over 2 MB encoded fails its item with PM_ENOMEM); an
 * item that crashed or timed out its worker gets an error value with code
 * PM_ECRASH / PM_ETIMEOUT. The function may run more than once for an item
 * there (a retry after a crash), so it should not have side effects.
 * The caller frees *results with pm_value_free.
 */
PM_API int pm_vmap(pm_vfn fn, void *user, const pm_value *items, const pm_vopts *opts,
                   pm_value **results);

/* A stream of values for pm_vimap: store a new value in *item (the library
 * takes ownership) and return 1; return 0 at the end, or a negative PM_E*
 * status (the iterator then ends with it); PM_SOURCE_LATER (nothing stored)
 * as for pm_source_fn. Called by one thread at a time. */
typedef int (*pm_vsource_fn)(void *src, pm_value **item);

typedef struct pm_viter pm_viter;

/*
 * pm_vimap: pm_imap for values (semi-lazy, bounded window, ordered unless
 * opts->base.unordered). Calls are built from each item as in pm_vmap. The
 * options are copied, but not the values opts->args and opts->kwargs point
 * to: those and src must stay valid until pm_viter_free. opts->report is
 * not used (see pm_viter_report). Never returns NULL except when out of
 * memory; bad arguments give an iterator whose first pm_viter_next returns
 * PM_EINVAL. On PM_PROCESSES the items (made after the workers were forked)
 * travel to them as MessagePack and the results back; an item whose
 * encoding is over 2 MB fails alone with PM_ENOMEM, and an item that crashed
 * or timed out its worker gives an error value with PM_ECRASH / PM_ETIMEOUT.
 */
PM_API pm_viter *pm_vimap(pm_vfn fn, void *user, pm_vsource_fn next, void *src,
                          const pm_vopts *opts);

/*
 * The next result: 1 with *out = a new value the caller frees (in PM_RETURN
 * mode a failed item gives its error value) and *index (optional) = its
 * position in the stream; 0 at the end; or a negative status that ends the
 * iterator and repeats on every later call: PM_EITEM (PM_RAISE mode: *out is
 * a new copy of the failing item's error value, *index its index),
 * PM_ECANCELED, the source's error, PM_EINVAL. *out is NULL unless a value is
 * given. One thread at a time.
 */
PM_API int pm_viter_next(pm_viter *it, pm_value **out, size_t *index);
/* Counts so far, as pm_iter_report. */
PM_API int pm_viter_report(pm_viter *it, pm_report *report);
/* Stop, join, free every value still in flight. Returns as pm_iter_free.
 * NULL gives PM_OK. */
PM_API int pm_viter_free(pm_viter *it);
/* A pm_vsource_fn reading another pm_viter, to chain value maps into a
 * pipeline; failed upstream items (PM_RETURN there) are skipped. */
PM_API int pm_viter_source(void *viter, pm_value **item);

#ifdef __cplusplus
}
#endif
#endif /* PARMAP_VALUE_H */
