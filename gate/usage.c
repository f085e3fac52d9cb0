#include "gate/usage.h"

#include <string.h>

static int64_t int_at(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

/* OpenAI chat and embeddings: prompt_tokens, completion_tokens, prompt_tokens_details. */
static void openai_chat(const json_t *us, struct usage *u)
{
    if (!json_is_object(us))
        return;
    u->input = int_at(us, "prompt_tokens");
    u->output = int_at(us, "completion_tokens");
    u->cached = int_at(json_object_get(us, "prompt_tokens_details"), "cached_tokens");
    u->have = 1;
}

/* OpenAI Responses: input_tokens, output_tokens, input_tokens_details. */
static void openai_responses(const json_t *us, struct usage *u)
{
    if (!json_is_object(us))
        return;
    u->input = int_at(us, "input_tokens");
    u->output = int_at(us, "output_tokens");
    u->cached = int_at(json_object_get(us, "input_tokens_details"), "cached_tokens");
    u->have = 1;
}

/*
 * Anthropic: input_tokens excludes cache reads and writes, so the gate's input total adds
 * them back; output_tokens in a message_delta is cumulative.
 */
static void anthropic(const json_t *us, struct usage *u)
{
    if (!json_is_object(us))
        return;
    if (json_object_get(us, "input_tokens") != NULL) {
        u->cached = int_at(us, "cache_read_input_tokens");
        u->cache_write = int_at(us, "cache_creation_input_tokens");
        u->input = int_at(us, "input_tokens") + u->cached + u->cache_write;
    }
    if (json_object_get(us, "output_tokens") != NULL)
        u->output = int_at(us, "output_tokens");
    u->have = 1;
}

void usage_from_body(enum endpoint ep, const json_t *body, struct usage *u)
{
    switch (ep) {
    case EP_CHAT:
    case EP_EMBEDDINGS:
        openai_chat(json_object_get(body, "usage"), u);
        break;
    case EP_RESPONSES:
        openai_responses(json_object_get(body, "usage"), u);
        break;
    case EP_MESSAGES:
        anthropic(json_object_get(body, "usage"), u);
        break;
    default:
        break;
    }
}

int usage_from_event(enum endpoint ep, const char *name, const json_t *data, struct usage *u)
{
    switch (ep) {
    case EP_CHAT: {
        const json_t *us = json_object_get(data, "usage");
        if (!json_is_object(us))
            return 0;
        openai_chat(us, u);
        const json_t *choices = json_object_get(data, "choices");
        return json_is_array(choices) && json_array_size(choices) == 0;
    }
    case EP_RESPONSES:
        if (strcmp(name, "response.completed") == 0 || strcmp(name, "response.incomplete") == 0 ||
            strcmp(name, "response.failed") == 0)
            openai_responses(json_object_get(json_object_get(data, "response"), "usage"), u);
        return 0;
    case EP_MESSAGES:
        if (strcmp(name, "message_start") == 0)
            anthropic(json_object_get(json_object_get(data, "message"), "usage"), u);
        else if (strcmp(name, "message_delta") == 0)
            anthropic(json_object_get(data, "usage"), u);
        return 0;
    default:
        return 0;
    }
}
