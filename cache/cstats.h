/*
 * cstats: the caches' counters, for /status and /metrics: lookups that hit, missed or were
 * bypassed, per cache and per scope level (agent, team, department, org: a bounded set, never
 * a tenant's name), and what the hits saved. Relaxed atomics: any worker adds, the admin
 * thread reads.
 */
#ifndef TG_CACHE_CSTATS_H
#define TG_CACHE_CSTATS_H

#include <stdatomic.h>
#include <stdint.h>

enum cache_kind {
    CACHE_K_RESPONSE, /* exact responses */
    CACHE_K_TOOL,     /* tool results: MCP tools/call and /v1/tool-cache */
    CACHE_K_MCP_LIST, /* MCP tools/list */
    CACHE_K_PREFIX,   /* prefix token counts (scope: "org", they hold no tenant data) */
    CACHE_K__COUNT
};

enum cache_outcome { CACHE_HIT, CACHE_MISS, CACHE_BYPASS, CACHE_O__COUNT };

#define CACHE_LEVELS 4 /* enum conf_level */

struct cache_stats {
    atomic_uint_fast64_t n[CACHE_K__COUNT][CACHE_LEVELS][CACHE_O__COUNT];
    atomic_uint_fast64_t saved_tokens[CACHE_K__COUNT]; /* provider tokens hits did not spend */
    atomic_uint_fast64_t saved_nusd[CACHE_K__COUNT];   /* ... and their price */
    /* net savings of the requests settled (gate/pipeline/savings.c): provider prompt caching
     * and routing; either may go down (a write's premium, a fallback to a dearer target) */
    atomic_int_fast64_t prompt_saved_nusd, route_saved_nusd;
};

/* Counts one lookup of cache k for scope level level (enum conf_level) with outcome o. */
void cache_stats_add(struct cache_stats *s, enum cache_kind k, int level, enum cache_outcome o);

/* Counts what a hit saved. */
void cache_stats_saved(struct cache_stats *s, enum cache_kind k, int64_t tokens, int64_t nusd);

/* "response", "tool", "mcp_list", "prefix". */
const char *cache_kind_name(enum cache_kind k);

#endif
