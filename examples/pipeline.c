/* pipeline.c - a streaming pipeline where every stage runs at once:
 *
 *     load (source) -> pm_imap(parse) -> pm_imap(score) -> consume (this thread)
 *
 * This is parmapper's "concurrency + parallel" recipe. The source stands in
 * for reading a file: it produces text records one at a time. The first
 * pm_imap parses them, the second does the expensive part, and
 * pm_iter_source connects the two. Each stage keeps a bounded window of items
 * in flight, so memory stays flat however long the stream is.
 *
 *     pipeline [records]   (default 2000)
 */
#include <parmap.h>

#include <stdio.h>
#include <stdlib.h>

typedef struct { char text[48]; } record;               /* as loaded */
typedef struct { long id, lo, hi; } range;               /* parsed */
typedef struct { long id, lo, hi, primes; } result;      /* scored */

/* The load stage: a pm_source_fn writes the next record and returns 1, or
 * returns 0 at the end. It is called by one thread at a time. */
typedef struct { long next, count; } loader;

static int load(void *src, void *item) {
    loader *ld = src;
    if (ld->next >= ld->count) return 0;
    long id = ld->next++;
    snprintf(((record *)item)->text, sizeof(record), "%ld %ld %ld", id, id * 500, id * 500 + 500);
    return 1;
}

/* Stage a: text -> numbers. A malformed record is an item error (code 1). */
static int parse(void *user, const void *in, void *out) {
    (void)user;
    const char *s = ((const record *)in)->text;
    char *end;
    range *r = out;
    r->id = strtol(s, &end, 10);
    r->lo = strtol(end, &end, 10);
    r->hi = strtol(end, &end, 10);
    return *end == '\0' && r->lo <= r->hi ? 0 : 1;
}

/* Stage b: the expensive part, count the primes in [lo, hi). */
static int score(void *user, const void *in, void *out) {
    (void)user;
    const range *r = in;
    result *res = out;
    long count = 0;
    for (long n = r->lo < 2 ? 2 : r->lo; n < r->hi; n++) {
        int prime = 1;
        for (long d = 2; d * d <= n; d++)
            if (n % d == 0) { prime = 0; break; }
        count += prime;
    }
    *res = (result){ r->id, r->lo, r->hi, count };
    return 0;
}

int main(int argc, char **argv) {
    long count = argc > 1 ? strtol(argv[1], NULL, 10) : 2000;
    if (count <= 0) {
        fprintf(stderr, "usage: %s [records > 0]\n", argv[0]);
        return 2;
    }
    loader ld = { 0, count };

    /* Stage a reads the loader; stage b reads stage a through pm_iter_source.
     * Parsing is cheap, so stage a gets one worker; scoring gets one per CPU.
     * Results of b come in stream order (opts.unordered = 0). */
    pm_iter *a = pm_imap(parse, NULL, load, &ld, sizeof(record), sizeof(range),
                         &(pm_opts){ .threads = 1 });
    pm_iter *b = a ? pm_imap(score, NULL, pm_iter_source, a, sizeof(range), sizeof(result),
                             &(pm_opts){ .total = (size_t)count })
                   : NULL;
    if (!b) {
        fprintf(stderr, "out of memory\n");
        pm_iter_free(a);
        return 1;
    }

    /* Consume: results arrive while the loader and both stages keep working. */
    result r;
    size_t index;
    long total = 0, seen = 0;
    int rc, in_order = 1;
    while ((rc = pm_iter_next(b, &r, &index, NULL)) == 1) {
        in_order = in_order && r.id == (long)index;
        if (index < 3 || index == (size_t)count - 1)
            printf("record %4ld: [%ld, %ld) has %ld primes\n", r.id, r.lo, r.hi, r.primes);
        else if (index == 3)
            printf("...\n");
        total += r.primes;
        seen++;
    }
    /* Free downstream before upstream. Each returns the status its iterator
     * ended with (an error of stage a also ends stage b with that status). */
    int rb = pm_iter_free(b), ra = pm_iter_free(a);
    int status = rc < 0 ? rc : rb != PM_OK ? rb : ra;
    if (status != PM_OK) {
        fprintf(stderr, "pipeline failed: %s\n", pm_strerror(status));
        return 1;
    }
    if (!in_order || seen != count) {
        fprintf(stderr, "expected %ld results in order, got %ld%s\n", count, seen,
                in_order ? "" : " out of order");
        return 1;
    }
    printf("%ld records, %ld primes below %ld\n", seen, total, count * 500);
    return 0;
}
