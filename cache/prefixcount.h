/*
 * prefixcount: the token counts of message prefixes, remembered so that a conversation sent
 * again each turn is tokenized only in its new messages. Keyed by a hash chain over the
 * messages' boundaries (tokenizer/chat.h: tok_prefix_memo) with the encoding and the API in
 * it; a count holds no tenant's text, so one table serves every tenant. Capped in entries,
 * LRU; thread-safe.
 */
#ifndef TG_CACHE_PREFIXCOUNT_H
#define TG_CACHE_PREFIXCOUNT_H

#include <stdint.h>

#include "tokenizer/chat.h"

struct prefixcount;

/* cache.prefix_counts.max_entries when the config leaves it 0 */
#define PREFIXCOUNT_DEFAULT_MAX 1000000

/* The cap the config asks for: max_entries (0: the default), or 0 when the memo is off. */
static inline int64_t prefixcount_conf_cap(int enabled, int64_t max_entries)
{
    return !enabled ? 0 : max_entries > 0 ? max_entries : PREFIXCOUNT_DEFAULT_MAX;
}

/* A table of at most max_entries counts (0 or less: it keeps none); NULL when out of memory.
 * About 90 bytes an entry. */
struct prefixcount *prefixcount_new(int64_t max_entries);
void prefixcount_free(struct prefixcount *p);

/* A reload's new cap: entries past it are dropped, oldest use first. */
void prefixcount_set_cap(struct prefixcount *p, int64_t max_entries);

/* The memo tok_count_request_ex takes, over p (p NULL: no memo). */
void prefixcount_memo(struct prefixcount *p, tok_prefix_memo *out);

/* hits and misses count lookups (a count looks up from its last message back until one is
 * found); evictions count entries dropped for room or by a lower cap. */
struct prefixcount_stats {
    uint64_t entries, max_entries, hits, misses, evictions;
};
void prefixcount_stats(struct prefixcount *p, struct prefixcount_stats *out);

#endif
