/*
 * toolcache: STUB until the toolrest branch lands. See toolcache.h.
 */
#include "cache/toolcache.h"

#include "cache/store.h"

int toolcache_key(struct canon_buf *b, const char *scope, const char *server, const char *tool,
                  const cJSON *args)
{
    (void)b, (void)scope, (void)server, (void)tool, (void)args;
    return -1;
}

struct cache_val *toolcache_get(struct cache_store *s, const struct canon_buf *key,
                                int64_t now_ms)
{
    (void)s, (void)key, (void)now_ms;
    return NULL;
}

int toolcache_put(struct cache_store *s, const struct canon_buf *key, const char *result,
                  size_t n, int64_t ttl_ms, int64_t now_ms)
{
    (void)s, (void)key, (void)result, (void)n, (void)ttl_ms, (void)now_ms;
    return -1;
}
