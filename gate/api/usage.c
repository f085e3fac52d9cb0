#include "gate/api/usage.h"

#include <string.h>

static const cJSON *get(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/*
 * A token count: a whole number from 0 to USAGE_MAX. An absent member is 0; anything else
 * (negative, fractional, huge, a string) is 0 too and marks the report bad, naming key.
 */
static int64_t int_at(const cJSON *obj, const char *key, struct usage *u)
{
    const cJSON *v = get(obj, key);

    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > (double)USAGE_MAX ||
        v->valuedouble != (double)(int64_t)v->valuedouble) {
        if (u->bad == NULL)
            u->bad = key;
        return 0;
    }
    return (int64_t)v->valuedouble;
}

/* OpenAI chat and embeddings: prompt_tokens, completion_tokens, prompt_tokens_details. */
static void openai_chat(const cJSON *us, struct usage *u)
{
    if (!cJSON_IsObject(us))
        return;
    u->input = int_at(us, "prompt_tokens", u);
    u->output = int_at(us, "completion_tokens", u);
    u->cached = int_at(get(us, "prompt_tokens_details"), "cached_tokens", u);
    u->have = 1;
}

/* OpenAI Responses: input_tokens, output_tokens, input_tokens_details. */
static void openai_responses(const cJSON *us, struct usage *u)
{
    if (!cJSON_IsObject(us))
        return;
    u->input = int_at(us, "input_tokens", u);
    u->output = int_at(us, "output_tokens", u);
    u->cached = int_at(get(us, "input_tokens_details"), "cached_tokens", u);
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
        u->cached = int_at(us, "cache_read_input_tokens", u);
        u->cache_write = int_at(us, "cache_creation_input_tokens", u);
        u->input = int_at(us, "input_tokens", u) + u->cached + u->cache_write;
    }
    if (get(us, "output_tokens") != NULL)
        u->output = int_at(us, "output_tokens", u);
    u->have = 1;
}

/* Parts that cannot exceed the whole: a report where they do is bad. */
static void check_parts(struct usage *u)
{
    if (u->bad == NULL && u->cached + u->cache_write > u->input)
        u->bad = "cached_tokens";
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
        return;
    }
    if (u->have) {
        u->final = 1;
        check_parts(u);
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
        check_parts(u);
        /* final: OpenAI's own usage chunk (no choices) comes last; some compatible providers
         * put usage in the chunk that finishes; usage in other chunks is a running count */
        const cJSON *choices = get(data, "choices");
        int usage_chunk = cJSON_IsArray(choices) && cJSON_GetArraySize(choices) == 0;
        const cJSON *ch;
        cJSON_ArrayForEach(ch, choices) {
            const cJSON *fr = get(ch, "finish_reason");
            if (cJSON_IsString(fr))
                u->final = 1;
        }
        if (usage_chunk)
            u->final = 1;
        return usage_chunk;
    }
    case EP_RESPONSES:
        if (strcmp(name, "response.completed") == 0 || strcmp(name, "response.incomplete") == 0 ||
            strcmp(name, "response.failed") == 0) {
            openai_responses(get(get(data, "response"), "usage"), u);
            u->final = u->have;
            check_parts(u);
        }
        return 0;
    case EP_MESSAGES:
        if (strcmp(name, "message_start") == 0)
            anthropic(get(get(data, "message"), "usage"), u);
        else if (strcmp(name, "message_delta") == 0 && cJSON_IsObject(get(data, "usage"))) {
            /* its output_tokens is the total; message_start's was a placeholder */
            anthropic(get(data, "usage"), u);
            u->final = 1;
        }
        check_parts(u);
        return 0;
    default:
        return 0;
    }
}
