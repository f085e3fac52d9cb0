/*
 * labelcache: the classifier's labels, by tenant and a hash of the text classified, with a
 * TTL and a cap on entries (LRU), shared by every worker (one mutex). A label is never found
 * from another tenant: the tenant is part of the key, compared in full, not hashed alone.
 */
#ifndef TG_LABELCACHE_H
#define TG_LABELCACHE_H

#include <stddef.h>
#include <stdint.h>

struct labelcache;

/* A cache of at most max_entries labels (at least 1). NULL when out of memory. */
struct labelcache *labelcache_new(int max_entries);
void labelcache_free(struct labelcache *lc);

/* Writes the label cached for (tenant, text) into out (cap bytes) and returns 1, or 0 when
 * none is (or it expired at now_us). */
int labelcache_get(struct labelcache *lc, const char *tenant, const char *text, size_t len,
                   int64_t now_us, char *out, size_t cap);

/* Caches label for (tenant, text) until now_us + ttl_ms, evicting the least recently used
 * entry when full. */
void labelcache_put(struct labelcache *lc, const char *tenant, const char *text, size_t len,
                    const char *label, int64_t now_us, int64_t ttl_ms);

/* Entries, hits, misses, evictions: for /status and /metrics. */
void labelcache_stats(struct labelcache *lc, uint64_t out[4]);

#endif
