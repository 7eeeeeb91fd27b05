/*
 * fuzz_msgpack.c - libFuzzer target for the MessagePack decoder, the one
 * parser that reads bytes from other processes (and, through the bindings,
 * from anyone). Beyond "never crashes, never leaks", it checks properties:
 *  - decoding the first value (used != NULL) and decoding the whole buffer
 *    (used == NULL) agree: strict succeeds exactly when the first value
 *    took every byte;
 *  - a decoded value re-encodes, decodes back equal, and its encoding is
 *    canonical (encoding the decoded copy gives the same bytes again);
 *  - it clones equal and prints as JSON that parses.
 * A failed property aborts, which libFuzzer (and the replay driver) report.
 *
 *   clang -fsanitize=fuzzer,address,undefined ... (tests/fuzz/CMakeLists.txt, PM_FUZZ=ON)
 *   ./fuzz_msgpack tests/fuzz/corpus/msgpack
 */
#include "parmap_value.h"

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pm_value *v = NULL, *strict = NULL;
    size_t used = 0;
    pm_parse_error err;
    int rc = pm_value_decode_ex(data, size, &v, &used, &err);
    REQUIRE(rc == PM_OK || rc == PM_EINVAL || rc == PM_ENOMEM);
    REQUIRE(rc == PM_OK ? err.reason == NULL && used <= size && used > 0
                        : err.reason != NULL && v == NULL && used == 0);
    int src = pm_value_decode(data, size, &strict, NULL);
    if (rc == PM_OK && used == size) {
        REQUIRE(src == PM_OK);
        REQUIRE(pm_value_equal(v, strict));
    } else if (rc != PM_ENOMEM) {
        REQUIRE(src == PM_EINVAL);
    }
    pm_value_free(strict);
    if (rc != PM_OK)
        return 0;

    unsigned char *buf = NULL, *buf2 = NULL;
    size_t len = 0, len2 = 0;
    pm_value *back = NULL;
    REQUIRE(pm_value_encode(v, &buf, &len) == PM_OK);
    REQUIRE(len <= 2 * size + 64); /* canonical forms are never much longer */
    REQUIRE(pm_value_decode(buf, len, &back, NULL) == PM_OK);
    REQUIRE(pm_value_equal(v, back));
    REQUIRE(pm_value_encode(back, &buf2, &len2) == PM_OK);
    REQUIRE(len == len2 && memcmp(buf, buf2, len) == 0);

    pm_value *c = pm_value_clone(v);
    REQUIRE(pm_value_equal(v, c));
    char *json = NULL;
    size_t jlen = 0;
    pm_value *parsed = NULL;
    REQUIRE(pm_value_to_json(v, &json, &jlen) == PM_OK);
    REQUIRE(strlen(json) == jlen);
    REQUIRE(pm_value_from_json(json, jlen, &parsed, NULL) == PM_OK);

    free(json);
    free(buf);
    free(buf2);
    pm_value_free(parsed);
    pm_value_free(c);
    pm_value_free(back);
    pm_value_free(v);
    return 0;
}
