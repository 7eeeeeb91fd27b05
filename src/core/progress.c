/*
 * progress.c - progress reporting for one call: the user's callback and the
 * tqdm-like text bar on stderr. The caller (the thread running pm_map, or the
 * one calling pm_iter_next) feeds item counts to pm__progress_update as often
 * as it likes; one clock read and a comparison decide whether ~100 ms passed
 * since the last report, so feeding is cheap and reports stay at ~10 Hz. Only
 * one thread at a time uses a pm__progress, so nothing here takes a lock.
 *
 * The bar has two faces. On a terminal it is one line redrawn in place with
 * '\r', padded with spaces so that a shorter line hides the tail of a longer
 * one. Anywhere else (a log file, a CI console) redraws would pile up, so it
 * prints sparse full lines instead: one per new multiple of 10 % (known
 * total) or one every ~5 s (unknown total). Either way pm__progress_finish
 * prints the final line, and every redraw is built in a buffer first and
 * written with a single fwrite, so lines from other writers to stderr cannot
 * land in the middle of ours. Nothing is allocated: lines longer than
 * LINE_SIZE (a very long label) are truncated.
 */
#include "internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* At most one report (callback and redraw) per THROTTLE_S unless forced:
 * faster than the eye needs, slow enough to cost nothing. */
#define THROTTLE_S 0.1
/* Not a terminal and total unknown: one line per PLAIN_EVERY_S at most. */
#define PLAIN_EVERY_S 5.0
/* Cells of the bar: "|#####               |". */
enum { BAR_CELLS = 20 };
/* Longest line drawn, NUL included. */
enum { LINE_SIZE = 320 };

#if defined(__GNUC__) || defined(__clang__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

/* A fixed buffer being appended to. Invariant: len < size and buf[len] is
 * NUL, so the text is always terminated, and appends past the end are
 * silently cut (truncation is the contract of pm__progress_format). */
typedef struct sink {
    char *buf;
    size_t size, len;
} sink;

PRINTF_LIKE(2, 3)
static void put(sink *s, const char *fmt, ...)
{
    va_list ap;
    int n;
    size_t room = s->size - s->len;

    if (room <= 1)
        return; /* full: only the NUL fits */
    va_start(ap, fmt);
    n = vsnprintf(s->buf + s->len, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
        s->buf[s->len] = '\0'; /* encoding error: contents unspecified */
        return;
    }
    s->len += (size_t)n < room ? (size_t)n : room - 1;
}

/* part * by / whole, rounded down, for part <= whole: exact while the product
 * fits (floating point would show 29/100 as 28 %), approximate beyond. */
static unsigned scale(size_t part, size_t whole, unsigned by)
{
    if (part <= SIZE_MAX / by)
        return (unsigned)(part * by / whole);
    return (unsigned)((double)part / (double)whole * by);
}

/* Seconds as MM:SS, or H:MM:SS from an hour on; "?" for nonsense (NaN,
 * negative, or over three years, which only a near-zero rate produces). */
static void put_time(sink *s, double t)
{
    unsigned long sec;

    if (!(t >= 0) || t >= 1e8) {
        put(s, "?");
        return;
    }
    sec = (unsigned long)t; /* truncated like tqdm: 1.9 s shows 00:01 */
    if (sec >= 3600)
        put(s, "%lu:%02lu:%02lu", sec / 3600, sec / 60 % 60, sec % 60);
    else
        put(s, "%02lu:%02lu", sec / 60, sec % 60);
}

/* Two significant digits below 10, none after the point above: "2.5", "350". */
static void put_num(sink *s, double v)
{
    if (v < 9.95)
        put(s, "%.1f", v);
    else
        put(s, "%.0f", v);
}

/* "350 it/s", "1.2k it/s", "3.4M it/s"; below 1 it/s the inverse, "2.5 s/it",
 * which reads better than "0.4 it/s". "? it/s" before anything was measured. */
static void put_rate(sink *s, double rate)
{
    static const char *const units[] = { "", "k", "M", "G", "T" };
    int u = 0;

    if (!(rate > 0) || !isfinite(rate)) {
        put(s, "? it/s");
        return;
    }
    if (rate < 1) {
        put_num(s, 1 / rate);
        put(s, " s/it");
        return;
    }
    /* 999.5 rather than 1000: it would print as "1000", better "1.0k". */
    while (rate >= 999.5 && u < 4) {
        rate /= 1000;
        u++;
    }
    put_num(s, rate);
    put(s, "%s it/s", units[u]);
}

void pm__progress_format(char *buf, size_t size, const char *label,
                         const pm_progress *pr)
{
    sink s = { buf, size, 0 };

    if (!buf || size == 0)
        return;
    buf[0] = '\0';
    if (!pr)
        return;
    if (label)
        put(&s, "%s: ", label);
    if (pr->total) {
        /* A stream may yield more than its announced total: stay at 100 %. */
        size_t d = pr->done < pr->total ? pr->done : pr->total;
        unsigned cells = scale(d, pr->total, BAR_CELLS);
        char bar[BAR_CELLS + 1];

        memset(bar, '#', cells);
        memset(bar + cells, ' ', BAR_CELLS - cells);
        bar[BAR_CELLS] = '\0';
        put(&s, "%u%%|%s| %zu/%zu [", scale(d, pr->total, 100), bar,
            pr->done, pr->total);
        put_time(&s, pr->elapsed_s);
        put(&s, "<");
        if (pr->done >= pr->total)
            put_time(&s, 0);
        else if (pr->rate > 0)
            put_time(&s, pr->eta_s);
        else
            put(&s, "?"); /* nothing done yet: no estimate */
    } else {
        put(&s, "%zu it [", pr->done);
        put_time(&s, pr->elapsed_s);
    }
    put(&s, ", ");
    put_rate(&s, pr->rate);
    /* Failures matter more than speed in PM_RETURN mode: show them (tqdm's
     * postfix place), but only when there are some. */
    if (pr->failed)
        put(&s, ", %zu failed", pr->failed);
    put(&s, "]");
}

/* What the callback and the bar are told at time `now`. */
static void snapshot(const pm__progress *p, pm_progress *pr, size_t done,
                     size_t failed, double now)
{
    double elapsed = now - p->start;

    if (!(elapsed > 0))
        elapsed = 0;
    pr->done = done;
    pr->total = p->total;
    pr->failed = failed;
    pr->elapsed_s = elapsed;
    pr->rate = elapsed > 0 ? (double)done / elapsed : 0;
    pr->eta_s = p->total && pr->rate > 0 && done < p->total
                    ? (double)(p->total - done) / pr->rate
                    : 0;
}

/* One redraw, written at once. On a terminal: "\r", the line, blanks over
 * the rest of the previous line, and "\n" only at the end; elsewhere a whole
 * line every time. */
static void draw(pm__progress *p, const pm_progress *pr, int final)
{
    char line[LINE_SIZE];
    char out[2 * LINE_SIZE + 2]; /* "\r" line blanks "\n" NUL */
    sink s = { out, sizeof out, 0 };
    size_t len;

    pm__progress_format(line, sizeof line, p->label, pr);
    len = strlen(line);
    if (p->tty) {
        put(&s, "\r%s", line);
        if (p->drawn > len)
            put(&s, "%*s", (int)(p->drawn - len), "");
        p->drawn = len;
        if (final)
            put(&s, "\n");
    } else {
        put(&s, "%s\n", line);
    }
    fwrite(out, 1, s.len, stderr);
    fflush(stderr);
}

int pm__progress_init(pm__progress *p, const pm_opts *opts, size_t total)
{
    *p = (pm__progress){ 0 };
    p->total = total;
    if (opts) {
        p->fn = opts->on_progress;
        p->user = opts->progress_user;
        p->bar = opts->progress_bar != 0;
        p->label = opts->label;
    }
    if (!p->fn && !p->bar)
        return 0;
    p->tty = p->bar && pm__isatty(2);
    p->start = p->last = p->last_line = pm__now();
    /* 0 % is not worth a line of its own in a log: the first plain line is
     * printed at 10 %. */
    p->last_decile = 0;
    return 1;
}

void pm__progress_update(pm__progress *p, size_t done, size_t failed, int force)
{
    pm_progress pr;
    double now;

    if (p->finished || (!p->fn && !p->bar))
        return;
    now = pm__now();
    if (!force && now - p->last < THROTTLE_S)
        return;
    p->last = now;
    snapshot(p, &pr, done, failed, now);
    if (p->fn)
        p->fn(p->user, &pr);
    if (!p->bar)
        return;
    if (p->tty) {
        draw(p, &pr, 0);
    } else if (p->total) {
        size_t d = done < p->total ? done : p->total;
        int decile = (int)(scale(d, p->total, 100) / 10);

        /* 100 % is left to pm__progress_finish, which always prints it:
         * printing it here too would repeat the last line. */
        if (decile > p->last_decile && decile < 10) {
            p->last_decile = decile;
            draw(p, &pr, 0);
        }
    } else if (now - p->last_line >= PLAIN_EVERY_S) {
        p->last_line = now;
        draw(p, &pr, 0);
    }
}

void pm__progress_finish(pm__progress *p, size_t done, size_t failed)
{
    pm_progress pr;

    if (p->finished)
        return;
    p->finished = 1; /* first, so a callback calling back in changes nothing */
    if (!p->fn && !p->bar)
        return;
    snapshot(p, &pr, done, failed, pm__now());
    if (p->fn)
        p->fn(p->user, &pr);
    if (p->bar)
        draw(p, &pr, 1);
}
