/*
 * libFuzzer target: arbitrary bytes as an API request body through request counting, for every
 * API shape. Anything that parses as JSON is counted without a crash, a leak or a sanitizer
 * report; what does not parse is refused by the parser before counting.
 */
#include <stdint.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "tokenizer/chat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *body = cJSON_ParseWithLength((const char *)data, size);
    const cJSON *m;
    const char *model;
    tok_count_result r;

    if (body == NULL)
        return 0;
    m = cJSON_GetObjectItemCaseSensitive(body, "model");
    model = cJSON_IsString(m) ? m->valuestring : NULL;
    for (int api = TOK_API_CHAT; api <= TOK_API_MESSAGES; api++) {
        const tok_enc *e = tok_encoding(tok_encoding_for_model(model));
        if (e == NULL)
            abort();
        (void)tok_count_request(e, (tok_api)api, body, model, 1.25, &r);
        if (r.image_tokens > r.tokens && api != TOK_API_MESSAGES)
            abort();
    }
    cJSON_Delete(body);
    return 0;
}
