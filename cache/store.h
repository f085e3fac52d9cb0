/*
 * store: a byte-capped, thread-safe LRU of entries with a time to live, shared by every
 * worker: the response cache and the tool-result cache are each one. Keys are compared byte
 * for byte (a hash only finds the bucket), and a key starts with its scope, so that an entry
 * of one tenant can never answer another, even on a hash collision.
 *
 * An entry's value is handed out as a counted reference: an entry evicted or replaced while a
 * request replays it stays alive until the request lets go.
 */
#ifndef TG_CACHE_STORE_H
#define TG_CACHE_STORE_H

#include <stddef.h>
#include <stdint.h>

struct cache_store;
struct cache_val;

struct cache_store_stats {
    uint64_t entries, bytes;       /* now: bytes count keys, values and each entry's overhead */
    uint64_t max_bytes, max_entry_bytes;
    uint64_t hits, misses;         /* lookups */
    uint64_t stores, too_big;      /* puts taken; puts refused for their size */
    uint64_t evictions, expired;   /* entries gone for room; found past their TTL */
};

/*
 * A store holding at most max_bytes, none of its entries larger than max_entry_bytes.
 * Returns NULL when out of memory.
 */
struct cache_store *cache_store_new(size_t max_bytes, size_t max_entry_bytes);

/* Frees the store; references still held stay valid until released. */
void cache_store_free(struct cache_store *s);

/* New caps (a reload): entries past the new max_bytes are evicted, oldest use first. */
void cache_store_set_caps(struct cache_store *s, size_t max_bytes, size_t max_entry_bytes);

/*
 * Stores val under key, living ttl_ms from now_ms (milliseconds, any monotonic clock shared
 * by the store's users), replacing an entry of the same key. Evicts the least recently used
 * entries to make room. Returns 0, 1 when the entry is larger than max_entry_bytes (not
 * stored), or -1 when out of memory.
 */
int cache_store_put(struct cache_store *s, const void *key, size_t klen, const void *val,
                    size_t vlen, int64_t ttl_ms, int64_t now_ms);

/*
 * The entry of key, if there is one that has not expired at now_ms: a reference the caller
 * releases (cache_val_release), and the entry becomes the most recently used. NULL for a miss
 * (an expired entry is dropped).
 */
struct cache_val *cache_store_get(struct cache_store *s, const void *key, size_t klen,
                                  int64_t now_ms);

/* Drops the entry of key. Returns 1 when there was one, 0 when not. */
int cache_store_delete(struct cache_store *s, const void *key, size_t klen);

/* The value's bytes, and when it expires (now_ms units). */
const void *cache_val_data(const struct cache_val *v, size_t *len);
int64_t cache_val_expires(const struct cache_val *v);

/* Lets go of a reference from cache_store_get. NULL is ignored. */
void cache_val_release(struct cache_val *v);

void cache_store_stats(struct cache_store *s, struct cache_store_stats *out);

#endif
