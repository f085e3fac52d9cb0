#include "gate/usage.h"

#include <string.h>

static const cJSON *get(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* A token count: a non-negative whole number, else 0. */
static int64_t int_at(const cJSON *obj, const char *key)
{
    const cJSON *v = get(obj, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9e15)
        return 0;
    return (int64_t)v->valuedouble;
}

/* OpenAI chat and embeddings: prompt_tokens, completion_tokens, prompt_tokens_details. */
static void openai_chat(const cJSON *us, struct usage *u)
{
    if (!cJSON_IsObject(us))
        return;
    u->input = int_at(us, "prompt_tokens");
    u->output = int_at(us, "completion_tokens");
    u->cached = int_at(get(us, "prompt_tokens_details"), "cached_tokens");
    u->have = 1;
}

/* OpenAI Responses: input_tokens, output_tokens, input_tokens_details. */
static void openai_responses(const cJSON *us, struct usage *u)
{
    if (!cJSON_IsObject(us))
        return;
    u->input = int_at(us, "input_tokens");
    u->output = int_at(us, "output_tokens");
    u->cached = int_at(get(us, "input_tokens_details"), "cached_tokens");
    u->have = 1;
}

/*
 * Anthropic: input_tokens excludes cache reads and writes, so the gate's input total adds
 * them back; output_tokens in a message_delta is cumulative.
 */
static void anthropic(const cJSON *us, struct usage *u)
{
    if (!cJSON_IsObject(us))
        return;
    if (get(us, "input_tokens") != NULL) {
        u->cached = int_at(us, "cache_read_input_tokens");
        u->cache_write = int_at(us, "cache_creation_input_tokens");
        u->input = int_at(us, "input_tokens") + u->cached + u->cache_write;
    }
    if (get(us, "output_tokens") != NULL)
        u->output = int_at(us, "output_tokens");
    u->have = 1;
}

void usage_from_body(enum endpoint ep, const cJSON *body, struct usage *u)
{
    switch (ep) {
    case EP_CHAT:
    case EP_EMBEDDINGS:
        openai_chat(get(body, "usage"), u);
        break;
    case EP_RESPONSES:
        openai_responses(get(body, "usage"), u);
        break;
    case EP_MESSAGES:
        anthropic(get(body, "usage"), u);
        break;
    default:
        break;
    }
}

int usage_from_event(enum endpoint ep, const char *name, const cJSON *data, struct usage *u)
{
    switch (ep) {
    case EP_CHAT: {
        const cJSON *us = get(data, "usage");
        if (!cJSON_IsObject(us))
            return 0;
        openai_chat(us, u);
        const cJSON *choices = get(data, "choices");
        return cJSON_IsArray(choices) && cJSON_GetArraySize(choices) == 0;
    }
    case EP_RESPONSES:
        if (strcmp(name, "response.completed") == 0 || strcmp(name, "response.incomplete") == 0 ||
            strcmp(name, "response.failed") == 0)
            openai_responses(get(get(data, "response"), "usage"), u);
        return 0;
    case EP_MESSAGES:
        if (strcmp(name, "message_start") == 0)
            anthropic(get(get(data, "message"), "usage"), u);
        else if (strcmp(name, "message_delta") == 0)
            anthropic(get(data, "usage"), u);
        return 0;
    default:
        return 0;
    }
}
