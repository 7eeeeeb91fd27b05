/*
 * test_vectors.c - the shared star / kwstar vectors (tests/vectors/
 * star_kwstar.json, also run by the JavaScript package) on every executor of
 * conformance.h, through pm_vmap and through pm_vimap (ordered and
 * unordered), with automatic and one-item chunks. Cases whose outcome does
 * not depend on which failure is seen first (PM_RETURN, or no failure) also
 * run scaled up (the items repeated), so that threads really share the work.
 *
 * The vectors file is found through, in order: the PM_SOURCE_DIR compile
 * definition (the source tree's root), argv[1] (the file itself), the
 * directory of this source file (__FILE__ is absolute under CMake), and
 * finally ../../tests/vectors/ relative to the working directory.
 */
#include "check.h"
#include "conformance.h"

#include "parmap_value.h"

#define VECTORS "vectors/star_kwstar.json"
#define SCALE_COPIES 150

/* ------------------------------------------------------ the functions */

static int fn_echo(void *user, pm_call *call, pm_value **result)
{
    (void)user;
    pm_value *args = pm_value_list(), *out = pm_value_dict();
    for (int i = 0; i < call->argc; i++)
        pm_list_push(args, pm_value_clone(call->argv[i]));
    pm_dict_set(out, "args", args);
    pm_dict_set(out, "kwargs", pm_value_clone(call->kwargs));
    *result = out;
    return 0;
}

static int fn_add(void *user, pm_call *call, pm_value **result)
{
    (void)user;
    int64_t isum = 0;
    double dsum = 0;
    int is_double = 0;
    for (int i = 0; i <= call->argc; i++) {
        const pm_value *v = i < call->argc ? call->argv[i] : pm_kw(call, "offset");
        int64_t x;
        double d;
        if (i == call->argc && !v)
            break; /* no offset */
        if (pm_value_get_int(v, &x) == PM_OK) {
            if ((x > 0 && isum > INT64_MAX - x) || (x < 0 && isum < INT64_MIN - x))
                return pm_call_fail(call, 3, "add: int overflow");
            isum += x;
        } else if (pm_value_get_double(v, &d) == PM_OK) {
            dsum += d;
            is_double = 1;
        } else {
            return pm_call_fail(call, 2, "add: %s is not a number (%s)",
                                i < call->argc ? "an argument" : "offset",
                                pm_type_name(pm_value_type(v)));
        }
    }
    *result = is_double ? pm_value_double((double)isum + dsum) : pm_value_int(isum);
    return 0;
}

static int fn_fail_if_negative(void *user, pm_call *call, pm_value **result)
{
    (void)user;
    const pm_value *v = pm_arg(call, 0);
    if (!v)
        return pm_call_fail(call, 2, "fail_if_negative: no argument");
    if (pm_arg_double(call, 0, 0) < 0)
        return pm_call_fail(call, 1, "negative: %g", pm_arg_double(call, 0, 0));
    *result = pm_value_clone(v);
    return 0;
}

static pm_vfn function_named(const char *name)
{
    if (strcmp(name, "echo") == 0)
        return fn_echo;
    if (strcmp(name, "add") == 0)
        return fn_add;
    if (strcmp(name, "fail_if_negative") == 0)
        return fn_fail_if_negative;
    return NULL;
}

/* ------------------------------------------------------------ loading */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    *len = n;
    return buf;
}

static char *find_vectors(int argc, char **argv, size_t *len, char *where, size_t size)
{
    char path[4096];
    char *text = NULL;
#ifdef PM_SOURCE_DIR
    snprintf(path, sizeof path, "%s/tests/" VECTORS, PM_SOURCE_DIR);
    if ((text = read_file(path, len)))
        return snprintf(where, size, "%s", path), text;
#endif
    if (argc > 1 && (text = read_file(argv[1], len)))
        return snprintf(where, size, "%s", argv[1]), text;
    const char *self = __FILE__, *slash = strrchr(self, '/');
    if (slash) {
        snprintf(path, sizeof path, "%.*s/" VECTORS, (int)(slash - self), self);
        if ((text = read_file(path, len)))
            return snprintf(where, size, "%s", path), text;
    }
    snprintf(path, sizeof path, "../../tests/" VECTORS);
    if ((text = read_file(path, len)))
        return snprintf(where, size, "%s", path), text;
    return NULL;
}

/* ---------------------------------------------------------- comparing */

/* got matches want: as pm_value_equal, except that an expected error
 * matches any error with the same index (+ shift) and code, and its message
 * only when the expected one has a message. */
static int match(const pm_value *want, const pm_value *got, size_t shift)
{
    pm_type t = pm_value_type(want);
    if (t != pm_value_type(got))
        return 0;
    if (t == PM_T_ERROR) {
        size_t wi, gi;
        int wc, gc;
        const char *wm, *gm;
        pm_value_get_error(want, &wi, &wc, &wm);
        pm_value_get_error(got, &gi, &gc, &gm);
        return wi + shift == gi && wc == gc && (!wm[0] || strcmp(wm, gm) == 0);
    }
    if (t == PM_T_LIST) {
        if (pm_value_len(want) != pm_value_len(got))
            return 0;
        for (size_t i = 0; i < pm_value_len(want); i++)
            if (!match(pm_list_get(want, i), pm_list_get(got, i), shift))
                return 0;
        return 1;
    }
    return pm_value_equal(want, got);
}

/* Print both sides when they differ. */
static void check_match(const pm_value *want, const pm_value *got, size_t shift)
{
    if (!match(want, got, shift)) {
        char *a = NULL, *b = NULL;
        pm_value_to_json(want, &a, NULL);
        pm_value_to_json(got, &b, NULL);
        fprintf(stderr, "    want (index shift %zu): %s\n    got:  %s\n", shift,
                a ? a : "(null)", b ? b : "(null)");
        free(a);
        free(b);
    }
    CHECK(match(want, got, shift));
}

/* ------------------------------------------------------------ running */

typedef struct vcase {
    const char *name;
    pm_vfn fn;
    const pm_value *items, *want_results, *want_error;
    pm_vopts opts;
} vcase;

/* Read one case's options into c->opts (the executor is set later). */
static void load_case(vcase *c, const pm_value *v)
{
    const pm_value *o = pm_dict_get(v, "options"), *e = pm_dict_get(v, "expect");
    const char *s;
    int b;
    CHECK(pm_value_get_str(pm_dict_get(v, "name"), &c->name, NULL) == PM_OK);
    CHECK_CTX("case %s", c->name);
    CHECK(pm_value_get_str(pm_dict_get(v, "function"), &s, NULL) == PM_OK);
    CHECK((c->fn = function_named(s)) != NULL);
    c->items = pm_dict_get(v, "items");
    CHECK_EQ_INT(pm_value_type(c->items), PM_T_LIST);
    CHECK_EQ_INT(pm_value_type(o), PM_T_DICT);
    memset(&c->opts, 0, sizeof c->opts);
    const pm_value *star = pm_dict_get(o, "star");
    if (star && pm_value_type(star) == PM_T_NULL)
        c->opts.star = PM_STAR_NONE;
    else if (pm_value_get_bool(star, &b) == PM_OK)
        c->opts.star = b ? PM_STAR_YES : PM_STAR_NO;
    c->opts.kwstar = pm_value_get_bool(pm_dict_get(o, "kwstar"), &b) == PM_OK && b;
    c->opts.args = pm_dict_get(o, "args");
    c->opts.kwargs = pm_dict_get(o, "kwargs");
    s = "raise";
    pm_value_get_str(pm_dict_get(o, "exception"), &s, NULL);
    c->opts.base.on_error = strcmp(s, "return") == 0 ? PM_RETURN : PM_RAISE;
    c->want_results = pm_dict_get(e, "results");
    c->want_error = pm_dict_get(e, "error");
    CHECK((c->want_results != NULL) != (c->want_error != NULL));
}

/* The expected error as an error value (for match). */
static pm_value *error_of(const pm_value *e)
{
    int64_t index = -1, code = 0;
    CHECK_STATUS(PM_OK, pm_value_get_int(pm_dict_get(e, "index"), &index));
    CHECK_STATUS(PM_OK, pm_value_get_int(pm_dict_get(e, "code"), &code));
    return pm_value_error((size_t)index, (int)code, "");
}

/* items repeated `copies` times. */
static pm_value *repeat(const pm_value *list, int copies)
{
    pm_value *r = pm_value_list();
    for (int k = 0; k < copies; k++)
        for (size_t i = 0; i < pm_value_len(list); i++)
            pm_list_push(r, pm_value_clone(pm_list_get(list, i)));
    return r;
}

static void check_results(const vcase *c, const pm_value *got, int copies)
{
    size_t n = pm_value_len(c->want_results);
    CHECK_EQ_INT(pm_value_type(got), PM_T_LIST);
    CHECK_EQ_SIZE(pm_value_len(got), n * (size_t)copies);
    for (int k = 0; k < copies; k++)
        for (size_t i = 0; i < n; i++)
            check_match(pm_list_get(c->want_results, i), pm_list_get(got, (size_t)k * n + i),
                        (size_t)k * n);
}

static void run_vmap(const vcase *c, const pm_value *items, int copies)
{
    pm_value *res = NULL;
    pm_report rep;
    pm_vopts o = c->opts;
    o.report = &rep;
    int rc = pm_vmap(c->fn, NULL, items, &o, &res);
    CHECK_EQ_INT(rep.status, rc);
#ifdef PMT_MPI
    if (pm_mpi_rank() > 0) {
        /* Other ranks: rank 0's status and report, no results. */
        CHECK_STATUS(c->want_results ? PM_OK : PM_EITEM, rc);
        CHECK(res == NULL);
        if (c->want_results)
            CHECK_EQ_SIZE(rep.done, pm_value_len(items));
        return;
    }
#endif
    if (c->want_results) {
        CHECK_STATUS(PM_OK, rc);
        check_results(c, res, copies);
        CHECK_EQ_SIZE(rep.done, pm_value_len(items));
    } else {
        CHECK_STATUS(PM_EITEM, rc);
        pm_value *want = error_of(c->want_error);
        check_match(want, res, 0);
        size_t wi = 0;
        pm_value_get_error(want, &wi, NULL, NULL);
        CHECK_EQ_SIZE(rep.first_error_index, wi);
        CHECK(rep.failed >= 1);
        pm_value_free(want);
    }
    pm_value_free(res);
}

typedef struct list_src {
    const pm_value *list;
    size_t next;
} list_src;

static int from_list(void *src, pm_value **item)
{
    list_src *s = src;
    if (s->next >= pm_value_len(s->list))
        return 0;
    *item = pm_value_clone(pm_list_get(s->list, s->next++));
    return 1;
}

static void run_vimap(const vcase *c, const pm_value *items, int copies, int unordered)
{
    list_src src = {items, 0};
    pm_vopts o = c->opts;
    o.base.unordered = unordered;
    pm_viter *it = pm_vimap(c->fn, NULL, from_list, &src, &o);
    CHECK(it != NULL);
#ifdef PMT_MPI
    if (pm_mpi_rank() > 0) {
        /* Other ranks: no items, rank 0's status. */
        pm_value *v = NULL;
        int want = c->want_results ? 0 : PM_EITEM;
        CHECK_STATUS(want, pm_viter_next(it, &v, NULL));
        pm_value_free(v);
        CHECK_STATUS(c->want_results ? PM_OK : PM_EITEM, pm_viter_free(it));
        CHECK_EQ_SIZE(src.next, 0);
        return;
    }
#endif
    size_t n = pm_value_len(items), seen = 0, index = 0, expect_next = 0;
    pm_value **slots = calloc(n + 1, sizeof *slots);
    pm_value *v = NULL;
    int r;
    while ((r = pm_viter_next(it, &v, &index)) == 1) {
        CHECK(index < n);
        CHECK(slots[index] == NULL);
        if (!unordered)
            CHECK_EQ_SIZE(index, expect_next++);
        slots[index] = v;
        seen++;
    }
    if (c->want_results) {
        CHECK_STATUS(0, r);
        CHECK(v == NULL);
        CHECK_EQ_SIZE(seen, n);
        pm_value *got = pm_value_list();
        for (size_t i = 0; i < n; i++) {
            pm_list_push(got, slots[i]);
            slots[i] = NULL;
        }
        check_results(c, got, copies);
        pm_value_free(got);
    } else {
        CHECK_STATUS(PM_EITEM, r);
        pm_value *want = error_of(c->want_error);
        check_match(want, v, 0);
        size_t wi = 0;
        pm_value_get_error(want, &wi, NULL, NULL);
        CHECK_EQ_SIZE(index, wi);
        pm_value_free(v);
        /* Sticky: the same status and a fresh copy of the same error. */
        CHECK_STATUS(PM_EITEM, pm_viter_next(it, &v, &index));
        check_match(want, v, 0);
        pm_value_free(v);
        pm_value_free(want);
    }
    for (size_t i = 0; i < n; i++)
        pm_value_free(slots[i]);
    free(slots);
    CHECK_STATUS(c->want_results ? PM_OK : PM_EITEM, pm_viter_free(it));
}

static int run_case(vcase *c)
{
    int scalable = c->want_results && pm_value_len(c->items) > 0;
    pm_value *big = scalable ? repeat(c->items, SCALE_COPIES) : NULL;
    int runs = 0;
#ifdef PMT_MPI
    /* tests/mpi: pm_vmap and pm_vimap on PM_MPI only (every rank runs this,
     * in step). */
    for (int threads = 1; threads <= 2; threads++) {
        for (long chunk = 0; chunk <= 1; chunk++) {
            pm_opts base;
            memset(&base, 0, sizeof base);
            base.backend = PM_MPI;
            base.threads = threads;
            base.on_error = c->opts.base.on_error;
            base.chunksize = chunk;
            c->opts.base = base;
            CHECK_CTX("case '%s' on mpi x %d threads (rank %d), chunksize %ld", c->name, threads,
                      pm_mpi_rank(), chunk);
            run_vmap(c, c->items, 1);
            run_vimap(c, c->items, 1, 0);
            run_vimap(c, c->items, 1, 1);
            runs += 3;
            if (big) {
                run_vmap(c, big, SCALE_COPIES);
                run_vimap(c, big, SCALE_COPIES, 0);
                run_vimap(c, big, SCALE_COPIES, 1);
                runs += 3;
            }
        }
    }
    pm_value_free(big);
    return runs;
#endif
    for (size_t e = 0; e < PMT_NEXECS; e++) {
        for (long chunk = 0; chunk <= 1; chunk++) {
            pm_opts base = pmt_opts(&pmt_execs[e]);
            base.on_error = c->opts.base.on_error;
            base.chunksize = chunk;
            c->opts.base = base;
            CHECK_CTX("case '%s' on %s, chunksize %ld, vmap", c->name, pmt_execs[e].name, chunk);
            run_vmap(c, c->items, 1);
            CHECK_CTX("case '%s' on %s, chunksize %ld, vimap", c->name, pmt_execs[e].name, chunk);
            run_vimap(c, c->items, 1, 0);
            CHECK_CTX("case '%s' on %s, chunksize %ld, vimap unordered", c->name,
                      pmt_execs[e].name, chunk);
            run_vimap(c, c->items, 1, 1);
            runs += 3;
            if (big) {
                CHECK_CTX("case '%s' x%d on %s, chunksize %ld", c->name, SCALE_COPIES,
                          pmt_execs[e].name, chunk);
                run_vmap(c, big, SCALE_COPIES);
                run_vimap(c, big, SCALE_COPIES, 0);
                run_vimap(c, big, SCALE_COPIES, 1);
                runs += 3;
            }
        }
    }
#if PMT_HAVE_FORK
    /* Processes: results come back as MessagePack; pm_vimap's items (made
     * after the fork) travel to the workers as MessagePack too. */
    static const struct { int procs, threads; } pe[] = {{2, 1}, {1, 2}};
    for (size_t e = 0; e < sizeof pe / sizeof pe[0]; e++) {
        if (pe[e].threads > 1 && PMT_TSAN) {
            /* TSan kills a forked child of a threaded process that starts a
             * thread ("starting new threads after multi-threaded fork"). */
            static int said;
            if (!said++)
                printf("skipped under TSan: processes with 2 threads per process\n");
            continue;
        }
        for (long chunk = 0; chunk <= 1; chunk++) {
            pm_opts base;
            memset(&base, 0, sizeof base);
            base.backend = PM_PROCESSES;
            base.procs = pe[e].procs;
            base.threads = pe[e].threads;
            base.on_error = c->opts.base.on_error;
            base.chunksize = chunk;
            c->opts.base = base;
            CHECK_CTX("case '%s' on processes %dx%d, chunksize %ld, vmap", c->name, pe[e].procs,
                      pe[e].threads, chunk);
            run_vmap(c, c->items, 1);
            CHECK_CTX("case '%s' on processes %dx%d, chunksize %ld, vimap", c->name, pe[e].procs,
                      pe[e].threads, chunk);
            run_vimap(c, c->items, 1, 0);
            run_vimap(c, c->items, 1, 1);
            runs += 3;
            if (big) {
                run_vmap(c, big, SCALE_COPIES);
                run_vimap(c, big, SCALE_COPIES, chunk);
                runs += 2;
            }
        }
    }
#endif
    pm_value_free(big);
    return runs;
}

int main(int argc, char **argv)
{
#ifdef PMT_MPI
    CHECK_STATUS(PM_OK, pm_mpi_init(&argc, &argv));
#endif
    char where[4096];
    size_t len = 0;
    char *text = find_vectors(argc, argv, &len, where, sizeof where);
    if (!text) {
#if defined(__wasi__) || defined(__EMSCRIPTEN__)
        PMT_SKIP("tests/" VECTORS " is not reachable from this sandbox (pass its path as argv[1])");
#else
        fprintf(stderr, "cannot find tests/" VECTORS " (define PM_SOURCE_DIR or pass the path)\n");
        return 1;
#endif
    }
    pm_value *doc = NULL;
    pm_parse_error err;
    int rc = pm_value_from_json(text, len, &doc, &err);
    if (rc != PM_OK)
        fprintf(stderr, "%s: offset %zu: %s\n", where, err.offset, err.reason);
    CHECK_STATUS(PM_OK, rc);
    free(text);

    const pm_value *cases = pm_dict_get(doc, "cases");
    CHECK(pm_value_len(cases) > 0);
    int runs = 0;
    for (size_t i = 0; i < pm_value_len(cases); i++) {
        vcase c;
        load_case(&c, pm_list_get(cases, i));
        runs += run_case(&c);
    }
    printf("%zu vectors from %s, %d runs\n", pm_value_len(cases), where, runs);
    pm_value_free(doc);
#ifdef PMT_MPI
    pmt_leak_check_now(); /* see tests/mpi/test_mpi.c */
    pm_mpi_finalize();
#endif
    return pmt_done("test_vectors");
}
