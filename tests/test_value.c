/*
 * test_value.c - pm_value: constructors, typed accessors (and their type
 * mismatches), the invariants (UTF-8, unique keys, depth), clone / equal /
 * free, and JSON both ways, including the texts the parser must reject.
 * Leaks are left to the sanitizer builds (-DPM_SANITIZE=address,undefined).
 */
#include "check.h"

#include "parmap_value.h"

#include <locale.h>

/* Parse JSON text that must be valid. */
static pm_value *J(const char *text)
{
    pm_value *v = NULL;
    pm_parse_error e;
    int rc = pm_value_from_json(text, strlen(text), &v, &e);
    if (rc != PM_OK)
        fprintf(stderr, "    json: %s\n    at %zu: %s\n", text, e.offset, e.reason);
    CHECK_STATUS(PM_OK, rc);
    return v;
}

/* v's JSON must be exactly `expected`; frees v. */
static void check_json(pm_value *v, const char *expected)
{
    char *s = NULL;
    size_t len = 0;
    CHECK_STATUS(PM_OK, pm_value_to_json(v, &s, &len));
    CHECK_EQ_STR(s, expected);
    CHECK_EQ_SIZE(len, strlen(expected));
    free(s);
    pm_value_free(v);
}

static void test_scalars(void)
{
    int64_t i = 7;
    double d = 0;
    int b = 5;
    const char *s = NULL;
    size_t n = 0;

    CHECK_EQ_INT(pm_value_type(pm_value_null()), PM_T_NULL);
    CHECK_EQ_INT(pm_value_type(NULL), PM_T_NULL);
    CHECK_EQ_STR(pm_type_name(PM_T_ERROR), "error");
    CHECK_EQ_STR(pm_type_name((pm_type)99), "unknown");
    /* Shared constants: freeing them is a no-op, they stay usable. */
    pm_value_free(pm_value_null());
    pm_value_free(pm_value_bool(1));
    CHECK_STATUS(PM_OK, pm_value_get_bool(pm_value_bool(1), &b));
    CHECK_EQ_INT(b, 1);
    CHECK_STATUS(PM_OK, pm_value_get_bool(pm_value_bool(0), &b));
    CHECK_EQ_INT(b, 0);

    pm_value *v = pm_value_int(INT64_MIN);
    CHECK_STATUS(PM_OK, pm_value_get_int(v, &i));
    CHECK(i == INT64_MIN);
    CHECK_STATUS(PM_OK, pm_value_get_double(v, &d)); /* ints read as doubles */
    CHECK_EQ_DBL(d, -9223372036854775808.0);
    /* Mismatches say so and leave *out alone. */
    b = 5;
    CHECK_STATUS(PM_EINVAL, pm_value_get_bool(v, &b));
    CHECK_EQ_INT(b, 5);
    CHECK_STATUS(PM_EINVAL, pm_value_get_str(v, &s, &n));
    CHECK_STATUS(PM_EINVAL, pm_value_get_error(v, NULL, NULL, NULL));
    CHECK_STATUS(PM_EINVAL, pm_value_get_int(NULL, &i));
    CHECK_STATUS(PM_EINVAL, pm_value_get_int(v, NULL));
    CHECK_EQ_SIZE(pm_value_len(v), 0);
    pm_value_free(v);

    v = pm_value_double(2.5);
    i = 7;
    CHECK_STATUS(PM_EINVAL, pm_value_get_int(v, &i)); /* no silent truncation */
    CHECK_EQ_INT(i, 7);
    CHECK_STATUS(PM_OK, pm_value_get_double(v, &d));
    CHECK_EQ_DBL(d, 2.5);
    pm_value_free(v);
    pm_value_free(NULL);
}

static void test_strings(void)
{
    const char *s = NULL;
    const void *p = NULL;
    size_t n = 0;
    pm_value *v = pm_value_strn("a\0b", 3); /* embedded NUL */
    CHECK(v != NULL);
    CHECK_STATUS(PM_OK, pm_value_get_str(v, &s, &n));
    CHECK_EQ_SIZE(n, 3);
    CHECK(memcmp(s, "a\0b", 4) == 0); /* and NUL-terminated */
    CHECK_EQ_SIZE(pm_value_len(v), 3);
    CHECK_STATUS(PM_EINVAL, pm_value_get_bytes(v, &p, &n));
    pm_value_free(v);

    /* Valid UTF-8 of every length class. */
    const char *ok[] = {"", "plain", "\xc3\xa9t\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                        "\xf4\x8f\xbf\xbf", "\xef\xbf\xbf"};
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
        v = pm_value_str(ok[k]);
        CHECK(v != NULL);
        pm_value_free(v);
    }
    /* Invalid: lone continuation, overlong, surrogate, > U+10FFFF, cut short. */
    const char *bad[] = {"\x80", "\xc0\x80", "\xc1\xbf", "\xe0\x80\x80", "\xed\xa0\x80",
                         "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff", "a\xc3", "\xe2\x82",
                         "\xf0\x9f\x98"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        CHECK_CTX("bad utf-8 #%zu", k);
        CHECK(pm_value_str(bad[k]) == NULL);
    }
    CHECK_CTX("%s", "");
    CHECK(pm_value_str(NULL) == NULL);
    CHECK(pm_value_strn(NULL, 1) == NULL);

    /* Bytes take anything. */
    v = pm_value_bytes("\xff\x00\xfe", 3);
    CHECK_STATUS(PM_OK, pm_value_get_bytes(v, &p, &n));
    CHECK_EQ_SIZE(n, 3);
    CHECK(memcmp(p, "\xff\x00\xfe", 3) == 0);
    pm_value_free(v);
    v = pm_value_bytes(NULL, 0);
    CHECK_EQ_SIZE(pm_value_len(v), 0);
    pm_value_free(v);

    /* Error messages are repaired, never refused. */
    size_t index = 0;
    int code = 0;
    v = pm_value_error(12, -3, "bad \xff byte");
    CHECK_STATUS(PM_OK, pm_value_get_error(v, &index, &code, &s));
    CHECK_EQ_SIZE(index, 12);
    CHECK_EQ_INT(code, -3);
    CHECK_EQ_STR(s, "bad \xef\xbf\xbd byte");
    pm_value_free(v);
    v = pm_value_error(0, 1, NULL);
    CHECK_STATUS(PM_OK, pm_value_get_error(v, NULL, NULL, &s));
    CHECK_EQ_STR(s, "");
    pm_value_free(v);
}

static void test_list(void)
{
    pm_value *l = pm_value_list();
    CHECK_EQ_SIZE(pm_value_len(l), 0);
    for (int i = 0; i < 100; i++)
        CHECK_STATUS(PM_OK, pm_list_push(l, pm_value_int(i)));
    CHECK_EQ_SIZE(pm_value_len(l), 100);
    int64_t x = -1;
    CHECK_STATUS(PM_OK, pm_value_get_int(pm_list_get(l, 99), &x));
    CHECK_EQ_INT(x, 99);
    CHECK(pm_list_get(l, 100) == NULL);
    CHECK(pm_list_get(NULL, 0) == NULL);
    CHECK_STATUS(PM_OK, pm_list_reserve(l, 1000));
    CHECK_STATUS(PM_EINVAL, pm_list_reserve(NULL, 1));

    /* Failures free what they were given (the sanitizer run checks). */
    pm_value *notlist = pm_value_int(1);
    CHECK_STATUS(PM_EINVAL, pm_list_push(notlist, pm_value_str("dropped")));
    CHECK_STATUS(PM_ENOMEM, pm_list_push(l, NULL));
    CHECK_STATUS(PM_EINVAL, pm_list_push(l, l)); /* no cycles through itself */
    CHECK_EQ_SIZE(pm_value_len(l), 100);
    pm_value_free(notlist);
    pm_value_free(l);
}

static void test_dict(void)
{
    pm_value *d = pm_value_dict();
    CHECK_STATUS(PM_OK, pm_dict_set(d, "b", pm_value_int(1)));
    CHECK_STATUS(PM_OK, pm_dict_set(d, "a", pm_value_int(2)));
    CHECK_STATUS(PM_OK, pm_dict_set(d, "b", pm_value_int(3))); /* last wins, keeps place */
    CHECK_STATUS(PM_OK, pm_dict_setn(d, "k\0ey", 4, pm_value_bool(1)));
    CHECK_EQ_SIZE(pm_value_len(d), 3);
    size_t klen = 0;
    CHECK_EQ_STR(pm_dict_key(d, 0, &klen), "b");
    CHECK_EQ_SIZE(klen, 1);
    CHECK_EQ_STR(pm_dict_key(d, 1, NULL), "a");
    CHECK_EQ_SIZE((pm_dict_key(d, 2, &klen), klen), 4);
    CHECK(pm_dict_key(d, 3, NULL) == NULL);
    CHECK(pm_dict_value(d, 3) == NULL);
    int64_t x = 0;
    CHECK_STATUS(PM_OK, pm_value_get_int(pm_dict_get(d, "b"), &x));
    CHECK_EQ_INT(x, 3);
    CHECK(pm_dict_get(d, "k") == NULL);
    CHECK(pm_dict_getn(d, "k\0ey", 4) != NULL);
    CHECK(pm_dict_get(d, NULL) == NULL);
    CHECK(pm_dict_get(NULL, "a") == NULL);
    check_json(pm_value_clone(d), "{\"b\":3,\"a\":2,\"k\\u0000ey\":true}");

    /* Bad keys and targets: refused, value freed. */
    CHECK_STATUS(PM_EINVAL, pm_dict_set(d, "\xff", pm_value_int(1)));
    CHECK_STATUS(PM_EINVAL, pm_dict_set(d, NULL, pm_value_int(1)));
    CHECK_STATUS(PM_ENOMEM, pm_dict_set(d, "x", NULL));
    CHECK_STATUS(PM_EINVAL, pm_dict_set(d, "self", d));
    pm_value *l = pm_value_list();
    CHECK_STATUS(PM_EINVAL, pm_dict_set(l, "x", pm_value_int(1)));
    pm_value_free(l);
    pm_value_free(d);

    /* Big dicts (the hash index): every key found, order kept, equality
     * ignores order. */
    pm_value *a = pm_value_dict(), *b = pm_value_dict();
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "key%d", i);
        CHECK_STATUS(PM_OK, pm_dict_set(a, key, pm_value_int(i)));
        snprintf(key, sizeof key, "key%d", 4999 - i);
        CHECK_STATUS(PM_OK, pm_dict_set(b, key, pm_value_int(4999 - i)));
    }
    for (int i = 0; i < 5000; i += 7) {
        snprintf(key, sizeof key, "key%d", i);
        CHECK_STATUS(PM_OK, pm_value_get_int(pm_dict_get(a, key), &x));
        CHECK_EQ_INT(x, i);
    }
    CHECK(pm_dict_get(a, "key5000") == NULL);
    CHECK_EQ_STR(pm_dict_key(a, 0, NULL), "key0");
    CHECK_EQ_STR(pm_dict_key(b, 0, NULL), "key4999");
    CHECK(pm_value_equal(a, b));
    CHECK_STATUS(PM_OK, pm_dict_set(b, "key17", pm_value_int(-1)));
    CHECK(!pm_value_equal(a, b));
    CHECK_EQ_SIZE(pm_value_len(b), 5000);
    pm_value_free(a);
    pm_value_free(b);
}

static pm_value *nest(int depth)
{
    pm_value *v = pm_value_int(0);
    for (int i = 0; i < depth; i++) {
        pm_value *l = pm_value_list();
        if (pm_list_push(l, v) != PM_OK) {
            pm_value_free(l);
            return NULL;
        }
        v = l;
    }
    return v;
}

static void test_depth(void)
{
    pm_value *v = nest(PM_VALUE_MAX_DEPTH);
    CHECK(v != NULL);
    pm_value *outer = pm_value_list();
    CHECK_STATUS(PM_EINVAL, pm_list_push(outer, pm_value_clone(v)));
    pm_value *d = pm_value_dict();
    CHECK_STATUS(PM_EINVAL, pm_dict_set(d, "deep", pm_value_clone(v)));
    /* One level less fits in both. */
    CHECK_STATUS(PM_OK, pm_dict_set(d, "ok", nest(PM_VALUE_MAX_DEPTH - 1)));
    /* Replacing the deepest value lowers the dict's depth again. */
    CHECK_STATUS(PM_OK, pm_dict_set(d, "ok", pm_value_int(1)));
    CHECK_STATUS(PM_OK, pm_list_push(outer, d));
    CHECK_STATUS(PM_OK, pm_list_push(outer, nest(2)));
    char *s = NULL;
    CHECK_STATUS(PM_OK, pm_value_to_json(v, &s, NULL));
    pm_value *back = J(s);
    CHECK(pm_value_equal(back, v));
    pm_value_free(back);
    free(s);
    pm_value_free(v);
    pm_value_free(outer);
}

static void test_clone_equal(void)
{
    pm_value *v = J("{\"a\":[1,2.5,\"x\",null,true,{\"$bytes\":\"00ff\"}],"
                    "\"b\":{\"c\":{\"$error\":{\"index\":3,\"code\":7,\"message\":\"m\"}}},"
                    "\"e\":[],\"f\":{}}");
    pm_value *c = pm_value_clone(v);
    CHECK(c != NULL && c != v);
    CHECK(pm_value_equal(v, c));
    CHECK(pm_value_equal(c, v));
    CHECK_STATUS(PM_OK, pm_list_push((pm_value *)pm_dict_get(c, "e"), pm_value_null()));
    CHECK(!pm_value_equal(v, c));
    pm_value_free(c);
    CHECK(pm_value_clone(NULL) == NULL);

    /* The rules of equality, one by one. */
    struct { const char *a, *b; int eq; } cases[] = {
        {"1", "1.0", 0},                 /* types must match */
        {"[1,2]", "[2,1]", 0},           /* lists are ordered */
        {"{\"x\":1,\"y\":2}", "{\"y\":2,\"x\":1}", 1}, /* dicts are not */
        {"{\"x\":1}", "{\"x\":1,\"y\":2}", 0},
        {"\"a\"", "{\"$bytes\":\"61\"}", 0},            /* str is not bytes */
        {"{\"$error\":{\"index\":1,\"code\":2}}", "{\"$error\":{\"index\":1,\"code\":3}}", 0},
        {"{\"$error\":{\"index\":1,\"code\":2,\"message\":\"\"}}",
         "{\"$error\":{\"index\":1,\"code\":2}}", 1},
        {"0.0", "-0.0", 0},              /* Object.is: the sign of zero counts */
        {"false", "null", 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        CHECK_CTX("equal %s %s", cases[k].a, cases[k].b);
        pm_value *a = J(cases[k].a), *b = J(cases[k].b);
        CHECK_EQ_INT(pm_value_equal(a, b), cases[k].eq);
        pm_value_free(a);
        pm_value_free(b);
    }
    CHECK_CTX("%s", "");
    pm_value *n1 = pm_value_double(NAN), *n2 = pm_value_double(-NAN);
    CHECK(pm_value_equal(n1, n2)); /* NaN equals NaN, for testing */
    CHECK(pm_value_equal(NULL, NULL));
    CHECK(!pm_value_equal(n1, NULL));
    pm_value_free(n1);
    pm_value_free(n2);
    pm_value_free(v);
}

static void test_json_write(void)
{
    check_json(pm_value_double(0.1), "0.1");
    check_json(pm_value_double(1.0), "1.0");
    check_json(pm_value_double(-0.0), "-0.0");
    check_json(pm_value_double(1e300), "1e+300");
    check_json(pm_value_double(5e-324), "5e-324");
    check_json(pm_value_double(1.0 / 3), "0.3333333333333333");
    check_json(pm_value_double(100), "100.0");
    check_json(pm_value_double(123456.789), "123456.789");
    check_json(pm_value_double(1e15), "1000000000000000.0");
    check_json(pm_value_double(1e16), "1e+16");
    check_json(pm_value_double(0.0001), "0.0001");
    check_json(pm_value_double(0.00001), "1e-05");
    check_json(pm_value_double(-1.7976931348623157e308), "-1.7976931348623157e+308");
    check_json(pm_value_double(0.1 + 0.2), "0.30000000000000004");
    check_json(pm_value_double(NAN), "null");
    check_json(pm_value_double(-INFINITY), "null");
    check_json(pm_value_int(INT64_MIN), "-9223372036854775808");
    check_json(pm_value_int(INT64_MAX), "9223372036854775807");
    check_json(pm_value_strn("q\"\\/\n\r\t\b\f\x01\x7f\xc3\xa9\0", 14),
               "\"q\\\"\\\\/\\n\\r\\t\\b\\f\\u0001\x7f\xc3\xa9\\u0000\"");
    check_json(pm_value_bytes("\x00\xab", 2), "{\"$bytes\":\"00ab\"}");
    check_json(pm_value_error(4, -1, "no \"x\""),
               "{\"$error\":{\"index\":4,\"code\":-1,\"message\":\"no \\\"x\\\"\"}}");
    check_json(J(" [ 1 , { \"a\" : [ ] , \"b\" : { } } ] "), "[1,{\"a\":[],\"b\":{}}]");
    /* The longest error head (a fuzzer find: it once overflowed a buffer). */
    char head[128];
    snprintf(head, sizeof head, "{\"$error\":{\"index\":%zu,\"code\":-2147483648,"
             "\"message\":\"m\"}}", (size_t)SIZE_MAX);
    check_json(pm_value_error(SIZE_MAX, INT32_MIN, "m"), head);
    char *s = (char *)1;
    CHECK_STATUS(PM_EINVAL, pm_value_to_json(NULL, &s, NULL));
    CHECK(s == NULL);
}

static void test_json_read(void)
{
    int64_t i = 0;
    double d = 0;
    pm_value *v = J("9223372036854775807");
    CHECK_STATUS(PM_OK, pm_value_get_int(v, &i));
    CHECK(i == INT64_MAX);
    pm_value_free(v);
    v = J("-9223372036854775808");
    CHECK_STATUS(PM_OK, pm_value_get_int(v, &i));
    CHECK(i == INT64_MIN);
    pm_value_free(v);
    v = J("9223372036854775808"); /* 2^63: a double */
    CHECK_EQ_INT(pm_value_type(v), PM_T_DOUBLE);
    CHECK_STATUS(PM_OK, pm_value_get_double(v, &d));
    CHECK_EQ_DBL(d, 9223372036854775808.0);
    pm_value_free(v);
    const char *dbl[] = {"1.0", "1e2", "-0.5E-3", "0.0", "1e400"};
    for (size_t k = 0; k < sizeof dbl / sizeof dbl[0]; k++) {
        v = J(dbl[k]);
        CHECK_EQ_INT(pm_value_type(v), PM_T_DOUBLE);
        pm_value_free(v);
    }
    v = J("\"\\u00e9\\ud83d\\ude00\\u0000/\\/\"");
    const char *s = NULL;
    size_t n = 0;
    CHECK_STATUS(PM_OK, pm_value_get_str(v, &s, &n));
    CHECK_EQ_SIZE(n, 9);
    CHECK(memcmp(s, "\xc3\xa9\xf0\x9f\x98\x80\0//", 10) == 0);
    pm_value_free(v);
    /* Tagged objects that do not match the shape stay dicts. */
    const char *dicts[] = {"{\"$bytes\":\"abc\"}", "{\"$bytes\":\"zz\"}", "{\"$bytes\":1}",
                           "{\"$bytes\":\"00\",\"x\":1}",
                           "{\"$error\":{\"index\":-1,\"code\":1}}",
                           "{\"$error\":{\"index\":1,\"code\":1,\"extra\":1}}",
                           "{\"$error\":{\"index\":1,\"code\":4294967296}}",
                           "{\"$error\":{\"index\":1,\"code\":1,\"message\":5}}"};
    for (size_t k = 0; k < sizeof dicts / sizeof dicts[0]; k++) {
        CHECK_CTX("%s", dicts[k]);
        v = J(dicts[k]);
        CHECK_EQ_INT(pm_value_type(v), PM_T_DICT);
        pm_value_free(v);
    }
    CHECK_CTX("%s", "");
}

/* A repeated key keeps its last value, in the first key's place, as
 * JSON.parse, Python's json and pm_dict_set do (issue 13: JSONTestSuite's
 * y_object_duplicated_key*.json were rejected). */
static void test_json_duplicate_keys(void)
{
    /* y_object_duplicated_key.json and y_object_duplicated_key_and_value.json */
    check_json(J("{\"a\":\"b\",\"a\":\"c\"}"), "{\"a\":\"c\"}");
    check_json(J("{\"a\":\"b\",\"a\":\"b\"}"), "{\"a\":\"b\"}");
    check_json(J("{\"a\":1,\"b\":2,\"a\":3}"), "{\"a\":3,\"b\":2}");
    /* The replaced value may be the deepest or of another type: the depth
     * follows the survivor, so a shallow value after a deep one is fine. */
    pm_value *v = J("{\"a\":[[[1]]],\"a\":null,\"b\":{\"a\":1,\"a\":[2]}}");
    CHECK_EQ_SIZE(pm_value_len(v), 2);
    CHECK_EQ_INT(pm_value_type(pm_dict_get(v, "a")), PM_T_NULL);
    CHECK(pm_dict_get(v, "a") != NULL);
    check_json(v, "{\"a\":null,\"b\":{\"a\":[2]}}");
    /* Past the size where the dict keeps a hash index. */
    check_json(J("{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,"
                 "\"k7\":7,\"k8\":8,\"k9\":9,\"k3\":33,\"k9\":99,\"k3\":333}"),
               "{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":333,\"k4\":4,\"k5\":5,\"k6\":6,"
               "\"k7\":7,\"k8\":8,\"k9\":99}");
    /* Keys equal once unescaped are the same key. */
    check_json(J("{\"a\":1,\"\\u0061\":2}"), "{\"a\":2}");
    /* A tag spelled twice is still one tag: the last one is read. */
    v = J("{\"$bytes\":\"zz\",\"$bytes\":\"00ff\"}");
    CHECK_EQ_INT(pm_value_type(v), PM_T_BYTES);
    pm_value_free(v);
    /* Within the depth limit after a replacement, and still refused past it. */
    char deep[2 * PM_VALUE_MAX_DEPTH + 32];
    size_t k = PM_VALUE_MAX_DEPTH - 1, n = 0;
    n += (size_t)sprintf(deep, "{\"a\":1,\"a\":");
    memset(deep + n, '[', k);
    memset(deep + n + k, ']', k);
    n += 2 * k;
    deep[n++] = '}';
    deep[n] = '\0';
    v = J(deep);
    CHECK_EQ_SIZE(pm_value_len(v), 1);
    pm_value_free(v);
}

static void test_json_reject(void)
{
    static const struct { const char *text; size_t offset; } bad[] = {
        {"", 0}, {"   ", 3}, {"[", 1}, {"[1,]", 3}, {"[1 2]", 3}, {"{\"a\":1,}", 7},
        {"{\"a\" 1}", 5}, {"{1:2}", 1}, {"01", 1}, {"1.", 0},
        {".5", 0}, {"+1", 0}, {"-", 0}, {"1e", 0}, {"NaN", 0}, {"Infinity", 0}, {"tru", 0},
        {"nul", 0}, {"[true false]", 6}, {"\"abc", 0}, {"\"\\x\"", 1}, {"\"\\u12\"", 1},
        {"\"\\ud800\"", 1}, {"\"\\udc00\\ud800\"", 1}, {"\"a\x01\"", 2}, {"\"\xff\"", 0},
        {"\"\xc3\"", 0}, {"1 2", 2}, {"[] //", 3}, {"/* */ 1", 0}, {"'a'", 0},
        {"[1]]", 3}, {"{\"a\":}", 5}, {"\xef\xbb\xbf{}", 0},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        pm_value *v = (pm_value *)1;
        pm_parse_error e = {99, NULL};
        CHECK_CTX("reject #%zu: %s", k, bad[k].text);
        CHECK_STATUS(PM_EINVAL, pm_value_from_json(bad[k].text, strlen(bad[k].text), &v, &e));
        CHECK(v == NULL);
        CHECK(e.reason != NULL);
        CHECK_EQ_SIZE(e.offset, bad[k].offset);
    }
    CHECK_CTX("%s", "");
    /* An embedded NUL is not whitespace. */
    pm_value *v = NULL;
    CHECK_STATUS(PM_EINVAL, pm_value_from_json("1\0", 2, &v, NULL));
    CHECK_STATUS(PM_EINVAL, pm_value_from_json(NULL, 1, &v, NULL));
    CHECK_STATUS(PM_EINVAL, pm_value_from_json("1", 1, NULL, NULL));

    /* Nesting: 64 containers parse, 65 do not (with a clear reason). */
    char deep[2 * (PM_VALUE_MAX_DEPTH + 1) + 1];
    for (int extra = 0; extra <= 1; extra++) {
        int k = PM_VALUE_MAX_DEPTH + extra;
        memset(deep, '[', (size_t)k);
        memset(deep + k, ']', (size_t)k);
        deep[2 * k] = '\0';
        pm_parse_error e;
        int rc = pm_value_from_json(deep, strlen(deep), &v, &e);
        CHECK_STATUS(extra ? PM_EINVAL : PM_OK, rc);
        if (extra) {
            CHECK_EQ_STR(e.reason, "nesting deeper than 64");
            CHECK_EQ_SIZE(e.offset, 0); /* the container that would be too deep */
        }
        pm_value_free(v);
    }
    /* Far deeper: refused on the way down, without recursing further. */
    char *far = malloc(200001);
    memset(far, '[', 100000);
    memset(far + 100000, ']', 100000);
    CHECK_STATUS(PM_EINVAL, pm_value_from_json(far, 200000, &v, NULL));
    memset(far, '{', 100000);
    CHECK_STATUS(PM_EINVAL, pm_value_from_json(far, 200000, &v, NULL));
    free(far);
    /* Tags are leaves: a value at the limit holding bytes and errors is
     * written deeper than it is and must read back (a fuzzer find). */
    pm_value *leafy = pm_value_list();
    pm_list_push(leafy, pm_value_bytes("\1", 1));
    pm_list_push(leafy, pm_value_error(1, 2, "e"));
    for (int i = 1; i < PM_VALUE_MAX_DEPTH; i++) {
        pm_value *l = pm_value_list();
        CHECK_STATUS(PM_OK, pm_list_push(l, leafy));
        leafy = l;
    }
    char *s = NULL;
    CHECK_STATUS(PM_OK, pm_value_to_json(leafy, &s, NULL));
    pm_value *back = J(s);
    CHECK(pm_value_equal(back, leafy));
    pm_value_free(back);
    pm_value_free(leafy);
    free(s);
    /* ... but a plain dict in the tags' place is too deep. */
    char tagdeep[2 * PM_VALUE_MAX_DEPTH + 64];
    memset(tagdeep, '[', PM_VALUE_MAX_DEPTH);
    strcpy(tagdeep + PM_VALUE_MAX_DEPTH, "{\"x\":{}}");
    memset(tagdeep + strlen(tagdeep), ']', PM_VALUE_MAX_DEPTH);
    tagdeep[2 * PM_VALUE_MAX_DEPTH + 8] = '\0';
    CHECK_STATUS(PM_EINVAL, pm_value_from_json(tagdeep, strlen(tagdeep), &v, NULL));
}

/* JSON must not change with the program's locale (decimal comma). */
static void test_locale(void)
{
    const char *names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8"};
    const char *got = NULL;
    for (size_t k = 0; k < 4 && !got; k++)
        got = setlocale(LC_NUMERIC, names[k]);
    if (!got) {
        printf("note: no decimal-comma locale installed; locale test skipped\n");
        return;
    }
    check_json(pm_value_double(1.5), "1.5");
    pm_value *v = J("2.25");
    double d = 0;
    CHECK_STATUS(PM_OK, pm_value_get_double(v, &d));
    CHECK_EQ_DBL(d, 2.25);
    pm_value_free(v);
    setlocale(LC_NUMERIC, "C");
}

int main(void)
{
    test_scalars();
    test_strings();
    test_list();
    test_dict();
    test_depth();
    test_clone_equal();
    test_json_write();
    test_json_read();
    test_json_duplicate_keys();
    test_json_reject();
    test_locale();
    return pmt_done("test_value");
}
