/*
 * chunker.c - how many items go into the next chunk (policy in parmap.h,
 * "Chunking"). Every worker owns one pm__chunker and measures its own chunks,
 * so sizing needs no shared state: a tiny function quickly reaches chunks long
 * enough to hide the cost of claiming them, a slow one stays at a few items,
 * and the guided tail (remaining / 2 workers) makes workers finish together.
 */
#include "internal.h"

#include <stdint.h>

/* A chunk shorter than this doubles the next one: ~0.5 ms hides the ~50 ns of
 * claiming a chunk 10,000 times over. */
#define GROW_BELOW_S 0.0005
/* A chunk longer than this is cut back to TARGET_S: it bounds how late a
 * worker sees a cancellation and how stale progress can be. */
#define SHRINK_ABOVE_S 0.010
#define TARGET_S 0.005
/* The guided tail never cuts chunks below this much work: splitting the
 * last microseconds between workers costs more in claiming and timing
 * chunks (~0.1 us each) than it saves (a 100-item trivial map ran in 15
 * chunks). */
#define TAIL_FLOOR_S 0.000005
/* A fast chunk grows the next by the factor that would bring it to
 * GROW_BELOW_S, within [2, MAX_GROWTH]: tiny items reach long chunks in a
 * few steps instead of one doubling per chunk. */
#define MAX_GROWTH 16
/* Sizes never grow past this (a sanity bound, ~1e6 items of any kind). */
#define MAX_AUTO ((size_t)1 << 20)

void pm__chunker_init(pm__chunker *c, size_t fixed)
{
    c->fixed = fixed;
    c->size = 1;
    c->rate = 0;
}

size_t pm__chunker_next(const pm__chunker *c, size_t remaining, int workers)
{
    if (c->fixed)
        return c->fixed;
    size_t size = c->size;
    if (remaining != SIZE_MAX && workers > 0) {
        size_t tail = remaining / (2 * (size_t)workers);
        if (c->rate > 0 && tail < size) {
            double floor = TAIL_FLOOR_S / c->rate;
            if (floor > (double)tail)
                tail = floor < (double)size ? (size_t)floor : size;
        }
        if (size > tail)
            size = tail;
    }
    return size ? size : 1;
}

void pm__chunker_observe(pm__chunker *c, size_t items, double seconds)
{
    if (c->fixed || items == 0)
        return;
    c->rate = seconds / (double)items;
    if (seconds > SHRINK_ABOVE_S) {
        size_t target = (size_t)((double)items * (TARGET_S / seconds));
        c->size = target ? target : 1;
    } else if (seconds < GROW_BELOW_S && items >= c->size && c->size < MAX_AUTO) {
        /* Only a full-size chunk says the size can grow (tail chunks are
         * small because little is left, not because items are slow). */
        double factor = seconds > 0 ? GROW_BELOW_S / seconds : MAX_GROWTH;
        size_t grow = factor >= MAX_GROWTH ? MAX_GROWTH : factor <= 2 ? 2 : (size_t)factor;
        c->size = c->size <= MAX_AUTO / grow ? c->size * grow : MAX_AUTO;
    }
}

int pm__chunker_needs_time(const pm__chunker *c)
{
    return c->fixed == 0;
}

size_t pm__chunker_for_rate(double seconds_per_item)
{
    if (!(seconds_per_item > 0))
        return MAX_AUTO;
    double items = (GROW_BELOW_S * 2) / seconds_per_item;
    if (items < 1)
        return 1;
    if (items > (double)MAX_AUTO)
        return MAX_AUTO;
    return (size_t)items;
}
