/*
 * dict.c - the dict: string keys in insertion order, unique, looked up in
 * O(1) on average.
 *
 * Design: entries live in one array in insertion order (that order is what
 * JSON, MessagePack and iteration show). Small dicts (the usual kwargs) are
 * scanned linearly, comparing a stored 64-bit hash before the bytes. Past
 * INDEX_MIN entries an open-addressing index (linear probing, load <= 1/2,
 * slots hold entry index + 1) is kept beside the array, built eagerly on
 * insert and never on lookup: a dict that nobody modifies is read from many
 * threads at once, so reads must not write. The index matters for untrusted
 * input: a decoder must reject duplicate keys, and doing that by scanning
 * would make a 1 MB map quadratic. The hash is seeded per process (from an
 * address, which ASLR varies) so keys cannot be precomputed to collide.
 * There is no removal, which keeps probing simple (no tombstones).
 *
 * Views are dicts whose keys and values are borrowed: a call's merged
 * kwargs + kwvals is one, built per item without copying any value.
 */
#include "value_internal.h"

#include <stdlib.h>
#include <string.h>

#define INDEX_MIN 8
#define MAX_ENTRIES ((uint32_t)1 << 28) /* so 4 x entries fits the index's uint32 */

const pm_value pm__empty_dict = {.type = PM_T_DICT, .flags = PM__VF_STATIC, .depth = 1};

static const char seed_anchor;

uint64_t pm__hash(const char *key, size_t len)
{
    /* FNV-1a from a per-process start, then a final avalanche (splitmix64). */
    uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)(uintptr_t)&seed_anchor;
    const unsigned char *p = (const unsigned char *)key;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    return h ^ (h >> 31);
}

static int same_key(const pm__entry *e, const char *key, size_t klen, uint64_t hash)
{
    return e->hash == hash && e->klen == klen && memcmp(e->key, key, klen) == 0;
}

size_t pm__dict_find(const pm_value *d, const char *key, size_t klen, uint64_t hash)
{
    const pm__entry *e = d->u.d.e;
    if (d->u.d.slots) {
        uint32_t mask = d->u.d.nslots - 1;
        for (uint32_t p = (uint32_t)hash & mask; d->u.d.slots[p]; p = (p + 1) & mask) {
            uint32_t i = d->u.d.slots[p] - 1;
            if (same_key(&e[i], key, klen, hash))
                return i;
        }
        return SIZE_MAX;
    }
    for (uint32_t i = 0; i < d->u.d.len; i++)
        if (same_key(&e[i], key, klen, hash))
            return i;
    return SIZE_MAX;
}

/* Rebuild the index with room for 4x the entries (so the load stays under
 * 1/2 until the next rebuild), or leave a small dict without one. */
static int index_grow(pm_value *d)
{
    uint32_t len = d->u.d.len;
    if (len <= INDEX_MIN)
        return PM_OK;
    uint32_t n = 32;
    while (n < 4 * (size_t)len)
        n *= 2;
    uint32_t *slots = calloc(n, sizeof *slots);
    if (!slots)
        return PM_ENOMEM;
    for (uint32_t i = 0; i < len; i++) {
        uint32_t p = (uint32_t)d->u.d.e[i].hash & (n - 1);
        while (slots[p])
            p = (p + 1) & (n - 1);
        slots[p] = i + 1;
    }
    free(d->u.d.slots);
    d->u.d.slots = slots;
    d->u.d.nslots = n;
    return PM_OK;
}

/* Append an entry (key not present). On failure nothing is taken. */
static int append(pm_value *d, char *key, size_t klen, uint64_t hash, pm_value *val)
{
    if (d->u.d.len >= MAX_ENTRIES)
        return PM_ENOMEM;
    if (d->u.d.len == d->u.d.cap) {
        uint32_t cap = d->u.d.cap ? 2 * d->u.d.cap : 4;
        pm__entry *e = realloc(d->u.d.e, cap * sizeof *e);
        if (!e)
            return PM_ENOMEM;
        d->u.d.e = e;
        d->u.d.cap = cap;
    }
    uint32_t i = d->u.d.len++;
    d->u.d.e[i] = (pm__entry){.key = key, .klen = klen, .hash = hash, .val = val};
    if (d->u.d.slots && 2 * (size_t)d->u.d.len <= d->u.d.nslots) {
        uint32_t mask = d->u.d.nslots - 1, p = (uint32_t)hash & mask;
        while (d->u.d.slots[p])
            p = (p + 1) & mask;
        d->u.d.slots[p] = i + 1;
    } else if (index_grow(d) != PM_OK) {
        d->u.d.len--; /* a lookup must never miss: undo */
        return PM_ENOMEM;
    }
    if (!(d->flags & PM__VF_VIEW) && val->depth + 1 > d->depth)
        d->depth = (uint16_t)(val->depth + 1);
    return PM_OK;
}

/* The deepest child changed: recompute (only after a replacement). */
static void recompute_depth(pm_value *d)
{
    uint16_t depth = 1;
    for (uint32_t i = 0; i < d->u.d.len; i++)
        if (d->u.d.e[i].val->depth + 1 > depth)
            depth = (uint16_t)(d->u.d.e[i].val->depth + 1);
    d->depth = depth;
}

int pm__dict_put(pm_value *d, const char *key, size_t klen, pm_value *val, int reject_dup)
{
    if (val->depth >= PM_VALUE_MAX_DEPTH || klen == SIZE_MAX) {
        pm_value_free(val);
        return PM_EINVAL;
    }
    uint64_t hash = pm__hash(key, klen);
    size_t at = pm__dict_find(d, key, klen, hash);
    if (at != SIZE_MAX) {
        if (reject_dup) {
            pm_value_free(val);
            return PM_EINVAL;
        }
        pm_value *old = d->u.d.e[at].val;
        d->u.d.e[at].val = val;
        int was_deepest = old->depth + 1 == d->depth;
        pm_value_free(old);
        if (val->depth + 1 > d->depth)
            d->depth = (uint16_t)(val->depth + 1);
        else if (was_deepest)
            recompute_depth(d);
        return PM_OK;
    }
    char *copy = malloc(klen + 1);
    if (!copy) {
        pm_value_free(val);
        return PM_ENOMEM;
    }
    memcpy(copy, key, klen);
    copy[klen] = '\0';
    int rc = append(d, copy, klen, hash, val);
    if (rc != PM_OK) {
        free(copy);
        pm_value_free(val);
    }
    return rc;
}

void pm__dict_clear(pm_value *d)
{
    if (!(d->flags & PM__VF_VIEW))
        for (uint32_t i = 0; i < d->u.d.len; i++) {
            free(d->u.d.e[i].key);
            pm_value_free(d->u.d.e[i].val);
        }
    free(d->u.d.e);
    free(d->u.d.slots);
    d->u.d.e = NULL;
    d->u.d.slots = NULL;
    d->u.d.len = d->u.d.cap = d->u.d.nslots = 0;
}

int pm__dict_copy(pm_value *dst, const pm_value *src)
{
    for (uint32_t i = 0; i < src->u.d.len; i++) {
        const pm__entry *e = &src->u.d.e[i];
        char *key = malloc(e->klen + 1);
        pm_value *val = pm_value_clone(e->val);
        if (!key || !val || append(dst, key, e->klen, e->hash, val) != PM_OK) {
            free(key);
            pm_value_free(val);
            return PM_ENOMEM;
        }
        memcpy(key, e->key, e->klen + 1);
    }
    return PM_OK;
}

int pm__dict_equal(const pm_value *a, const pm_value *b)
{
    if (a->u.d.len != b->u.d.len)
        return 0;
    for (uint32_t i = 0; i < a->u.d.len; i++) {
        const pm__entry *e = &a->u.d.e[i];
        size_t j = pm__dict_find(b, e->key, e->klen, e->hash);
        if (j == SIZE_MAX || !pm_value_equal(e->val, b->u.d.e[j].val))
            return 0;
    }
    return 1;
}

/* ----------------------------------------------------------------- views */

void pm__dict_view_init(pm_value *view)
{
    memset(view, 0, sizeof *view);
    view->type = PM_T_DICT;
    view->flags = PM__VF_VIEW;
    view->depth = 1;
}

int pm__dict_view_put(pm_value *view, const pm__entry *from)
{
    size_t at = pm__dict_find(view, from->key, from->klen, from->hash);
    if (at != SIZE_MAX) {
        view->u.d.e[at].val = from->val;
        return PM_OK;
    }
    return append(view, from->key, from->klen, from->hash, from->val);
}

void pm__dict_view_release(pm_value *view)
{
    pm__dict_clear(view);
}

/* ------------------------------------------------------------- accessors */

const pm_value *pm_dict_getn(const pm_value *dict, const char *key, size_t key_len)
{
    if (!dict || dict->type != PM_T_DICT || !key)
        return NULL;
    size_t i = pm__dict_find(dict, key, key_len, pm__hash(key, key_len));
    return i == SIZE_MAX ? NULL : dict->u.d.e[i].val;
}

const pm_value *pm_dict_get(const pm_value *dict, const char *key)
{
    return key ? pm_dict_getn(dict, key, strlen(key)) : NULL;
}

const char *pm_dict_key(const pm_value *dict, size_t i, size_t *len)
{
    if (!dict || dict->type != PM_T_DICT || i >= dict->u.d.len)
        return NULL;
    if (len)
        *len = dict->u.d.e[i].klen;
    return dict->u.d.e[i].key;
}

const pm_value *pm_dict_value(const pm_value *dict, size_t i)
{
    if (!dict || dict->type != PM_T_DICT || i >= dict->u.d.len)
        return NULL;
    return dict->u.d.e[i].val;
}
