/*
 * anthropic_messages: Anthropic's Messages API, POST /v1/messages. See dialect.h.
 *
 * Usage is in "usage": input_tokens excludes cache reads and writes
 * (cache_read_input_tokens, cache_creation_input_tokens), so the gate's input total adds them
 * back; cache_creation splits the writes by lifetime (5 minutes, 1 hour: priced apart). A stream reports it piecemeal: message_start has the input and a placeholder output,
 * message_delta the output so far (cumulative), the last one the total. Output text is in the
 * content blocks: text, thinking, tool_use's name and input; a stream sends text, thinking
 * and partial_json deltas, and a tool_use block's name at its start.
 */
#include "gate/api/dialect.h"

#include <string.h>

#include "tokenizer/chat.h"

#define GET cJSON_GetObjectItemCaseSensitive

/*
 * The writes by lifetime: cache_creation's ephemeral_1h_input_tokens and
 * ephemeral_5m_input_tokens, parts of cache_creation_input_tokens (their sum stands for it when
 * only the object is there). Writes the object does not place are 5-minute ones; parts that
 * pass the whole mark the report bad (usage_check_parts). Without the object, the 1-hour count
 * an earlier report gave stands (a message_delta may repeat the total alone).
 */
static void read_writes(const cJSON *us, struct usage *u)
{
    const cJSON *cc = GET(us, "cache_creation");

    u->cache_write = usage_count(us, "cache_creation_input_tokens", u);
    if (!cJSON_IsObject(cc))
        return;
    int64_t w5m = usage_count(cc, "ephemeral_5m_input_tokens", u);
    u->cache_write_1h = usage_count(cc, "ephemeral_1h_input_tokens", u);
    if (GET(us, "cache_creation_input_tokens") == NULL)
        u->cache_write = w5m + u->cache_write_1h;
    else if (w5m + u->cache_write_1h > u->cache_write && u->bad == NULL)
        u->bad = "ephemeral_5m_input_tokens";
}

static void read_usage(const cJSON *us, struct usage *u)
{
    if (!cJSON_IsObject(us))
        return;
    if (GET(us, "input_tokens") != NULL) {
        u->cached = usage_count(us, "cache_read_input_tokens", u);
        read_writes(us, u);
        u->input = usage_count(us, "input_tokens", u) + u->cached + u->cache_write;
    }
    if (GET(us, "output_tokens") != NULL)
        u->output = usage_count(us, "output_tokens", u);
    u->have = 1;
}

static void usage_body(const cJSON *body, struct usage *u)
{
    read_usage(GET(body, "usage"), u);
    usage_body_done(u);
}

static int usage_event(const char *name, const cJSON *data, struct usage *u)
{
    if (strcmp(name, "message_start") == 0) {
        read_usage(GET(GET(data, "message"), "usage"), u);
    } else if (strcmp(name, "message_delta") == 0 && cJSON_IsObject(GET(data, "usage"))) {
        /* its output_tokens is the total; message_start's was a placeholder */
        read_usage(GET(data, "usage"), u);
        u->final = 1;
    }
    usage_check_parts(u);
    return 0;
}

static void text_body(const cJSON *body, api_text_fn *add, void *arg)
{
    const cJSON *c;

    cJSON_ArrayForEach(c, GET(body, "content"))
    {
        api_text_string(GET(c, "text"), add, arg);
        api_text_string(GET(c, "thinking"), add, arg);
        if (GET(c, "input") != NULL) { /* tool_use */
            api_text_string(GET(c, "name"), add, arg);
            api_text_json(GET(c, "input"), add, arg);
        }
    }
}

static void text_event(const char *name, const cJSON *data, api_text_fn *add, void *arg)
{
    if (strcmp(name, "content_block_delta") == 0) {
        const cJSON *d = GET(data, "delta");
        api_text_string(GET(d, "text"), add, arg);
        api_text_string(GET(d, "partial_json"), add, arg);
        api_text_string(GET(d, "thinking"), add, arg);
    } else if (strcmp(name, "content_block_start") == 0) {
        const cJSON *b = GET(data, "content_block");
        api_text_string(GET(b, "text"), add, arg);
        api_text_string(GET(b, "name"), add, arg);
    }
}

static const char *const caps[] = {"max_tokens", NULL};

const struct api_dialect api_anthropic_messages = {
    .name = "anthropic.messages",
    .ep = EP_MESSAGES,
    .format = CONF_FMT_ANTHROPIC,
    .tok_api = TOK_API_MESSAGES,
    .upstream_path = "/messages",
    .generates = 1,
    .billed = 1,
    .client_keys = api_keys_any,
    .upstream_key = "x-api-key: ",
    .version_header = "anthropic-version",
    .version_default = "2023-06-01",
    .cap_members = caps,
    .cap_min = 1,
    .usage_body = usage_body,
    .usage_event = usage_event,
    .text_body = text_body,
    .text_event = text_event,
    .stream_usage = api_no_stream_usage, /* its streams report usage unasked */
    .error_body = apierr_anthropic_body,
    .error_event = apierr_anthropic_event,
    .error_doc = apierr_anthropic_doc,
};
