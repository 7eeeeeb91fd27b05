/*
 * test_msgpack.c - the MessagePack codec: exact bytes of the smallest form
 * of every type at each length-class boundary, round trips, what other
 * encoders may send (non-minimal widths, float32, uint64), and everything the
 * decoder must refuse without crashing: truncation at every byte, lengths
 * larger than the input, bad UTF-8, non-string and duplicate keys, foreign
 * extension types, nesting past the limit, and random garbage.
 */
#include "check.h"

#include "conformance.h"
#include "parmap_value.h"

/* Bytes from hex text ("c3 01"); spaces ignored. */
static size_t unhex(const char *hex, unsigned char *out)
{
    size_t n = 0;
    for (const char *p = hex; *p;) {
        if (*p == ' ') {
            p++;
            continue;
        }
        unsigned x;
        sscanf(p, "%2x", &x);
        out[n++] = (unsigned char)x;
        p += 2;
    }
    return n;
}

static void print_hex(const char *what, const unsigned char *p, size_t n)
{
    fprintf(stderr, "    %s:", what);
    for (size_t i = 0; i < n && i < 40; i++)
        fprintf(stderr, " %02x", p[i]);
    fprintf(stderr, "%s\n", n > 40 ? " ..." : "");
}

static void check_bytes(const unsigned char *got, size_t n, const unsigned char *want, size_t m)
{
    if (n != m || memcmp(got, want, n) != 0) {
        print_hex("got ", got, n);
        print_hex("want", want, m);
    }
    CHECK(n == m && memcmp(got, want, n) == 0);
}

/* v encodes to exactly `hex`, and decodes back equal. Frees v. */
static void check_enc(pm_value *v, const char *hex)
{
    unsigned char want[64], *buf = NULL;
    size_t m = unhex(hex, want), n = 0, used = 0;
    CHECK_CTX("encode to %s", hex);
    CHECK_STATUS(PM_OK, pm_value_encode(v, &buf, &n));
    check_bytes(buf, n, want, m);
    pm_value *back = NULL;
    CHECK_STATUS(PM_OK, pm_value_decode(buf, n, &back, &used));
    CHECK_EQ_SIZE(used, n);
    CHECK(pm_value_equal(v, back));
    free(buf);
    pm_value_free(back);
    pm_value_free(v);
}

/* Round trip of v; returns the encoding's header (first 5 bytes as an int
 * in hex order, for length-class checks) and frees v. */
static uint64_t round_trip(pm_value *v, size_t *size)
{
    unsigned char *buf = NULL;
    size_t n = 0;
    CHECK_STATUS(PM_OK, pm_value_encode(v, &buf, &n));
    pm_value *back = NULL;
    CHECK_STATUS(PM_OK, pm_value_decode(buf, n, &back, NULL));
    CHECK(pm_value_equal(v, back));
    uint64_t head = 0;
    for (size_t i = 0; i < 5; i++)
        head = head << 8 | (i < n ? buf[i] : 0);
    if (size)
        *size = n;
    free(buf);
    pm_value_free(back);
    pm_value_free(v);
    return head;
}

/* Decoding hex must fail with PM_EINVAL and this reason. */
static void check_reject(const char *hex, const char *reason)
{
    unsigned char in[64];
    size_t n = unhex(hex, in);
    pm_value *v = (pm_value *)1;
    pm_parse_error e = {0, NULL};
    CHECK_CTX("reject %s", hex);
    CHECK_STATUS(PM_EINVAL, pm_value_decode_ex(in, n, &v, NULL, &e));
    CHECK(v == NULL);
    CHECK_EQ_STR(e.reason, reason);
}

/* Decoding hex gives the value of JSON text `json`. */
static void check_dec(const char *hex, const char *json)
{
    unsigned char in[64];
    size_t n = unhex(hex, in);
    pm_value *v = NULL, *want = NULL;
    CHECK_CTX("decode %s", hex);
    CHECK_STATUS(PM_OK, pm_value_decode(in, n, &v, NULL));
    CHECK_STATUS(PM_OK, pm_value_from_json(json, strlen(json), &want, NULL));
    CHECK(pm_value_equal(v, want));
    pm_value_free(v);
    pm_value_free(want);
}

static void test_scalars(void)
{
    check_enc(pm_value_null(), "c0");
    check_enc(pm_value_bool(0), "c2");
    check_enc(pm_value_bool(1), "c3");
    static const struct { int64_t i; const char *hex; } ints[] = {
        {0, "00"}, {127, "7f"}, {128, "cc 80"}, {255, "cc ff"}, {256, "cd 01 00"},
        {65535, "cd ff ff"}, {65536, "ce 00 01 00 00"}, {4294967295LL, "ce ff ff ff ff"},
        {4294967296LL, "cf 00 00 00 01 00 00 00 00"},
        {INT64_MAX, "cf 7f ff ff ff ff ff ff ff"}, {-1, "ff"}, {-32, "e0"}, {-33, "d0 df"},
        {-128, "d0 80"}, {-129, "d1 ff 7f"}, {-32768, "d1 80 00"},
        {-32769, "d2 ff ff 7f ff"}, {INT32_MIN, "d2 80 00 00 00"},
        {(int64_t)INT32_MIN - 1, "d3 ff ff ff ff 7f ff ff ff"},
        {INT64_MIN, "d3 80 00 00 00 00 00 00 00"},
    };
    for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++)
        check_enc(pm_value_int(ints[k].i), ints[k].hex);
    check_enc(pm_value_double(1.5), "cb 3f f8 00 00 00 00 00 00");
    check_enc(pm_value_double(-0.0), "cb 80 00 00 00 00 00 00 00");
    check_enc(pm_value_double(INFINITY), "cb 7f f0 00 00 00 00 00 00");
    check_enc(pm_value_double(-INFINITY), "cb ff f0 00 00 00 00 00 00");
    check_enc(pm_value_double(NAN), "cb 7f f8 00 00 00 00 00 00");
    check_enc(pm_value_double(5e-324), "cb 00 00 00 00 00 00 00 01");

    /* -0.0 keeps its sign through the codec. */
    unsigned char *buf = NULL;
    size_t n = 0;
    pm_value *z = pm_value_double(-0.0), *back = NULL;
    CHECK_STATUS(PM_OK, pm_value_encode(z, &buf, &n));
    CHECK_STATUS(PM_OK, pm_value_decode(buf, n, &back, NULL));
    double d = 0;
    CHECK_STATUS(PM_OK, pm_value_get_double(back, &d));
    CHECK(signbit(d));
    free(buf);
    pm_value_free(z);
    pm_value_free(back);
}

static void test_what_others_send(void)
{
    /* Any integer width is accepted, as are float32 and uint64. */
    check_dec("d3 00 00 00 00 00 00 00 01", "1");
    check_dec("cf 00 00 00 00 00 00 00 05", "5");
    check_dec("d0 05", "5");
    check_dec("cd 00 01", "1");
    check_dec("d2 ff ff ff ff", "-1");
    check_dec("ca 3f c0 00 00", "1.5");
    check_dec("d9 03 61 62 63", "\"abc\"");
    check_dec("da 00 01 61", "\"a\"");
    check_dec("dc 00 01 01", "[1]");
    check_dec("de 00 01 a1 61 c0", "{\"a\":null}");
    check_dec("c4 00", "{\"$bytes\":\"\"}");
    check_dec("c5 00 02 00 ff", "{\"$bytes\":\"00ff\"}");
    /* uint64 above INT64_MAX: the nearest double. */
    check_dec("cf 80 00 00 00 00 00 00 00", "9223372036854775808.0");
    check_dec("cf ff ff ff ff ff ff ff ff", "18446744073709551615.0");
    /* The error ext with non-minimal widths and big indexes. */
    check_dec("c7 04 01 93 00 01 a0", "{\"$error\":{\"index\":0,\"code\":1}}");
    check_dec("d7 01 93 cd 01 00 d0 fe a1 78",
              "{\"$error\":{\"index\":256,\"code\":-2,\"message\":\"x\"}}");
}

static void test_lengths(void)
{
    /* Every length class of str, bin, array and map, at its boundaries. */
    static const struct { size_t n; uint64_t str, bin; } cls[] = {
        {0, 0xa0, 0xc400},          {31, 0xbf, 0xc41f},        {32, 0xd920, 0xc420},
        {255, 0xd9ff, 0xc4ff},      {256, 0xda0100, 0xc50100}, {65535, 0xdaffff, 0xc5ffff},
        {65536, 0xdb00010000, 0xc600010000}, {100000, 0xdb000186a0, 0xc6000186a0},
    };
    char *text = malloc(100001);
    memset(text, 'x', 100000);
    for (size_t k = 0; k < sizeof cls / sizeof cls[0]; k++) {
        size_t n = cls[k].n, size = 0;
        int hb = cls[k].str > 0xffffffff ? 5 : cls[k].str > 0xffff ? 3 : cls[k].str > 0xff ? 2 : 1;
        CHECK_CTX("str of %zu", n);
        uint64_t head = round_trip(pm_value_strn(text, n), &size);
        CHECK_EQ_INT(head >> (8 * (5 - hb)), cls[k].str);
        CHECK_EQ_SIZE(size, n + (size_t)hb);
        hb = cls[k].bin > 0xffffffff ? 5 : cls[k].bin > 0xffffff ? 4 : cls[k].bin > 0xffff ? 3 : 2;
        CHECK_CTX("bytes of %zu", n);
        head = round_trip(pm_value_bytes(text, n), &size);
        CHECK_EQ_INT(head >> (8 * (5 - hb)), cls[k].bin);
        CHECK_EQ_SIZE(size, n + (size_t)hb);
    }
    free(text);

    static const struct { size_t n; uint64_t head; int hb; } con[] = {
        {0, 0x0, 1}, {15, 0xf, 1}, {16, 0xdc0010, 3}, {65535, 0xdcffff, 3},
        {65536, 0xdd00010000, 5},
    };
    for (size_t k = 0; k < sizeof con / sizeof con[0]; k++) {
        pm_value *l = pm_value_list(), *d = pm_value_dict();
        char key[24];
        for (size_t i = 0; i < con[k].n; i++) {
            pm_list_push(l, pm_value_null());
            snprintf(key, sizeof key, "%zu", i);
            pm_dict_set(d, key, pm_value_null());
        }
        size_t size = 0;
        CHECK_CTX("list of %zu", con[k].n);
        uint64_t head = round_trip(l, &size);
        uint64_t want = con[k].hb == 1 ? (0x90 | con[k].head) : con[k].head;
        CHECK_EQ_INT(head >> (8 * (5 - con[k].hb)), want);
        CHECK_EQ_SIZE(size, (size_t)con[k].hb + con[k].n);
        CHECK_CTX("map of %zu", con[k].n);
        head = round_trip(d, NULL);
        want = con[k].hb == 1 ? (0x80 | con[k].head) : con[k].head + 0x020000 * (con[k].hb == 3) +
                                                           0x0200000000 * (con[k].hb == 5);
        CHECK_EQ_INT(head >> (8 * (5 - con[k].hb)), want);
    }
}

static void test_containers_and_errors(void)
{
    check_enc(pm_value_list(), "90");
    check_enc(pm_value_dict(), "80");
    pm_value *d = pm_value_dict();
    pm_dict_set(d, "a", pm_value_int(1));
    pm_dict_setn(d, "\0", 1, pm_value_str(""));
    check_enc(d, "82 a1 61 01 a1 00 a0");
    /* Errors: ext PM_MSGPACK_EXT_ERROR around [index, code, message], in the
     * smallest ext form. */
    check_enc(pm_value_error(0, 1, ""), "d6 01 93 00 01 a0");
    check_enc(pm_value_error(300, -1, "bad"), "c7 09 01 93 cd 01 2c ff a3 62 61 64");
    check_enc(pm_value_error(2, INT32_MIN, "abcdefghi"),
              "c7 11 01 93 02 d2 80 00 00 00 a9 61 62 63 64 65 66 67 68 69");
    check_enc(pm_value_error(1, 2, "abcdefghijkl"),
              "d8 01 93 01 02 ac 61 62 63 64 65 66 67 68 69 6a 6b 6c");
    size_t size = 0;
    char big[300];
    memset(big, 'm', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK_EQ_INT(round_trip(pm_value_error(SIZE_MAX, INT32_MAX, big), &size) >> 32, 0xc8);
    /* ext16 header, then the payload: 0x93, the index (cf or ce: size_t is
     * 32 bits on wasm32), the code (ce), the message (da). */
    CHECK_EQ_SIZE(size, 4 + 1 + (SIZE_MAX > UINT32_MAX ? 9 : 5) + 5 + 3 + 299);

    /* A mixed tree. */
    const char *json = "{\"list\":[1,-1,2.5,\"s\",null,true,false,[],{}],"
                       "\"bytes\":{\"$bytes\":\"00ff10\"},"
                       "\"err\":{\"$error\":{\"index\":9,\"code\":3,\"message\":\"x\"}},"
                       "\"nested\":{\"a\":{\"b\":{\"c\":[[[\"deep\"]]]}}}}";
    pm_value *v = NULL;
    CHECK_STATUS(PM_OK, pm_value_from_json(json, strlen(json), &v, NULL));
    round_trip(v, NULL);

    /* Several values in a row, read one by one through `used`. */
    unsigned char two[] = {0x01, 0x92, 0xc3, 0xc0, 0xa1, 0x7a};
    size_t used = 0, at = 0;
    int count = 0;
    while (at < sizeof two) {
        pm_value *x = NULL;
        CHECK_STATUS(PM_OK, pm_value_decode(two + at, sizeof two - at, &x, &used));
        at += used;
        count++;
        pm_value_free(x);
    }
    CHECK_EQ_INT(count, 3);
    pm_value *x = NULL;
    CHECK_STATUS(PM_EINVAL, pm_value_decode(two, sizeof two, &x, NULL)); /* trailing */
    CHECK_STATUS(PM_EINVAL, pm_value_decode(NULL, 0, &x, NULL));        /* empty */
    CHECK_STATUS(PM_EINVAL, pm_value_decode(two, 1, NULL, NULL));
    unsigned char *buf = (unsigned char *)1;
    size_t n = 9;
    CHECK_STATUS(PM_EINVAL, pm_value_encode(NULL, &buf, &n));
    CHECK(buf == NULL && n == 0);
}

static void test_rejects(void)
{
    check_reject("", "truncated input");
    check_reject("c1", "reserved byte 0xc1");
    check_reject("a2 c3 28", "invalid UTF-8 in a string");
    check_reject("a3 ed a0 80", "invalid UTF-8 in a string"); /* a surrogate */
    check_reject("a2 c0 80", "invalid UTF-8 in a string");    /* overlong NUL */
    check_reject("81 a1 ff 01", "invalid UTF-8 in a string");  /* in a key */
    check_reject("81 01 02", "map key is not a string");
    check_reject("81 c4 01 61 02", "map key is not a string"); /* bin is not str */
    check_reject("82 a1 61 01 a1 61 02", "duplicate map key");
    check_reject("d4 02 00", "unsupported extension type");
    check_reject("d6 ff 00 00 00 00", "unsupported extension type"); /* timestamp */
    check_reject("c7 00 05", "unsupported extension type");
    check_reject("d4 01 00", "malformed error value");
    check_reject("d6 01 93 00 01 01", "malformed error value");        /* message not str */
    check_reject("d6 01 93 ff 01 a0", "malformed error value");        /* negative index */
    check_reject("d7 01 92 00 01 a0 c0 c0 c0 c0", "malformed error value"); /* 2 elements */
    check_reject("c7 05 01 93 00 01 a0 c0", "malformed error value");  /* bytes left */
    check_reject("c7 0a 01 93 00 ce 80 00 00 00 a0 c0 c0", "malformed error value"); /* code */
    check_reject("d6 01 93 00 90 a0", "malformed error value");        /* code a list */
    check_reject("c0 c0", "trailing bytes after the value");
    check_reject("dd ff ff ff ff", "array length exceeds the input");
    check_reject("dd 00 00 00 02 c0", "array length exceeds the input");
    check_reject("df ff ff ff ff", "map length exceeds the input");
    check_reject("83 a1 61 c0 a1 62", "map length exceeds the input");
    check_reject("db ff ff ff ff", "truncated input");
    check_reject("c6 ff ff ff ff 00", "truncated input");
    check_reject("c9 ff ff ff ff 01", "truncated input");
    check_reject("cb 00 00", "truncated input");
    check_reject("92 01", "array length exceeds the input");
    check_reject("92 01 a3 61", "truncated input");
    check_reject("dc 00", "truncated input");
}

static void test_depth(void)
{
    /* 64 nested arrays decode, 65 do not: at the 65th opening byte. */
    unsigned char buf[PM_VALUE_MAX_DEPTH + 2];
    for (int extra = 0; extra <= 1; extra++) {
        size_t n = PM_VALUE_MAX_DEPTH + (size_t)extra;
        memset(buf, 0x91, n - 1);
        buf[n - 1] = 0x90;
        pm_value *v = NULL;
        pm_parse_error e;
        CHECK_CTX("depth %zu", n);
        CHECK_STATUS(extra ? PM_EINVAL : PM_OK, pm_value_decode_ex(buf, n, &v, NULL, &e));
        if (extra) {
            CHECK_EQ_STR(e.reason, "nesting deeper than 64");
            CHECK_EQ_SIZE(e.offset, PM_VALUE_MAX_DEPTH);
        } else {
            round_trip(v, NULL);
        }
    }
    /* The same through maps: {"":{"":...}}. */
    unsigned char m[3 * (PM_VALUE_MAX_DEPTH + 1) + 1];
    size_t n = 0;
    for (int i = 0; i < PM_VALUE_MAX_DEPTH + 1; i++) {
        m[n++] = 0x81;
        m[n++] = 0xa0;
    }
    m[n++] = 0xc0;
    pm_value *v = NULL;
    CHECK_STATUS(PM_EINVAL, pm_value_decode(m, n, &v, NULL));
    CHECK_STATUS(PM_OK, pm_value_decode(m + 2, n - 2, &v, NULL));
    pm_value_free(v);
}

/* Every strict prefix of a valid encoding is refused, at every offset. */
static void test_truncation(void)
{
    const char *json = "{\"a\":[1,300,70000,5000000000,-5,-300,-70000,-5000000000,1.5,"
                       "\"str\",{\"$bytes\":\"0102\"},null,true,false],"
                       "\"b\":{\"$error\":{\"index\":3,\"code\":-2,\"message\":\"boom\"}},"
                       "\"c\":{\"d\":[[],{}]}}";
    pm_value *v = NULL;
    CHECK_STATUS(PM_OK, pm_value_from_json(json, strlen(json), &v, NULL));
    unsigned char *buf = NULL;
    size_t n = 0;
    CHECK_STATUS(PM_OK, pm_value_encode(v, &buf, &n));
    for (size_t cut = 0; cut < n; cut++) {
        pm_value *x = (pm_value *)1;
        size_t used = 99;
        CHECK_CTX("cut at %zu of %zu", cut, n);
        /* A copy of exactly `cut` bytes, so ASan sees any read past it. */
        unsigned char *part = malloc(cut ? cut : 1);
        memcpy(part, buf, cut);
        CHECK_STATUS(PM_EINVAL, pm_value_decode(part, cut, &x, &used));
        CHECK(x == NULL);
        CHECK_EQ_SIZE(used, 0);
        free(part);
    }
    free(buf);
    pm_value_free(v);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return pmt_mix(rng_state);
}

/* Whatever decodes must encode, decode back equal, and print as JSON. */
static void check_garbage(const unsigned char *in, size_t n)
{
    pm_value *v = NULL;
    size_t used = 0;
    int rc = pm_value_decode(in, n, &v, &used);
    CHECK(rc == PM_OK || rc == PM_EINVAL);
    if (rc != PM_OK)
        return;
    CHECK(used <= n);
    unsigned char *buf = NULL;
    size_t len = 0;
    CHECK_STATUS(PM_OK, pm_value_encode(v, &buf, &len));
    pm_value *back = NULL;
    CHECK_STATUS(PM_OK, pm_value_decode(buf, len, &back, NULL));
    CHECK(pm_value_equal(v, back));
    char *json = NULL;
    CHECK_STATUS(PM_OK, pm_value_to_json(v, &json, NULL));
    free(json);
    free(buf);
    pm_value_free(back);
    pm_value_free(v);
}

static void test_garbage(void)
{
    /* Bytes biased toward type bytes and small lengths, so that many inputs
     * get deep into the decoder. */
    static const unsigned char common[] = {0x00, 0x01, 0x7f, 0x80, 0x81, 0x90, 0x91, 0x93,
                                           0xa0, 0xa1, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc7,
                                           0xca, 0xcb, 0xcc, 0xcf, 0xd0, 0xd3, 0xd4, 0xd6,
                                           0xd9, 0xdc, 0xde, 0xe0, 0xff, 0x61, 0x02, 0xed};
    unsigned char in[96];
    int rounds = 300000 / PMT_SCALE;
    for (int r = 0; r < rounds; r++) {
        size_t n = rnd() % sizeof in;
        for (size_t i = 0; i < n; i++) {
            uint64_t x = rnd();
            in[i] = (x & 3) ? common[(x >> 2) % sizeof common] : (unsigned char)(x >> 8);
        }
        CHECK_CTX("garbage round %d", r);
        check_garbage(in, n);
    }
    /* Mutations of a valid encoding. */
    const char *json = "{\"k\":[1,2,{\"x\":\"yz\"},{\"$bytes\":\"ff\"},"
                       "{\"$error\":{\"index\":1,\"code\":2,\"message\":\"m\"}},2.5]}";
    pm_value *v = NULL;
    unsigned char *buf = NULL;
    size_t n = 0;
    CHECK_STATUS(PM_OK, pm_value_from_json(json, strlen(json), &v, NULL));
    CHECK_STATUS(PM_OK, pm_value_encode(v, &buf, &n));
    CHECK(n <= sizeof in);
    for (int r = 0; r < rounds; r++) {
        memcpy(in, buf, n);
        int flips = 1 + (int)(rnd() % 3);
        for (int f = 0; f < flips; f++)
            in[rnd() % n] ^= (unsigned char)(1u << (rnd() % 8));
        CHECK_CTX("mutation round %d", r);
        check_garbage(in, n);
    }
    free(buf);
    pm_value_free(v);
}

int main(void)
{
    test_scalars();
    test_what_others_send();
    test_lengths();
    test_containers_and_errors();
    test_rejects();
    test_depth();
    test_truncation();
    test_garbage();
    return pmt_done("test_msgpack");
}
