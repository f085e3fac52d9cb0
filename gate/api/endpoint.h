/*
 * endpoint: the API paths the gate answers, with the method each takes and the API format
 * its errors are written in.
 */
#ifndef TG_ENDPOINT_H
#define TG_ENDPOINT_H

#include <stddef.h>

#include "conf/conf.h"

enum endpoint {
    EP_NONE = 0,
    EP_CHAT,         /* POST /v1/chat/completions */
    EP_RESPONSES,    /* POST /v1/responses */
    EP_EMBEDDINGS,   /* POST /v1/embeddings */
    EP_MODELS,       /* GET  /v1/models, answered by the gate */
    EP_MESSAGES,     /* POST /v1/messages */
    EP_COUNT_TOKENS, /* POST /v1/messages/count_tokens */
    EP_HEALTHZ,      /* GET  /healthz */
    EP_STATUS,       /* GET  /status */
    EP_MCP,          /* POST, GET, DELETE /mcp/{server}: the MCP proxy (gate/mcp/) */
    EP_TOOL_CACHE,   /* /v1/tool-cache/{tool}[/lookup]: GET, PUT, POST, DELETE, by the gate */
    EP__COUNT
};

struct endpoint_info {
    const char *path;   /* ending in '/': a prefix, the endpoint of every path under it */
    const char *method; /* or a list: "POST, GET, DELETE" */
    enum conf_format format;
    int proxied;     /* forwarded to a provider */
};

/*
 * Finds the endpoint for a request path (query string excluded). Returns EP_NONE for an
 * unknown path. A prefix endpoint ("/mcp/") takes every path under it, not itself.
 */
enum endpoint endpoint_lookup(const char *path, size_t len);

const struct endpoint_info *endpoint_info(enum endpoint ep);

/* 1 when info's method (or one of its list) is method, else 0. */
int endpoint_takes(const struct endpoint_info *info, const char *method);

#endif
