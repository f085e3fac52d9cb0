/*
 * store: STUB until the respcache branch lands. See store.h.
 */
#include "cache/store.h"

#include <string.h>

struct cache_store *cache_store_new(size_t max_bytes, size_t max_entry_bytes)
{
    (void)max_bytes, (void)max_entry_bytes;
    return NULL;
}

void cache_store_free(struct cache_store *s)
{
    (void)s;
}

void cache_store_set_caps(struct cache_store *s, size_t max_bytes, size_t max_entry_bytes)
{
    (void)s, (void)max_bytes, (void)max_entry_bytes;
}

int cache_store_put(struct cache_store *s, const void *key, size_t klen, const void *val,
                    size_t vlen, int64_t ttl_ms, int64_t now_ms)
{
    (void)s, (void)key, (void)klen, (void)val, (void)vlen, (void)ttl_ms, (void)now_ms;
    return -1;
}

struct cache_val *cache_store_get(struct cache_store *s, const void *key, size_t klen,
                                  int64_t now_ms)
{
    (void)s, (void)key, (void)klen, (void)now_ms;
    return NULL;
}

int cache_store_delete(struct cache_store *s, const void *key, size_t klen)
{
    (void)s, (void)key, (void)klen;
    return 0;
}

const void *cache_val_data(const struct cache_val *v, size_t *len)
{
    (void)v;
    *len = 0;
    return NULL;
}

int64_t cache_val_expires(const struct cache_val *v)
{
    (void)v;
    return 0;
}

void cache_val_release(struct cache_val *v)
{
    (void)v;
}

void cache_store_stats(struct cache_store *s, struct cache_store_stats *out)
{
    (void)s;
    memset(out, 0, sizeof(*out));
}
