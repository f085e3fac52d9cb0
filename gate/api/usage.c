/*
 * usage: the helpers the dialects read usage with. See usage.h; each API's fields are in its
 * dialect's file.
 */
#include "gate/api/usage.h"

#include <string.h>

int64_t usage_count(const cJSON *obj, const char *key, struct usage *u)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

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

void usage_read_openai(const cJSON *us, const char *in_key, const char *out_key,
                       const char *details_key, struct usage *u)
{
    if (!cJSON_IsObject(us))
        return;
    u->input = usage_count(us, in_key, u);
    u->output = out_key != NULL ? usage_count(us, out_key, u) : 0;
    u->cached = usage_count(cJSON_GetObjectItemCaseSensitive(us, details_key), "cached_tokens", u);
    u->have = 1;
}

void usage_check_parts(struct usage *u)
{
    if (u->bad == NULL && u->cached + u->cache_write > u->input)
        u->bad = "cached_tokens";
    if (u->bad == NULL && u->cache_write_1h > u->cache_write)
        u->bad = "ephemeral_1h_input_tokens";
}

void usage_body_done(struct usage *u)
{
    if (u->have) {
        u->final = 1;
        usage_check_parts(u);
    }
}
