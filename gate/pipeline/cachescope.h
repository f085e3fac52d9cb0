/*
 * cachescope: the tenant a cached entry belongs to, one rule for every cache (responses, tool
 * results, MCP, the prompt_cache_key). An entry's key starts with its scope's label, so two
 * tenants never share an entry.
 */
#ifndef TG_CACHESCOPE_H
#define TG_CACHESCOPE_H

#include <stddef.h>

#include "conf/conf.h"

struct gate_req;

/*
 * The label of the scope req's entries are shared within at level lv, written into buf (cap
 * bytes): with an org, the scope of that level above the caller's agent ("team:search",
 * "org"), or the agent's own label when none of that level is above it (*level then says
 * agent); an open gate (or a caller with no agent): "key:" and the first 16 hex digits of the
 * SHA-256 of the client's credential, so that two clients with two provider keys never share.
 * Returns buf, or NULL when there is nothing to scope by (an open gate's client without a
 * credential) or the label does not fit in buf (a label cut short could name two scopes):
 * such a caller's entries are not cached. *level gets the level used.
 */
const char *cache_scope_label(const struct gate_req *req, enum conf_level lv,
                              enum conf_level *level, char *buf, size_t cap);

#endif
