/*
 * toolstats: tool calls counted per (server, tool, agent) and cache outcome, for /metrics:
 * the MCP proxy's tools/call ("server" is the MCP server's name) and /v1/tool-cache's
 * lookups (server ""). The label sets are capped: past TOOLSTATS_MAX rows, calls are counted
 * under "_other", never as a new label set. Thread-safe.
 */
#ifndef TG_CACHE_TOOLSTATS_H
#define TG_CACHE_TOOLSTATS_H

#include <stddef.h>

#include "cache/cstats.h"

#define TOOLSTATS_MAX 1024     /* (server, tool, agent) rows */
#define TOOLSTATS_LABEL_MAX 64 /* a label's value is cut to this */

struct toolstats;

/* An empty table; NULL when out of memory. */
struct toolstats *toolstats_new(void);
void toolstats_free(struct toolstats *t);

/* Counts one call of tool on server by agent with outcome o. t NULL: nothing. */
void toolstats_count(struct toolstats *t, const char *server, const char *tool,
                     const char *agent, enum cache_outcome o);

/*
 * Writes tokengate_tool_calls_total{server,tool,agent,cache} (Prometheus text, with its HELP
 * and TYPE lines) through emit, a line at a time. t NULL: nothing.
 */
typedef void toolstats_emit_fn(void *arg, const char *s, size_t n);
void toolstats_write(struct toolstats *t, toolstats_emit_fn *emit, void *arg);

#endif
