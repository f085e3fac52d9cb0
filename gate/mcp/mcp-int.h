/*
 * mcp-int: what the MCP proxy's modules share (mcp.c the stages, mcpfilter.c the answer's
 * filter and the cache fill, mcphub.c sessions and counters). Not for use outside gate/mcp/.
 */
#ifndef TG_MCP_INT_H
#define TG_MCP_INT_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/cstats.h"
#include "conf/conf.h"
#include "gate/mcp/mcp.h"

struct cache_val;
struct gate_req;
struct resp_filter_type;

/* caps */
#define MCP_SESSIONS_MAX 10000   /* session ids remembered; past it the least recently used goes */
#define MCP_SESSION_ID_MAX 128   /* a longer id from a server is not bound (nor usable) */
#define MCP_OWNER_MAX 48         /* "key_...", "agent:NAME" hashed, "key:" + 16 hex */
#define MCP_LABEL_MAX 64         /* a label's value is cut to this */
#define MCP_KEY_MAX (256 * 1024) /* a cache key (the arguments' canonical text) */

/* What the cache made of the request, for the counters, the log and x-tokengate-cache. */
enum mcp_cache { MCP_CACHE_NONE = 0, MCP_CACHE_HIT, MCP_CACHE_MISS, MCP_CACHE_BYPASS };

/* The MCP part of a request (req->mcp), in its arena. */
struct mcp_req {
    const struct conf_mcp_server *srv;
    char owner[MCP_OWNER_MAX]; /* who binds sessions: the key's id, else the credential's hash */
    const char *scope;         /* the tool cache's scope label ("agent:crawler-1"); "" none */
    int level;                 /* ... its level (enum conf_level) */
    const char *agent;         /* the agent's name for counters, "-" for none */
    const struct conf_mcp_team *team; /* the caller's team allowlist here, or NULL: sees all */
    cJSON *body;                      /* the JSON-RPC message or batch (POST) */
    int batch;
    const char *method;  /* a single message's method, NULL for none */
    const char *tool;    /* tools/call: the tool's name */
    const cJSON *id;     /* a single request's id, NULL for a notification */
    const char *session; /* the client's Mcp-Session-Id, NULL for none */
    enum mcp_cache cache;
    enum cache_kind kind; /* CACHE_K_TOOL or CACHE_K_MCP_LIST when cache is set */
    char *key;            /* the store's key (in the arena), klen bytes */
    size_t klen;
    int64_t ttl_ms;
    struct cache_val *hit; /* a hit's entry, between its lookup and its answer */
    int filter_list;       /* a tools/list answer is cut to team's tools */
    char *result;          /* the answer's result, JSON text (in the arena), once seen */
    size_t result_len;
    int result_error; /* the answer was a JSON-RPC error, or a tool's isError */
};

/* Whether tool is on team's list (NULL team: every tool is visible). */
int mcp_tool_visible(const struct conf_mcp_team *team, const char *tool);

/* A tools/list result cut to team's tools: a new object (allocated where jsonmem says), or
 * NULL when out of memory. */
cJSON *mcp_filter_list(const cJSON *result, const struct conf_mcp_team *team);

/* The answer's filter (mcpfilter.c): binds the session the server issues, unbinds one it
 * ends, adds x-tokengate-cache, cuts tools/list to the team's tools, keeps the result for the
 * cache. Goes before the writer. */
extern const struct resp_filter_type mcp_filter;

/* After the answer ended: stores the result kept by the filter when the request missed a
 * cacheable entry and the answer is a whole success. */
void mcp_fill(struct gate_req *req);

/* sessions (mcphub.c). */
enum mcp_bind { MCP_BIND_MINE, MCP_BIND_OTHER, MCP_BIND_UNKNOWN };
enum mcp_bind mcp_session_check(struct mcp_hub *h, const char *server, const char *id,
                                const char *owner);
/* Binds id (on server) to owner unless bound already. Returns 0, or -1 when the id is too
 * long to remember. */
int mcp_session_bind(struct mcp_hub *h, const char *server, const char *id, size_t len,
                     const char *owner);
void mcp_session_drop(struct mcp_hub *h, const char *server, const char *id);

const char *mcp_cache_name(enum mcp_cache c);

#endif
