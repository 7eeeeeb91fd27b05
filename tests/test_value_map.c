/*
 * test_value_map.c - pm_vmap and pm_vimap beyond the shared vectors: the
 * call's getters and pm_call_fail, what a function's odd returns become,
 * raise-mode results and reports, bad arguments, cancellation, large maps
 * on every executor, iterators freed early (values in flight must not leak:
 * the sanitizer build checks), source errors, pipelines, and results nested
 * too deep for a result list. Every case runs on every executor of
 * conformance.h.
 */
#include "check.h"
#include "conformance.h"

#include "parmap_value.h"

/* --------------------------------------------------------- functions */

/* x + 1 for an int item; the library's per-item path at its thinnest. */
static int plus_one(void *user, pm_call *call, pm_value **result)
{
    (void)user;
    int64_t x;
    if (pm_value_get_int(call->item, &x) != PM_OK)
        return pm_call_fail(call, 9, "not an int");
    *result = pm_value_int(x + 1);
    return 0;
}

/* Exercises every getter; returns what it read as a list. */
static int getters(void *user, pm_call *call, pm_value **result)
{
    (void)user;
    pm_value *l = pm_value_list();
    pm_list_push(l, pm_value_double(pm_kw_double(call, "d", -1)));
    pm_list_push(l, pm_value_double(pm_kw_double(call, "i", -1))); /* int read as double */
    pm_list_push(l, pm_value_int(pm_kw_int(call, "i", -1)));
    pm_list_push(l, pm_value_int(pm_kw_int(call, "d", -1)));      /* double: default */
    pm_list_push(l, pm_value_bool(pm_kw_bool(call, "b", 0)));
    pm_list_push(l, pm_value_str(pm_kw_str(call, "s", "def")));
    pm_list_push(l, pm_value_str(pm_kw_str(call, "missing", "def")));
    pm_list_push(l, pm_value_bool(pm_kw(call, "missing") == NULL));
    pm_list_push(l, pm_value_int(pm_arg_int(call, 0, -1)));
    pm_list_push(l, pm_value_double(pm_arg_double(call, 1, -1)));
    pm_list_push(l, pm_value_str(pm_arg_str(call, 2, "def")));
    pm_list_push(l, pm_value_bool(pm_arg_bool(call, 3, 0)));
    pm_list_push(l, pm_value_int(pm_arg_int(call, 4, -1)));      /* out of range */
    pm_list_push(l, pm_value_bool(pm_arg(call, -1) == NULL && pm_arg(call, 99) == NULL));
    pm_list_push(l, pm_value_int((int64_t)call->index));
    pm_list_push(l, pm_value_int(call->argc));
    *result = l;
    return 0;
}

/* The merged keywords as JSON text: their order is part of the contract. */
static int kw_json(void *user, pm_call *call, pm_value **result)
{
    (void)user;
    char *s = NULL;
    if (pm_value_to_json(call->kwargs, &s, NULL) != PM_OK)
        return 1;
    *result = pm_value_str(s);
    free(s);
    return 0;
}

/* Odd behaviours, chosen by the item: 0 ok; 1 fail with a message; 2 fail
 * with code 0 through pm_call_fail; 3 return 0 and no value; 4 fail but
 * leave a value behind; 5 fail without a message; 6 a long message; 7 fail
 * twice (the last message wins). */
static int odd(void *user, pm_call *call, pm_value **result)
{
    (void)user;
    switch (pm_arg_int(call, 0, -1)) {
    case 0: *result = pm_value_str("fine"); return 0;
    case 1: return pm_call_fail(call, 42, "item %zu is bad: %s", call->index, "because");
    case 2: return pm_call_fail(call, 0, "code zero");
    case 3: return 0;
    case 4: *result = pm_value_str("leaked?"); return 5;
    case 5: return -77;
    case 6: {
        char big[1000];
        memset(big, 'z', sizeof big - 1);
        big[sizeof big - 1] = '\0';
        return pm_call_fail(call, 6, "%s", big);
    }
    case 7:
        pm_call_fail(call, 1, "first");
        return pm_call_fail(call, 7, "second");
    default: return 1;
    }
}

/* A value `depth` containers deep (the item says how deep). */
static int deep(void *user, pm_call *call, pm_value **result)
{
    (void)user;
    pm_value *v = pm_value_null();
    for (int64_t i = 0; i < pm_arg_int(call, 0, 0); i++) {
        pm_value *l = pm_value_list();
        pm_list_push(l, v);
        v = l;
    }
    *result = v;
    return 0;
}

static int slow(void *user, pm_call *call, pm_value **result)
{
    pm_cancel *c = user;
    if (call->index == 50)
        pm_cancel_request(c);
    pmt_sleep(0.0005);
    *result = pm_value_int((int64_t)call->index);
    return 0;
}

/* ------------------------------------------------------------ helpers */

static pm_value *ints(size_t n)
{
    pm_value *l = pm_value_list();
    pm_list_reserve(l, n);
    for (size_t i = 0; i < n; i++)
        pm_list_push(l, pm_value_int((int64_t)i));
    return l;
}

static pm_value *J(const char *text)
{
    pm_value *v = NULL;
    CHECK_STATUS(PM_OK, pm_value_from_json(text, strlen(text), &v, NULL));
    return v;
}

static char *json_of(const pm_value *v)
{
    char *s = NULL;
    CHECK_STATUS(PM_OK, pm_value_to_json(v, &s, NULL));
    return s;
}

/* -------------------------------------------------------------- cases */

static void test_getters(const pmt_exec *e)
{
    pm_value *items = J("[[7, 2.5, \"s\", true], [1]]");
    pm_value *kw = J("{\"d\": 1.5, \"i\": 3, \"b\": true, \"s\": \"str\"}");
    pm_value *res = NULL;
    pm_vopts o = {.base = pmt_opts(e), .star = PM_STAR_YES, .kwargs = kw};
    CHECK_STATUS(PM_OK, pm_vmap(getters, NULL, items, &o, &res));
    char *s = json_of(res);
    CHECK_EQ_STR(s, "[[1.5,3.0,3,-1,true,\"str\",\"def\",true,7,2.5,\"s\",true,-1,true,0,4],"
                    "[1.5,3.0,3,-1,true,\"str\",\"def\",true,1,-1.0,\"def\",false,-1,true,1,1]]");
    free(s);
    pm_value_free(res);
    pm_value_free(items);
    pm_value_free(kw);
}

static void test_kwargs_order(const pmt_exec *e)
{
    /* kwargs + kwvals: kwargs' keys keep their places (with kwvals' values),
     * new keys follow in kwvals' order; big dicts (hash index) too. */
    pm_value *items = J("[[0, {\"c\": 3, \"b\": 20}], [0, {}], [0, {\"z\": 1}]]");
    pm_value *kw = J("{\"a\": 1, \"b\": 2}"), *res = NULL;
    pm_vopts o = {.base = pmt_opts(e), .kwstar = 1, .kwargs = kw};
    CHECK_STATUS(PM_OK, pm_vmap(kw_json, NULL, items, &o, &res));
    char *s = json_of(res);
    CHECK_EQ_STR(s, "[\"{\\\"a\\\":1,\\\"b\\\":20,\\\"c\\\":3}\","
                    "\"{\\\"a\\\":1,\\\"b\\\":2}\","
                    "\"{\\\"a\\\":1,\\\"b\\\":2,\\\"z\\\":1}\"]");
    free(s);
    pm_value_free(res);
    pm_value_free(items);
    pm_value_free(kw);

    pm_value *big = pm_value_dict(), *over = pm_value_dict(), *item = pm_value_list();
    char key[16];
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "k%d", i);
        pm_dict_set(big, key, pm_value_int(i));
        if (i % 3 == 0)
            pm_dict_set(over, key, pm_value_int(-i));
    }
    pm_dict_set(over, "new", pm_value_null());
    pm_list_push(item, pm_value_null());
    pm_list_push(item, over);
    items = pm_value_list();
    pm_list_push(items, item);
    o.kwargs = big;
    CHECK_STATUS(PM_OK, pm_vmap(kw_json, NULL, items, &o, &res));
    const char *text = NULL;
    pm_value *merged = NULL;
    CHECK_STATUS(PM_OK, pm_value_get_str(pm_list_get(res, 0), &text, NULL));
    CHECK_STATUS(PM_OK, pm_value_from_json(text, strlen(text), &merged, NULL));
    CHECK_EQ_SIZE(pm_value_len(merged), 41);
    for (int i = 0; i < 40; i++) {
        int64_t x = 99;
        snprintf(key, sizeof key, "k%d", i);
        CHECK_EQ_STR(pm_dict_key(merged, (size_t)i, NULL), key);
        pm_value_get_int(pm_dict_value(merged, (size_t)i), &x);
        int want = i % 3 == 0 ? -i : i; /* (no '%' inside CHECK: it prints the text) */
        CHECK_EQ_INT(x, want);
    }
    CHECK_EQ_STR(pm_dict_key(merged, 40, NULL), "new");
    pm_value_free(merged);
    pm_value_free(res);
    pm_value_free(items);
    pm_value_free(big);
}

static void test_odd_functions(const pmt_exec *e)
{
    pm_value *items = J("[0, 1, 2, 3, 4, 5, 6, 7]"), *res = NULL;
    pm_report rep;
    pm_vopts o = {.base = pmt_opts(e), .report = &rep};
    o.base.on_error = PM_RETURN;
    CHECK_STATUS(PM_OK, pm_vmap(odd, NULL, items, &o, &res));
    CHECK_EQ_SIZE(rep.failed, 7);
    CHECK_EQ_SIZE(rep.first_error_index, 1);
    CHECK_EQ_INT(rep.first_error_code, 42);
    static const struct { int code; const char *msg; } want[] = {
        {0, NULL},
        {42, "item 1 is bad: because"},
        {1, "code zero"},
        {PM_ENOMEM, "the function returned no value (out of memory?)"},
        {5, "the function failed with code 5"},
        {-77, "the function failed with code -77"},
        {6, NULL},
        {7, "second"},
    };
    for (size_t i = 0; i < 8; i++) {
        const pm_value *v = pm_list_get(res, i);
        size_t index;
        int code;
        const char *msg;
        CHECK_CTX("%s: odd item %zu", e->name, i);
        if (!want[i].code) {
            CHECK_EQ_INT(pm_value_type(v), PM_T_STR);
            continue;
        }
        CHECK_STATUS(PM_OK, pm_value_get_error(v, &index, &code, &msg));
        CHECK_EQ_SIZE(index, i);
        CHECK_EQ_INT(code, want[i].code);
        if (want[i].msg)
            CHECK_EQ_STR(msg, want[i].msg);
        else
            CHECK_EQ_SIZE(strlen(msg), 999);
    }
    pm_value_free(res);
    pm_value_free(items);
}

static void test_raise(const pmt_exec *e)
{
    /* Many items, one failure: the error value replaces the results. */
    size_t n = 20000 / PMT_SCALE;
    pm_value *items = ints(n), *res = NULL;
    pm_list_push(items, pm_value_str("x")); /* index n fails in plus_one */
    pm_report rep;
    pm_vopts o = {.base = pmt_opts(e), .report = &rep};
    CHECK_STATUS(PM_EITEM, pm_vmap(plus_one, NULL, items, &o, &res));
    CHECK_STATUS(PM_EITEM, rep.status);
    CHECK_EQ_SIZE(rep.first_error_index, n);
    CHECK_EQ_INT(rep.first_error_code, 9);
    size_t index = 0;
    const char *msg = NULL;
    CHECK_STATUS(PM_OK, pm_value_get_error(res, &index, NULL, &msg));
    CHECK_EQ_SIZE(index, n);
    CHECK_EQ_STR(msg, "not an int");
    pm_value_free(res);
    pm_value_free(items);
}

static void test_big(const pmt_exec *e)
{
    size_t n = 200000 / PMT_SCALE;
    pm_value *items = ints(n), *res = NULL;
    pm_vopts o = {.base = pmt_opts(e)};
    CHECK_STATUS(PM_OK, pm_vmap(plus_one, NULL, items, &o, &res));
    CHECK_EQ_SIZE(pm_value_len(res), n);
    for (size_t i = 0; i < n; i++) {
        int64_t x = -1;
        pm_value_get_int(pm_list_get(res, i), &x);
        if (x != (int64_t)i + 1)
            CHECK_EQ_INT(x, (int64_t)i + 1);
    }
    pm_value_free(res);

    /* opts.base.codes works as in pm_map. */
    int *codes = calloc(3, sizeof *codes);
    pm_value *mixed = J("[1, \"a\", 2]");
    o.base.codes = codes;
    o.base.on_error = PM_RETURN;
    CHECK_STATUS(PM_OK, pm_vmap(plus_one, NULL, mixed, &o, &res));
    CHECK_EQ_INT(codes[0], 0);
    CHECK_EQ_INT(codes[1], 9);
    CHECK_EQ_INT(codes[2], 0);
    free(codes);
    pm_value_free(res);
    pm_value_free(mixed);
    pm_value_free(items);
}

static void test_bad_arguments(void)
{
    pm_value *items = ints(3), *res = (pm_value *)1, *notlist = pm_value_int(1);
    pm_value *d = pm_value_dict(), *l = pm_value_list();
    pm_report rep;
    CHECK_STATUS(PM_EINVAL, pm_vmap(plus_one, NULL, items, NULL, NULL));
    CHECK_STATUS(PM_EINVAL, pm_vmap(NULL, NULL, items, NULL, &res));
    CHECK(res == NULL);
    CHECK_STATUS(PM_EINVAL, pm_vmap(plus_one, NULL, notlist, NULL, &res));
    CHECK_STATUS(PM_EINVAL, pm_vmap(plus_one, NULL, NULL, NULL, &res));
    CHECK_STATUS(PM_EINVAL, pm_vmap(plus_one, NULL, items, &(pm_vopts){.args = d}, &res));
    CHECK_STATUS(PM_EINVAL, pm_vmap(plus_one, NULL, items, &(pm_vopts){.kwargs = l}, &res));
    CHECK_STATUS(PM_EINVAL, pm_vmap(plus_one, NULL, items, &(pm_vopts){.star = 7}, &res));
    CHECK_STATUS(PM_EINVAL,
                 pm_vmap(plus_one, NULL, items, &(pm_vopts){.base.threads = -1, .report = &rep},
                         &res));
    CHECK_STATUS(PM_EINVAL, rep.status);
    CHECK(res == NULL);
#if !PMT_HAVE_FORK
    CHECK_STATUS(PM_ENOTSUP,
                 pm_vmap(plus_one, NULL, items, &(pm_vopts){.base.backend = PM_PROCESSES}, &res));
    CHECK(res == NULL);
#endif

    pm_viter *it = pm_vimap(plus_one, NULL, NULL, NULL, NULL);
    pm_value *v = (pm_value *)1;
    CHECK_STATUS(PM_EINVAL, pm_viter_next(it, &v, NULL));
    CHECK(v == NULL);
    CHECK_STATUS(PM_OK, pm_viter_report(it, &rep));
    CHECK_STATUS(PM_EINVAL, rep.status);
    CHECK_STATUS(PM_EINVAL, pm_viter_free(it));
    CHECK_STATUS(PM_OK, pm_viter_free(NULL));
    CHECK_STATUS(PM_EINVAL, pm_viter_next(NULL, &v, NULL));
    pm_value_free(items);
    pm_value_free(notlist);
    pm_value_free(d);
    pm_value_free(l);
}

static void test_cancel(const pmt_exec *e)
{
    pm_cancel *c = pm_cancel_new();
    pm_value *items = ints(2000 / (size_t)PMT_SCALE + 100), *res = (pm_value *)1;
    pm_vopts o = {.base = pmt_opts(e)};
    o.base.cancel = c;
    CHECK_STATUS(PM_ECANCELED, pm_vmap(slow, c, items, &o, &res));
    CHECK(res == NULL);
    pm_cancel_free(c);
    pm_value_free(items);
}

static void test_deep_results(const pmt_exec *e)
{
    /* A result list cannot hold a value already PM_VALUE_MAX_DEPTH deep. */
    pm_value *items = pm_value_list(), *res = NULL;
    pm_list_push(items, pm_value_int(PM_VALUE_MAX_DEPTH - 1));
    pm_list_push(items, pm_value_int(PM_VALUE_MAX_DEPTH));
    pm_vopts o = {.base = pmt_opts(e)};
    o.base.on_error = PM_RETURN;
    CHECK_STATUS(PM_OK, pm_vmap(deep, NULL, items, &o, &res));
    CHECK_EQ_INT(pm_value_type(pm_list_get(res, 0)), PM_T_LIST);
    int code = 0;
    CHECK_STATUS(PM_OK, pm_value_get_error(pm_list_get(res, 1), NULL, &code, NULL));
    CHECK_STATUS(PM_EINVAL, code);
    pm_value_free(res);
    pm_value_free(items);
}

/* -------------------------------------------------------------- vimap */

typedef struct count_src {
    size_t next, n;
    int fail_at;     /* -1: never; else return PM_ENOMEM there */
} count_src;

static int counting(void *src, pm_value **item)
{
    count_src *s = src;
    if (s->fail_at >= 0 && s->next == (size_t)s->fail_at)
        return PM_ENOMEM;
    if (s->next >= s->n)
        return 0;
    *item = pm_value_int((int64_t)s->next++);
    return 1;
}

static void test_vimap(const pmt_exec *e)
{
    /* Freed early with plenty in flight: no leak (sanitizer build). */
    for (int unordered = 0; unordered <= 1; unordered++) {
        count_src src = {0, 100000 / (size_t)PMT_SCALE, -1};
        pm_vopts o = {.base = pmt_opts(e)};
        o.base.unordered = unordered;
        pm_viter *it = pm_vimap(plus_one, NULL, counting, &src, &o);
        pm_value *v = NULL;
        size_t index = 0;
        for (int k = 0; k < 10; k++) {
            CHECK_EQ_INT(pm_viter_next(it, &v, &index), 1);
            int64_t x = -1;
            pm_value_get_int(v, &x);
            CHECK_EQ_INT(x, (int64_t)index + 1);
            pm_value_free(v);
        }
        pm_report rep;
        CHECK_STATUS(PM_OK, pm_viter_report(it, &rep));
        CHECK(rep.done >= 10);
        CHECK_STATUS(PM_OK, pm_viter_free(it));
    }

    /* A source error ends the stream with its status, after what came before. */
    count_src src = {0, 1000, 300};
    pm_vopts o = {.base = pmt_opts(e)};
    pm_viter *it = pm_vimap(plus_one, NULL, counting, &src, &o);
    pm_value *v = NULL;
    size_t got = 0;
    int r;
    while ((r = pm_viter_next(it, &v, NULL)) == 1) {
        pm_value_free(v);
        got++;
    }
    CHECK_STATUS(PM_ENOMEM, r);
    CHECK_EQ_SIZE(got, 300);
    CHECK_STATUS(PM_ENOMEM, pm_viter_next(it, &v, NULL)); /* sticky */
    CHECK_STATUS(PM_ENOMEM, pm_viter_free(it));

    /* Raise mode stops at the failing item; freeing afterwards frees the
     * values of items that ran but were never consumed. */
    count_src s2 = {0, 5000, -1};
    o.base.on_error = PM_RAISE;
    it = pm_vimap(odd, NULL, counting, &s2, &o); /* item 1 fails with 42 */
    size_t index = 99;
    CHECK_EQ_INT(pm_viter_next(it, &v, &index), 1);
    pm_value_free(v);
    CHECK_STATUS(PM_EITEM, pm_viter_next(it, &v, &index));
    CHECK_EQ_SIZE(index, 1);
    int code = 0;
    CHECK_STATUS(PM_OK, pm_value_get_error(v, NULL, &code, NULL));
    CHECK_EQ_INT(code, 42);
    pm_value_free(v);
    CHECK_STATUS(PM_EITEM, pm_viter_free(it));
}

/* Two value maps chained: ints -> +1 -> +1, every stage at once. */
static void test_pipeline(const pmt_exec *e)
{
    count_src src = {0, 20000 / (size_t)PMT_SCALE, -1};
    pm_vopts o = {.base = pmt_opts(e)};
    pm_viter *a = pm_vimap(plus_one, NULL, counting, &src, &o);
    pm_viter *b = pm_vimap(plus_one, NULL, pm_viter_source, a, &o);
    pm_value *v = NULL;
    size_t index = 0, n = 0;
    while (pm_viter_next(b, &v, &index) == 1) {
        int64_t x = -1;
        pm_value_get_int(v, &x);
        CHECK_EQ_INT(x, (int64_t)index + 2);
        pm_value_free(v);
        n++;
    }
    CHECK_EQ_SIZE(n, src.n);
    CHECK_STATUS(PM_OK, pm_viter_free(b));
    CHECK_STATUS(PM_OK, pm_viter_free(a));
}

#if PMT_HAVE_FORK
/* Processes: results too big for one scratch arena (2 MB per slot) end a
 * piece early while the next chunk is already queued in the worker; every
 * result must still arrive, in its place (this once hung). */
static int big_string(void *user, pm_call *call, pm_value **result)
{
    (void)user;
    int64_t i = pm_arg_int(call, 0, -1);
    char *s = malloc(100001);
    if (!s)
        return PM_ENOMEM;
    memset(s, 'a' + (int)(i % 26), 100000);
    s[100000] = 0;
    int head = snprintf(s, 32, "%lld:", (long long)i); /* the index first */
    s[head] = 'a' + (int)(i % 26);
    *result = pm_value_strn(s, 100000);
    free(s);
    return 0;
}

static void test_processes_big_results(void)
{
    CHECK_CTX("processes: results bigger than the arena");
    pm_value *items = ints(200), *res = NULL;
    pm_vopts o = {.base = {.backend = PM_PROCESSES, .procs = 1, .threads = 1, .chunksize = 30}};
    CHECK_STATUS(PM_OK, pm_vmap(big_string, NULL, items, &o, &res));
    for (size_t i = 0; i < 200; i++) {
        const char *str = NULL;
        size_t len = 0;
        int64_t got = -1;
        CHECK_STATUS(PM_OK, pm_value_get_str(pm_list_get(res, i), &str, &len));
        CHECK_EQ_SIZE(len, 100000);
        got = atoll(str);
        CHECK_EQ_INT(got, (int64_t)i);
        CHECK_EQ_INT(str[len - 1], 'a' + (int)(i % 26));
    }
    pm_value_free(res);
    pm_value_free(items);
}
#endif

int main(void)
{
    test_bad_arguments();
#if PMT_HAVE_FORK
    test_processes_big_results();
#endif
    for (size_t k = 0; k < PMT_NEXECS; k++) {
        const pmt_exec *e = &pmt_execs[k];
        CHECK_CTX("%s", e->name);
        test_getters(e);
        test_kwargs_order(e);
        test_odd_functions(e);
        CHECK_CTX("%s: raise", e->name);
        test_raise(e);
        CHECK_CTX("%s: big", e->name);
        test_big(e);
        CHECK_CTX("%s: cancel", e->name);
        test_cancel(e);
        CHECK_CTX("%s: deep results", e->name);
        test_deep_results(e);
        CHECK_CTX("%s: vimap", e->name);
        test_vimap(e);
        CHECK_CTX("%s: pipeline", e->name);
        test_pipeline(e);
    }
    return pmt_done("test_value_map");
}
