/*
 * value_internal.h - what the value layer's files share: the layout of
 * pm_value (opaque to users), the dict's hash index, UTF-8 checks, and the
 * call builder that pm_vmap and pm_vimap (and later the processes executor's
 * workers) have in common.
 *
 * Layout: one 40-byte tagged union per value. Containers hold pointers to
 * their children (a list is an array of pm_value *, so pm_vmap can hand the
 * array to pm_map as records of one pointer each, without copying). Every
 * value knows its depth, so nesting is capped at construction time and every
 * recursive walk (free, clone, equal, encode) is bounded by
 * PM_VALUE_MAX_DEPTH.
 */
#ifndef PM_VALUE_INTERNAL_H
#define PM_VALUE_INTERNAL_H

#include "parmap_value.h"

#include <stddef.h>
#include <stdint.h>

enum {
    PM__VF_STATIC = 1,   /* a shared constant (null, true, false, the empty
                            dict): never freed, never modified */
    PM__VF_VIEW = 2      /* a dict whose keys and values are borrowed (the
                            merged kwargs of a call): free only its arrays */
};

/* One dict entry. The hash is kept so that lookups compare hashes first
 * and the index can grow without hashing keys again. */
typedef struct pm__entry {
    char *key;           /* NUL-terminated copy (may also contain NUL) */
    size_t klen;
    uint64_t hash;
    pm_value *val;
} pm__entry;

struct pm_value {
    uint8_t type;        /* pm_type */
    uint8_t flags;       /* PM__VF_* */
    uint16_t depth;      /* containers on the longest path down: 0 for scalars */
    union {
        int b;
        int64_t i;
        double dbl;
        struct { char *p; size_t len; } s;            /* str, bytes: p[len] == 0 */
        struct { pm_value **v; size_t len, cap; } l;  /* list */
        struct {
            pm__entry *e;
            uint32_t *slots;   /* open addressing, entry index + 1 (0 = empty);
                                  NULL while the dict is small */
            uint32_t len, cap, nslots;
        } d;
        struct { char *msg; size_t len; size_t index; int code; } err;
    } u;
};

/* ----------------------------------------------------------------- UTF-8 */

/* 1 when s[0..n) is valid UTF-8 (no overlongs, surrogates, > U+10FFFF). */
int pm__utf8_valid(const char *s, size_t n);

/* --------------------------------------------------------- construction */

/* A zeroed value of type t (NULL: out of memory). */
pm_value *pm__value_new(pm_type t);
/* A str value from bytes the caller has already checked to be UTF-8. */
pm_value *pm__str_trusted(const char *s, size_t len);
/* An error value whose message is msg[0..len) (invalid UTF-8 repaired). */
pm_value *pm__error_n(size_t index, int code, const char *msg, size_t len);

/* The locale's decimal point (one char; '.' in the C locale): JSON numbers
 * go through printf and strtod (json.c, json_parse.c). */
char pm__decimal_point(void);

/* ------------------------------------------------------------------ dict */

uint64_t pm__hash(const char *key, size_t len);
/* Index of key in dict, or SIZE_MAX. */
size_t pm__dict_find(const pm_value *dict, const char *key, size_t klen, uint64_t hash);
/* Insert or replace (key already checked to be UTF-8). Takes ownership of
 * val (freed on failure). With reject_dup, an existing key is PM_EINVAL
 * (what the decoders want) instead of a replacement. */
int pm__dict_put(pm_value *dict, const char *key, size_t klen, pm_value *val, int reject_dup);
/* Free the entries (keys and values unless a view) and the index. */
void pm__dict_clear(pm_value *dict);
/* A deep copy of a dict's entries into the empty dict dst. */
int pm__dict_copy(pm_value *dst, const pm_value *src);
/* Same keys with equal values, in any order. */
int pm__dict_equal(const pm_value *a, const pm_value *b);
/* Views: `view` (a zeroed pm_value the caller owns, e.g. on its stack)
 * becomes a dict borrowing the keys and values it is given; put replaces the
 * value of an existing key in place. Release frees its arrays only. */
void pm__dict_view_init(pm_value *view);
int  pm__dict_view_put(pm_value *view, const pm__entry *from);
void pm__dict_view_release(pm_value *view);

/* The empty dict that calls without keywords see. */
extern const pm_value pm__empty_dict;

/* ------------------------------------------------------------ the calls */

/* The options a call is built from, checked once per map. */
typedef struct pm__vspec {
    pm_star star;
    int kwstar;
    const pm_value *args;     /* list or NULL */
    const pm_value *kwargs;   /* dict or NULL */
} pm__vspec;

/* Validate a pm_vopts' value part into spec. PM_OK or PM_EINVAL. */
int pm__vspec_init(pm__vspec *spec, const pm_vopts *opts);

/*
 * Run fn on one item: build its call from the table, call fn, and return
 * what goes in the item's result slot: its value (code 0), or an error value
 * {index, code, message} (*code nonzero: the item failed, including an item
 * that does not fit its mode, PM_EINVAL). NULL only when even the error value
 * could not be allocated (*code is then nonzero too).
 *
 * This is the unit the executors share. The processes executor will run it
 * in the worker process on an item decoded with pm_value_decode and send the
 * returned value back through pm_value_encode; nothing here depends on
 * sharing memory with the caller.
 */
pm_value *pm__vcall_run(pm_vfn fn, void *user, const pm__vspec *spec,
                        const pm_value *item, size_t index, int *code);

/* The error value of an item that ended with `code` but no result (its
 * worker process crashed or timed out, or its result did not come back). */
pm_value *pm__lost_result(size_t index, int code);

/* An item shipped to another MPI rank: its index (8 bytes) then its
 * MessagePack, in a malloc'd buffer; 0 or PM_ENOMEM. And back: 0 with *v
 * and *index set, or PM_EINVAL. (vmap.c and viter.c) */
int pm__item_encode(const pm_value *v, size_t index, unsigned char **buf, size_t *len);
int pm__item_decode(const unsigned char *buf, size_t len, pm_value **v, size_t *index);

#endif
