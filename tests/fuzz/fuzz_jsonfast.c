/*
 * libFuzzer target: the gate's JSON parse (gate/util/jsonfast.cpp: simdjson, the tree built for
 * cJSON) against cJSON's own, on any bytes. What must hold:
 *  - both refuse the text, with the same error position (cJSON_GetErrorPtr), or both read it,
 *    into the same tree (same_parse: types, numbers, names, strings, order, list links) and
 *    with the same end;
 *  - every allocation either makes is freed by cJSON_Delete (counted through cJSON's hooks).
 * Seeds: tests/fuzz/seeds-jsonfast; dictionary: fuzz_jsonfast.dict.
 */
#include <stdint.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "gate/util/jsonfast.h"
#include "fuzz_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int hooked;
    const char *s = (const char *)data, *end_fast = NULL, *end_cjson = NULL, *err_fast;
    cJSON *fast, *slow;

    if (!hooked) {
        json_count_hooks();
        hooked = 1;
    }
    fast = jsonfast_parse(s, size, &end_fast);
    err_fast = fast == NULL ? cJSON_GetErrorPtr() : NULL;
    slow = jsonfast_parse_cjson(s, size, &end_cjson);
    if ((fast == NULL) != (slow == NULL))
        abort(); /* one read it, the other did not */
    if (fast == NULL && err_fast != cJSON_GetErrorPtr())
        abort(); /* refused at different places */
    if (fast != NULL && (!same_parse(fast, slow) || end_fast != end_cjson))
        abort();
    cJSON_Delete(fast);
    cJSON_Delete(slow);
    if (json_count()->live != 0)
        abort(); /* an allocation not freed, or freed twice */
    return 0;
}
