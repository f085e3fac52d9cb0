/*
 * libFuzzer target: arbitrary bytes as an API request body through request counting, for every
 * API shape. Anything that parses as JSON is counted without a crash, a leak or a sanitizer
 * report; what does not parse is refused by the parser before counting. And the count through
 * a prefix memo (cache/prefixcount.c) is the plain count, with the same parts: with a fresh
 * memo (cold), again (warm), with a memo that every input before has filled, and for its
 * conversation grown one message at a time through one memo.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cache/prefixcount.h"
#include "tokenizer/chat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PCAP 64

/* Counts body with memo (and parts) and aborts unless it is the plain count r0 with parts p0. */
static void same_as_plain(const tok_enc *e, tok_api api, const cJSON *body, const char *model,
                          int rc0, const tok_count_result *r0, const tok_count_parts *p0,
                          struct prefixcount *pc)
{
    uint64_t a[PCAP];
    tok_count_parts parts = {.messages = a, .cap = PCAP};
    tok_prefix_memo memo;
    tok_count_opts o = {.memo = &memo, .parts = &parts};
    tok_count_result r;
    int rc;

    prefixcount_memo(pc, &memo);
    rc = tok_count_request_ex(e, api, body, model, 1.25, &o, &r);
    if (rc != rc0)
        abort();
    if (rc != 0)
        return;
    if (r.tokens != r0->tokens || r.image_tokens != r0->image_tokens || r.images != r0->images ||
        r.estimated != r0->estimated || r.approximate != r0->approximate)
        abort();
    if (parts.tools != p0->tools || parts.system != p0->system ||
        parts.nmessages != p0->nmessages ||
        memcmp(parts.messages, p0->messages, parts.nmessages * sizeof(uint64_t)) != 0)
        abort();
}

/* The body's conversation grown message by message (at most 16), each turn counted through one
 * memo: the same as the plain count, turn by turn (hits at every earlier boundary). */
static void turn_by_turn(const tok_enc *e, tok_api api, const cJSON *body, const char *model)
{
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(body, "messages");
    int n = cJSON_GetArraySize(msgs);
    struct prefixcount *pc;

    if (!cJSON_IsArray(msgs) || n < 2 || n > 16 || (pc = prefixcount_new(1000)) == NULL)
        return;
    for (int k = 1; k <= n; k++) {
        cJSON *b = cJSON_Duplicate(body, 1), *m;
        uint64_t a0[PCAP];
        tok_count_parts p0 = {.messages = a0, .cap = PCAP};
        tok_count_opts o0 = {.parts = &p0};
        tok_count_result r0;
        int rc;
        if (b == NULL)
            abort();
        m = cJSON_GetObjectItemCaseSensitive(b, "messages");
        while (cJSON_GetArraySize(m) > k)
            cJSON_DeleteItemFromArray(m, k);
        rc = tok_count_request_ex(e, api, b, model, 1.25, &o0, &r0);
        same_as_plain(e, api, b, model, rc, &r0, &p0, pc);
        cJSON_Delete(b);
    }
    prefixcount_free(pc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *body = cJSON_ParseWithLength((const char *)data, size);
    const cJSON *m;
    const char *model;
    tok_count_result r;
    static struct prefixcount *shared; /* filled by every input */
    uint64_t a0[PCAP];
    tok_count_parts p0 = {.messages = a0, .cap = PCAP};
    tok_count_opts o0 = {.parts = &p0};

    if (body == NULL)
        return 0;
    if (shared == NULL && (shared = prefixcount_new(100000)) == NULL)
        abort();
    m = cJSON_GetObjectItemCaseSensitive(body, "model");
    model = cJSON_IsString(m) ? m->valuestring : NULL;
    for (int api = TOK_API_CHAT; api <= TOK_API_MESSAGES; api++) {
        const tok_enc *e = tok_encoding(tok_encoding_for_model(model));
        if (e == NULL)
            abort();
        int rc = tok_count_request(e, (tok_api)api, body, model, 1.25, &r);
        if (r.image_tokens > r.tokens && api != TOK_API_MESSAGES)
            abort();
        if (tok_count_request_ex(e, (tok_api)api, body, model, 1.25, &o0, &r) != rc)
            abort();
        struct prefixcount *cold = prefixcount_new(1000);
        if (cold == NULL)
            abort();
        same_as_plain(e, (tok_api)api, body, model, rc, &r, &p0, cold); /* cold */
        same_as_plain(e, (tok_api)api, body, model, rc, &r, &p0, cold); /* warm */
        same_as_plain(e, (tok_api)api, body, model, rc, &r, &p0, shared);
        prefixcount_free(cold);
        if (api == TOK_API_CHAT || api == TOK_API_MESSAGES)
            turn_by_turn(e, (tok_api)api, body, model);
    }
    cJSON_Delete(body);
    return 0;
}
