/*
 * dialect: the table of API dialects and the helpers they share. See dialect.h.
 */
#include "gate/api/dialect.h"

#include <string.h>

static const struct api_dialect *const by_endpoint[EP__COUNT] = {
    [EP_CHAT] = &api_openai_chat,
    [EP_RESPONSES] = &api_openai_responses,
    [EP_EMBEDDINGS] = &api_openai_embeddings,
    [EP_MESSAGES] = &api_anthropic_messages,
    [EP_COUNT_TOKENS] = &api_anthropic_count,
};

/* A key in Authorization wins over one in x-api-key whatever the API, as the gate always
 * took it: an OpenAI SDK sends the first, an Anthropic SDK either (x-api-key for an API key,
 * a bearer token for others); x-api-key is not OpenAI's, but a gate key is taken there too. */
const struct api_key_header api_keys_any[] = {
    {"authorization", "Bearer "},
    {"x-api-key", NULL},
    {NULL, NULL},
};

const struct api_dialect *api_dialect_for(enum endpoint ep)
{
    return ep > EP_NONE && ep < EP__COUNT ? by_endpoint[ep] : NULL;
}

const struct api_dialect *api_dialect_errors(const struct api_dialect *client, enum conf_format fmt)
{
    if (client != NULL)
        return client;
    return fmt == CONF_FMT_ANTHROPIC ? &api_anthropic_messages : &api_openai_chat;
}

const struct api_key_header *api_client_keys(const struct api_dialect *client)
{
    return client != NULL ? client->client_keys : api_keys_any;
}

int api_is_key_header(const char *name)
{
    for (const struct api_key_header *k = api_keys_any; k->name != NULL; k++)
        if (strcmp(k->name, name) == 0)
            return 1;
    for (int ep = 0; ep < EP__COUNT; ep++) {
        if (by_endpoint[ep] == NULL)
            continue;
        for (const struct api_key_header *k = by_endpoint[ep]->client_keys; k->name != NULL; k++)
            if (strcmp(k->name, name) == 0)
                return 1;
    }
    return 0;
}

void api_text_string(const cJSON *v, api_text_fn *add, void *arg)
{
    if (cJSON_IsString(v))
        add(arg, v->valuestring, strlen(v->valuestring));
}

void api_text_json(const cJSON *v, api_text_fn *add, void *arg)
{
    char *s;

    if (v == NULL || cJSON_IsNull(v))
        return;
    if (cJSON_IsString(v)) {
        api_text_string(v, add, arg);
        return;
    }
    s = cJSON_PrintUnformatted(v);
    if (s != NULL) {
        add(arg, s, strlen(s));
        cJSON_free(s);
    }
}

int api_no_stream_usage(cJSON *body, struct jsonedit_op *op)
{
    (void)body;
    (void)op;
    return 0;
}

void api_no_text_event(const char *name, const cJSON *data, api_text_fn *add, void *arg)
{
    (void)name;
    (void)data;
    (void)add;
    (void)arg;
}

void api_no_text_body(const cJSON *body, api_text_fn *add, void *arg)
{
    (void)body;
    (void)add;
    (void)arg;
}

int api_no_usage_event(const char *name, const cJSON *data, struct usage *u)
{
    (void)name;
    (void)data;
    (void)u;
    return 0;
}
