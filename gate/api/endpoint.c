#include "gate/api/endpoint.h"

#include <string.h>

static const struct endpoint_info table[EP__COUNT] = {
    [EP_NONE] = {"", "", CONF_FMT_OPENAI, 0},
    [EP_CHAT] = {"/v1/chat/completions", "POST", CONF_FMT_OPENAI, 1},
    [EP_RESPONSES] = {"/v1/responses", "POST", CONF_FMT_OPENAI, 1},
    [EP_EMBEDDINGS] = {"/v1/embeddings", "POST", CONF_FMT_OPENAI, 1},
    [EP_MODELS] = {"/v1/models", "GET", CONF_FMT_OPENAI, 0},
    [EP_MESSAGES] = {"/v1/messages", "POST", CONF_FMT_ANTHROPIC, 1},
    [EP_COUNT_TOKENS] = {"/v1/messages/count_tokens", "POST", CONF_FMT_ANTHROPIC, 1},
    [EP_HEALTHZ] = {"/healthz", "GET", CONF_FMT_OPENAI, 0},
    [EP_STATUS] = {"/status", "GET", CONF_FMT_OPENAI, 0},
    [EP_MCP] = {"/mcp/", "POST, GET, DELETE", CONF_FMT_OPENAI, 0}, /* gate/mcp/ answers */
    [EP_TOOL_CACHE] = {"/v1/tool-cache/", "GET, PUT, POST, DELETE", CONF_FMT_OPENAI, 0},
};

enum endpoint endpoint_lookup(const char *path, size_t len)
{
    /* a prefix endpoint takes the paths under it (not the prefix alone) */
    for (int i = 1; i < EP__COUNT; i++) {
        size_t n = strlen(table[i].path);
        if (n > 1 && table[i].path[n - 1] == '/' && len > n && memcmp(table[i].path, path, n) == 0)
            return (enum endpoint)i;
    }
    /* a trailing slash names the same resource, as the providers treat it */
    if (len > 1 && path[len - 1] == '/')
        len--;
    for (int i = 1; i < EP__COUNT; i++) {
        size_t n = strlen(table[i].path);
        if (n == len && table[i].path[n - 1] != '/' && memcmp(table[i].path, path, n) == 0)
            return (enum endpoint)i;
    }
    return EP_NONE;
}

const struct endpoint_info *endpoint_info(enum endpoint ep)
{
    return &table[ep];
}

int endpoint_takes(const struct endpoint_info *info, const char *method)
{
    size_t n = strlen(method);

    for (const char *p = info->method; *p != '\0';) {
        size_t w = strcspn(p, ", ");
        if (w == n && n > 0 && memcmp(p, method, n) == 0)
            return 1;
        p += w;
        p += strspn(p, ", ");
    }
    return 0;
}
