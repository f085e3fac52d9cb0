/*
 * cstats: the caches' counters. See cstats.h.
 */
#include "cache/cstats.h"

#include <stddef.h>

void cache_stats_add(struct cache_stats *s, enum cache_kind k, int level, enum cache_outcome o)
{
    if (s == NULL || (unsigned)k >= CACHE_K__COUNT || level < 0 || level >= CACHE_LEVELS ||
        (unsigned)o >= CACHE_O__COUNT)
        return;
    atomic_fetch_add_explicit(&s->n[k][level][o], 1, memory_order_relaxed);
}

void cache_stats_saved(struct cache_stats *s, enum cache_kind k, int64_t tokens, int64_t nusd)
{
    if (s == NULL || (unsigned)k >= CACHE_K__COUNT)
        return;
    if (tokens > 0)
        atomic_fetch_add_explicit(&s->saved_tokens[k], (uint64_t)tokens, memory_order_relaxed);
    if (nusd > 0)
        atomic_fetch_add_explicit(&s->saved_nusd[k], (uint64_t)nusd, memory_order_relaxed);
}

const char *cache_kind_name(enum cache_kind k)
{
    static const char *const names[CACHE_K__COUNT] = {"response", "tool", "mcp_list", "prefix"};
    return (unsigned)k < CACHE_K__COUNT ? names[k] : "unknown";
}
