/*
 * toolcache_ep: the /v1/tool-cache endpoint, for agents that run tools themselves: they store
 * a tool's result under its canonical arguments and look it up before running the tool again.
 *
 *   PUT    /v1/tool-cache/{tool}         {"arguments": {...}, "result": <JSON>, "ttl": "10m"?}
 *   GET    /v1/tool-cache/{tool}?arguments=<URL-encoded JSON object>
 *   POST   /v1/tool-cache/{tool}/lookup  {"arguments": {...}}
 *   DELETE /v1/tool-cache/{tool}?arguments=<...>  (or the body {"arguments": {...}})
 *
 * A hit is 200 {"result": ..., "age_s": N} with x-tokengate-cache: hit; a miss 404 with
 * x-tokengate-cache: miss. Only tools on cache.tools.ttl (the allowlist, each with its TTL)
 * are taken (403 naming it); a result is at most cache.tools.max_entry_bytes (413). Entries
 * are shared within the scope of the caller's policy (cache.scope: agent by default), and an
 * open gate's within the client's credential: never across tenants.
 */
#ifndef TG_TOOLCACHE_EP_H
#define TG_TOOLCACHE_EP_H

#include <cjson/cJSON.h>

#include "gate/pipeline/pipeline.h"

/* Answers a request of EP_TOOL_CACHE (after stage_auth): always STAGE_ANSWERED or STAGE_FAIL. */
enum stage_rc toolcache_ep_run(struct gate_req *req);

/* Adds "tool_cache": {"tool", "op", "cache"} to the log record rec of a /v1/tool-cache
 * request; nothing for other requests. */
void toolcache_ep_log(const struct gate_req *req, cJSON *rec);

#endif
