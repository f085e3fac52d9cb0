/*
 * openai_chat: OpenAI's chat completions API, POST /v1/chat/completions. See dialect.h.
 *
 * Usage is in "usage" (prompt_tokens, completion_tokens, prompt_tokens_details.cached_tokens);
 * a stream has it only when the request asks (stream_options.include_usage), in one last chunk
 * with no choices. Output text is in each choice's message (a stream's: delta): content,
 * refusal, and tool calls' function names and arguments.
 */
#include "gate/api/dialect.h"

#include <string.h>

#include "tokenizer/chat.h"

#define GET cJSON_GetObjectItemCaseSensitive

static void usage_body(const cJSON *body, struct usage *u)
{
    usage_read_openai(GET(body, "usage"), "prompt_tokens", "completion_tokens",
                      "prompt_tokens_details", u);
    usage_body_done(u);
}

static int usage_event(const char *name, const cJSON *data, struct usage *u)
{
    const cJSON *us = GET(data, "usage");
    const cJSON *choices, *ch;
    int usage_chunk;

    (void)name;
    if (!cJSON_IsObject(us))
        return 0;
    usage_read_openai(us, "prompt_tokens", "completion_tokens", "prompt_tokens_details", u);
    usage_check_parts(u);
    /* final: OpenAI's own usage chunk (no choices) comes last; some compatible providers put
     * usage in the chunk that finishes; usage in other chunks is a running count */
    choices = GET(data, "choices");
    usage_chunk = cJSON_IsArray(choices) && cJSON_GetArraySize(choices) == 0;
    cJSON_ArrayForEach(ch, choices)
    {
        if (cJSON_IsString(GET(ch, "finish_reason")))
            u->final = 1;
    }
    if (usage_chunk)
        u->final = 1;
    return usage_chunk;
}

/* A message or a delta: content, refusal, tool calls' names and arguments. */
static void message_text(const cJSON *msg, api_text_fn *add, void *arg)
{
    const cJSON *call;

    api_text_string(GET(msg, "content"), add, arg);
    api_text_string(GET(msg, "refusal"), add, arg);
    cJSON_ArrayForEach(call, GET(msg, "tool_calls"))
    {
        const cJSON *fn = GET(call, "function");
        api_text_string(GET(fn, "name"), add, arg);
        api_text_string(GET(fn, "arguments"), add, arg);
    }
}

static void text_body(const cJSON *body, api_text_fn *add, void *arg)
{
    const cJSON *c;

    cJSON_ArrayForEach(c, GET(body, "choices")) message_text(GET(c, "message"), add, arg);
}

static void text_event(const char *name, const cJSON *data, api_text_fn *add, void *arg)
{
    const cJSON *c;

    (void)name;
    cJSON_ArrayForEach(c, GET(data, "choices")) message_text(GET(c, "delta"), add, arg);
}

/* stream_options.include_usage: true, else a stream reports no usage at all */
static int stream_usage(cJSON *body, struct jsonedit_op *op)
{
    cJSON *so = GET(body, "stream_options");

    if (cJSON_IsTrue(GET(so, "include_usage")))
        return 0;
    if (!cJSON_IsObject(so)) {
        cJSON_DeleteItemFromObjectCaseSensitive(body, "stream_options");
        so = cJSON_AddObjectToObject(body, "stream_options");
    }
    op->key = "stream_options";
    op->value = NULL;
    if (so == NULL)
        return 1;
    cJSON_DeleteItemFromObjectCaseSensitive(so, "include_usage");
    if (cJSON_AddTrueToObject(so, "include_usage") != NULL)
        op->value = cJSON_PrintUnformatted(so);
    return 1;
}

static const char *const caps[] = {"max_completion_tokens", "max_tokens", NULL};

const struct api_dialect api_openai_chat = {
    .name = "openai.chat",
    .ep = EP_CHAT,
    .format = CONF_FMT_OPENAI,
    .tok_api = TOK_API_CHAT,
    .upstream_path = "/chat/completions",
    .generates = 1,
    .billed = 1,
    .client_keys = api_keys_any,
    .upstream_key = "authorization: Bearer ",
    .cap_members = caps,
    .cap_min = 1,
    .choices_member = "n",
    .usage_body = usage_body,
    .usage_event = usage_event,
    .text_body = text_body,
    .text_event = text_event,
    .stream_usage = stream_usage,
    .error_body = apierr_openai_body,
    .error_event = apierr_openai_event,
    .error_doc = apierr_openai_doc,
};
