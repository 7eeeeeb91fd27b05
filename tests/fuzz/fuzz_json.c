/*
 * fuzz_json.c - libFuzzer target for the JSON reader (test vectors, and
 * whatever a binding hands over). Properties checked beyond "never crashes,
 * never leaks": a failure says where and why, inside the input; a parsed
 * value prints as JSON that parses back to an equal value (NaN and the
 * infinities cannot appear: the reader makes none but 1e999-style overflow,
 * which is skipped), and encodes to MessagePack and back equal.
 */
#include "parmap_value.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQUIRE(cond)                                                        \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__,        \
                    __LINE__, #cond);                                        \
            abort();                                                         \
        }                                                                    \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Any infinite double inside (JSON writes it as null, so no round trip). */
static int has_inf(const pm_value *v)
{
    double d;
    switch (pm_value_type(v)) {
    case PM_T_DOUBLE: return pm_value_get_double(v, &d) == PM_OK && isinf(d);
    case PM_T_LIST:
        for (size_t i = 0; i < pm_value_len(v); i++)
            if (has_inf(pm_list_get(v, i)))
                return 1;
        return 0;
    case PM_T_DICT:
        for (size_t i = 0; i < pm_value_len(v); i++)
            if (has_inf(pm_dict_value(v, i)))
                return 1;
        return 0;
    default: return 0;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pm_value *v = NULL;
    pm_parse_error err;
    int rc = pm_value_from_json((const char *)data, size, &v, &err);
    REQUIRE(rc == PM_OK || rc == PM_EINVAL || rc == PM_ENOMEM);
    if (rc != PM_OK) {
        REQUIRE(v == NULL && err.reason != NULL && err.offset <= size);
        return 0;
    }
    char *json = NULL;
    size_t jlen = 0;
    pm_value *back = NULL;
    REQUIRE(pm_value_to_json(v, &json, &jlen) == PM_OK);
    REQUIRE(pm_value_from_json(json, jlen, &back, NULL) == PM_OK);
    REQUIRE(has_inf(v) || pm_value_equal(v, back));

    unsigned char *buf = NULL;
    size_t len = 0;
    pm_value *dec = NULL;
    REQUIRE(pm_value_encode(v, &buf, &len) == PM_OK);
    REQUIRE(pm_value_decode(buf, len, &dec, NULL) == PM_OK);
    REQUIRE(pm_value_equal(v, dec));

    free(buf);
    free(json);
    pm_value_free(dec);
    pm_value_free(back);
    pm_value_free(v);
    return 0;
}
