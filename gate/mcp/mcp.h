/*
 * mcp: the gate's caching proxy for MCP servers over streamable HTTP, at /mcp/{server}
 * (conf: mcp.servers, conf/confmcp.c). A request runs its own stage table (pipeline_mcp):
 * the gate key is checked as for models, then the JSON-RPC body is read, the session bound to
 * the key that opened it, a team's tool allowlist applied, tools/call and tools/list answered
 * from the tool store (srv->tools) when they can be, and the rest forwarded with the server's
 * own credential through the gate's upstream pools; its answer (JSON or an event stream) goes
 * back through the response filters. Nothing is reserved or billed; each request is logged.
 *
 * What the MCP proxy keeps across requests (sessions and their keys, call counters) is one
 * struct mcp_hub per gate (srv->mcp), shared by every worker under its own lock.
 */
#ifndef TG_MCP_H
#define TG_MCP_H

#include <cjson/cJSON.h>

struct evbuffer;
struct gate_req;
struct gate_server;
struct mcp_hub;
struct pipeline;

/* The MCP proxy's stage table (mcp.c): gate/server.c hands it to req.c as srv->mcp_pipeline,
 * for the paths under /mcp/ (endpoint EP_MCP). */
extern const struct pipeline pipeline_mcp;

/* A hub with empty tables. Returns NULL when out of memory. */
struct mcp_hub *mcp_hub_new(void);
void mcp_hub_free(struct mcp_hub *h);

/* Adds the request's "mcp" object to its log record rec (nothing for a request that is not
 * the MCP proxy's). rec's nodes are allocated where jsonmem says. The parse stage sets it as
 * the request's log_more hook. */
void mcp_log(const struct gate_req *req, cJSON *rec);

#endif
