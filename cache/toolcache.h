/*
 * toolcache: tool results cached by (tenant scope, server, tool, canonical arguments), for
 * the MCP proxy (gate/mcp/) and for agents that run tools themselves (/v1/tool-cache). One
 * store (cache/store.h) holds both, capped by cache.tools; a tool is cached only when it is
 * on an allowlist, with its TTL.
 */
#ifndef TG_CACHE_TOOLCACHE_H
#define TG_CACHE_TOOLCACHE_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/canon.h"

struct cache_store;
struct cache_val;

/*
 * Writes the key of a tool result into b: scope (the tenant's label, "team:search"), server
 * ("" for /v1/tool-cache), tool, then the canonical text of args (NULL: no arguments).
 * Returns 0, or -1 when it would pass b->max or memory runs out.
 */
int toolcache_key(struct canon_buf *b, const char *scope, const char *server, const char *tool,
                  const cJSON *args);

/* The result stored under key, or NULL: as cache_store_get. */
struct cache_val *toolcache_get(struct cache_store *s, const struct canon_buf *key,
                                int64_t now_ms);

/* Stores result (JSON text of n bytes) under key for ttl_ms: as cache_store_put. */
int toolcache_put(struct cache_store *s, const struct canon_buf *key, const char *result,
                  size_t n, int64_t ttl_ms, int64_t now_ms);

#endif
