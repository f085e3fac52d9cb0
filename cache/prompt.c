/*
 * prompt: provider prompt caching, set up on the request as sent. See prompt.h.
 *
 * Anthropic caches the prefix of a request up to a block marked with cache_control, in the
 * order tools, system, messages; a later request that starts with the same prefix reads it at a
 * tenth of the input price. A marked prefix shorter than the model's minimum is not cached (and
 * not refused), so a breakpoint is placed only where the count says the prefix reaches it. The
 * places, in prefix order (each at most once, so at most four):
 *   1. the last tool definition: the tools alone;
 *   2. the last system block: tools and system;
 *   3. the last block of the message before the last user turn: the conversation as it stood
 *      when the previous turn was asked (the prefix the previous request wrote, if it did);
 *   4. the last block of the final message: the whole conversation so far (what the next turn
 *      will read).
 * A body with any cache_control is the client's own arrangement and is left alone.
 */
#include "cache/prompt.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#define GET cJSON_GetObjectItemCaseSensitive

enum { CHANGED_TOOLS = 1, CHANGED_SYSTEM = 2, CHANGED_MESSAGES = 4 };

long prompt_min_tokens(const char *model)
{
    /* Anthropic's documented minimums; the names as they appear in the API's model ids and
     * in the cloud providers' (anthropic.claude-3-haiku-..., claude-3-5-haiku@...) */
    static const struct {
        const char *family;
        long min;
    } fam[] = {
        {"haiku-4-5", 4096}, {"haiku-4.5", 4096}, {"opus-4-5", 4096}, {"opus-4.5", 4096},
        {"3-5-haiku", 2048}, {"3.5-haiku", 2048}, {"3-haiku", 2048},  {"haiku-3", 2048},
    };

    if (model != NULL)
        for (size_t i = 0; i < sizeof(fam) / sizeof(fam[0]); i++)
            if (strstr(model, fam[i].family) != NULL)
                return fam[i].min;
    return 1024; /* Sonnet and Opus 4.x before 4.5, 3.7 Sonnet, and any other */
}

/* Whether block (an object of a content or tools array) carries cache_control, or one of the
 * blocks of its own content does (a tool_result's). */
static int block_marked(const cJSON *block)
{
    const cJSON *inner;

    if (!cJSON_IsObject(block))
        return 0;
    if (GET(block, "cache_control") != NULL)
        return 1;
    inner = GET(block, "content");
    if (cJSON_IsArray(inner)) {
        const cJSON *b;
        cJSON_ArrayForEach(b, inner)
        {
            if (cJSON_IsObject(b) && GET(b, "cache_control") != NULL)
                return 1;
        }
    }
    return 0;
}

/* Whether the client placed cache_control anywhere Anthropic reads it. */
static int client_marked(const cJSON *body)
{
    const cJSON *x, *m;

    if (GET(body, "cache_control") != NULL) /* a request-wide one */
        return 1;
    cJSON_ArrayForEach(x, GET(body, "tools"))
    {
        if (block_marked(x))
            return 1;
    }
    x = GET(body, "system");
    if (cJSON_IsArray(x)) {
        const cJSON *b;
        cJSON_ArrayForEach(b, x)
        {
            if (block_marked(b))
                return 1;
        }
    }
    cJSON_ArrayForEach(m, GET(body, "messages"))
    {
        const cJSON *b;
        cJSON_ArrayForEach(b, GET(m, "content"))
        {
            if (block_marked(b))
                return 1;
        }
    }
    return 0;
}

/* A new cache_control object: ephemeral, an hour when ttl_1h. */
static cJSON *marker(int ttl_1h)
{
    cJSON *cc = cJSON_CreateObject();

    if (cc == NULL || cJSON_AddStringToObject(cc, "type", "ephemeral") == NULL ||
        (ttl_1h && cJSON_AddStringToObject(cc, "ttl", "1h") == NULL)) {
        cJSON_Delete(cc);
        return NULL;
    }
    return cc;
}

/* Marks obj. Returns 0, or -1 when memory ran out (obj unchanged). */
static int mark(cJSON *obj, int ttl_1h)
{
    cJSON *cc = marker(ttl_1h);

    if (cc == NULL)
        return -1;
    if (!cJSON_AddItemToObject(obj, "cache_control", cc)) {
        cJSON_Delete(cc);
        return -1;
    }
    return 0;
}

/*
 * The content of holder's member key as an array of blocks: a string becomes one text block
 * (an empty one: no block, nothing to mark). Returns the array, NULL when there is none to
 * mark, and sets *oom when memory ran out.
 */
static cJSON *as_blocks(cJSON *holder, const char *key, int *oom)
{
    cJSON *v = GET(holder, key), *arr, *b;

    if (cJSON_IsArray(v))
        return v;
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
        return NULL;
    arr = cJSON_CreateArray();
    b = cJSON_CreateObject();
    if (arr == NULL || b == NULL || !cJSON_AddItemToArray(arr, b)) {
        cJSON_Delete(b);
        goto fail;
    }
    if (cJSON_AddStringToObject(b, "type", "text") == NULL ||
        cJSON_AddStringToObject(b, "text", v->valuestring) == NULL ||
        !cJSON_ReplaceItemInObjectCaseSensitive(holder, key, arr))
        goto fail;
    return arr;
fail:
    cJSON_Delete(arr);
    *oom = 1;
    return NULL;
}

/* The last block of blocks that may carry cache_control: not a thinking block (Anthropic
 * refuses a marker on one), not an empty text block. NULL when there is none. */
static cJSON *last_markable(cJSON *blocks)
{
    cJSON *b;

    /* backwards; cJSON's prev of the first item is the last one, so the walk stops there */
    for (b = cJSON_GetArrayItem(blocks, cJSON_GetArraySize(blocks) - 1); b != NULL;
         b = b == blocks->child ? NULL : b->prev) {
        const cJSON *type = GET(b, "type"), *text = GET(b, "text");
        if (!cJSON_IsObject(b))
            continue;
        if (cJSON_IsString(type) && (strcmp(type->valuestring, "thinking") == 0 ||
                                     strcmp(type->valuestring, "redacted_thinking") == 0))
            continue;
        if (cJSON_IsString(text) && text->valuestring[0] == '\0')
            continue;
        return b;
    }
    return NULL;
}

/* Marks the last markable block of message m. Returns 1 placed, 0 none, -1 out of memory. */
static int mark_message(cJSON *m, int ttl_1h)
{
    int oom = 0;
    cJSON *blocks = as_blocks(m, "content", &oom), *b;

    if (oom)
        return -1;
    b = blocks ? last_markable(blocks) : NULL;
    if (b == NULL)
        return 0;
    return mark(b, ttl_1h) < 0 ? -1 : 1;
}

/* The index of the last message whose role is user, or -1. */
static int last_user(const cJSON *messages)
{
    int i = 0, last = -1;
    const cJSON *m;

    cJSON_ArrayForEach(m, messages)
    {
        const cJSON *role = GET(m, "role");
        if (cJSON_IsString(role) && strcmp(role->valuestring, "user") == 0)
            last = i;
        i++;
    }
    return last;
}

int prompt_breakpoints(cJSON *body, const tok_count_parts *parts, long min_tokens, int ttl_1h,
                       int *changed)
{
    cJSON *tools = GET(body, "tools"), *messages = GET(body, "messages");
    uint64_t min = min_tokens > 0 ? (uint64_t)min_tokens : 0, prefix = 0;
    int placed = 0, oom = 0, want[2] = {-1, -1};

    *changed = 0;
    if (!cJSON_IsObject(body) || parts == NULL || client_marked(body))
        return 0;

    /* 1. the tools */
    prefix += parts->tools;
    if (cJSON_IsArray(tools) && cJSON_GetArraySize(tools) > 0 && prefix >= min) {
        cJSON *t = cJSON_GetArrayItem(tools, cJSON_GetArraySize(tools) - 1);
        if (cJSON_IsObject(t)) {
            if (mark(t, ttl_1h) < 0)
                return -1;
            placed++;
            *changed |= CHANGED_TOOLS;
        }
    }

    /* 2. the system prompt */
    prefix += parts->system;
    if (prefix >= min && GET(body, "system") != NULL) {
        cJSON *blocks = as_blocks(body, "system", &oom), *b;
        if (oom)
            return -1;
        b = blocks ? last_markable(blocks) : NULL;
        if (b != NULL) {
            *changed |= CHANGED_SYSTEM; /* also when only the string became a block */
            if (mark(b, ttl_1h) < 0)
                return -1;
            placed++;
        } else if (blocks != NULL && !cJSON_IsArray(GET(body, "system"))) {
            *changed |= CHANGED_SYSTEM;
        }
    }

    /* 3. and 4.: the message before the last user turn, and the final message; only messages
     * the parts counted (the ones past parts->cap have no count of their own) */
    int n = cJSON_IsArray(messages) ? cJSON_GetArraySize(messages) : 0;
    int lu = last_user(messages);
    if (lu >= 1)
        want[0] = lu - 1;
    if (n > 0 && n - 1 != want[0])
        want[1] = n - 1;
    for (int k = 0, i = 0; k < 2 && placed < PROMPT_MAX_BREAKPOINTS; k++) {
        if (want[k] < 0 || (uint32_t)want[k] >= parts->nmessages)
            continue;
        for (; i <= want[k]; i++)
            prefix += parts->messages[i];
        if (prefix < min)
            continue;
        cJSON *m = cJSON_GetArrayItem(messages, want[k]);
        int was_string = cJSON_IsString(GET(m, "content"));
        int r = mark_message(m, ttl_1h);
        if (r < 0)
            return -1;
        if (r > 0 || (was_string && !cJSON_IsString(GET(m, "content"))))
            *changed |= CHANGED_MESSAGES;
        placed += r;
    }
    return placed;
}

void prompt_cache_key(const char *scope_label, char out[40])
{
    /* a keyed hash, so that the key names the scope without saying it: the provider sees a
     * stable token per tenant, never the org's names; the key separates this use of the
     * label from any other hash of it */
    static const char key[] = "tokengate prompt_cache_key v1";
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    const char *label = scope_label != NULL ? scope_label : "";

    memcpy(out, "tg-", 4);
    if (HMAC(EVP_sha256(), key, (int)sizeof(key) - 1, (const unsigned char *)label,
             strlen(label), mac, &n) == NULL ||
        n < 16) {
        memset(mac, 0, sizeof(mac)); /* never happens with SHA-256; a fixed key, not garbage */
    }
    for (int i = 0; i < 16; i++)
        snprintf(out + 3 + 2 * i, 3, "%02x", mac[i]);
}
