/*
 * test_progress.c - unit test of src/core/progress.c: the bar's text
 * (pm__progress_format), the rate and ETA arithmetic, the ~10 Hz throttle of
 * the callback, the final report, and what the bar writes to stderr.
 *
 * Time is not mocked: the throttle is checked against the wall time the loop
 * really took, and "time passing" is simulated white-box by moving the
 * struct's start/last/last_line fields back. The bar tests point fd 2 at a
 * temporary file (dup/dup2); since check.h reports on stderr and exits, they
 * check nothing until fd 2 is restored.
 */
#include "check.h" /* first: it selects the POSIX feature level */

#include "core/internal.h"

#if defined(__wasi__)
#define HAVE_DUP 0 /* WASI has no dup: the stderr tests are skipped */
#else
#include <unistd.h> /* dup, dup2 */
#define HAVE_DUP 1
#endif

#define CHECK_EQ(a, b) CHECK_EQ_SIZE(a, b)
/* check.h pastes the checked expression into a printf format, so text with
 * '%' in it must reach its macros through locals. */
#define CHECK_STR(a, b)                                                      \
    do {                                                                     \
        const char *got = (a), *want = (b);                                  \
        CHECK_EQ_STR(got, want);                                             \
    } while (0)
#define CHECK_PREFIX(s, prefix)                                              \
    do {                                                                     \
        const char *text = (s), *prefix_ = (prefix);                         \
        if (strncmp(text, prefix_, strlen(prefix_)) != 0)                    \
            fprintf(stderr, "    \"%s\" does not start with \"%s\"\n",      \
                    text, prefix_);                                          \
        CHECK(strncmp(text, prefix_, strlen(prefix_)) == 0);                 \
    } while (0)
#define CHECK_NEAR(a, b, tol) CHECK_OP_DBL(fabs((a) - (b)), <=, tol)
#define CHECK_HAS(hay, needle)                                               \
    do {                                                                     \
        const char *h_ = (hay), *n_ = (needle);                              \
        if (!strstr(h_, n_))                                                 \
            fprintf(stderr, "    \"%s\" lacks \"%s\"\n", h_, n_);            \
        CHECK(strstr(h_, n_) != NULL);                                       \
    } while (0)

/* ------------------------------------------------------------ formatting */

static const char *fmt(const char *label, size_t done, size_t total,
                       size_t failed, double elapsed, double rate, double eta)
{
    static char buf[512];
    pm_progress pr = { done, total, failed, elapsed, rate, eta };
    pm__progress_format(buf, sizeof buf, label, &pr);
    return buf;
}

static void test_format(void)
{
    CHECK_STR(fmt(NULL, 0, 1000, 0, 0, 0, 0),
              "0%|                    | 0/1000 [00:00<?, ? it/s]");
    CHECK_STR(fmt("label", 420, 1000, 0, 1.2, 350, 1.66),
              "label: 42%|########            | 420/1000 [00:01<00:01, 350 it/s]");
    CHECK_STR(fmt("x", 1000, 1000, 0, 2.5, 400, 0),
              "x: 100%|####################| 1000/1000 [00:02<00:00, 400 it/s]");
    /* Integer percentages: 29/100 must not come out as 28 %. */
    CHECK_HAS(fmt(NULL, 29, 100, 0, 1, 29, 2.4), "29%|#####     ");
    /* A stream longer than announced stays at 100 % with a full bar. */
    CHECK_STR(fmt(NULL, 1200, 1000, 0, 3, 400, 0),
              "100%|####################| 1200/1000 [00:03<00:00, 400 it/s]");
    /* Unknown total: count and rate only. */
    CHECK_STR(fmt("label", 420, 0, 0, 1.2, 350, 0),
              "label: 420 it [00:01, 350 it/s]");
    CHECK_STR(fmt(NULL, 0, 0, 0, 0, 0, 0), "0 it [00:00, ? it/s]");
    /* Failures are shown only when there are some. */
    CHECK_STR(fmt(NULL, 50, 100, 3, 5, 10, 5),
              "50%|##########          | 50/100 [00:05<00:05, 10 it/s, 3 failed]");

    /* Times: MM:SS, H:MM:SS past an hour. */
    CHECK_HAS(fmt(NULL, 1, 10000, 0, 1, 1, 9999), "[00:01<2:46:39, 1.0 it/s]");
    CHECK_HAS(fmt(NULL, 1, 0, 0, 3725.9, 0.5, 0), "[1:02:05, 2.0 s/it]");
    CHECK_HAS(fmt(NULL, 1, 100, 0, 59.99, 1, 99), "[00:59<01:39,");
    CHECK_HAS(fmt(NULL, 1, 100, 0, 360000, 1, 1e12), "[100:00:00<?,");

    /* Rates. */
    CHECK_HAS(fmt(NULL, 1, 0, 0, 1, 0.4, 0), ", 2.5 s/it]");
    CHECK_HAS(fmt(NULL, 1, 0, 0, 1, 0.01, 0), ", 100 s/it]");
    CHECK_HAS(fmt(NULL, 1, 0, 0, 1, 2.5, 0), ", 2.5 it/s]");
    CHECK_HAS(fmt(NULL, 1, 0, 0, 1, 12.6, 0), ", 13 it/s]");
    CHECK_HAS(fmt(NULL, 1, 0, 0, 1, 999.4, 0), ", 999 it/s]");
    CHECK_HAS(fmt(NULL, 1, 0, 0, 1, 999.7, 0), ", 1.0k it/s]");
    CHECK_HAS(fmt(NULL, 1, 0, 0, 1, 1234, 0), ", 1.2k it/s]");
    CHECK_HAS(fmt(NULL, 1, 0, 0, 1, 45678, 0), ", 46k it/s]");
    CHECK_HAS(fmt(NULL, 1, 0, 0, 1, 3.4e6, 0), ", 3.4M it/s]");
    CHECK_HAS(fmt(NULL, 1, 0, 0, 1, 7.1e9, 0), ", 7.1G it/s]");
    CHECK_HAS(fmt(NULL, 1, 0, 0, 1, NAN, 0), ", ? it/s]");
    CHECK_HAS(fmt(NULL, 1, 0, 0, 1, INFINITY, 0), ", ? it/s]");
}

static void test_format_truncation(void)
{
    char label[200], full[512], buf[24];
    pm_progress pr = { 420, 1000, 0, 1.2, 350, 1.66 };
    size_t i;

    memset(label, 'a', sizeof label - 1);
    label[sizeof label - 1] = '\0';
    pm__progress_format(full, sizeof full, label, &pr);
    CHECK_EQ_INT(strncmp(full, label, 199), 0);
    CHECK_HAS(full, "aa: 42%|");

    /* Into a small buffer: a NUL-terminated prefix, nothing written past it. */
    memset(buf, 'Z', sizeof buf);
    pm__progress_format(buf, 16, label, &pr);
    CHECK_EQ(strlen(buf), 15);
    CHECK_EQ_INT(strncmp(buf, full, 15), 0);
    for (i = 16; i < sizeof buf; i++)
        CHECK_EQ_INT(buf[i], 'Z');

    /* Cut inside the bar and inside the numbers, too. */
    for (i = 1; i <= sizeof buf; i++) {
        memset(buf, 'Z', sizeof buf);
        pm__progress_format(buf, i, "job", &pr);
        CHECK_EQ(strlen(buf), i - 1);
        if (i < sizeof buf)
            CHECK_EQ_INT(buf[i], 'Z');
    }

    /* size 0 writes nothing; a NULL progress gives "". */
    buf[0] = 'Z';
    pm__progress_format(buf, 0, "job", &pr);
    CHECK_EQ_INT(buf[0], 'Z');
    pm__progress_format(buf, sizeof buf, "job", NULL);
    CHECK_STR(buf, "");
}

/* -------------------------------------------------------------- callback */

typedef struct seen {
    int calls;
    pm_progress last;
} seen;

static void on_progress(void *user, const pm_progress *p)
{
    seen *s = user;
    s->calls++;
    s->last = *p;
}

static void test_init(void)
{
    pm__progress p;
    seen s = { 0 };

    CHECK_EQ(pm__progress_init(&p, NULL, 10), 0);
    pm__progress_update(&p, 5, 0, 1);
    pm__progress_finish(&p, 10, 0);
    CHECK_EQ(pm__progress_init(&p, &(pm_opts){ .label = "x" }, 10), 0);
    pm__progress_update(&p, 5, 0, 1);
    pm__progress_finish(&p, 10, 0);

    CHECK_EQ(pm__progress_init(&p, &(pm_opts){ .on_progress = on_progress,
                                               .progress_user = &s }, 10), 1);
    CHECK_NEAR(p.start, pm__now(), 1.0); /* the start time is recorded */
    CHECK_EQ(p.bar, 0);
    CHECK_EQ(p.total, 10);
}

static void test_math(void)
{
    pm__progress p;
    seen s = { 0 };
    pm_opts o = { .on_progress = on_progress, .progress_user = &s };

    pm__progress_init(&p, &o, 1000);
    p.start -= 2.0; /* as if started 2 s ago */
    pm__progress_update(&p, 500, 7, 1);
    CHECK_EQ(s.calls, 1);
    CHECK_EQ(s.last.done, 500);
    CHECK_EQ(s.last.total, 1000);
    CHECK_EQ(s.last.failed, 7);
    CHECK_NEAR(s.last.elapsed_s, 2.0, 0.5);
    CHECK_NEAR(s.last.rate, 500 / s.last.elapsed_s, 1e-9);
    CHECK_NEAR(s.last.eta_s, 500 / s.last.rate, 1e-9);
    CHECK_NEAR(s.last.eta_s, s.last.elapsed_s, 1e-9); /* half done: as long again */

    pm__progress_update(&p, 0, 0, 1); /* nothing done: rate 0, no eta */
    CHECK_EQ(s.last.rate, 0);
    CHECK_EQ(s.last.eta_s, 0);

    pm__progress_finish(&p, 1000, 7);
    CHECK_EQ(s.last.done, 1000);
    CHECK_EQ(s.last.eta_s, 0);
    CHECK_NEAR(s.last.rate, 1000 / s.last.elapsed_s, 1e-9);

    /* Unknown total: a rate, never an eta. */
    s = (seen){ 0 };
    pm__progress_init(&p, &o, 0);
    p.start -= 4.0;
    pm__progress_update(&p, 100, 0, 1);
    CHECK_EQ(s.last.total, 0);
    CHECK_NEAR(s.last.rate, 100 / s.last.elapsed_s, 1e-9);
    CHECK_EQ(s.last.eta_s, 0);
}

static void test_throttle(void)
{
    pm__progress p;
    seen s = { 0 };
    pm_opts o = { .on_progress = on_progress, .progress_user = &s };
    double t0 = pm__now(), took;
    int i, before;

    pm__progress_init(&p, &o, 1000000);
    for (i = 0; i < 200000 / PMT_SCALE; i++)
        pm__progress_update(&p, (size_t)i % 1000000, 0, 0);
    took = pm__now() - t0;
    /* At most one call per ~100 ms of what the loop really took. */
    CHECK_OP_INT(s.calls, <=, (int)(took / 0.1) + 1);

    /* 100 ms later an update reports again, once. */
    before = s.calls;
    p.last -= 0.2;
    pm__progress_update(&p, 10, 0, 0);
    pm__progress_update(&p, 11, 0, 0);
    CHECK_EQ(s.calls, before + 1);
    CHECK_EQ(s.last.done, 10);

    /* Forced updates always report. */
    before = s.calls;
    for (i = 0; i < 10; i++)
        pm__progress_update(&p, 100 + (size_t)i, 0, 1);
    CHECK_EQ(s.calls, before + 10);
    CHECK_EQ(s.last.done, 109);

    /* finish always reports, once; nothing reports after it. */
    before = s.calls;
    pm__progress_finish(&p, 1000000, 2);
    CHECK_EQ(s.calls, before + 1);
    CHECK_EQ(s.last.done, 1000000);
    CHECK_EQ(s.last.total, 1000000);
    CHECK_EQ(s.last.failed, 2);
    pm__progress_finish(&p, 1000000, 2);
    pm__progress_update(&p, 1000000, 2, 1);
    p.last -= 1;
    pm__progress_update(&p, 1000000, 2, 0);
    CHECK_EQ(s.calls, before + 1);

    /* finish right after init (a map faster than 100 ms) still reports. */
    s = (seen){ 0 };
    pm__progress_init(&p, &o, 3);
    pm__progress_update(&p, 3, 0, 0);
    pm__progress_finish(&p, 3, 0);
    CHECK_EQ(s.calls, 1);
    CHECK_EQ(s.last.done, 3);
    CHECK_EQ(s.last.total, 3);
}

/* ------------------------------------------------------------ the bar */

#if HAVE_DUP

static FILE *capture_file;
static int saved_fd = -1;

/* Point fd 2 at a fresh temporary file. */
static int capture_start(void)
{
    fflush(stderr);
    capture_file = tmpfile();
    if (!capture_file)
        return 0;
    saved_fd = dup(2);
    if (saved_fd >= 0 && dup2(fileno(capture_file), 2) >= 0)
        return 1;
    printf("cannot capture stderr: a bar test is skipped\n");
    if (saved_fd >= 0)
        close(saved_fd);
    fclose(capture_file);
    return 0;
}

/* Restore fd 2 and return what was written to it (NUL-terminated). */
static const char *capture_end(void)
{
    static char text[16384];
    size_t n;

    fflush(stderr);
    dup2(saved_fd, 2);
    close(saved_fd);
    rewind(capture_file); /* fd 2 shared the file offset */
    n = fread(text, 1, sizeof text - 1, capture_file);
    text[n] = '\0';
    fclose(capture_file);
    return text;
}

static int count_char(const char *s, char c)
{
    int n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

/* Not a terminal, known total: a line per new 10 %, then the final one. */
static void test_bar_plain(void)
{
    pm__progress p;
    const char *out, *line;
    char want[32];
    size_t i;
    int k, ok;

    if (!capture_start())
        return;
    ok = pm__progress_init(&p, &(pm_opts){ .progress_bar = 1, .label = "job" },
                           1000);
    for (i = 0; i <= 1000; i += 5)
        pm__progress_update(&p, i, 0, 1);
    pm__progress_finish(&p, 1000, 0);
    pm__progress_finish(&p, 1000, 0);
    out = capture_end();

    CHECK_EQ(ok, 1);
    CHECK_EQ(p.tty, 0);
    CHECK_EQ_INT(count_char(out, '\r'), 0);
    CHECK_EQ_INT(count_char(out, '\n'), 10);
    CHECK(out[0] && out[strlen(out) - 1] == '\n');
    line = out;
    for (k = 1; k <= 10 && line; k++) {
        snprintf(want, sizeof want, "job: %d%%|", k * 10);
        CHECK_PREFIX(line, want);
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    CHECK_HAS(out, "job: 100%|####################| 1000/1000 [");

    /* Jumps print one line for the step reached, not one per step crossed;
     * unforced updates within 100 ms print nothing. */
    if (!capture_start())
        return;
    pm__progress_init(&p, &(pm_opts){ .progress_bar = 1 }, 1000);
    pm__progress_update(&p, 50, 0, 1);  /* 5 %: no line */
    pm__progress_update(&p, 350, 0, 1); /* 35 %: one line */
    pm__progress_update(&p, 390, 0, 1); /* same step: none */
    pm__progress_update(&p, 900, 0, 0); /* throttled */
    pm__progress_finish(&p, 400, 1);    /* a map stopped early */
    out = capture_end();
    CHECK_EQ_INT(count_char(out, '\n'), 2);
    CHECK_PREFIX(out, "35%|");
    CHECK_HAS(out, "\n40%|########            | 400/1000 [");
    CHECK_HAS(out, ", 1 failed]\n");
}

/* Not a terminal, unknown total: a line every ~5 s, then the final one. */
static void test_bar_plain_unknown(void)
{
    pm__progress p;
    const char *out;
    size_t i;

    if (!capture_start())
        return;
    pm__progress_init(&p, &(pm_opts){ .progress_bar = 1, .label = "s" }, 0);
    for (i = 0; i < 100; i++)
        pm__progress_update(&p, i, 0, 1); /* within 5 s: no line */
    p.last_line -= 6;                      /* as if 6 s passed */
    pm__progress_update(&p, 100, 0, 1);
    pm__progress_update(&p, 101, 0, 1);
    pm__progress_finish(&p, 200, 0);
    out = capture_end();
    CHECK_EQ_INT(count_char(out, '\n'), 2);
    CHECK_PREFIX(out, "s: 100 it [");
    CHECK_HAS(out, "\ns: 200 it [");
}

/* A terminal (simulated: tty forced on a file): in-place redraws, blanks
 * over a longer previous line, one '\n' at the very end. */
static void test_bar_tty(void)
{
    pm__progress p;
    const char *out, *a, *b, *c;
    seen s = { 0 };

    if (!capture_start())
        return;
    pm__progress_init(&p, &(pm_opts){ .progress_bar = 1, .label = "t",
                                      .on_progress = on_progress,
                                      .progress_user = &s }, 100);
    p.tty = 1;
    pm__progress_update(&p, 10, 12345, 1); /* long: ", 12345 failed" */
    pm__progress_update(&p, 20, 0, 1);     /* shorter */
    pm__progress_finish(&p, 100, 0);
    pm__progress_finish(&p, 100, 0);
    out = capture_end();
    CHECK_EQ(s.calls, 3);
    CHECK_EQ_INT(count_char(out, '\r'), 3);
    CHECK_EQ_INT(count_char(out, '\n'), 1);
    CHECK(out[0] == '\r' && out[strlen(out) - 1] == '\n');
    a = out + 1;
    b = strchr(a, '\r');
    c = b ? strchr(b + 1, '\r') : NULL;
    CHECK(b && c);
    if (b && c) {
        size_t la = (size_t)(b - a), lb = (size_t)(c - b - 1);
        CHECK_PREFIX(a, "t: 10%|");
        CHECK_PREFIX(b + 1, "t: 20%|");
        CHECK(lb >= la);            /* padded to cover the longer line */
        CHECK_EQ_INT(b[lb], ' ');       /* ...with blanks */
        CHECK(strstr(b, "failed") == NULL);
        CHECK_PREFIX(c + 1, "t: 100%|");
    }
}

#endif /* HAVE_DUP */

int main(void)
{
    test_format();
    test_format_truncation();
    test_init();
    test_math();
    test_throttle();
#if HAVE_DUP
    test_bar_plain();
    test_bar_plain_unknown();
    test_bar_tty();
#else
    printf("stderr capture not available: bar tests skipped\n");
#endif
    return pmt_done("test_progress");
}
